// Uses: wasm_bindgen (glue), toErr, initWasm (common.js), fmtBytes (fmt.js), Bridge (bridge.js),
//   Reads (reads.js), blobSink, opfsSink, dirSink, runSink, opfsRunSink, archiveWriter, opfsFolder,
//   clearFolder (sinks.js).
// Coordinator worker: owns the backup File, the core's Backup (outer index, header, qubes.xml) and
// the sequential stage (decompress → inner tar → sink), one FileRestore per recovered file.
// Chunk workers do the per-chunk work in parallel; their verified plaintext comes back here and is
// consumed strictly in order.
//
// Requests (page → coordinator, a Bridge over the worker): init {module, maxKdfMemory, memoryBudget,
//   workerReads} → {opfs} · open {blob, passphrase} → {qubes, compression, openMs, earlyQubesXml, openReads} · run {qubes, mode:
//   restore|verify, output: download|keep|dir|archive, dir?, salvage} → {errors, verifyOnly, stats,
//   archive}, or Bridge.CANCELLED once cancelled (keep: like download, but the page only browses
//   the files unless asked to save them; archive: one tar, the result's `archive` {blob, download,
//   files}) · suggest {files, bytes, volumeBytes} → {archive: one archive is the default output,
//   privateWindowRisk: warn that a private window may lose downloads this big}.
//   Events of a run, in order: plan {files, failed, kdfMemory, workers} ·
//   warning · file-start · progress {id, done, total, bytesDone, bytesTotal, elapsedMs} ·
//   chunk {kdfMs, cryptoMs, readMs} · file-done {id, name, download, size, stored, blob|null,
//   browse: Blob|File|null, salvaged: {lost, damage, json, jsonName}|null, inArchive} · file-failed {id, err} ·
//   missing {qube, err}. Events (page → coordinator): pool {ports} · replace {index, port}.
// Coordinator → page: read (see reads.js), when this browser cannot read Blobs in workers.
// Coordinator → chunk worker (a Bridge over its own MessageChannel): see chunk.js.
// Every err is {class, message}: class as in the CLI (data-error), message one sentence.
// What a restore does (files, names, worker plan, report order) is the core's plan_json;
// this worker follows it.
'use strict';

let maxKdfMemory = 0;          // cap handed to the core (container::Limits)
let memoryBudget = 0;          // bytes all chunk workers' KDFs may use at once
let backup = null;             // wasm_bindgen.BackupHandle
let source = null;             // the backup Blob/File
let sourceReads = null;        // what the core reads it through (Reads.source)
let qubes = [];
let pool = [];                 // [{port, chunks: its Bridge, jobs: Map seq → 'kdf'|'crypto', early, laneBusy, lane, gen, dead}]
let lanes = [];                // KDF lanes waiting for a worker, see runLanes
let gen = 0;                   // bumps on every run and cancel: stale results are dropped
let run = null;                // the current run, see startRun
let opfsRoot = null;           // Firefox (and Chromium on http): OPFS for big outputs

const page = new Bridge(self);
page.serve({ init, open: openBackup, run: runRequest, suggest: (m) => ({
  archive: wasm_bindgen.archive_by_default(m.files, m.bytes, m.volumeBytes), privateWindowRisk: wasm_bindgen.private_window_risk(m.bytes) }) });
page.on('pool', (m) => setPool(m.ports));
page.on('replace', (m) => replaceWorker(m.index, m.port));

async function init(m) {
  Reads.setup(page, m.workerReads);
  try {
    initWasm(m.module);
  } catch (e) {
    throw toErr(e, 'starting the restorer');
  }
  maxKdfMemory = m.maxKdfMemory;
  memoryBudget = m.memoryBudget;
  opfsRoot = await opfsFolder('qubes-rescue');
  return { opfs: !!opfsRoot };
}

function poolEntry(port) {
  const w = { port, chunks: new Bridge(port), jobs: new Map(), early: false, laneBusy: false, lane: null, gen: -1, dead: false };
  w.chunks.serve({ lanes: (m) => chunkLanes(m, w) });
  if (backup) sendKey(w);
  return w;
}

// Each chunk worker gets the passphrase once per opened backup; the core derives every chunk's
// own passphrase from it.
function sendKey(w) {
  const pass = backup.worker_secret();
  w.chunks.emit('key', { backupId: backup.backup_id(), pass });
  pass.fill(0);
}

