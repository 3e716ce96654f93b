// Uses: Bridge (bridge.js).
// How a worker reads a Blob (the backup File, or a restored image). Most browsers let a worker
// read a Blob itself. WebKit on file:// (an opaque origin) does not: every Blob read inside a
// worker fails with NotReadableError, while the page (the main thread) reads the same Blob fine.
// The page probes which applies once at start (probeWorkerReads in ui.js) and tells each worker
// at init (Reads.setup). In the "page" mode a worker asks the page for every slice (the request
// `read {blob, start, end}` → ArrayBuffer, transferred) and never holds more than it asked for.
//
// The core reads synchronously (a Blob's slice() through FileReaderSync: BlobSource in
// src/wasm/mod.rs, ImageSource in src/wasm/browse.rs), and a worker cannot wait for the page
// synchronously (no SharedArrayBuffer or Atomics on file://). So in the "page" mode the core gets
// a PagedBlob in the Blob's place, and FileReaderSync is replaced by a reader of PagedBlob slices:
//   - Open (coordinator): a read of a page not fetched yet fails the core's call; `retrying`
//     fetches that page from the page and runs the call again, until it needs nothing more. The
//     pages stay until the call has succeeded, at most MAX_OPEN bytes (the outer index reads 64 KiB
//     around each member's header: about 128 KiB per member). Each run reads from the start, so
//     reads at a steady stride (equal-sized members, one after the other) are fetched AHEAD
//     strides ahead: far fewer runs.
//   - Browse: the restored image is read in whole before the core opens it, in PIECE slices,
//     keeping only the pages that are not all zeros (holes cost nothing), at most MAX_BROWSE bytes.
// Defines: Reads {setup, readSlice, source, retrying, loadImage}.
'use strict';

