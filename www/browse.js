// Browse worker: the file browser over restored volumes. It reads the Blob/File a restore
// produced (FileReaderSync: synchronous, so only in a worker) through the core's ext4/GPT and
// tar readers, and streams single files and whole folders (.zip) out through the same sinks
// the coordinator uses, piece by piece, so no file is ever held whole.
//
// Messages (page → browse): init {module} · open {rid, blob, kind: image|home, partition, lost}
//   · list {rid, path} · lost {rid, path, budget} · preview {rid, path, max} · file {rid, path, name} · zip {rid, path, name}
//   · cancel {rid}
// (browse → page): ready · opened {rid, info} · listing {rid, listing} · lost-files {rid, lost, unchecked} · preview {rid, bytes, size}
//   · progress {rid, done, total} · saved {rid, blob, name, lost, summary?} · failed {rid, err}
//   · cancelled {rid}
// Paths are Uint8Arrays of the raw bytes.
'use strict';

const PIECE = 1024 * 1024;
let browser = null;           // wasm_bindgen.Browser
let opfsDir = null;           // Firefox: big downloads go through OPFS (see sinks.js)
let cancelled = new Set();
let queue = Promise.resolve();

self.onmessage = (ev) => {
  const m = ev.data;
  if (m.t === 'init') return init(m);
  if (m.t === 'cancel') { cancelled.add(m.rid); return; }
  // One request at a time, in order: the wasm browser is not re-entrant.
  queue = queue.then(() => handle(m)).catch((e) => post({ t: 'failed', rid: m.rid, err: toErr(e, 'browsing') }));
};

function post(msg, transfer) { self.postMessage(msg, transfer || []); }

async function init(m) {
  try {
    initWasm(m.module);
  } catch (e) {
    return post({ t: 'init-failed', err: toErr(e, 'starting the file browser') });
  }
  try {
    if (navigator.storage && navigator.storage.getDirectory && typeof FileSystemFileHandle !== 'undefined' &&
        FileSystemFileHandle.prototype.createSyncAccessHandle) {
      const root = await navigator.storage.getDirectory();
      opfsDir = await root.getDirectoryHandle('qubes-rescue-files', { create: true });
      await clearOpfs(opfsDir);
    }
  } catch (e) {
    opfsDir = null; // Chromium on file://: Blob downloads
  }
  post({ t: 'ready' });
}

async function clearOpfs(dir) {
  const names = [];
  for await (const name of dir.keys()) names.push(name);
  for (const name of names) {
    try { await dir.removeEntry(name); } catch (e) { /* still being downloaded */ }
  }
}

async function handle(m) {
  switch (m.t) {
    case 'open': {
      if (browser) { browser.free(); browser = null; }
      const lost = m.lost && m.lost.length ? JSON.stringify(m.lost) : '';
      browser = m.kind === 'home' ? wasm_bindgen.Browser.open_home(m.blob) :
        wasm_bindgen.Browser.open_image(m.blob, m.partition == null ? undefined : m.partition, lost);
      return post({ t: 'opened', rid: m.rid, info: JSON.parse(browser.info_json()) });
    }
    case 'list':
      return post({ t: 'listing', rid: m.rid, listing: JSON.parse(need().list_json(m.path)) });
    case 'lost':
      return post(Object.assign({ t: 'lost-files', rid: m.rid }, JSON.parse(need().lost_json(m.path, m.budget))));
    case 'preview': {
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
        return post({ t: 'preview', rid: m.rid, bytes, size: f.size(), lost: f.lost() }, [bytes.buffer]);
      } finally {
        f.free();
      }
    }
    case 'file': return saveFile(m);
    case 'zip': return saveZip(m);
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

// Lets cancel messages and other work in; reports progress at most every 200 ms.
function ticker(rid, total) {
  let last = 0;
  return async (done) => {
    const now = performance.now();
    if (now - last > 200) {
      last = now;
      post({ t: 'progress', rid, done, total });
      await new Promise((r) => setTimeout(r, 0));
    }
    return cancelled.has(rid);
  };
}

function allZero(b) {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

// One file, holes kept as holes (all-zero pieces are not written).
async function saveFile(m) {
  const f = need().open_file(m.path);
  let sink = null;
  try {
    const size = f.size();
    sink = await sinkFor(m.name);
    sink.set_len(size);
    const tick = ticker(m.rid, size);
    let done = 0;
    for (;;) {
      const piece = f.read(PIECE);
      if (!piece.length) break;
      if (!allZero(piece)) sink.write(done, piece);
      done += piece.length;
      if (await tick(done)) { if (sink.abort) sink.abort(); return post({ t: 'cancelled', rid: m.rid }); }
    }
    const blob = await sink.finish();
    post({ t: 'saved', rid: m.rid, blob, name: m.name, lost: f.lost() });
  } catch (e) {
    if (sink && sink.abort) sink.abort();
    throw e;
  } finally {
    f.free();
    cancelled.delete(m.rid);
  }
}

// A folder as one .zip, written as it is produced.
async function saveZip(m) {
  const z = need().zip(m.path);
  let sink = null;
  try {
    sink = await sinkFor(m.name);
    const total = JSON.parse(z.progress_json()).total;
    const tick = ticker(m.rid, total);
    let at = 0;
    for (;;) {
      const piece = z.next(4 * PIECE);
      if (!piece.length) break;
      sink.write(at, piece);
      at += piece.length;
      if (await tick(JSON.parse(z.progress_json()).bytes)) {
        if (sink.abort) sink.abort();
        return post({ t: 'cancelled', rid: m.rid });
      }
    }
    const blob = await sink.finish();
    const summary = JSON.parse(z.progress_json());
    post({ t: 'saved', rid: m.rid, blob, name: m.name, lost: summary.lost.length > 0, summary });
  } catch (e) {
    if (sink && sink.abort) sink.abort();
    throw e;
  } finally {
    z.free();
    cancelled.delete(m.rid);
  }
}
