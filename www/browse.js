// Uses: wasm_bindgen (glue), toErr, initWasm (common.js), Bridge (bridge.js), Reads (reads.js),
//   blobSink, opfsSink, opfsFolder (sinks.js).
// Browse worker: the file browser over restored volumes. It reads the Blob/File a restore
// produced (FileReaderSync: synchronous, so only in a worker) through the core's ext4/GPT and
// tar readers, and streams single files and whole folders (.zip) out through the same sinks
// the coordinator uses, piece by piece, so no file is ever held whole. Where this browser cannot
// read Blobs in a worker, the image's non-zero pages are first read into this worker through the
// page (Reads.loadImage), bounded.
//
// Requests (page → browse worker, a Bridge over the worker), run one at a time in order:
//   init {module, workerReads} · open {blob, kind: image|home, partition, lost} → info · list {path} → listing ·
//   lost {path, budget} → {lost, unchecked} · preview {path, max} → {bytes (transferred), size, lost} ·
//   file {path, name} and zip {path, name} → {blob, name, lost, summary?}, with progress events
//   {done, total}; these two can be cancelled (→ Bridge.CANCELLED).
// Paths are Uint8Arrays of the raw bytes.
'use strict';

const PIECE = 1024 * 1024;
let browser = null;           // wasm_bindgen.Browser
let opfsDir = null;           // Firefox: big downloads go through OPFS (see sinks.js)
let queue = Promise.resolve();

// One request at a time, in order: the wasm browser is not re-entrant.
function inTurn(fn) {
  return (m, call) => {
    const p = queue.then(() => fn(m, call)).catch((e) => { throw toErr(e, 'browsing'); });
    queue = p.catch(() => {});
    return p;
  };
}

const page = new Bridge(self);
page.serve({
  init: inTurn(init),
  open: inTurn(open),
  list: inTurn((m) => JSON.parse(need().list_json(m.path))),
  lost: inTurn((m) => JSON.parse(need().lost_json(m.path, m.budget))),
  preview: inTurn(preview),
  file: inTurn(saveFile),
  zip: inTurn(saveZip),
});

async function init(m) {
  Reads.setup(page, m.workerReads);
  try {
    initWasm(m.module);
  } catch (e) {
    throw toErr(e, 'starting the file browser');
  }
  opfsDir = await opfsFolder('qubes-rescue-files'); // null on Chromium's file://: Blob downloads
}

async function open(m) {
  if (browser) { browser.free(); browser = null; }
  const lost = m.lost && m.lost.length ? JSON.stringify(m.lost) : '';
  const image = await Reads.loadImage(m.blob);
  browser = m.kind === 'home' ? wasm_bindgen.Browser.open_home(image) :
    wasm_bindgen.Browser.open_image(image, m.partition == null ? undefined : m.partition, lost);
  return JSON.parse(browser.info_json());
}

function preview(m) {
  const f = need().open_file(m.path);
  try {
    const parts = [];
    let got = 0;
    while (got < m.max) {
      const piece = f.read(Math.min(PIECE, m.max - got));
      if (!piece.length) break;
      parts.push(piece);
      got += piece.length;
    }
    const bytes = new Uint8Array(got);
    let at = 0;
    for (const p of parts) { bytes.set(p, at); at += p.length; }
    return Bridge.transfer({ bytes, size: f.size(), lost: f.lost() }, [bytes.buffer]);
  } finally {
    f.free();
  }
}

function need() {
  if (!browser) throw { class: 'io', message: 'open a volume first' };
  return browser;
}

async function sinkFor(name) {
  if (opfsDir) return opfsSink(opfsDir, Date.now() + '-' + name);
  return blobSink();
}

// Lets cancel messages and other work in; reports progress at most every 200 ms. True once
// the call was cancelled.
function ticker(call, total) {
  let last = 0;
  return async (done) => {
    const now = performance.now();
    if (now - last > 200) {
      last = now;
      call.emit('progress', { done, total });
      await new Promise((r) => setTimeout(r, 0));
    }
    return call.cancelled;
  };
}

function allZero(b) {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

// One file, holes kept as holes (all-zero pieces are not written).
async function saveFile(m, call) {
  const f = need().open_file(m.path);
  let sink = null;
  try {
    const size = f.size();
    sink = await sinkFor(m.name);
    sink.set_len(size);
    const tick = ticker(call, size);
    let done = 0;
    for (;;) {
      const piece = f.read(PIECE);
      if (!piece.length) break;
      if (!allZero(piece)) sink.write(done, piece);
      done += piece.length;
      if (await tick(done)) { if (sink.abort) sink.abort(); return Bridge.CANCELLED; }
    }
    const blob = await sink.finish();
    return { blob, name: m.name, lost: f.lost() };
  } catch (e) {
    if (sink && sink.abort) sink.abort();
    throw e;
  } finally {
    f.free();
  }
}

// A folder as one .zip, written as it is produced.
async function saveZip(m, call) {
  const z = need().zip(m.path);
  let sink = null;
  try {
    sink = await sinkFor(m.name);
    const total = JSON.parse(z.progress_json()).total;
    const tick = ticker(call, total);
    let at = 0;
    for (;;) {
      const piece = z.next(4 * PIECE);
      if (!piece.length) break;
      sink.write(at, piece);
      at += piece.length;
      if (await tick(JSON.parse(z.progress_json()).bytes)) {
        if (sink.abort) sink.abort();
        return Bridge.CANCELLED;
      }
    }
    const blob = await sink.finish();
    const summary = JSON.parse(z.progress_json());
    return { blob, name: m.name, lost: summary.lost.length > 0, summary };
  } catch (e) {
    if (sink && sink.abort) sink.abort();
    throw e;
  } finally {
    z.free();
  }
}