const Reads = (() => {
  const MiB = 1024 * 1024;
  const PAGE = 64 * 1024;         // a PagedBlob holds aligned pages of this size
  const PIECE = 4 * MiB;          // an image is fetched for browsing in slices of this size
  const MAX_OPEN = 512 * MiB;     // most bytes Open keeps fetched (a backup of ~4000 members)
  const AHEAD = 32;               // strided reads fetched ahead at once (4 MiB for 64 KiB reads)
  const MAX_BROWSE = 1024 * MiB;  // most image data (non-zero pages) kept for browsing
  let page = null;                // Bridge to the page in the "page" mode; null: this worker reads Blobs itself

  function setup(bridge, workerReads) {
    page = workerReads ? null : bridge;
    if (page) self.FileReaderSync = PagedReader; // the only reader the core constructs
  }

  // `[start, end)` of a Blob as an ArrayBuffer, read here or by the page.
  async function readSlice(blob, start, end) {
    if (!page) return blob.slice(start, end).arrayBuffer();
    try {
      return await page.call('read', { blob, start, end });
    } catch (e) {
      // The page's read failed ({class, message, name}): rethrown as what the read threw there,
      // so the core words it like any failed read (common.js toErr → page_error).
      throw Object.assign(new Error(e.message), { name: e.name || 'NotReadableError' });
    }
  }

  // What the core reads synchronously: the Blob itself, or a PagedBlob over it.
  function source(blob, max) {
    return page ? new PagedBlob(blob, max || MAX_OPEN) : blob;
  }

  // A Blob stand-in holding fetched pages; `complete`: every page not held is zeros.
  class PagedBlob {
    constructor(blob, max) {
      this.blob = blob;
      this.size = blob.size;
      this.max = max;
      this.pages = new Map();       // page number → Uint8Array (PAGE bytes, less for the last page)
      this.held = 0;
      this.complete = false;
      this.missing = null;          // {start, end}: the last read that failed for want of pages
      this.lastMiss = -1;           // where the miss before it started, and the stride between them
      this.lastStride = 0;
      this.nextAfterAhead = -1;     // where the read after the last ones fetched ahead would start
      this.counts = { attempts: 0, fetches: 0, bytes: 0 }; // for measurements (qubesRescue.stats)
    }

    slice(start, end) {
      return { paged: this, start: Math.min(start, this.size), end: Math.min(end, this.size) };
    }

    // The bytes [start, end), or a throw that records the pages still to fetch.
    bytes(start, end) {
      const out = new Uint8Array(Math.max(0, end - start));
      const first = Math.floor(start / PAGE), last = Math.floor((end - 1) / PAGE);
      for (let p = first; p <= last && end > start; p++) {
        const data = this.pages.get(p);
        if (!data) {
          if (this.complete) continue; // a page of zeros
          this.missing = { start, end };
          throw new Error('not fetched yet');
        }
        const from = Math.max(start, p * PAGE), to = Math.min(end, p * PAGE + data.length);
        out.set(data.subarray(from - p * PAGE, to - p * PAGE), from - start);
      }
      return out.buffer;
    }

    // Fetches [start, end) (page-aligned) from the page; keeps its pages (only the non-zero
    // ones with `dropZeros`).
    async fetch(start, end, dropZeros) {
      const buf = await readSlice(this.blob, start, end);
      this.counts.fetches++;
      this.counts.bytes += buf.byteLength;
      if (buf.byteLength !== end - start) {
        throw Object.assign(new Error('read ' + buf.byteLength + ' of ' + (end - start) + ' bytes; it changed since it was picked'), { name: 'NotReadableError' });
      }
      for (let at = 0; at < buf.byteLength; at += PAGE) {
        const p = (start + at) / PAGE;
        const data = new Uint8Array(buf, at, Math.min(PAGE, buf.byteLength - at));
        if (dropZeros && allZero(data)) continue;
        if (this.pages.has(p)) continue;
        if (this.held + data.length > this.max) throw { class: 'unsupported', message: tooBig(this.max, dropZeros) };
        this.pages.set(p, dropZeros ? data.slice() : data); // a copy lets the rest of the slice go
        this.held += data.length;
      }
    }

    // Fetches the pages the last failed read lacked and, when it came as far after the miss
    // before it as that one after its own (or right after the reads fetched ahead last time),
    // the same read AHEAD strides further. A wrong guess costs only the pages it fetched.
    async fetchMissing() {
      const { start, end } = this.missing;
      this.missing = null;
      const stride = start === this.nextAfterAhead ? this.lastStride : start - this.lastMiss;
      const reads = [[start, end]];
      if (stride > 0 && stride === this.lastStride) {
        for (let i = 1; i <= AHEAD; i++) reads.push([start + i * stride, end + i * stride]);
        this.nextAfterAhead = start + (AHEAD + 1) * stride;
      }
      this.lastMiss = start;
      this.lastStride = stride;
      const planned = new Set();
      const spans = reads.map(([a, b]) => this.absent(a, Math.min(b, this.size), planned)).filter((x) => x);
      if (!spans.length) throw { class: 'io', message: 'internal: a read failed for pages already fetched' }; // no endless retry
      await Promise.all(spans.map(([a, b]) => this.fetch(a, b, false)));
    }

    // The page-aligned span from the first to the last page of [start, end) neither held nor
    // `planned` (then planned too), or null.
    absent(start, end, planned) {
      let first = -1, last = -1;
      for (let p = Math.floor(start / PAGE); p * PAGE < end; p++) {
        if (this.pages.has(p) || planned.has(p)) continue;
        if (first < 0) first = p;
        last = p;
      }
      for (let p = first; p >= 0 && p <= last; p++) planned.add(p);
      return first < 0 ? null : [first * PAGE, Math.min((last + 1) * PAGE, this.size)];
    }
  }

  function tooBig(max, browsing) {
    const what = browsing ? 'this volume holds more than ' + Math.round(max / MiB) + ' MiB of data' :
      'this backup has more members than fit in ' + Math.round(max / MiB) + ' MiB';
    return 'this browser cannot read files inside its workers here, so the page keeps what it reads in memory, and ' + what +
      '; use Chromium or Firefox, or the qubes-rescue command';
  }

  // Stands in for FileReaderSync in the "page" mode: the core reads only PagedBlob slices then.
  class PagedReader {
    readAsArrayBuffer(slice) { return slice.paged.bytes(slice.start, slice.end); }
  }

  function allZero(b) {
    const w = new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
    for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
    for (let i = w.length << 2; i < b.length; i++) if (b[i] !== 0) return false;
    return true;
  }

  // Runs `attempt` (which calls the core on `src`) until it succeeded without needing a page
  // that was not fetched yet; a result reached despite such a read (the core may treat a failed
  // read as "not there") is freed and the attempt run again.
  async function retrying(src, attempt) {
    for (;;) {
      if (src instanceof PagedBlob) { src.missing = null; src.counts.attempts++; }
      let result, error = null;
      try { result = await attempt(); } catch (e) { error = e; }
      if (!(src instanceof PagedBlob) || !src.missing) {
        if (error) throw error;
        return result;
      }
      if (result && typeof result.free === 'function') result.free();
      await src.fetchMissing();
    }
  }

  // A restored image for the browse worker: the Blob itself, or a complete PagedBlob of its
  // non-zero pages.
  async function loadImage(blob) {
    if (!page) return blob;
    const src = new PagedBlob(blob, MAX_BROWSE);
    for (let at = 0; at < src.size; at += PIECE) await src.fetch(at, Math.min(at + PIECE, src.size), true);
    src.complete = true;
    return src;
  }

  return { setup, readSlice, source, retrying, loadImage };
})();
