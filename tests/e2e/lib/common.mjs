// Shared helpers for the E2E tests: paths, streaming hashes, the outer-tar
// parser used to tamper with fixtures, and small waiting utilities.
import { createHash } from 'node:crypto';
import { createReadStream, openSync, readSync, closeSync, fstatSync, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(E2E_DIR, '..', '..');
export const PAGE = resolve(process.env.QR_PAGE || join(REPO, 'dist', 'qubes-rescue.html'));
export const PAGE_URL = pathToFileURL(PAGE).href;
export const FIXTURES = resolve(process.env.QR_FIXTURES || join(REPO, 'tests', 'fixtures', 'made'));
export const MANIFEST = resolve(process.env.QR_MANIFEST || join(FIXTURES, 'manifest.json'));
/** Where downloads and temporary copies go (big: the sparse fixture is > 8 GiB). */
export const WORK_ROOT = process.env.QR_E2E_TMP || tmpdir();

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function tempDir(prefix) {
  return mkdtemp(join(WORK_ROOT, `qr-e2e-${prefix}-`));
}
export async function rmrf(p) {
  if (p) await rm(p, { recursive: true, force: true, maxRetries: 5 });
}

/** sha256 + size of a file, streamed (never holds the file in memory). */
export function sha256File(path) {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    let size = 0;
    createReadStream(path, { highWaterMark: 8 << 20 })
      .on('data', (b) => { h.update(b); size += b.length; })
      .on('error', rej)
      .on('end', () => res({ sha256: h.digest('hex'), size }));
  });
}

/**
 * sha256 + size of a file, plus its data runs as the fixture manifest defines them (maximal runs
 * of 512-byte blocks that are not all zero; a final partial block counts as data), each with the
 * sha256 of its bytes. Streamed: a 9 GiB sparse image is checked without holding it in memory.
 */
export function digestFile(path) {
  return new Promise((res, rej) => {
    const whole = createHash('sha256');
    const Z = Buffer.alloc(65536);
    const Z512 = Z.subarray(0, 512);
    const runs = [];
    let cur = null; // { offset, end, h }
    let pending = Buffer.alloc(0);
    let pos = 0; // file offset of pending[0]
    let size = 0;
    const close = () => { if (cur) { runs.push({ offset: cur.offset, length: cur.end - cur.offset, sha256: cur.h.digest('hex') }); cur = null; } };
    const data = (buf, from, to) => { // buf[from, to) is data at file offset pos + from
      if (from === to) return;
      if (!cur || cur.end !== pos + from) { close(); cur = { offset: pos + from, end: pos + from, h: createHash('sha256') }; }
      cur.h.update(buf.subarray(from, to));
      cur.end = pos + to;
    };
    createReadStream(path, { highWaterMark: 8 << 20 })
      .on('data', (b) => {
        whole.update(b); size += b.length;
        const buf = pending.length ? Buffer.concat([pending, b]) : b;
        const n = buf.length - (buf.length % 512);
        let i = 0, span = -1;
        while (i < n) {
          if (span < 0 && i + 65536 <= n && buf.subarray(i, i + 65536).equals(Z)) { close(); i += 65536; continue; }
          const zero = buf.subarray(i, i + 512).equals(Z512);
          if (!zero && span < 0) span = i;
          if (zero && span >= 0) { data(buf, span, i); span = -1; }
          if (zero) close();
          i += 512;
        }
        if (span >= 0) data(buf, span, n);
        pending = Buffer.from(buf.subarray(n));
        pos += n;
      })
      .on('error', rej)
      .on('end', () => {
        if (pending.length) data(pending, 0, pending.length); // a final partial block is data
        close();
        res({ sha256: whole.digest('hex'), size, runs });
      });
  });
}

