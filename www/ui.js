// Uses: Bridge (bridge.js), restoreView (ui-restore.js), browseView (ui-browse.js).
// Main thread: UI only. Boots the page (the wasm module, then the coordinator, the chunk workers and
// the browse worker: classic workers from Blob URLs, each spoken to through a Bridge; it reads
// Blob slices for them where they cannot, see reads.js) and holds what
// both views share: the status line, downloads, formatting. The views: ui-restore.js (steps 1–4:
// file, passphrase, qubes, progress) and ui-browse.js (step 5: the files of a restored qube).
'use strict';
(function () {
  const GiB = 1024 * 1024 * 1024;
  const MAX_KDF_MEMORY = 2 * GiB; // N=2^21, r=8: the most a 4 GiB wasm instance can safely run
  // Downloads start at least this far apart: WebKit drops downloads started together (measured in
  // MiniBrowser 2.50: 2 of 8 Blob downloads clicked in one go arrived, 8 of 8 at 100 ms apart).
  const DOWNLOAD_GAP_MS = 250;
  const $ = (id) => document.getElementById(id);
  const el = { status: $('status'), warning: $('warning'), env: $('env-info') };

  // Exposed for tests and the bench: KDF and crypto time per chunk, and the last run's totals.
  const stats = { kdfMs: [], cryptoMs: [], readMs: [], openMs: null, openParallel: null, lastRun: null, workers: 0, webCrypto: null,
    workerReads: null, openReads: null };
  window.qubesRescue = { stats, testDirectory: null };

  let module = null;
  let chunkWorkers = [];
  let opfs = false;
  let objectUrls = [];
  let lastDownloadAt = 0;          // when the last download started (or will start: it may be queued)

  // ------------------------------------------------------------ status

  function sentence(s) {
    s = String(s || '').trim();
    if (!s) return s;
    // Capitalize a leading plain word ("the passphrase…"), not a member name ("vm3/private.img…").
    if (/^[a-z]+[ ,:;]/.test(s)) s = s[0].toUpperCase() + s.slice(1);
    return /[.!?]$/.test(s) ? s : s + '.';
  }

  function setStatus(state, text, errClass) {
    el.status.dataset.state = state;
    if (state === 'error') el.status.dataset.error = errClass || 'io';
    else delete el.status.dataset.error;
    el.status.textContent = text;
  }

  function warn(text) {
    el.warning.textContent = text || '';
    el.warning.hidden = !text;
  }

  function fmtTime(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = h ? String(m).padStart(2, '0') : String(m);
    return (h ? h + ':' : '') + mm + ':' + String(r).padStart(2, '0');
  }

  function fatal(err) {
    restore.setBusy(false);
    setStatus('error', sentence(err.message) + ' Reload the page and try again; if it keeps happening, use a current Chromium or Firefox.', err.class);
  }

  function showEnv() {
    const k = stats.kdfMs;
    const parts = [poolSize() + ' chunk worker' + (poolSize() > 1 ? 's' : '') + ' for ' + (navigator.hardwareConcurrency || '?') + ' cores',
      'reads: ' + (stats.workerReads ? 'in workers' : 'on the main thread (this browser cannot read files inside workers here)'),
      'output: ' + (opfs ? 'browser storage (OPFS), then download' : 'download'),
      'AES/HMAC: ' + (stats.webCrypto === false ? 'WebAssembly' : 'WebCrypto')];
    if (k.length) parts.push('last scrypt KDF: ' + (k[k.length - 1] / 1000).toFixed(2) + ' s');
    if (stats.openParallel != null) {
      parts.push('Open: ' + (stats.openParallel ? 'header and qubes.xml KDFs side by side' : 'one KDF after the other') +
        (stats.headerLaneWorkers ? ', the header\'s KDF lanes on ' + stats.headerLaneWorkers + ' worker' + (stats.headerLaneWorkers > 1 ? 's' : '') : ''));
    }
    el.env.textContent = 'This browser: ' + parts.join(' · ') + '.';
  }

  // ------------------------------------------------------------ downloads

  // An object URL for a Blob, revoked when the next run starts (revokeUrls).
  function blobUrl(blob) {
    const url = URL.createObjectURL(blob);
    objectUrls.push(url);
    return url;
  }

  function revokeUrls() {
    for (const u of objectUrls) URL.revokeObjectURL(u);
    objectUrls = [];
  }

  function download(blob, name) {
    const url = blobUrl(blob);
    const now = performance.now();
    const at = Math.max(now, lastDownloadAt + DOWNLOAD_GAP_MS);
    lastDownloadAt = at;
    setTimeout(() => {
      const a = document.createElement('a');
      a.href = url;
      a.download = name;
      a.hidden = true;
      document.body.appendChild(a);
      a.click();
      a.remove();
    }, at - now);
    return url;
  }

  const msSinceDownload = () => lastDownloadAt ? performance.now() - lastDownloadAt : Infinity;

  // ------------------------------------------------------------ workers

  function b64bytes(id) {
    const s = $(id).textContent.replace(/\s+/g, '');
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  // Each worker's source: the wasm glue, the shared files it uses, then its own file.
  const WORKER_SOURCES = {
    coordinator: ['glue', 'common', 'fmt', 'bridge', 'reads', 'sinks', 'coordinator'],
    chunk: ['glue', 'common', 'bridge', 'reads', 'chunk'],
    browse: ['glue', 'common', 'fmt', 'bridge', 'reads', 'sinks', 'browse'],
  };
  const workerUrls = {};

  // Whether a worker can read a Blob here, with both APIs the workers use (FileReaderSync and
  // Blob.arrayBuffer()). WebKit on file:// cannot: every Blob read in a worker fails there.
  // `?reads=page` or `?reads=worker` in the page's URL forces the answer (tests, measurements).
  async function probeWorkerReads() {
    const forced = new URLSearchParams(location.search).get('reads');
    if (forced === 'page' || forced === 'worker') return forced === 'worker';
    const src = 'onmessage = async (e) => { try { new FileReaderSync().readAsArrayBuffer(e.data); await e.data.arrayBuffer(); ' +
      'postMessage(true); } catch (x) { postMessage(false); } };';
    const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
    const worker = new Worker(url, { name: 'read-probe' });
    try {
      return await new Promise((resolve) => {
        worker.onmessage = (ev) => resolve(ev.data === true);
        worker.onerror = () => resolve(false);
        worker.postMessage(new Blob([new Uint8Array(16)]));
      });
    } finally {
      worker.terminate();
      URL.revokeObjectURL(url);
    }
  }

  // The page's side of Reads.readSlice (reads.js): one slice a worker asked for, transferred.
  // Each request is bounded by its worker (a chunk, a 64 KiB page, a 4 MiB piece of an image),
  // and chunk reads by the coordinator's in-order window.
  async function readFor(m) {
    let buf;
    try {
      buf = await m.blob.slice(m.start, m.end).arrayBuffer();
    } catch (e) {
      throw { class: 'io', message: String(e && e.message || e), name: e && e.name || '' };
    }
    return Bridge.transfer(buf, [buf]);
  }

  // A worker of that kind and the Bridge to it; `stopped` says what a crash of it means.
  function startWorker(kind, name, stopped) {
    if (!workerUrls[kind]) {
      const src = WORKER_SOURCES[kind].map((s) => $('src-' + s).textContent).join('\n;\n');
      workerUrls[kind] = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
    }
    const worker = new Worker(workerUrls[kind], { name });
    worker.onerror = (ev) => fatal({ class: 'io', message: stopped + ' (' + (ev.message || 'no details') + ')' });
    const bridge = new Bridge(worker);
    bridge.serve({ read: readFor });
    return { worker, bridge };
  }

  // Pool size: one worker per core, as many as the KDF memory allows at once (each wasm instance
  // grows to 128·r·N bytes; every worker of a page lives in one renderer process).
  function memoryBudget() {
    const dm = navigator.deviceMemory; // GiB, Chromium only, capped at 8
    return dm ? Math.max(1, dm / 2) * GiB : 4 * GiB;
  }
  // `?workers=N` in the page's URL overrides it (for measurements).
  function poolSize() {
    const forced = parseInt(new URLSearchParams(location.search).get('workers'), 10);
    if (forced > 0) return Math.min(forced, 16);
    return Math.max(1, Math.min(navigator.hardwareConcurrency || 2, 8));
  }

  // One chunk worker, connected to the coordinator by its own MessageChannel; returns the
  // coordinator's end of the channel.
  function chunkWorker(i) {
    const { worker, bridge } = startWorker('chunk', 'chunk-' + i, 'a worker failed to start');
    const ch = new MessageChannel();
    bridge.on('dead', () => { if (chunkWorkers[i] === worker) replaceWorker(i); });
    bridge.call('init', { module, maxKdfMemory: MAX_KDF_MEMORY, port: ch.port2, workerReads: stats.workerReads }, [ch.port2])
      .then((r) => { stats.webCrypto = r.webCrypto; }, fatal);
    chunkWorkers[i] = worker;
    return ch.port1;
  }

  // A fresh pool (also after a cancel: it stops the chunk work in flight).
  function startPool() {
    for (const w of chunkWorkers) w.terminate();
    chunkWorkers = [];
    const ports = [];
    for (let i = 0; i < poolSize(); i++) ports.push(chunkWorker(i));
    ui.coordinator.emit('pool', { ports }, ports);
  }

  function replaceWorker(i) {
    chunkWorkers[i].terminate();
    const port = chunkWorker(i);
    ui.coordinator.emit('replace', { index: i, port }, [port]);
  }

  // ------------------------------------------------------------ boot

  const ui = { $, stats, sentence, setStatus, warn, fmtTime, fatal, showEnv, blobUrl, revokeUrls, download, msSinceDownload,
    b64bytes, restartPool: startPool, coordinator: null };
  const browse = browseView(ui);
  const restore = restoreView(ui, browse);

  async function boot() {
    setStatus('idle', 'Starting…');
    restore.starting();
    try {
      if (typeof WebAssembly !== 'object' || typeof Worker !== 'function') {
        throw { class: 'unsupported', message: 'this browser lacks WebAssembly or Web Workers; use a current Chromium or Firefox' };
      }
      [module, stats.workerReads] = await Promise.all([WebAssembly.compile(b64bytes('wasm-b64')), probeWorkerReads()]);
      ui.coordinator = startWorker('coordinator', 'coordinator', 'the restorer stopped').bridge;
      ui.coordinator.call('init', { module, maxKdfMemory: MAX_KDF_MEMORY, memoryBudget: memoryBudget(), workerReads: stats.workerReads })
        .then((r) => { opfs = r.opfs; restore.ready(r.opfs); showEnv(); }, fatal);
      startPool();
      browse.start(startWorker('browse', 'browse', 'the file browser stopped').bridge, module, stats.workerReads);
    } catch (e) {
      fatal(e && e.class ? e : { class: 'unsupported', message: 'the page could not start: ' + (e && e.message || e) });
    }
  }

  boot();
})();
