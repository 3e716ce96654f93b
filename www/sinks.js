// Uses: fmtBytes (fmt.js).
// Output sinks, shared by the coordinator (restored files) and the browse worker (files and
// folders taken out of a restored image). A sink receives set_len(n) (optional) and
// write(offset, bytes) with ascending offsets; `bytes` may be a view into wasm memory, valid
// only during the call (it is copied or written at once). finish() gives the result: a Blob
// (or an OPFS File), or null when it went to a folder on disk.
// The archive output (one .tar for a whole restore) takes each file from a run sink (its data
// runs, no zeros) and puts the core's headers around it (src/output/archive.rs).
// Defines: blobSink, opfsSink, dirSink, runSink, opfsRunSink, archiveWriter, opfsFolder, clearFolder.
'use strict';

const { blobSink, opfsSink, dirSink, runSink, opfsRunSink, archiveWriter, opfsFolder, clearFolder } = (() => {
  const MiB = 1024 * 1024;
  const COALESCE = 8 * MiB;      // output writes are gathered into parts of this size
  const ZERO_LEN = 4 * MiB;      // holes are slices of one shared zero Blob of this size
  const SMALL_GAP = 64 * 1024;   // holes shorter than this are stored as zeros (fewer parts)
  let zeroBlob = null;

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
      '; choose "One archive", which stores only the data of sparse volumes, or restore this qube on its own once the other downloads have finished, or use the qubes-rescue command', 'QuotaExceededError');
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
      abort: () => discard(h, dir, name),
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

  // A file as its data runs for the archive: finish() gives {size, runs: [offset, length, …],
  // data: Blob of the runs' bytes, one after another}. Memory ≈ data (Blob parts).
  function runSink() {
    const parts = [], runs = [];
    let len = null;
    const c = coalescer((offset, blob) => {
      addRun(runs, offset, blob.size);
      parts.push(blob);
    });
    return {
      set_len(n) { len = n; },
      write(offset, view) { c.write(offset, view); },
      async finish() {
        c.flush();
        const size = len !== null ? len : c.end;
        // image(): the whole file (zeros in the holes), for Browse; parts are references.
        const image = () => {
          const all = [];
          let pos = 0;
          for (let i = 0, p = 0; i < runs.length; i += 2) {
            if (runs[i] > pos) all.push(...zeros(runs[i] - pos));
            for (let left = runs[i + 1]; left > 0; p++) { all.push(parts[p]); left -= parts[p].size; }
            pos = runs[i] + runs[i + 1];
          }
          if (size > pos) all.push(...zeros(size - pos));
          return new Blob(all);
        };
        return { size, runs, data: new Blob(parts), image };
      },
    };
  }

  // The same in an OPFS file (Firefox): the runs' bytes one after another, so the quota counts
  // the data, not the image's length. finish() gives {size, runs, handle: its OPFS sync handle,
  // stored, done()}: archiveWriter copies it, then done() removes it.
  async function opfsRunSink(dir, name) {
    const fh = await dir.getFileHandle(name, { create: true });
    const h = await fh.createSyncAccessHandle();
    h.truncate(0);
    const runs = [];
    let len = null, pos = 0, end = 0;
    return {
      set_len(n) { len = n; },
      write(offset, view) {
        if (offset < end) throw new Error('the archive wrote out of order (offset ' + offset + ' after ' + end + ')');
        addRun(runs, offset, view.length);
        writeAll(h, view, pos, name);
        pos += view.length;
        end = offset + view.length;
      },
      async finish() {
        h.flush();
        return { size: len !== null ? len : end, runs, handle: h, stored: pos, done: () => discard(h, dir, name) };
      },
      abort: () => discard(h, dir, name),
    };
  }

  // Appends the run (offset, n) to a flat [offset, length, …] list, merged with the last one
  // when it continues it.
  function addRun(runs, offset, n) {
    const k = runs.length;
    if (k && runs[k - 2] + runs[k - 1] === offset) runs[k - 1] += n; else runs.push(offset, n);
  }

  // Closes an OPFS file's sync handle and removes the file (still downloading: left alone).
  function discard(h, dir, name) {
    try { h.close(); } catch (e) { /* closed */ }
    dir.removeEntry(name).catch(() => {});
  }

  function writeAll(h, view, at, name) {
    let p = 0;
    while (p < view.length) {
      let n = 0;
      try { n = h.write(view.subarray(p), { at: at + p }); } catch (e) { n = 0; }
      if (n <= 0) throw new DOMException('the browser refused to store more of ' + name + ' (about ' + fmtBytes(at + p) + ' stored)', 'QuotaExceededError');
      p += n;
    }
  }

  // One tar for a whole restore. add(member, out) appends a file: the core's member
  // {header, pieces, padding} (src/wasm/archive.rs) around the data of `out` (a runSink's
  // {data: Blob} or an opfsRunSink's {handle}); finish(end) gives the archive: a Blob of parts
  // (memory ≈ the files' data), or, with `dir` (OPFS, Firefox), one file written in order, which
  // the browser downloads from disk.
  async function archiveWriter(dir, name) {
    // put(x): x is bytes, or (only where `slices`) a Blob slice of the file's data
    const each = async (member, out, put, slices) => {
      put(member.header);
      const p = member.pieces;
      for (let i = 0; i < p.length; i += 3) {
        if (p[i] === 0) put(new Uint8Array(p[i + 1]));
        else if (slices && !out.handle) put(out.data.slice(p[i + 1], p[i + 2]));
        else await copyData(out, p[i + 1], p[i + 2], put);
      }
      put(new Uint8Array(member.padding));
    };
    if (!dir) {
      const parts = [];
      return {
        async add(member, out) { await each(member, out, (x) => parts.push(x instanceof Blob ? x : x.slice()), true); },
        async finish(end) { parts.push(end); return new Blob(parts, { type: 'application/x-tar' }); },
        abort() { parts.length = 0; },
      };
    }
    const fh = await dir.getFileHandle(name, { create: true });
    const h = await fh.createSyncAccessHandle();
    h.truncate(0);
    let pos = 0;
    const put = (view) => { writeAll(h, view, pos, name); pos += view.length; };
    return {
      async add(member, out) {
        await each(member, out, put, false);
        if (out.done) out.done();
      },
      async finish(end) { put(end); h.flush(); h.close(); return await fh.getFile(); },
      abort: () => discard(h, dir, name),
    };
  }

  // Bytes from..to of a file's data, to `put`, read in COALESCE pieces (from its OPFS handle, or
  // its Blob).
  async function copyData(out, from, to, put) {
    const buf = new Uint8Array(Math.min(COALESCE, to - from));
    for (let at = from; at < to;) {
      const n = Math.min(buf.length, to - at);
      let got;
      if (out.handle) {
        got = out.handle.read(buf.subarray(0, n), { at });
        if (got <= 0) throw new Error('reading back a restored file failed at byte ' + at);
        put(buf.subarray(0, got));
      } else {
        got = n;
        put(new Uint8Array(await out.data.slice(at, at + n).arrayBuffer()));
      }
      at += got;
    }
  }

  // An emptied OPFS folder for opfsSink, if this browser allows sync access handles here
  // (Firefox; Chromium refuses OPFS on file://); null otherwise.
  async function opfsFolder(name) {
    try {
      if (!self.navigator.storage || !navigator.storage.getDirectory) return null;
      if (typeof FileSystemFileHandle === 'undefined' || !FileSystemFileHandle.prototype.createSyncAccessHandle) return null;
      const root = await navigator.storage.getDirectory();
      const dir = await root.getDirectoryHandle(name, { create: true });
      await clearFolder(dir);
      return dir;
    } catch (e) {
      return null;
    }
  }

  async function clearFolder(dir) {
    const names = [];
    for await (const name of dir.keys()) names.push(name);
    for (const name of names) {
      try { await dir.removeEntry(name); } catch (e) { /* still being downloaded: leave it */ }
    }
  }

  return { blobSink, opfsSink, dirSink, runSink, opfsRunSink, archiveWriter, opfsFolder, clearFolder };
})();