/** Poll fn() until it returns a truthy value; throws with describe() on timeout. */
export async function waitFor(fn, { timeout = 30000, interval = 100, describe = () => '' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms${describe ? ': ' + (await describe()) : ''}`);
    await sleep(interval);
  }
}

// ---------------------------------------------------------------- outer tar

function cstr(buf, start, len) {
  const s = buf.subarray(start, start + len);
  const z = s.indexOf(0);
  return s.subarray(0, z < 0 ? s.length : z).toString('latin1');
}
function octal(buf, start, len) {
  if (buf[start] & 0x80) { // GNU base-256
    let v = 0n;
    for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(buf[start + i] & (i === 0 ? 0x7f : 0xff));
    return Number(v);
  }
  const s = cstr(buf, start, len).trim();
  return s ? parseInt(s, 8) : 0;
}
function parsePax(text) {
  const out = {};
  let i = 0;
  while (i < text.length) {
    const sp = text.indexOf(' ', i);
    if (sp < 0) break;
    const len = parseInt(text.slice(i, sp), 10);
    if (!(len > 0)) break;
    const rec = text.slice(sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/**
 * List the members of a Qubes backup's outer layer (concatenated pax tars,
 * zero blocks skipped): [{ name, headerOffset, dataOffset, size }].
 * Reads headers only (seeks over data), so it works on huge files.
 */
export function listOuterMembers(path) {
  const fd = openSync(path, 'r');
  try {
    const total = fstatSync(fd).size;
    const hdr = Buffer.alloc(512);
    const members = [];
    let off = 0;
    let pax = null;
    while (off + 512 <= total) {
      readSync(fd, hdr, 0, 512, off);
      if (hdr.every((b) => b === 0)) { off += 512; continue; }
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : hdr[i];
      if (sum !== octal(hdr, 148, 8)) throw new Error(`bad tar checksum at offset ${off} in ${path}`);
      const type = String.fromCharCode(hdr[156] || 48);
      let size = octal(hdr, 124, 12);
      const dataOffset = off + 512;
      if (type === 'x' || type === 'g') {
        const b = Buffer.alloc(size);
        readSync(fd, b, 0, size, dataOffset);
        if (type === 'x') pax = parsePax(b.toString('utf8'));
      } else {
        let name = cstr(hdr, 0, 100);
        const prefix = cstr(hdr, 345, 155);
        if (cstr(hdr, 257, 6) === 'ustar' && prefix) name = `${prefix}/${name}`;
        if (pax?.path) name = pax.path;
        if (pax?.size) size = parseInt(pax.size, 10);
        pax = null;
        members.push({ name, type, headerOffset: off, dataOffset, size });
      }
      off = dataOffset + Math.ceil(size / 512) * 512;
    }
    return members;
  } finally {
    closeSync(fd);
  }
}

/**
 * Offset (in the backup file) of a byte inside the AES-CTR ciphertext of a
 * scrypt container member: the container is 96 bytes of header, then the
 * ciphertext, then a 32-byte HMAC.
 */
export function ciphertextByteOffset(member, where = 0.5) {
  const ctLen = member.size - 96 - 32;
  if (ctLen <= 0) throw new Error(`${member.name} has no ciphertext`);
  return member.dataOffset + 96 + Math.min(ctLen - 1, Math.floor(ctLen * where));
}

export { existsSync, pathToFileURL };

/** A script body (for Playwright's evaluate and WebDriver's executeScript) that records every
 *  data-state/data-error transition of `status` in `window.__e2eStates`, with a timestamp: also
 *  transitions within one task, rebuilt from the mutation records' old values. Installs once
 *  per page load, waiting for `status` if the page has not made it yet; returns the log length. */
export const STATE_RECORDER = `
  const log = (window.__e2eStates = window.__e2eStates || []);
  const attach = () => {
    const el = document.querySelector('[data-testid="status"]');
    if (!el) return false;
    const push = (state, error) => {
      const s = { t: performance.now(), state, error, text: (el.textContent || '').trim().slice(0, 300) };
      const last = log[log.length - 1];
      if (!last || last.state !== s.state || last.error !== s.error) log.push(s);
    };
    push(el.getAttribute('data-state'), el.getAttribute('data-error'));
    new MutationObserver((records) => {
      const states = records.filter((r) => r.attributeName === 'data-state');
      // each record's oldValue is the value before it: the values between are the next oldValues
      for (let i = 1; i < states.length; i++) push(states[i].oldValue, null);
      push(el.getAttribute('data-state'), el.getAttribute('data-error'));
    }).observe(el, { attributes: true, attributeOldValue: true, attributeFilter: ['data-state', 'data-error'] });
    return true;
  };
  if (!window.__e2eObserving) {
    window.__e2eObserving = true;
    if (!attach()) {
      const mo = new MutationObserver(() => { if (attach()) mo.disconnect(); });
      mo.observe(document.documentElement, { childList: true, subtree: true });
    }
  }
  return log.length;`;

/** How much more of the machine's memory is in use (MemTotal − MemAvailable) at the peak of a
 *  run than at its start, sampled every `intervalMs`: what a restore costs in whichever of the
 *  engine's processes it lands. stop() → bytes. */
export function memoryProbe(intervalMs = 200) {
  const used = () => {
    const m = readFileSync('/proc/meminfo', 'utf8');
    const kb = (k) => Number(m.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm'))[1]) * 1024;
    return kb('MemTotal') - kb('MemAvailable');
  };
  const base = used();
  let peak = base;
  const t = setInterval(() => { peak = Math.max(peak, used()); }, intervalMs);
  return { stop() { clearInterval(t); peak = Math.max(peak, used()); return peak - base; } };
}

/** The SHA-256 the page's footer must show: of its code as the file holds it (the wasm, then
 *  every inlined JS source in the order the page holds them). */
export function pageCodeSha256() {
  const html = readFileSync(PAGE, 'utf8');
  const wasm = html.match(/<script type="application\/octet-stream" id="wasm-b64">([^<]*)<\/script>/)[1];
  const code = createHash('sha256').update(Buffer.from(wasm, 'base64'));
  for (const m of html.matchAll(/<script(?: type="text\/plain")? id="src-[a-z-]+">([\s\S]*?)<\/script>/g)) code.update(m[1]);
  return code.digest('hex');
}