function setPool(ports) {
  for (const w of pool) { requeue(w); w.port.close(); }
  pool = ports.map(poolEntry);
  if (run) pump();
  pumpLanes();
}

// A chunk worker whose wasm instance trapped (out of memory) is replaced by a fresh one.
function replaceWorker(index, port) {
  const old = pool[index];
  if (old) { requeue(old); old.port.close(); }
  pool[index] = poolEntry(port);
  if (run) pump();
  pumpLanes();
}

// The job (and the lane) a worker was running when it went away is run again elsewhere.
function requeue(w) {
  if (w.lane) { lanes.unshift(w.lane); w.lane = null; w.laneBusy = false; }
  const r = run;
  if (r && w.gen === r.gen) for (const seq of w.jobs.keys()) if (!r.results.has(seq)) r.retry.push(seq);
  w.jobs.clear();
}

// Open overlaps its two KDFs: the header's here, qubes.xml's first chunk's on an idle chunk
// worker (the core says which chunk and checks its parameters first). The worker's plaintext
// (MAC checked there) reaches the core only after the header is proven; a wrong passphrase is
// answered as soon as the header's KDF fails, and the worker's result is then dropped.
// Where the core cannot read the file itself (see reads.js), the stages are run again, KDF
// included, for each piece of the file they needed and did not have yet: the outer index
// several times (headers only), the rest normally once.
async function openBackup(m) {
  let pending = null;
  const pass = new TextEncoder().encode(m.passphrase);
  try {
    if (backup) { backup.free(); backup = null; }
    source = m.blob;
    sourceReads = Reads.source(source);
    const t0 = performance.now();
    let early; // started once: the chunk worker reads its chunk itself (or through the page)
    let first = null;
    let headerLaneWorkers = 0;
    backup = await Reads.retrying(sourceReads, async () => {
      if (pending) { pending.free(); pending = null; }
      pending = wasm_bindgen.PendingBackup.index(sourceReads, maxKdfMemory);
      // Formats 3 and 2 (Qubes R2, R3.x): no scrypt, the core opens them in one step.
      if (pending.is_legacy()) return pending.open_legacy(pass);
      const live = pool.filter((x) => !x.dead).length;
      // The header's KDF lanes are queued first, so they run before qubes.xml's.
      const header = live > 0 ? pending.header_lanes(pass, live, memoryBudget) : null;
      const headerKdf = { workers: new Set() };
      const headerDone = header ? runLanes('backup-header.hmac', header, header.workers, headerKdf, false) : null;
      const chunk = pending.early_chunk();
      if (early === undefined) early = startEarly(chunk, pass);
      if (header) pending.authenticate_lanes(pass, await headerDone);
      else pending.authenticate(pass);
      headerLaneWorkers = headerKdf.workers.size;
      first = early ? await early : null;
      return pending.finish(first || undefined);
    });
    // Through the page: how often Open ran and what it fetched ({attempts, fetches, bytes}).
    const openReads = sourceReads === source ? null : sourceReads.counts;
    if (openReads) sourceReads = Reads.source(source); // drops what Open fetched
    qubes = JSON.parse(backup.qubes_json());
    for (const w of pool) sendKey(w);
    return { qubes, compression: backup.compression(), openMs: performance.now() - t0, earlyQubesXml: !!first, openReads,
      headerLaneWorkers, format: backup.format(), formatNote: backup.format_note() };
  } catch (e) {
    backup = null;
    dropLanes((q) => q.early); // qubes.xml's KDF is abandoned with the Open that wanted it
    throw toErr(e, 'opening the backup');
  } finally {
    pass.fill(0);
    if (pending) pending.free();
  }
}

// ------------------------------------------------------------ KDF lanes

// A KDF's lanes (src/wasm/lanes.rs) run on idle chunk workers, among the first `limit` (the
// core's worker plan: how many lanes' memory fits at once), in the order they were asked for.
// `kdf.workers` collects the workers a KDF's lanes ran on (the page shows the most for tests).
function runLanes(name, work, limit, kdf, early, from = null) {
  const all = work.lanes.map((lane) => new Promise((resolve, reject) => {
    lanes.push({ name, logN: work.logN, r: work.r, lane, limit: Math.max(1, limit), kdf, early, from, resolve, reject });
  }));
  pumpLanes();
  return Promise.all(all);
}

