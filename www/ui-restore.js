// Uses: fmtBytes (fmt.js), Bridge (bridge.js).
// The restore view (steps 1–4): choose the backup, open it with its passphrase, choose qubes,
// restore or verify them through the coordinator, show progress and hand out the files.
// Defines: restoreView(ui, browse) → {starting, ready(opfs), setBusy}; `ui` holds the shared
// helpers (ui.js), `browse` the browse view (ui-browse.js).
'use strict';

function restoreView(ui, browse) {
  const { $, stats, sentence, setStatus, warn, fmtTime } = ui;
  const el = {
    drop: $('drop'), file: $('backup-file'), fileInfo: $('file-info'), demo: $('demo'),
    form: $('open-form'), pass: $('passphrase'), toggle: $('toggle-pass'), open: $('open'),
    stepQubes: $('step-qubes'), backupInfo: $('backup-info'), rows: $('qube-rows'), selectAll: $('select-all'),
    outputDirLabel: $('output-dir-label'), restore: $('restore'), verify: $('verify'), cancel: $('cancel'),
    stepProgress: $('step-progress'), progress: $('progress-list'), results: $('results'), resultList: $('result-list'),
    salvage: $('salvage'),
  };
  let ready = false;
  let busy = false;
  let opfs = false;
  let selected = null;     // the backup File (or the demo Blob)
  let qubes = [];
  let files = new Map();   // id → {li, ...}
  let run = null;          // the coordinator's run in flight (a Bridge call: cancel())
  let runOutput = 'download';
  let runMode = 'restore';
  let pendingBrowse = null; // qube to open once its restore finishes
  let outputChosen = false;  // the user picked an output: no more default from the selection

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

  // While the page starts: nothing to press yet.
  function starting() {
    setBusy(true);
    el.cancel.disabled = true;
  }

  // The coordinator is up.
  function onReady(hasOpfs) {
    ready = true;
    opfs = hasOpfs;
    setBusy(false);
    setStatus('idle', 'Ready. Choose a backup file, or try the demo backup.');
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
    ui.coordinator.call('open', { blob: selected, passphrase: el.pass.value }).then(onOpened, (err) => {
      setBusy(false);
      setStatus('error', sentence(err.message), err.class);
    });
  }

  el.demo.addEventListener('click', () => {
    if (busy || !ready) return;
    const bytes = ui.b64bytes('demo-b64');
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
    stats.openReads = m.openReads;
    browse.forget();
    qubes = m.qubes;
    outputChosen = false; // another backup: the output is suggested for it again
    $('output-note').hidden = true;
    setBusy(false);
    el.rows.textContent = '';
    for (const q of qubes) el.rows.appendChild(qubeRow(q));
    el.selectAll.checked = false;
    const total = qubes.reduce((a, q) => a + (q.size || 0), 0);
    // For tests and the footer: whether Open ran qubes.xml's KDF on a chunk worker beside the header's.
    el.backupInfo.dataset.earlyQubesXml = String(!!m.earlyQubesXml);
    // and on how many workers the header's KDF lanes ran (a p=4 header uses up to 4).
    el.backupInfo.dataset.headerLaneWorkers = String(m.headerLaneWorkers || 0);
    stats.openParallel = !!m.earlyQubesXml;
    stats.headerLaneWorkers = m.headerLaneWorkers || 0;
    ui.showEnv();
    el.backupInfo.textContent = qubes.length + ' qube' + (qubes.length === 1 ? '' : 's') + ', ' + fmtBytes(total) +
      ' of data, compressed with ' + m.compression + '. Opened in ' + (m.openMs / 1000).toFixed(1) + ' s.' +
      (m.formatNote ? ' Backup format ' + m.format + ' (Qubes R2/R3): ' + m.formatNote + '.' : '');
    el.backupInfo.dataset.format = String(m.format || 4);
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
    suggestOutput();
  }
  el.selectAll.addEventListener('change', () => { for (const c of checkboxes()) c.checked = el.selectAll.checked; suggestOutput(); });

  // One archive or a download per file, as the core suggests for the selection (its volumes or
  // home folder, its data size, its volumes' full size), until the user picks one.
  function suggestOutput() {
    if (outputChosen) return;
    const sel = qubes.filter((q) => checkboxes().some((c) => c.checked && c.closest('tr').dataset.qube === q.name));
    const files = sel.reduce((a, q) => a + Math.max(1, (q.volumes || []).length), 0);
    const bytes = sel.reduce((a, q) => a + (q.size || 0), 0);
    const volumeBytes = sel.reduce((a, q) => a + (q.volume_bytes || 0), 0);
    ui.coordinator.call('suggest', { files, bytes, volumeBytes }).then((s) => {
      if (!outputChosen) document.querySelector('input[name=output][value=' + (s.archive ? 'archive' : 'download') + ']').checked = true;
      // Said before anything starts: the page cannot see a download the browser cancels.
      const note = $('output-note');
      note.hidden = !s.privateWindowRisk;
      note.textContent = s.privateWindowRisk ? 'About ' + fmtBytes(bytes) + ' of data to save. A private (incognito) window may ' +
        'cancel downloads this big without this page knowing: restore from a normal window' +
        (typeof window.showDirectoryPicker === 'function' ? ', or choose "Save to disk…", which writes straight to a folder.' : '.') : '';
    }, () => {});
  }
  for (const r of document.querySelectorAll('input[name=output]')) r.addEventListener('change', () => { outputChosen = true; });

  // ------------------------------------------------------------ step 3: restore / verify

  if (typeof window.showDirectoryPicker === 'function') el.outputDirLabel.hidden = false;

  el.restore.addEventListener('click', () => startRun('restore'));
  el.verify.addEventListener('click', () => startRun('verify'));
  el.cancel.addEventListener('click', () => {
    if (!busy) return;
    el.cancel.disabled = true;
    setStatus('working', 'Cancelling…');
    if (run) run.cancel();
  });

  // Browse: the qube's kept files, or restore it first (kept in the page, nothing downloaded).
  function browseQube(qube) {
    if (busy || !ready) return;
    if (browse.has(qube)) return browse.open(qube);
    pendingBrowse = qube;
    startRun('restore', qube);
  }

  async function startRun(mode, only) {
    if (busy || !ready) return;
    const names = only ? [only] : [...el.rows.querySelectorAll('tr[data-testid=qube-row]')]
      .filter((tr) => tr.querySelector('input[data-testid=select]').checked).map((tr) => tr.dataset.qube);
    if (!names.length) { setStatus('idle', 'Select at least one qube first (tick its box).'); return; }
    setBusy(true);
    setStatus('working', (mode === 'verify' ? 'Verifying ' : 'Restoring ') + names.join(', ') + '…');
    warn('');
    const output = only ? 'keep' : mode === 'restore' ? document.querySelector('input[name=output]:checked').value : 'download';
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
    ui.revokeUrls();
    if (opfs && mode === 'restore' && output !== 'dir') {
      // The coordinator empties its OPFS folder for the new files: what was kept there for
      // browsing goes too (Browse restores it again when asked).
      browse.forget();
    }
    for (const tr of el.rows.children) tr.classList.remove('failed');
    runOutput = output;
    runMode = mode;
    run = ui.coordinator.call('run', { qubes: names, mode, output, dir, salvage: el.salvage.checked }, [], {
      plan: onPlan,
      warning: (m) => warn(m.message),
      'file-start': (m) => fileState(m.id, 'working', 'Deriving keys (scrypt)…'),
      progress: onProgress,
      chunk: onChunk,
      'file-done': (m) => { onFileDone(m); overall(); },
      'file-failed': (m) => { onFileFailed(m); overall(); },
      missing: onMissing,
    });
    run.then((r) => { run = null; return r === Bridge.CANCELLED ? onCancelled() : onFinished(r); },
      (err) => { run = null; onFinished({ errors: [err] }); });
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

  function onChunk(m) {
    stats.kdfMs.push(m.kdfMs); stats.cryptoMs.push(m.cryptoMs); stats.readMs.push(m.readMs);
    stats.webCrypto = m.webCrypto;
    ui.showEnv();
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
        m.kind === 'home' || m.tree ? (m.blob || m.savedToDisk || m.inArchive ? 'Restored as a tar archive' + (m.outSize != null ? ' of ' + fmtBytes(m.outSize) : '') : 'Verified') +
          ' (' + fmtBytes(m.size) + ' in files) in ' + fmtTime(m.elapsedMs) + '.' :
        (m.inArchive ? 'In the archive: ' : m.blob || m.savedToDisk ? 'Restored: ' : 'Verified: ') + fmtBytes(m.size) +
        (m.stored < m.size ? ' (' + fmtBytes(m.stored) + ' of data, the rest is empty space)' : '') + ' in ' + fmtTime(m.elapsedMs) + '.';
    }
    if (m.browse && (m.kind === 'volume' || m.kind === 'home') && !m.tree) browse.keep(m);
    if (!m.blob && !m.savedToDisk) return; // verify only
    el.results.hidden = false;
    const li = document.createElement('li');
    if (m.blob && runOutput === 'keep') {
      // Restored to browse: the whole image is saved only if asked.
      const url = ui.blobUrl(m.blob);
      const a = document.createElement('a');
      a.href = url; a.download = m.download; a.textContent = m.download;
      li.appendChild(a);
      li.appendChild(document.createTextNode(' (kept in this page for browsing; click to save the whole file)'));
    } else if (m.blob) {
      const url = ui.download(m.blob, m.download);
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
      f.li.querySelector('.figures').textContent = (m.inArchive ? 'Salvaged into the archive (with its list of lost ranges): ' : 'Salvaged: ') + fmtBytes(m.size) + ' image, ' + s.lost.length + ' lost range' +
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
    if (m.browse) browse.keep(m);
    if (m.inArchive) return;
    el.results.hidden = false;
    for (const [blob, name] of [[m.blob, m.download], [s.json, s.jsonName]]) {
      const li = document.createElement('li');
      const url = ui.download(blob, name);
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
    if (m.archive && !m.archiveOffered) offerArchive(m);
    // Let the browser register the downloads just started before saying "done".
    const since = ui.msSinceDownload();
    if (since < 500) {
      setTimeout(() => onFinished(m), 500 - since);
      return;
    }
    setBusy(false);
    if (pendingBrowse) {
      const q = pendingBrowse;
      pendingBrowse = null;
      if (browse.has(q)) browse.open(q);
    }
    stats.lastRun = m.stats || null;
    // For tests: the most workers one chunk's KDF lanes ran on in this run.
    $('status').dataset.laneWorkers = String(m.stats && m.stats.laneWorkers || 0);
    const errs = m.errors || [];
    const n = [...files.values()].filter((f) => !f.placeholder && f.li.querySelector('.state').classList.contains('ok')).length;
    const what = m.verifyOnly ? 'verified' : 'restored';
    const a = m.archive;
    const inArchive = a ? ' The archive ' + a.download + ' holds the ' + a.files.length + ' file' + (a.files.length === 1 ? '' : 's') +
      ' restored. The page cannot see whether the browser saved it: check that ' + a.download + ' in your downloads folder is ' +
      a.blob.size.toLocaleString('en') + ' bytes, then extract it with tar -xf ' + a.download + '.' : '';
    if (!errs.length && a) {
      setStatus('done', 'Done: ' + n + ' file' + (n === 1 ? '' : 's') + ' restored into one archive.' + inArchive);
    } else if (!errs.length) {
      setStatus('done', 'Done: ' + n + ' file' + (n === 1 ? '' : 's') + ' ' + what + (m.verifyOnly ? ', all intact.' :
        runOutput === 'dir' ? ' into the folder you chose.' : runOutput === 'keep' ? ' for browsing (kept in this page; nothing was downloaded).' :
        ' and offered as downloads. The page cannot see whether the browser saved them: check that each file listed ' +
        'below is in your downloads folder (allow several downloads if the browser asks; a private window may cancel ' +
        'files of several GB).'));
    } else {
      const first = errs[0];
      const failedQubes = [...new Set(errs.map((e) => e.qube))];
      setStatus('error', 'Finished with errors: ' + n + ' file' + (n === 1 ? '' : 's') + ' ' + what + ', ' + errs.length +
        ' failed (' + failedQubes.join(', ') + '). ' + (first.qube ? first.qube + ': ' : '') + sentence(first.message) + inArchive, first.class);
    }
  }

  // The run's archive: one download, listed with its exact size (what to check it arrived whole).
  function offerArchive(m) {
    m.archiveOffered = true;
    const a = m.archive;
    el.results.hidden = false;
    const li = document.createElement('li');
    const link = document.createElement('a');
    link.href = ui.download(a.blob, a.download); link.download = a.download; link.textContent = a.download;
    li.dataset.testid = 'archive';
    li.dataset.bytes = String(a.blob.size);
    li.appendChild(link);
    li.appendChild(document.createTextNode(' — ' + fmtBytes(a.blob.size) + ' (' + a.blob.size.toLocaleString('en') + ' bytes), ' +
      a.files.length + ' file' + (a.files.length === 1 ? '' : 's') + ': ' + a.files.join(', ')));
    el.resultList.appendChild(li);
  }

  function onCancelled() {
    pendingBrowse = null;
    ui.restartPool(); // stop chunk work in flight
    setBusy(false);
    for (const f of files.values()) if (!f.final) fileState(f.id, 'err', 'Cancelled.');
    setStatus('idle', 'Cancelled. Files already listed under Recovered files are complete; the others were not saved.');
  }

  return { starting, ready: onReady, setBusy };
}
