// Main thread: UI only. Starts the coordinator and the chunk workers (classic workers from Blob
// URLs), routes the user's actions to the coordinator, shows progress, hands out downloads.
'use strict';
(function () {
  const GiB = 1024 * 1024 * 1024;
  const $ = (id) => document.getElementById(id);
  const el = {
    drop: $('drop'), file: $('backup-file'), fileInfo: $('file-info'), demo: $('demo'), demoNote: $('demo-note'),
    form: $('open-form'), pass: $('passphrase'), toggle: $('toggle-pass'), open: $('open'),
    stepQubes: $('step-qubes'), backupInfo: $('backup-info'), rows: $('qube-rows'), selectAll: $('select-all'),
    outputDirLabel: $('output-dir-label'), restore: $('restore'), verify: $('verify'), cancel: $('cancel'),
    stepProgress: $('step-progress'), progress: $('progress-list'), results: $('results'), resultList: $('result-list'),
    status: $('status'), warning: $('warning'), env: $('env-info'), salvage: $('salvage'),
    stepBrowse: $('step-browse'), browseQubeName: $('browse-qube'), volume: $('volume'), partition: $('partition'),
    partitionLabel: $('partition-label'), zipHere: $('zip-here'), browseCancel: $('browse-cancel'), browseClose: $('browse-close'),
    crumbs: $('crumbs'), browseStatus: $('browse-status'), fsRows: $('fs-rows'), preview: $('preview'),
    previewTitle: $('preview-title'), previewNote: $('preview-note'), previewText: $('preview-text'), previewImg: $('preview-img'),
  };

  // Exposed for tests and the bench: KDF and crypto time per chunk, and the last run's totals.
  const stats = { kdfMs: [], cryptoMs: [], readMs: [], openMs: null, lastRun: null, workers: 0, webCrypto: null };
  window.qubesRescue = { stats, testDirectory: null };

  let coordinator = null;
  let module = null;
  let chunkUrl = null;
  let chunkWorkers = [];
  let ready = false;
  let busy = false;
  let selected = null;     // the backup File (or the demo Blob)
  let qubes = [];
  let files = new Map();   // id → {li, ...}
  let objectUrls = [];
  let opfs = false;
  let runOutput = 'download';
  let runMode = 'restore';

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

  function setBusy(b) {
    busy = b;
    el.open.disabled = b || !ready;
    el.restore.disabled = b || !ready;
    el.verify.disabled = b || !ready;
    el.demo.disabled = b || !ready;
    el.file.disabled = b;
    el.cancel.disabled = !b;
    for (const bt of el.rows.querySelectorAll('button[data-testid=browse]')) bt.disabled = b || !ready;
  }

  // ------------------------------------------------------------ formatting

  function fmtBytes(n) {
    if (n == null) return '';
    if (n >= 1e12) return (n / 1e12).toFixed(2) + ' TB';
    if (n >= 1e9) return (n / 1e9).toFixed(2) + ' GB';
    if (n >= 1e6) return (n / 1e6).toFixed(1) + ' MB';
    if (n >= 1e3) return (n / 1e3).toFixed(1) + ' kB';
    return n + ' B';
  }
  function fmtTime(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = h ? String(m).padStart(2, '0') : String(m);
    return (h ? h + ':' : '') + mm + ':' + String(r).padStart(2, '0');
  }

  // ------------------------------------------------------------ workers

  function b64bytes(id) {
    const s = $(id).textContent.replace(/\s+/g, '');
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function workerUrl(mainId) {
    const parts = ['src-glue', 'src-common'].concat(mainId === 'src-chunk' ? [] : ['src-sinks'], [mainId]);
    const src = parts.map((id) => $(id).textContent).join('\n;\n');
    return URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
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
  const MAX_KDF_MEMORY = 2 * GiB; // N=2^21, r=8: the most a 4 GiB wasm instance can safely run

  // One chunk worker, connected to the coordinator by its own MessageChannel; returns the
  // coordinator's end of the channel.
  function chunkWorker(i) {
    const w = new Worker(chunkUrl, { name: 'chunk-' + i });
    const ch = new MessageChannel();
    w.onmessage = (ev) => {
      if (ev.data.t === 'ready') stats.webCrypto = ev.data.webCrypto;
      if (ev.data.t === 'init-failed') fatal(ev.data.err);
      if (ev.data.t === 'dead' && chunkWorkers[i] === w) replaceWorker(i);
    };
    w.onerror = (ev) => fatal({ class: 'io', message: 'a worker failed to start (' + (ev.message || 'no details') + ')' });
    w.postMessage({ t: 'init', module, maxKdfMemory: MAX_KDF_MEMORY });
    w.postMessage({ t: 'port', port: ch.port2 }, [ch.port2]);
    chunkWorkers[i] = w;
    return ch.port1;
  }

  function startPool() {
    for (const w of chunkWorkers) w.terminate();
    chunkWorkers = [];
    const ports = [];
    for (let i = 0; i < poolSize(); i++) ports.push(chunkWorker(i));
    coordinator.postMessage({ t: 'pool', ports }, ports);
  }

  function replaceWorker(i) {
    chunkWorkers[i].terminate();
    const port = chunkWorker(i);
    coordinator.postMessage({ t: 'replace', index: i, port }, [port]);
  }

  function fatal(err) {
    setBusy(false);
    setStatus('error', sentence(err.message) + ' Reload the page and try again; if it keeps happening, use a current Chromium or Firefox.', err.class);
  }

  async function boot() {
    setStatus('idle', 'Starting…');
    setBusy(true);
    el.cancel.disabled = true;
    try {
      if (typeof WebAssembly !== 'object' || typeof Worker !== 'function') {
        throw { class: 'unsupported', message: 'this browser lacks WebAssembly or Web Workers; use a current Chromium or Firefox' };
      }
      module = await WebAssembly.compile(b64bytes('wasm-b64'));
      chunkUrl = workerUrl('src-chunk');
      coordinator = new Worker(workerUrl('src-coordinator'), { name: 'coordinator' });
      coordinator.onmessage = (ev) => onCoordinator(ev.data);
      coordinator.onerror = (ev) => fatal({ class: 'io', message: 'the restorer stopped (' + (ev.message || 'no details') + ')' });
      coordinator.postMessage({ t: 'init', module, maxKdfMemory: MAX_KDF_MEMORY, memoryBudget: memoryBudget() });
      startPool();
      startBrowseWorker();
    } catch (e) {
      fatal(e && e.class ? e : { class: 'unsupported', message: 'the page could not start: ' + (e && e.message || e) });
    }
  }

  // ------------------------------------------------------------ coordinator messages

  function onCoordinator(m) {
    switch (m.t) {
      case 'ready':
        ready = true;
        opfs = m.opfs;
        setBusy(false);
        setStatus('idle', 'Ready. Choose a backup file, or try the demo backup.');
        showEnv();
        break;
      case 'init-failed': fatal(m.err); break;
      case 'opened': onOpened(m); break;
      case 'open-failed':
        setBusy(false);
        setStatus('error', sentence(m.err.message), m.err.class);
        break;
      case 'plan': onPlan(m); break;
      case 'warning': warn(m.message); break;
      case 'file-start': fileState(m.id, 'working', 'Deriving keys (scrypt)…'); break;
      case 'progress': onProgress(m); break;
      case 'chunk':
        stats.kdfMs.push(m.kdfMs); stats.cryptoMs.push(m.cryptoMs); stats.readMs.push(m.readMs);
        stats.webCrypto = m.webCrypto;
        showEnv();
        break;
      case 'file-done': onFileDone(m); overall(); break;
      case 'file-failed': onFileFailed(m); overall(); break;
      case 'missing': onMissing(m); break;
      case 'finished': onFinished(m); break;
      case 'cancelled':
        pendingBrowse = null;
        startPool(); // stop chunk work in flight
        setBusy(false);
        for (const f of files.values()) if (!f.final) fileState(f.id, 'err', 'Cancelled.');
        setStatus('idle', 'Cancelled. Files already listed under Recovered files are complete; the others were not saved.');
        break;
    }
  }

  function showEnv() {
    const k = stats.kdfMs;
    const parts = [poolSize() + ' chunk worker' + (poolSize() > 1 ? 's' : '') + ' for ' + (navigator.hardwareConcurrency || '?') + ' cores',
      'output: ' + (opfs ? 'browser storage (OPFS), then download' : 'download'),
      'AES/HMAC: ' + (stats.webCrypto === false ? 'WebAssembly' : 'WebCrypto')];
    if (k.length) parts.push('last scrypt KDF: ' + (k[k.length - 1] / 1000).toFixed(2) + ' s');
    el.env.textContent = 'This browser: ' + parts.join(' · ') + '.';
  }

  // ------------------------------------------------------------ step 1 + 2: file, passphrase, open

  function pickFile(f) {
    selected = f || null;
    el.fileInfo.textContent = f ? f.name + ' — ' + fmtBytes(f.size) : '';
    el.stepQubes.hidden = true;
    if (!busy) setStatus('idle', f ? 'Now enter the passphrase and press Open.' : 'Choose a backup file.');
  }

  el.file.addEventListener('change', () => pickFile(el.file.files[0]));
  // A file dropped anywhere else must not make the browser navigate away from the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
  el.drop.addEventListener('dragover', (e) => { e.preventDefault(); el.drop.classList.add('over'); });
  el.drop.addEventListener('dragleave', () => el.drop.classList.remove('over'));
  el.drop.addEventListener('drop', (e) => {
    e.preventDefault();
    el.drop.classList.remove('over');
    if (busy || !e.dataTransfer.files.length) return;
    try { el.file.files = e.dataTransfer.files; } catch (x) { /* read-only in old browsers */ }
    pickFile(e.dataTransfer.files[0]);
  });

  el.toggle.addEventListener('click', () => {
    const show = el.pass.type === 'password';
    el.pass.type = show ? 'text' : 'password';
    el.toggle.textContent = show ? 'Hide' : 'Show';
    el.toggle.setAttribute('aria-pressed', String(show));
  });

  el.form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (busy || !ready) return;
    if (!selected && el.file.files[0]) selected = el.file.files[0];
    if (!selected) { setStatus('idle', 'Choose the backup file first (step 1).'); return; }
    openSelected();
  });

  function openSelected() {
    setBusy(true);
    el.cancel.disabled = true; // opening is one short step (two KDFs)
    warn('');
    el.stepQubes.hidden = true;
    setStatus('working', 'Opening the backup: checking the passphrase (scrypt, a few seconds)…');
    coordinator.postMessage({ t: 'open', blob: selected, passphrase: el.pass.value });
  }

  el.demo.addEventListener('click', () => {
    if (busy || !ready) return;
    const bytes = b64bytes('demo-b64');
    pickFile(new File([bytes], 'demo-backup.bin', { type: 'application/octet-stream' }));
    el.pass.value = 'demo';
    el.pass.type = 'text';
    el.toggle.textContent = 'Hide';
    el.toggle.setAttribute('aria-pressed', 'true');
    openSelected();
  });
  if (!$('demo-b64').textContent.trim()) el.demo.parentElement.hidden = true;

  function onOpened(m) {
    stats.openMs = m.openMs;
    kept.clear();
    el.stepBrowse.hidden = true;
    qubes = m.qubes;
    setBusy(false);
    el.rows.textContent = '';
    for (const q of qubes) el.rows.appendChild(qubeRow(q));
    el.selectAll.checked = false;
    const total = qubes.reduce((a, q) => a + (q.size || 0), 0);
    el.backupInfo.textContent = qubes.length + ' qube' + (qubes.length === 1 ? '' : 's') + ', ' + fmtBytes(total) +
      ' of data, compressed with ' + m.compression + '. Opened in ' + (m.openMs / 1000).toFixed(1) + ' s.';
    el.stepQubes.hidden = false;
    setStatus('done', 'The backup opened: ' + qubes.length + ' qube' + (qubes.length === 1 ? '' : 's') +
      ' inside. Select the ones you want, then press Restore (or Verify only).');
    el.stepQubes.scrollIntoView({ block: 'nearest' });
  }

  function qubeRow(q) {
    const tr = document.createElement('tr');
    tr.setAttribute('data-testid', 'qube-row');
    tr.dataset.qube = q.name;
    const td = (text, cls) => { const c = document.createElement('td'); c.textContent = text == null ? '' : text; if (cls) c.className = cls; tr.appendChild(c); return c; };
    const cb = document.createElement('input');
    cb.type = 'checkbox';
    cb.setAttribute('data-testid', 'select');
    cb.setAttribute('aria-label', 'Select ' + q.name);
    cb.addEventListener('change', syncSelectAll);
    td('').appendChild(cb);
    const name = td('');
    const strong = document.createElement('strong'); strong.textContent = q.name; name.appendChild(strong);
    if (q.name === 'dom0') name.appendChild(document.createTextNode(' (home folder)'));
    td(q.class);
    const lab = td('');
    if (q.label_color) {
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.backgroundColor = String(q.label_color).replace(/^0x/i, '#');
      lab.appendChild(sw);
    }
    lab.appendChild(document.createTextNode(q.label || ''));
    td(q.template || '—');
    td(q.name === 'dom0' && !(q.volumes || []).length ? 'home folder (as a .tar)' : (q.volumes || []).join(', '));
    td(fmtBytes(q.size), 'num-col');
    const bb = document.createElement('button');
    bb.type = 'button';
    bb.textContent = 'Browse';
    bb.setAttribute('data-testid', 'browse');
    bb.setAttribute('aria-label', 'Browse the files of ' + q.name);
    bb.addEventListener('click', () => browseQube(q.name));
    td('').appendChild(bb);
    return tr;
  }

  function checkboxes() { return [...el.rows.querySelectorAll('input[data-testid=select]')]; }
  function syncSelectAll() {
    const cbs = checkboxes();
    el.selectAll.checked = cbs.length > 0 && cbs.every((c) => c.checked);
  }
  el.selectAll.addEventListener('change', () => { for (const c of checkboxes()) c.checked = el.selectAll.checked; });

  // ------------------------------------------------------------ step 3: restore / verify

  if (typeof window.showDirectoryPicker === 'function') el.outputDirLabel.hidden = false;

  el.restore.addEventListener('click', () => startRun('restore'));
  el.verify.addEventListener('click', () => startRun('verify'));
  el.cancel.addEventListener('click', () => {
    if (!busy) return;
    el.cancel.disabled = true;
    setStatus('working', 'Cancelling…');
    coordinator.postMessage({ t: 'cancel' });
  });

  async function startRun(mode, only) {
    if (busy || !ready) return;
    const names = only ? [only] : [...el.rows.querySelectorAll('tr[data-testid=qube-row]')]
      .filter((tr) => tr.querySelector('input[data-testid=select]').checked).map((tr) => tr.dataset.qube);
    if (!names.length) { setStatus('idle', 'Select at least one qube first (tick its box).'); return; }
    setBusy(true);
    setStatus('working', (mode === 'verify' ? 'Verifying ' : 'Restoring ') + names.join(', ') + '…');
    warn('');
    const output = only ? 'keep' : mode === 'restore' && document.querySelector('input[name=output]:checked').value === 'dir' ? 'dir' : 'download';
    let dir = null;
    if (output === 'dir') {
      try {
        // Tests set qubesRescue.testDirectory (e.g. an OPFS folder) since they cannot answer a picker.
        dir = window.qubesRescue.testDirectory || await window.showDirectoryPicker({ id: 'qubes-rescue', mode: 'readwrite' });
      } catch (e) {
        setBusy(false);
        setStatus('idle', e && e.name === 'AbortError' ? 'No folder chosen; nothing was restored.' :
          'This browser refused to write to a folder (' + (e && e.message) + '); choose "Download each file" instead.');
        return;
      }
    }
    for (const u of objectUrls) URL.revokeObjectURL(u);
    objectUrls = [];
    if (opfs && mode === 'restore' && output !== 'dir') {
      // The coordinator empties its OPFS folder for the new files: what was kept there for
      // browsing goes too (Browse restores it again when asked).
      kept.clear();
      el.stepBrowse.hidden = true;
    }
    for (const tr of el.rows.children) tr.classList.remove('failed');
    runOutput = output;
    runMode = mode;
    coordinator.postMessage({ t: 'run', qubes: names, mode, output, dir, salvage: el.salvage.checked });
  }

  // ------------------------------------------------------------ step 4: progress and results

  function onPlan(m) {
    files = new Map();
    el.progress.textContent = '';
    el.resultList.textContent = '';
    el.results.hidden = true;
    el.stepProgress.hidden = false;
    for (const f of m.files) {
      const li = document.createElement('li');
      li.innerHTML = '<span class="state"></span><span class="name"></span> <span class="muted what"></span>' +
        '<progress max="1" value="0"></progress><div class="figures"></div><p class="err-text" hidden></p>';
      li.querySelector('.name').textContent = f.download;
      li.querySelector('.what').textContent = '(' + f.qube + ': ' + f.path + ', ' + f.chunks + ' chunk' + (f.chunks === 1 ? '' : 's') + ', ' + fmtBytes(f.bytes) + ' in the backup)';
      li.querySelector('progress').max = f.chunks || 1;
      li.querySelector('progress').setAttribute('aria-label', 'Progress of ' + f.download);
      li.querySelector('.state').textContent = 'waiting';
      el.progress.appendChild(li);
      files.set(f.id, Object.assign({ li, final: false }, f));
    }
    for (const f of m.failed) onMissing({ qube: f.qube, err: f });
    stats.workers = m.workers;
    el.stepProgress.scrollIntoView({ block: 'nearest' });
  }

  function fileState(id, cls, text) {
    const f = files.get(id);
    if (!f) return;
    const s = f.li.querySelector('.state');
    s.className = 'state ' + (cls === 'working' ? '' : cls);
    s.textContent = cls === 'ok' ? 'done' : cls === 'err' ? 'not restored' : 'working';
    if (cls === 'err') f.final = true;
    if (text) f.li.querySelector('.figures').textContent = text;
  }

  function onProgress(m) {
    const f = files.get(m.id);
    if (!f) return;
    f.li.querySelector('progress').value = m.done;
    const secs = m.elapsedMs / 1000;
    const rate = secs > 0 ? m.bytesDone / secs : 0;
    const left = rate > 0 ? (m.bytesTotal - m.bytesDone) / rate * 1000 : 0;
    f.li.querySelector('.figures').textContent = m.done + ' / ' + m.total + ' chunks · ' + (rate / 1e6).toFixed(1) + ' MB/s · ' +
      fmtTime(m.elapsedMs) + ' elapsed' + (m.done < m.total ? ' · about ' + fmtTime(left) + ' left' : '');
  }

  let lastDownloadAt = 0;
  function download(blob, name) {
    lastDownloadAt = performance.now();
    const url = URL.createObjectURL(blob);
    objectUrls.push(url);
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    a.hidden = true;
    document.body.appendChild(a);
    a.click();
    a.remove();
    return url;
  }

  function onFileDone(m) {
    const f = files.get(m.id);
    if (m.salvaged) return onSalvaged(m, f);
    if (f) {
      f.final = true;
      f.li.querySelector('.name').textContent = m.download;
      f.li.querySelector('progress').value = f.li.querySelector('progress').max;
      fileState(m.id, 'ok');
      f.li.querySelector('.figures').textContent = m.placeholder ? 'Checked. Nothing to save: Qubes stores this empty file for a qube that has no data.' :
        m.kind === 'home' || m.tree ? (m.blob || m.savedToDisk ? 'Restored as a tar archive' + (m.outSize != null ? ' of ' + fmtBytes(m.outSize) : '') : 'Verified') +
          ' (' + fmtBytes(m.size) + ' in files) in ' + fmtTime(m.elapsedMs) + '.' :
        (m.blob || m.savedToDisk ? 'Restored: ' : 'Verified: ') + fmtBytes(m.size) +
        (m.stored < m.size ? ' (' + fmtBytes(m.stored) + ' of data, the rest is empty space)' : '') + ' in ' + fmtTime(m.elapsedMs) + '.';
    }
    if (m.browse && (m.kind === 'volume' || m.kind === 'home') && !m.tree) keep(m);
    if (!m.blob && !m.savedToDisk) return; // verify only
    el.results.hidden = false;
    const li = document.createElement('li');
    if (m.blob && runOutput === 'keep') {
      // Restored to browse: the whole image is saved only if asked.
      const url = URL.createObjectURL(m.blob);
      objectUrls.push(url);
      const a = document.createElement('a');
      a.href = url; a.download = m.download; a.textContent = m.download;
      li.appendChild(a);
      li.appendChild(document.createTextNode(' (kept in this page for browsing; click to save the whole file)'));
    } else if (m.blob) {
      const url = download(m.blob, m.download);
      const a = document.createElement('a');
      a.href = url; a.download = m.download; a.textContent = m.download;
      li.appendChild(a);
    } else {
      li.textContent = m.download + ' (saved in the folder you chose)';
    }
    li.appendChild(document.createTextNode(' — ' + fmtBytes(m.outSize != null ? m.outSize : m.size)));
    el.resultList.appendChild(li);
  }

  // A damaged volume restored in salvage mode: offered as <name>.salvaged plus its JSON report,
  // with the lost ranges shown as a table; the damage stays an error of the run.
  function onSalvaged(m, f) {
    const s = m.salvaged;
    m.lost = s.lost;
    markQubeFailed(m.qube);
    const lostBytes = s.lost.reduce((a, r) => a + (r[1] - r[0]), 0);
    if (f) {
      f.final = true;
      f.li.querySelector('.name').textContent = m.download;
      const st = f.li.querySelector('.state');
      st.className = 'state warn';
      st.textContent = 'salvaged';
      f.li.querySelector('.figures').textContent = 'Salvaged: ' + fmtBytes(m.size) + ' image, ' + s.lost.length + ' lost range' +
        (s.lost.length === 1 ? '' : 's') + ' (' + fmtBytes(lostBytes) + ', left as zeros). ' + sentence(s.damage.message);
      const table = document.createElement('table');
      table.className = 'lost';
      table.setAttribute('data-testid', 'lost-ranges');
      table.innerHTML = '<caption>Byte ranges of the image that could not be restored</caption><thead><tr><th scope="col">Start</th><th scope="col">End (exclusive)</th><th scope="col" class="num-col">Length</th></tr></thead><tbody></tbody>';
      for (const [a, b] of s.lost.slice(0, 200)) {
        const tr = document.createElement('tr');
        tr.setAttribute('data-testid', 'lost-range');
        tr.dataset.start = String(a);
        tr.dataset.end = String(b);
        for (const t of [String(a), String(b), fmtBytes(b - a)]) { const td = document.createElement('td'); td.textContent = t; tr.appendChild(td); }
        table.tBodies[0].appendChild(tr);
      }
      f.li.appendChild(table);
    }
    if (m.browse) keep(m);
    el.results.hidden = false;
    for (const [blob, name] of [[m.blob, m.download], [s.json, s.jsonName]]) {
      const li = document.createElement('li');
      const url = download(blob, name);
      const a = document.createElement('a');
      a.href = url; a.download = name; a.textContent = name;
      li.appendChild(a);
      li.appendChild(document.createTextNode(' — ' + fmtBytes(blob.size) + (name === m.download ? ' (salvaged: not a clean restore)' : ' (the lost ranges)')));
      el.resultList.appendChild(li);
    }
  }

  // The status line while working: how far the whole run is.
  function overall() {
    if (!busy) return;
    const all = [...files.values()];
    const finished = all.filter((f) => f.final).length;
    const failedN = all.filter((f) => f.final && f.li.querySelector('.state').classList.contains('err')).length;
    setStatus('working', (runMode === 'verify' ? 'Verifying: ' : 'Restoring: ') + finished + ' of ' + all.length + ' files finished' +
      (failedN ? ', ' + failedN + ' failed' : '') + '…');
  }

  function markQubeFailed(qube) {
    for (const tr of el.rows.children) if (tr.dataset.qube === qube) tr.classList.add('failed');
  }

  // A file qubes.xml lists that the backup does not hold.
  function onMissing(m) {
    markQubeFailed(m.qube);
    const li = document.createElement('li');
    li.innerHTML = '<span class="state err">missing</span><span class="name"></span><p class="err-text"></p>';
    li.querySelector('.name').textContent = m.qube;
    li.querySelector('.err-text').textContent = sentence(m.err.message);
    el.progress.appendChild(li);
  }

  function onFileFailed(m) {
    const f = files.get(m.id);
    markQubeFailed(m.qube);
    if (!f) return;
    fileState(m.id, 'err', '');
    f.li.querySelector('.figures').textContent = '';
    const p = f.li.querySelector('.err-text');
    p.hidden = false;
    p.textContent = sentence(m.err.message);
  }

  function onFinished(m) {
    // Let the browser register the downloads just started before saying "done".
    if (lastDownloadAt && performance.now() - lastDownloadAt < 500) {
      setTimeout(() => onFinished(m), 500 - (performance.now() - lastDownloadAt));
      return;
    }
    setBusy(false);
    if (pendingBrowse) {
      const q = pendingBrowse;
      pendingBrowse = null;
      if (kept.has(q)) openBrowser(q);
    }
    stats.lastRun = m.stats || null;
    const errs = m.errors || [];
    const n = [...files.values()].filter((f) => !f.placeholder && f.li.querySelector('.state').classList.contains('ok')).length;
    const what = m.verifyOnly ? 'verified' : 'restored';
    if (!errs.length) {
      setStatus('done', 'Done: ' + n + ' file' + (n === 1 ? '' : 's') + ' ' + what + (m.verifyOnly ? ', all intact.' :
        runOutput === 'dir' ? ' into the folder you chose.' : runOutput === 'keep' ? ' for browsing (kept in this page; nothing was downloaded).' :
        '. If the browser asked whether this page may download several files, allow it.'));
    } else {
      const first = errs[0];
      const failedQubes = [...new Set(errs.map((e) => e.qube))];
      setStatus('error', 'Finished with errors: ' + n + ' file' + (n === 1 ? '' : 's') + ' ' + what + ', ' + errs.length +
        ' failed (' + failedQubes.join(', ') + '). ' + (first.qube ? first.qube + ': ' : '') + sentence(first.message), first.class);
    }
  }

  // ------------------------------------------------------------ step 5: browse a restored qube
  // The browse worker reads the restored files (Blobs, OPFS Files, or files saved to a folder)
  // and streams single files and folders out; this side only shows and routes.

  let browseWorker = null;
  let browseReady = null;     // resolves when the worker is up
  let rid = 0;
  const pending = new Map();  // rid → {resolve, reject, progress}
  const kept = new Map();     // qube → Map(volume name → {blob, kind, lost})
  let pendingBrowse = null;   // qube to open once its restore finishes
  let current = null;         // {qube, volume, info, path (bytes), lost}
  let activeDownload = null;  // rid of the download in flight

  function startBrowseWorker() {
    browseWorker = new Worker(workerUrl('src-browse'), { name: 'browse' });
    browseReady = new Promise((resolve) => {
      browseWorker.onmessage = (ev) => {
        const m = ev.data;
        if (m.t === 'ready') return resolve();
        if (m.t === 'init-failed') return fatal(m.err);
        const p = pending.get(m.rid);
        if (!p) return;
        if (m.t === 'progress') { if (p.progress) p.progress(m); return; }
        pending.delete(m.rid);
        if (m.t === 'failed') p.reject(m.err); else p.resolve(m);
      };
    });
    browseWorker.onerror = (ev) => fatal({ class: 'io', message: 'the file browser stopped (' + (ev.message || 'no details') + ')' });
    browseWorker.postMessage({ t: 'init', module });
  }

  // A request to the browse worker; the promise carries its id (to cancel it).
  function ask(msg, progress) {
    const id = ++rid;
    const p = browseReady.then(() => new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject, progress });
      browseWorker.postMessage(Object.assign({ rid: id }, msg));
    }));
    p.rid = id;
    return p;
  }

  function keep(m) {
    if (!kept.has(m.qube)) kept.set(m.qube, new Map());
    const name = m.kind === 'home' ? 'home' : m.name;
    kept.get(m.qube).set(name, { blob: m.browse, kind: m.kind, lost: m.lost || null });
  }

  function browseStatus(state, text) {
    el.browseStatus.dataset.state = state;
    el.browseStatus.textContent = text;
  }

  // Browse: the qube's kept files, or restore it first (kept in the page, nothing downloaded).
  function browseQube(qube) {
    if (busy || !ready) return;
    if (kept.has(qube)) return openBrowser(qube);
    pendingBrowse = qube;
    startRun('restore', qube);
  }

  const enc = new TextEncoder();
  const pathBytes = (e) => e.path_raw ? new Uint8Array(e.path_raw) : enc.encode(e.path);

  function volumeOrder(a, b) {
    const rank = (n) => n === 'private.img' ? 0 : n === 'root.img' ? 1 : n === 'home' ? 2 : 3;
    return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
  }

  function openBrowser(qube) {
    const vols = [...kept.get(qube).keys()].sort(volumeOrder);
    current = { qube, volume: null, info: null, path: null, lost: null };
    el.browseQubeName.textContent = qube;
    el.volume.textContent = '';
    for (const v of vols) {
      const o = document.createElement('option');
      o.value = v;
      o.textContent = v === 'home' ? 'home folder' : v;
      el.volume.appendChild(o);
    }
    el.stepBrowse.hidden = false;
    el.stepBrowse.scrollIntoView({ block: 'nearest' });
    openVolume(vols[0], null);
  }

  async function openVolume(vol, partition) {
    const v = kept.get(current.qube).get(vol);
    el.volume.value = vol;
    current.volume = vol;
    current.lost = v.lost;
    el.fsRows.textContent = '';
    el.crumbs.textContent = '';
    hidePreview();
    browseStatus('working', 'Opening ' + vol + '…');
    try {
      const r = await ask({ t: 'open', blob: v.blob, kind: v.kind === 'home' ? 'home' : 'image', partition, lost: v.lost });
      current.info = r.info;
      showPartitions(r.info);
      await navigate(enc.encode(r.info.root));
    } catch (e) {
      browseStatus('error', sentence(e.message) + (e.class === 'unsupported' ? ' You can still download the whole image from the list above.' : ''));
      el.browseStatus.dataset.error = e.class || 'io';
    }
  }

  function showPartitions(info) {
    el.partition.textContent = '';
    el.partitionLabel.hidden = !info.partitions.length;
    for (const p of info.partitions) {
      const o = document.createElement('option');
      o.value = String(p.number);
      o.textContent = p.number + ': ' + (p.name || p.kind) + ' (' + fmtBytes(p.size) + (p.ext4 ? ', ext4' : '') + ')';
      el.partition.appendChild(o);
    }
    if (info.partition) el.partition.value = String(info.partition.number);
  }

  el.volume.addEventListener('change', () => openVolume(el.volume.value, null));
  el.partition.addEventListener('change', () => openVolume(current.volume, parseInt(el.partition.value, 10)));
  el.browseClose.addEventListener('click', () => { el.stepBrowse.hidden = true; hidePreview(); });

  async function navigate(path) {
    browseStatus('working', 'Reading the folder…');
    hidePreview();
    let r;
    try {
      r = await ask({ t: 'list', path });
    } catch (e) {
      browseStatus('error', sentence(e.message));
      return;
    }
    const l = r.listing;
    current.path = l.path_raw ? new Uint8Array(l.path_raw) : enc.encode(l.path);
    current.pathText = l.path;
    crumbs(l.path);
    el.fsRows.textContent = '';
    for (const e of l.entries) el.fsRows.appendChild(fsRow(e));
    const n = l.entries.length;
    let text = l.path + ': ' + n + ' entr' + (n === 1 ? 'y' : 'ies') + '.';
    if (l.errors.length) text += ' Part of this folder could not be read: ' + sentence(l.errors[0].message);
    browseStatus(l.errors.length ? 'error' : 'done', text);
    if (current.lost && current.lost.length) await markLostFiles(current.path, text);
  }

  // A salvaged image: the files of this folder that read lost bytes (zeros there) get ⚠.
  // They are found by reading them, so at most LOST_BUDGET bytes per folder.
  const LOST_BUDGET = 256 * 1024 * 1024;
  async function markLostFiles(path, text) {
    browseStatus('working', text + ' Checking which files lie in the salvage\'s lost ranges…');
    let r;
    try {
      r = await ask({ t: 'lost', path, budget: LOST_BUDGET });
    } catch (e) {
      browseStatus('error', text + ' Could not check the lost ranges: ' + sentence(e.message));
      return;
    }
    if (current.path !== path) return; // moved on meanwhile
    for (const p of r.lost) {
      const tr = el.fsRows.querySelector('tr[data-testid="fs-entry"][data-path="' + CSS.escape(p) + '"]');
      if (tr && tr.dataset.lost !== 'true') { tr.dataset.lost = 'true'; tr.querySelector('.fs-name').textContent = '⚠ ' + tr.querySelector('.fs-name').textContent; }
    }
    browseStatus('done', text + ' This image was salvaged: ' + (r.lost.length ? r.lost.length + ' file' + (r.lost.length === 1 ? '' : 's') +
      ' here (marked ⚠) include bytes that were lost and read as zeros.' : 'no file here reads lost bytes.') +
      (r.unchecked.length ? ' ' + r.unchecked.length + ' big file' + (r.unchecked.length === 1 ? ' was' : 's were') + ' not checked; opening or downloading one tells.' : ''));
  }

  // Breadcrumbs: one button per folder above; the bytes of each prefix are cut from the raw path.
  function crumbs(text) {
    el.crumbs.textContent = '';
    const raw = current.path;
    const cuts = [0];
    for (let i = 1; i < raw.length; i++) if (raw[i] === 0x2f) cuts.push(i);
    if (raw.length > 1) cuts.push(raw.length);
    const names = text === '/' ? [] : text.split('/').slice(1);
    const add = (label, end, last) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'link';
      b.textContent = label;
      if (last) b.setAttribute('aria-current', 'location');
      b.addEventListener('click', () => navigate(end === 0 ? enc.encode('/') : raw.slice(0, end)));
      el.crumbs.appendChild(b);
    };
    add(current.volume === 'home' ? 'dom0' : current.volume, 0, names.length === 0);
    names.forEach((n, i) => {
      el.crumbs.appendChild(document.createTextNode(' / '));
      add(n, cuts[i + 1], i === names.length - 1);
    });
  }

  function fmtDate(secs) {
    if (!secs) return '';
    try { return new Date(secs * 1000).toISOString().replace('T', ' ').replace(/\.000Z$/, ' UTC'); } catch (e) { return ''; }
  }

  const TYPE_TEXT = { file: 'file', dir: 'folder', symlink: 'link', other: 'special' };

  function fsRow(e) {
    const tr = document.createElement('tr');
    tr.setAttribute('data-testid', 'fs-entry');
    tr.dataset.path = e.path;
    tr.dataset.type = e.type;
    const td = (text, cls) => { const c = document.createElement('td'); c.textContent = text == null ? '' : text; if (cls) c.className = cls; tr.appendChild(c); return c; };
    const name = td('');
    const nb = document.createElement('button');
    nb.type = 'button';
    nb.className = 'link fs-name';
    nb.textContent = (e.type === 'dir' ? '📁 ' : e.type === 'symlink' ? '↪ ' : '') + e.name;
    name.appendChild(nb);
    if (e.type === 'symlink') name.appendChild(document.createTextNode(' → ' + (e.target || '?')));
    if (e.error) {
      const p = document.createElement('span');
      p.className = 'err-text';
      p.textContent = ' ' + sentence(e.error.message);
      name.appendChild(p);
      tr.classList.add('failed');
    }
    td(TYPE_TEXT[e.type] || e.type);
    td(e.type === 'dir' ? '' : fmtBytes(e.size), 'num-col');
    td(fmtDate(e.mtime));
    const act = td('', 'actions');
    const button = (label, testid, fn) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      b.setAttribute('data-testid', testid);
      b.addEventListener('click', (ev) => { ev.stopPropagation(); fn(); });
      act.appendChild(b);
      return b;
    };
    const open = () => {
      if (e.type === 'dir') return navigate(pathBytes(e));
      if (e.type === 'symlink') return navigate(pathBytes(e)).catch(() => {}); // a link to a folder opens it
      if (e.type === 'file') return previewFile(e);
    };
    nb.addEventListener('click', (ev) => { ev.stopPropagation(); open(); });
    tr.addEventListener('click', open);
    if (e.error) return tr;
    if (e.type === 'file' || e.type === 'symlink') {
      button('Download', 'fs-download', () => saveFile(e, tr));
      if (e.type === 'file') button('Preview', 'fs-preview', () => previewFile(e));
    } else if (e.type === 'dir') {
      button('Download .zip', 'fs-download-zip', () => saveZip(pathBytes(e), e.download, tr));
    }
    return tr;
  }

  el.zipHere.addEventListener('click', () => {
    if (!current || !current.path) return;
    const last = current.pathText === '/' ? (current.volume === 'home' ? 'home' : current.qube + '-' + current.volume) : current.pathText.split('/').pop();
    saveZip(current.path, last, null);
  });
  el.browseCancel.addEventListener('click', () => {
    if (activeDownload) browseWorker.postMessage({ t: 'cancel', rid: activeDownload });
  });

  function markLost(tr, name) {
    if (tr && tr.dataset.lost !== 'true') { tr.dataset.lost = 'true'; tr.querySelector('.fs-name').textContent = '⚠ ' + tr.querySelector('.fs-name').textContent; }
    warn(name + ' includes bytes from a part of the image the salvage could not recover; those bytes are zeros.');
  }

  async function saveFile(e, tr) {
    await download1(e.download, { t: 'file', path: pathBytes(e), name: e.download }, tr);
  }

  async function saveZip(path, base, tr) {
    await download1(base + '.zip', { t: 'zip', path, name: base + '.zip' }, tr);
  }

  async function download1(name, msg, tr) {
    if (activeDownload) { browseStatus('working', 'One download at a time: wait for the current one, or stop it.'); return; }
    browseStatus('working', 'Preparing ' + name + '…');
    el.browseCancel.disabled = false;
    const t0 = performance.now();
    const progress = (m) => {
      const secs = (performance.now() - t0) / 1000;
      browseStatus('working', 'Preparing ' + name + ': ' + fmtBytes(m.done) + (m.total ? ' of ' + fmtBytes(m.total) : '') +
        (secs > 0 ? ' · ' + (m.done / secs / 1e6).toFixed(1) + ' MB/s' : '') + '…');
    };
    const p = ask(msg, progress);
    activeDownload = p.rid;
    try {
      const r = await p;
      if (r.t === 'cancelled') { browseStatus('idle', 'Stopped; ' + name + ' was not saved.'); return; }
      download(r.blob, r.name);
      let text = 'Saved ' + r.name + ' (' + fmtBytes(r.blob.size) + ').';
      if (r.summary) {
        const s = r.summary;
        text = 'Saved ' + r.name + ': ' + s.files + ' file' + (s.files === 1 ? '' : 's') + ', ' + fmtBytes(s.bytes) + '.';
        if (s.skipped.length) text += ' Left out ' + s.skipped.length + ' symbolic link' + (s.skipped.length === 1 ? '' : 's') + ' or special file' + (s.skipped.length === 1 ? '' : 's') + '.';
        if (s.errors.length) text += ' ' + s.errors.length + ' could not be read (first: ' + s.errors[0].path + ': ' + sentence(s.errors[0].message) + ')';
      }
      if (r.lost) markLost(tr, r.name);
      browseStatus(r.summary && r.summary.errors.length ? 'error' : 'done', text);
    } catch (e) {
      browseStatus('error', 'Could not save ' + name + ': ' + sentence(e.message));
    } finally {
      activeDownload = null;
      el.browseCancel.disabled = true;
    }
  }

  const IMAGE_TYPES = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', bmp: 'image/bmp', ico: 'image/x-icon', svg: 'image/svg+xml' };
  let previewUrl = null;

  function hidePreview() {
    el.preview.hidden = true;
    el.previewImg.hidden = true;
    el.previewText.hidden = true;
    if (previewUrl) { URL.revokeObjectURL(previewUrl); previewUrl = null; }
  }

  async function previewFile(e) {
    const ext = (e.name.split('.').pop() || '').toLowerCase();
    const image = IMAGE_TYPES[ext];
    const max = image ? 32 * 1024 * 1024 : 256 * 1024;
    if (image && e.size > max) { browseStatus('done', e.name + ' is too big to preview here; download it instead.'); return; }
    browseStatus('working', 'Reading ' + e.name + '…');
    let r;
    try {
      r = await ask({ t: 'preview', path: pathBytes(e), max });
    } catch (err) {
      browseStatus('error', 'Could not read ' + e.name + ': ' + sentence(err.message));
      return;
    }
    hidePreview();
    el.preview.hidden = false;
    el.previewTitle.textContent = e.name;
    el.previewNote.textContent = fmtBytes(r.size) + (r.bytes.length < r.size ? ' (showing the first ' + fmtBytes(r.bytes.length) + ')' : '') +
      (r.lost ? ' · ⚠ includes bytes the salvage lost (shown as zeros)' : '');
    if (image) {
      previewUrl = URL.createObjectURL(new Blob([r.bytes], { type: image }));
      el.previewImg.src = previewUrl;
      el.previewImg.alt = e.name;
      el.previewImg.hidden = false;
    } else {
      const binary = r.bytes.subarray(0, 8192).some((b) => b === 0);
      el.previewText.textContent = binary ? 'This looks like a binary file; download it to open it.' : new TextDecoder('utf-8', { fatal: false }).decode(r.bytes);
      el.previewText.hidden = false;
    }
    browseStatus('done', 'Showing ' + e.name + '.');
    el.preview.scrollIntoView({ block: 'nearest' });
  }


  boot();
})();