function pumpLanes() {
  for (let i = 0; i < lanes.length;) {
    const q = lanes[i];
    const w = laneWorker(q);
    if (!w) { i++; continue; }
    lanes.splice(i, 1);
    w.laneBusy = true;
    w.lane = q;
    q.kdf.workers.add(w);
    w.chunks.call('lane', { name: q.name, logN: q.logN, r: q.r, lane: q.lane }).then((out) => {
      if (w.lane !== q) return; // requeued meanwhile
      w.lane = null; w.laneBusy = false;
      q.resolve(out);
      pumpLanes();
    }, (err) => {
      if (w.lane !== q) return;
      w.lane = null; w.laneBusy = false;
      if (err && err.dead) { w.dead = true; lanes.unshift(q); } // the page replaces the worker; the lane runs again
      else q.reject(err);
      pumpLanes();
    });
  }
}

// Where a lane runs: a lane blocks its worker's thread, and a job on that worker can do nothing
// meanwhile (not even ask for its own lanes). So: the worker whose job asked, whose thread is
// free right now; else a free worker without jobs; else any free one (measured before: one
// worker ran every lane in turn while the other's job waited for them).
function laneWorker(q) {
  const free = pool.slice(0, q.limit).filter((x) => !x.laneBusy && !x.dead);
  return free.find((x) => x === q.from) || free.find((x) => !x.jobs.size && !x.early) || free[0] || null;
}

function dropLanes(which) {
  const dropped = lanes.filter(which);
  lanes = lanes.filter((q) => !which(q));
  for (const q of dropped) q.reject({ class: 'io', message: 'abandoned' });
}

// A chunk worker's job asks for its KDF's lanes to be run (see chunk.js).
function chunkLanes(m, from) {
  const r = run;
  const kdf = { workers: new Set() };
  return runLanes(m.name, m, r && !m.early ? r.workers : pool.length, kdf, !!m.early, from).then((outs) => {
    if (r && run === r) {
      r.laneWorkers = Math.max(r.laneWorkers, kdf.workers.size);
      // that job is past its KDF: its worker may take the next one
      for (const [seq, stage] of from.jobs) if (stage === 'kdf' && r.jobs[seq].chunk.name === m.name) from.jobs.set(seq, 'crypto');
      pump();
    }
    return outs;
  });
}

// ---------------------------------------------------------------- run

// A run answers when it ends, or at once when cancelled (it then winds down on its own).
function runRequest(m, call) {
  return new Promise((resolve, reject) => {
    call.onCancel(() => { cancel(); resolve(Bridge.CANCELLED); });
    startRun(m, call.emit).then(resolve, (e) => reject(toErr(e, 'restoring')));
  });
}

