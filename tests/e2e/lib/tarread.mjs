// Reads a (small) tar file fully: ustar/pax/GNU long names. Used to check the
// dom0-home-<user>.tar download entry by entry against the manifest.
import { createHash } from 'node:crypto';

function cstr(b, s, n) { const x = b.subarray(s, s + n); const z = x.indexOf(0); return x.subarray(0, z < 0 ? n : z).toString('utf8'); }
function num(b, s, n) {
  if (b[s] & 0x80) { let v = 0n; for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(b[s + i] & (i ? 0xff : 0x7f)); return Number(v); }
  const t = cstr(b, s, n).trim(); return t ? parseInt(t, 8) : 0;
}
function pax(text) {
  const o = {}; let i = 0;
  while (i < text.length) {
    const sp = text.indexOf(' ', i); if (sp < 0) break;
    const len = parseInt(text.slice(i, sp), 10); if (!(len > 0)) break;
    const rec = text.slice(sp + 1, i + len - 1); const eq = rec.indexOf('=');
    if (eq > 0) o[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return o;
}
const TYPES = { '0': 'file', '\0': 'file', '7': 'file', '5': 'dir', '2': 'symlink', '1': 'hardlink' };

export function readTar(buf) {
  const out = [];
  let off = 0, ext = {}, longName = null, longLink = null;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((x) => x === 0)) { off += 512; continue; }
    const t = String.fromCharCode(h[156]);
    let size = num(h, 124, 12);
    const data = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (t === 'x') { Object.assign(ext, pax(data.toString('utf8'))); continue; }
    if (t === 'g') continue;
    if (t === 'L') { longName = cstr(data, 0, data.length); continue; }
    if (t === 'K') { longLink = cstr(data, 0, data.length); continue; }
    let name = cstr(h, 0, 100);
    const prefix = cstr(h, 345, 155);
    if (cstr(h, 257, 5) === 'ustar' && prefix) name = `${prefix}/${name}`;
    if (longName) name = longName;
    if (ext.path) name = ext.path;
    let link = longLink || ext.linkpath || cstr(h, 157, 100);
    const type = TYPES[t] || `type-${t}`;
    const e = { name: name.replace(/^\.\//, '').replace(/\/$/, ''), type, mode: (num(h, 100, 8) & 0o7777).toString(8).padStart(4, '0') };
    if (type === 'file') { e.size = size; e.sha256 = createHash('sha256').update(data).digest('hex'); }
    if (type === 'symlink' || type === 'hardlink') e.target = link;
    out.push(e);
    ext = {}; longName = null; longLink = null;
  }
  return out;
}
