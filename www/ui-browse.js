// Uses: fmtBytes (fmt.js), Bridge (bridge.js).
// The browse view (step 5): the files of a restored qube. The browse worker reads the restored
// files (Blobs, OPFS Files, or files saved to a folder) and streams single files and folders out;
// this side only shows and routes.
// Defines: browseView(ui) → {start(bridge, module, workerReads), keep(fileDone), has(qube), open(qube), forget()};
// `ui` holds the shared helpers (ui.js).
'use strict';

function browseView(ui) {
  const { $, sentence, warn } = ui;
  const el = {
    stepBrowse: $('step-browse'), browseQubeName: $('browse-qube'), volume: $('volume'), partition: $('partition'),
    partitionLabel: $('partition-label'), zipHere: $('zip-here'), browseCancel: $('browse-cancel'), browseClose: $('browse-close'),
    crumbs: $('crumbs'), browseStatus: $('browse-status'), fsRows: $('fs-rows'), preview: $('preview'),
    previewTitle: $('preview-title'), previewNote: $('preview-note'), previewText: $('preview-text'), previewImg: $('preview-img'),
  };
  let worker = null;          // the Bridge to the browse worker
  const kept = new Map();     // qube → Map(volume name → {blob, kind, lost})
  let current = null;         // {qube, volume, info, path (bytes), lost}
  let activeDownload = null;  // the download in flight (a Bridge call: cancel())

  function start(bridge, module, workerReads) {
    worker = bridge;
    worker.call('init', { module, workerReads }).catch(ui.fatal);
  }

  // A file a restore produced (the coordinator's file-done) that can be browsed.
  function keep(m) {
    if (!kept.has(m.qube)) kept.set(m.qube, new Map());
    const name = m.kind === 'home' ? 'home' : m.name;
    kept.get(m.qube).set(name, { blob: m.browse, kind: m.kind, lost: m.lost || null });
  }

  // The kept files are gone (another backup, or the coordinator emptied its OPFS folder).
  function forget() {
    kept.clear();
    el.stepBrowse.hidden = true;
  }

  function browseStatus(state, text) {
    el.browseStatus.dataset.state = state;
    el.browseStatus.textContent = text;
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
      const info = await worker.call('open', { blob: v.blob, kind: v.kind === 'home' ? 'home' : 'image', partition, lost: v.lost });
      current.info = info;
      showPartitions(info);
      await navigate(enc.encode(info.root));
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
    let l;
    try {
      l = await worker.call('list', { path });
    } catch (e) {
      browseStatus('error', sentence(e.message));
      return;
    }
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
      r = await worker.call('lost', { path, budget: LOST_BUDGET });
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
    if (activeDownload) activeDownload.cancel();
  });

  function markLost(tr, name) {
    if (tr && tr.dataset.lost !== 'true') { tr.dataset.lost = 'true'; tr.querySelector('.fs-name').textContent = '⚠ ' + tr.querySelector('.fs-name').textContent; }
    warn(name + ' includes bytes from a part of the image the salvage could not recover; those bytes are zeros.');
  }

  async function saveFile(e, tr) {
    await download1('file', { path: pathBytes(e), name: e.download }, tr);
  }

  async function saveZip(path, base, tr) {
    await download1('zip', { path, name: base + '.zip' }, tr);
  }

  // One file or folder out of the image, as a download; one at a time, and it can be stopped.
  async function download1(method, args, tr) {
    const name = args.name;
    if (activeDownload) { browseStatus('working', 'One download at a time: wait for the current one, or stop it.'); return; }
    browseStatus('working', 'Preparing ' + name + '…');
    el.browseCancel.disabled = false;
    const t0 = performance.now();
    const progress = (m) => {
      const secs = (performance.now() - t0) / 1000;
      browseStatus('working', 'Preparing ' + name + ': ' + fmtBytes(m.done) + (m.total ? ' of ' + fmtBytes(m.total) : '') +
        (secs > 0 ? ' · ' + (m.done / secs / 1e6).toFixed(1) + ' MB/s' : '') + '…');
    };
    activeDownload = worker.call(method, args, [], { progress });
    try {
      const r = await activeDownload;
      if (r === Bridge.CANCELLED) { browseStatus('idle', 'Stopped; ' + name + ' was not saved.'); return; }
      ui.download(r.blob, r.name);
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
      r = await worker.call('preview', { path: pathBytes(e), max });
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

  return { start, keep, has: (qube) => kept.has(qube), open: openBrowser, forget };
}