async function startRun(m, emit) {
  if (!backup) throw { class: 'io', message: 'open a backup first' };
  const myGen = ++gen;
  const verifyOnly = m.mode === 'verify';
  const errors = [];                   // every failure, in the order the CLI reports them
  const salvage = !!m.salvage && !verifyOnly;
  const plan = JSON.parse(backup.plan_json(JSON.stringify(m.qubes), salvage, pool.length, memoryBudget));
  const files = [];
  const unlisted = [];                 // qubes whose files could not even be listed
  const missing = new Map();           // qube → what qubes.xml promises but the backup lacks
  for (const q of plan.qubes) {
    if (q.listing) unlisted.push(Object.assign({ qube: q.qube }, q.listing));
    missing.set(q.qube, q.missing);
    for (const f of q.files) {
      files.push(Object.assign(f, { id: files.length, qube: q.qube, bytes: f.chunks.reduce((a, c) => a + c.size, 0) }));
    }
  }
  const jobs = [];
  // plan.here (formats 3 and 2): no chunk jobs, each file is restored right here, see below.
  if (!plan.here) for (const f of files) f.chunks.forEach((c, i) => jobs.push({ file: f, idx: i, chunk: c }));
  const kdfMemory = plan.kdf_memory, workers = plan.workers;
  const R = run = { gen: myGen, files, jobs, errors, workers, window: plan.window, nextDispatch: 0, nextConsume: 0,
    results: new Map(), retry: [], tries: new Map(), waiting: null, cancelled: false, verifyOnly, output: m.output, dir: m.dir || null,
    salvage, emit, here: !!plan.here,
    kdfMs: [], cryptoMs: [], readMs: [], pushMs: [], laneWorkers: 0, t0: performance.now() };
  emit('plan', { files: files.map(publicFile), failed: unlisted, kdfMemory, workers, compression: backup.compression() });
  // Each file is authenticated on its own: a file that fails does not stop the qube's others
  // (like the CLI). Failures are reported per qube in order: its files, then what is missing.
  const report = (qube) => {
    for (const e of unlisted) if (e.qube === qube) errors.push(e);
    for (const e of missing.get(qube) || []) {
      const err = Object.assign({ qube }, e);
      errors.push(err);
      emit('missing', { qube, err });
    }
  };

  if (!verifyOnly) await checkSpace(m.qubes, emit);
  if (opfsRoot && !verifyOnly && m.output !== 'dir') await clearFolder(opfsRoot).catch(() => {});
  if (m.output === 'archive' && !verifyOnly) {
    // One download: each file goes into one tar as it ends (src/output/archive.rs).
    R.archiveFolder = wasm_bindgen.archive_folder(JSON.stringify(m.qubes));
    R.archive = await archiveWriter(opfsRoot, myGen + '-' + R.archiveFolder + '.tar');
    R.archived = [];
  }

  pump();
  const reported = new Set();
  for (const f of files) {
    if (R.cancelled) break;
    for (const q of m.qubes) { // qubes before this file's (and those without files) are complete
      if (q === f.qube) break;
      if (!reported.has(q)) { reported.add(q); report(q); }
    }
    const first = jobs.findIndex((j) => j.file === f);
    try {
      await beginFile(f, R);
    } catch (e) {
      failFile(R, f, toErr(e, 'preparing ' + f.download));
      continue;
    }
    if (R.cancelled) { dropFile(f); break; }
    if (plan.here) {
      // The core reads each piece, proves its HMAC, decrypts and restores it, in order.
      try {
        f.report = backup.restore_here(f.qube, f.path, false, R.verifyOnly || f.placeholder ? null : f.sink, (done) => {
          f.done = done;
          f.bytesDone = f.chunks.slice(0, done).reduce((a, c) => a + c.size, 0);
          emit('progress', { id: f.id, done, total: f.chunks.length, bytesDone: f.bytesDone, bytesTotal: f.bytes,
            elapsedMs: performance.now() - f.t0 });
        });
      } catch (e) {
        failFile(R, f, toErr(e, 'restoring ' + f.download));
      }
    }
    for (let i = 0; !plan.here && i < f.chunks.length; i++) {
      const r = await take(R, first + i);
      if (R.cancelled || !r) break;
      if (r.err && f.salvaging) {
        // Salvage: the chunk is lost, the stream goes on (fully only when uncompressed).
        if (!f.damage) f.damage = r.err;
        try {
          f.restorer.push_lost(f.chunks[i].size - 128, f.chunks[i].name);
        } catch (e) {
          failFile(R, f, toErr(e, 'salvaging ' + f.download));
          break;
        }
      } else if (r.err) { failFile(R, f, r.err); break; }
      else if (f.salvaging && !f.restorer.wants_more()) { r.plain = null; } // nothing after the loss can be placed
      else try {
        const t = performance.now();
        // In slices, yielding between them: lane requests and results are handled here, and a
        // chunk's decompression (~0.4 s) would otherwise hold back the next KDFs.
        const plain = new Uint8Array(r.plain);
        for (let at = 0; at === 0 || at < plain.length; at += PUSH_SLICE) {
          f.restorer.push_slice(plain.subarray(at, at + PUSH_SLICE), at === 0);
          if (at + PUSH_SLICE < plain.length) await yieldToEvents();
        }
        r.plain = null;
        if (f.sink && f.sink.drain) await f.sink.drain();
        R.pushMs.push(performance.now() - t);
      } catch (e) {
        failFile(R, f, toErr(e, 'restoring ' + f.download));
        break;
      }
      f.done = i + 1;
      f.bytesDone += f.chunks[i].size;
      emit('progress', { id: f.id, done: f.done, total: f.chunks.length, bytesDone: f.bytesDone, bytesTotal: f.bytes,
        elapsedMs: performance.now() - f.t0 });
    }
    if (R.cancelled) break;
    if (f.failed) continue;
    try {
      await endFile(f, R);
    } catch (e) {
      failFile(R, f, toErr(e, 'finishing ' + f.download));
    }
  }
  if (!R.cancelled) for (const q of m.qubes) if (!reported.has(q)) { reported.add(q); report(q); }
  const done = R;
  if (run === R) run = null;
  if (done.cancelled) { if (done.archive) done.archive.abort(); return Bridge.CANCELLED; }
  let archive = null;
  if (done.archive && done.archived.length) {
    const blob = await done.archive.finish(wasm_bindgen.archive_end());
    archive = { blob, download: done.archiveFolder + '.tar', files: done.archived };
  } else if (done.archive) done.archive.abort();
  return { errors: done.errors, verifyOnly, archive,
    stats: { kdfMs: done.kdfMs, cryptoMs: done.cryptoMs, readMs: done.readMs, pushMs: done.pushMs, totalMs: performance.now() - done.t0,
      workers: done.workers, laneWorkers: done.laneWorkers } };
}

