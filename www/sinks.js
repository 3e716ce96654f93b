// Output sinks, shared by the coordinator (restored files) and the browse worker (files and
// folders taken out of a restored image). A sink receives set_len(n) (optional) and
// write(offset, bytes) with ascending offsets; `bytes` may be a view into wasm memory, valid
// only during the call (it is copied or written at once). finish() gives the result: a Blob
// (or an OPFS File), or null when it went to a folder on disk.
'use strict';

const MiB = 1024 * 1024;
const COALESCE = 8 * MiB;      // output writes are gathered into parts of this size
const ZERO_LEN = 4 * MiB;      // holes are slices of one shared zero Blob of this size
const SMALL_GAP = 64 * 1024;   // holes shorter than this are stored as zeros (fewer parts)
let zeroBlob = null;

function fmtBytes(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + ' GB';
  if (n >= 1e6) return (n / 1e6).toFixed(1) + ' MB';
  return Math.round(n / 1e3) + ' kB';
}

// Gathers writes into COALESCE-sized parts; calls emit(offset, Blob) per part.
function coalescer(emit) {
  const buf = new Uint8Array(COALESCE);
  let start = 0, len = 0, end = 0; // buf holds [start, start+len); end = highest byte written
  return {
    get end() { return end; },
    write(offset, view) {
      if (offset < end) throw new Error('the archive wrote out of order (offset ' + offset + ' after ' + end + ')');
      const gap = offset - (start + len);
      if (len > 0 && gap > 0 && gap < SMALL_GAP && len + gap <= COALESCE) {
        buf.fill(0, len, len + gap); // a short hole inside the buffer: zeros, one part fewer
        len += gap;
      } else if (gap !== 0) { this.flush(); start = offset; }
      let p = 0;
      while (p < view.length) {
        const n = Math.min(view.length - p, COALESCE - len);
        buf.set(view.subarray(p, p + n), len);
        len += n; p += n;
        if (len === COALESCE) this.flush();
      }
      end = offset + view.length;
      if (len === 0) start = end;
    },
    flush() {
      if (len > 0) emit(start, new Blob([buf.subarray(0, len)]));
      start += len; len = 0;
    },
  };
}

// `n` zero bytes as references to one shared zero Blob.
function zeros(n) {
  const source = zeroBlob || (zeroBlob = new Blob([new Uint8Array(ZERO_LEN)]));
  const parts = [];
  while (n >= ZERO_LEN) { parts.push(source); n -= ZERO_LEN; }
  if (n > 0) parts.push(source.slice(0, n));
  return parts;
}

// Default: the file as a Blob of data parts and references to the shared zero Blob.
function blobSink() {
  const parts = [];
  let pos = 0, len = null;
  const c = coalescer((offset, blob) => {
    if (offset > pos) parts.push(...zeros(offset - pos));
    parts.push(blob);
    pos = offset + blob.size;
  });
  return {
    set_len(n) { len = n; },
    write(offset, view) { c.write(offset, view); },
    async finish() {
      c.flush();
      if (len !== null && len > pos) parts.push(...zeros(len - pos));
      return new Blob(parts, { type: 'application/octet-stream' });
    },
  };
}

// OPFS through a sync access handle (Firefox; Chromium only off file://): positioned writes,
// holes never written, the length set by truncate; the result is the OPFS file itself.
// Firefox downloads a file-backed Blob from disk, but copies any composite or memory-backed
// Blob into the parent process's RAM (measured: a 9 GiB sparse image as zero-Blob slices grew
// it by the bytes downloaded), so the whole image must be one OPFS file. Its quota counts the
// image's full length.
async function opfsSink(dir, name) {
  const fh = await dir.getFileHandle(name, { create: true });
  const h = await fh.createSyncAccessHandle();
  h.truncate(0);
  let len = null;
  const full = async () => {
    let free = '';
    try { const e = await navigator.storage.estimate(); free = ' (about ' + fmtBytes(e.quota - e.usage) + ' left)'; } catch (x) { /* unknown */ }
    return free;
  };
  const left = await full();
  const tooBig = (n) => new DOMException(name.replace(/^\d+-/, '') + ' is ' + fmtBytes(n) + ', more than this browser lets the page store' + left +
    '; restore this qube on its own once the other downloads have finished, or use Chromium or the qubes-rescue command', 'QuotaExceededError');
  return {
    set_len(n) {
      len = n;
      try { h.truncate(n); } catch (e) { throw tooBig(n); }
    },
    write(offset, view) {
      let p = 0;
      while (p < view.length) {
        let n = 0;
        try { n = h.write(view.subarray(p), { at: offset + p }); } catch (e) { throw tooBig(len || offset + view.length); }
        if (n <= 0) throw tooBig(len || offset + view.length);
        p += n;
      }
    },
    async finish() {
      if (len !== null && h.getSize() !== len) h.truncate(len);
      h.flush(); h.close();
      return await fh.getFile();
    },
    abort() { try { h.close(); } catch (e) { /* closed */ } dir.removeEntry(name).catch(() => {}); },
  };
}

// Chromium "Save to disk…": a folder the user picked; each file streams through a writable.
async function dirSink(dir, name) {
  const fh = await dir.getFileHandle(name, { create: true });
  const w = await fh.createWritable({ keepExistingData: false });
  const queue = [];
  let len = null;
  const c = coalescer((offset, blob) => queue.push({ offset, blob }));
  return {
    set_len(n) { len = n; },
    write(offset, view) { c.write(offset, view); },
    async drain() {
      while (queue.length) {
        const q = queue.shift();
        await w.write({ type: 'write', position: q.offset, data: q.blob });
      }
    },
    async finish() {
      c.flush();
      await this.drain();
      const size = len !== null ? len : c.end;
      await w.truncate(size);
      await w.close();
      return null;
    },
    abort() { w.abort().catch(() => {}); },
  };
}