// qubes.xml's first chunk on an idle chunk worker, beside the header's KDF: a promise of its
// plaintext (null on any failure: it is then opened the usual way, which reports it), or null.
function startEarly(chunk, pass) {
  // Preferably not a worker already running one of the header's lanes: the job would wait behind
  // it, and with p=1 the two KDFs would run one after the other (measured: Open 8.5 s instead of
  // ~4.5 s). When the header's lanes take every worker (p ≥ workers), any idle one.
  const idle = (x) => !x.jobs.size && !x.early && !x.dead;
  const w = chunk && (pool.find((x) => idle(x) && !x.laneBusy) || pool.find(idle));
  if (!w) return null;
  w.early = true;
  return w.chunks.call('early', { backupId: chunk.backup_id, pass: pass.slice(), blob: source,
    offset: chunk.offset, size: chunk.size, name: chunk.name })
    .then((done) => new Uint8Array(done.plain), () => null)
    .finally(() => { w.early = false; if (run) pump(); });
}

function publicFile(f) {
  return { id: f.id, qube: f.qube, path: f.path, name: f.name, kind: f.kind, chunks: f.chunks.length, bytes: f.bytes,
    download: f.download, placeholder: f.placeholder };
}

async function checkSpace(names, emit) {
  const need = qubes.filter((q) => names.includes(q.name)).reduce((a, q) => a + (q.size || 0), 0);
  let est = null;
  try { est = await navigator.storage.estimate(); } catch (e) { /* not available on this origin */ }
  if (!est || !est.quota) return;
  const free = est.quota - (est.usage || 0);
  if (need > free) {
    emit('warning', { message: 'These qubes hold about ' + fmtBytes(need) + ' of data, but this browser lets the page store only about ' +
      fmtBytes(free) + '. The restore may stop when space runs out: free disk space, or restore fewer qubes at a time.' });
  }
}

// ------------------------------------------------------------ chunk pool

function pump() {
  const r = run;
  if (!r || r.cancelled) return;
  for (;;) {
    const retry = r.retry.length > 0;
    if (!retry && !(r.nextDispatch < r.jobs.length && r.nextDispatch - r.nextConsume < r.window)) return;
    const seq = retry ? Math.min(...r.retry) : r.nextDispatch;
    const job = r.jobs[seq];
    if (job.file.failed) {
      if (retry) r.retry.splice(r.retry.indexOf(seq), 1); else r.nextDispatch++;
      continue;
    }
    const w = jobWorker(r);
    if (!w) return;
    if (retry) r.retry.splice(r.retry.indexOf(seq), 1); else r.nextDispatch++;
    w.jobs.set(seq, 'kdf'); w.gen = r.gen;
    const jobGen = r.gen;
    w.chunks.call('job', { blob: source, offset: job.chunk.offset, size: job.chunk.size, name: job.chunk.name })
      .then((done) => onChunkResult(w, jobGen, seq, done, null), (err) => onChunkResult(w, jobGen, seq, null, err));
  }
}

// The worker for the next job. A job needs its worker's thread to read its chunk and ask for
// its KDF's lanes; once its lanes are done it only waits for WebCrypto. So a worker takes a new
// job as soon as its job is past the KDF (two at most; the window still bounds the chunks in
// memory), and preferably one not running a lane: a lane blocks its thread, and a job sent there
// could not even ask for its lanes until that lane ends (measured: the 4th chunk's KDF started
// 3.4 s late while the other core idled; the KDFs stopped for WebCrypto between rounds).
const JOBS_PER_WORKER = 2;
function jobWorker(r) {
  const open = pool.slice(0, r.workers).filter((x) => !x.dead && !x.early && x.jobs.size < JOBS_PER_WORKER &&
    ![...x.jobs.values()].includes('kdf'));
  return open.find((x) => !x.laneBusy) || open[0] || null;
}

// A chunk worker's answer: `done` {plain, …}, or `err` (err.dead: its wasm instance trapped).
function onChunkResult(w, jobGen, seq, done, err) {
  w.jobs.delete(seq);
  const dead = !!(err && err.dead);
  if (dead) w.dead = true; // the page replaces it
  const r = run;
  if (!r || jobGen !== r.gen) { pump(); return; }
  if (dead && !r.tries.has(seq)) {
    // Out of memory, maybe because of the other workers at that moment: try once more.
    r.tries.set(seq, 1);
    r.retry.push(seq);
    pump();
    return;
  }
  if (done) {
    r.kdfMs.push(done.kdfMs); r.cryptoMs.push(done.cryptoMs); r.readMs.push(done.readMs);
    r.emit('chunk', { kdfMs: done.kdfMs, cryptoMs: done.cryptoMs, readMs: done.readMs, webCrypto: done.webCrypto });
  }
  const job = r.jobs[seq];
  if (!job.file.failed) {
    r.results.set(seq, done ? { plain: done.plain } : { err: toErr(err, 'opening ' + job.chunk.name) });
    if (r.waiting && r.waiting.seq === seq) { const wt = r.waiting; r.waiting = null; wt.resolve(); }
  }
  pump();
}

const PUSH_SLICE = 8 << 20;
// Lets the events waiting for this worker run (a message task: no timer clamping).
function yieldToEvents() {
  return new Promise((resolve) => { const c = new MessageChannel(); c.port1.onmessage = () => { c.port1.close(); resolve(); }; c.port2.postMessage(0); });
}

// The result of job `seq`, in order; null when the run was cancelled.
async function take(r, seq) {
  if (r.cancelled) return null;
  r.nextConsume = seq;
  pump();
  if (!r.results.has(seq)) {
    await new Promise((resolve) => { r.waiting = { seq, resolve }; });
  }
  if (r.cancelled) return null;
  const res = r.results.get(seq);
  r.results.delete(seq);
  r.nextConsume = seq + 1;
  pump();
  return res;
}

function cancel() {
  const r = run;
  gen++;
  if (!r) return;
  r.cancelled = true;
  r.results.clear();
  for (const f of r.files) if (f.restorer) dropFile(f);
  if (r.waiting) { const wt = r.waiting; r.waiting = null; wt.resolve(); }
  dropLanes(() => true);
  for (const w of pool) w.jobs.clear();
}

// ---------------------------------------------------------------- files

async function beginFile(f, run) {
  f.t0 = performance.now();
  f.done = 0;
  f.bytesDone = 0;
  run.emit('file-start', { id: f.id });
  if (run.verifyOnly || f.placeholder) {
    f.sink = null;
  } else if (run.output === 'dir' && run.dir && !f.salvaging && !run.here) {
    // (a salvaged file gets another name: downloaded; formats 3/2 restore in one synchronous
    // call, which a folder's asynchronous writes cannot follow: downloaded too)
    f.sink = await dirSink(run.dir, f.download);
  } else if (run.archive) {
    f.sink = opfsRoot ? await opfsRunSink(opfsRoot, f.id + '-' + f.download) : runSink();
  } else if (opfsRoot && f.kind !== 'small') {
    f.sink = await opfsSink(opfsRoot, f.id + '-' + f.download);
  } else {
    f.sink = blobSink();
  }
  f.salvaging = run.salvage && f.kind === 'volume' && !f.placeholder;
  f.damage = null;
  f.report = null;
  f.restorer = run.here ? null : backup.restorer(f.qube, f.path, run.verifyOnly || f.placeholder, f.sink, f.salvaging);
}

async function endFile(f, run) {
  if (f.salvaging) return endSalvage(f, run);
  let report = f.report || f.restorer.finish();
  if (f.restorer) f.restorer.free();
  f.restorer = null;
  f.report = null;
  if (report.tree && f.sink) {
    // A small "file" that is a folder (R4.0's apps.templates): save it as its tar stream.
    // Rare and small, so it is simply restored again here, KDF included.
    if (f.sink.abort) f.sink.abort();
    run.emit('progress', { id: f.id, done: f.chunks.length, total: f.chunks.length, bytesDone: f.bytes, bytesTotal: f.bytes,
      elapsedMs: performance.now() - f.t0, note: 'a folder: saving it as a tar' });
    f.download += '.tar';
    report = await Reads.retrying(sourceReads, () => {
      f.sink = blobSink();
      return backup.restore_here(f.qube, f.path, true, f.sink);
    });
  }
  const out = f.sink ? await f.sink.finish() : null;
  f.sink = null;
  if (run.cancelled) return;
  if (run.archive && out) {
    const browse = await toArchive(run, f.download, out);
    run.emit('file-done', { id: f.id, qube: f.qube, kind: f.kind, name: f.name, browse, download: f.download, size: report.size, stored: report.stored,
      outSize: null, tree: !!report.tree, blob: null, inArchive: true, savedToDisk: false, placeholder: f.placeholder, elapsedMs: performance.now() - f.t0 });
    return;
  }
  // Saved to a folder: the browser reads the file back from there.
  let browse = out;
  if (!out && run.output === 'dir' && run.dir && !run.verifyOnly && !f.placeholder) {
    try { browse = await (await run.dir.getFileHandle(f.download)).getFile(); } catch (e) { browse = null; }
  }
  run.emit('file-done', { id: f.id, qube: f.qube, kind: f.kind, name: f.name, browse, download: f.download, size: report.size, stored: report.stored,
    outSize: out ? out.size : null, tree: !!report.tree,
    blob: out, savedToDisk: run.output === 'dir' && !run.verifyOnly && !f.placeholder, placeholder: f.placeholder, elapsedMs: performance.now() - f.t0 });
}

// Salvage mode's end: a clean volume is saved as usual; a damaged one as <name>.salvaged, with
// <name>.salvage.json listing the lost byte ranges, and the damage still reported as an error.
async function endSalvage(f, run) {
  const report = f.restorer.finish_salvage();
  f.restorer.free();
  f.restorer = null;
  const damage = f.damage || report.damage;
  if (damage && !report.found) return failFile(run, f, damage);
  const names = damage ? wasm_bindgen.BackupHandle.salvage_outputs(f.download, new Float64Array(report.lost.flat())) : null;
  if (damage) f.download = names.image;
  let out = await f.sink.finish();
  f.sink = null;
  if (run.cancelled) return;
  let json = null;
  if (damage) {
    json = new Blob([names.json], { type: 'application/json' });
    run.errors.push(Object.assign({ qube: f.qube, file: f.download }, damage));
  }
  if (run.archive) {
    out = await toArchive(run, f.download, out);
    if (json) await toArchive(run, names.report, json);
  }
  run.emit('file-done', { id: f.id, qube: f.qube, kind: f.kind, name: f.name, browse: out, download: f.download, size: report.size,
    stored: report.stored, outSize: out && !run.archive ? out.size : null, tree: false, blob: run.archive ? null : out, placeholder: false,
    elapsedMs: performance.now() - f.t0, salvaged: damage ? { lost: report.lost, damage, json, jsonName: names.report } : null,
    savedToDisk: false, inArchive: !!run.archive });
}

// Puts a restored file (a run sink's {size, runs, data|handle}, or a Blob) into the run's
// archive, as the core lays it out; returns what Browse can read of it (null when its data was
// only in OPFS).
async function toArchive(run, download, out) {
  if (out instanceof Blob) out = { size: out.size, runs: out.size ? [0, out.size] : [], data: out };
  const member = wasm_bindgen.archive_member(run.archiveFolder, download, out.size, new Float64Array(out.runs));
  await run.archive.add(member, out);
  run.archived.push(download);
  return out.image ? out.image() : null;
}

function failFile(r, f, err) {
  if (f.restorer) dropFile(f);
  f.failed = true;
  r.errors.push(Object.assign({ qube: f.qube, file: f.download }, err));
  // Buffered plaintext of this file is dropped; its later jobs are never dispatched.
  for (const [seq] of r.results) if (r.jobs[seq].file === f) r.results.delete(seq);
  r.emit('file-failed', { id: f.id, qube: f.qube, err });
}

function dropFile(f) {
  try { f.restorer.free(); } catch (e) { /* already freed */ }
  f.restorer = null;
  if (f.sink && f.sink.abort) f.sink.abort();
  f.sink = null;
}

