// Crafting hostile backups from a good fixture: a tiny ustar writer and the real `scrypt` CLI
// (Tarsnap, >= 1.3) to encrypt a replacement chunk exactly as Qubes does.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { open as fsOpen } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { listOuterMembers } from './common.mjs';

export function ustarHeader(name, size, type = '0', mode = 0o644) {
  const h = Buffer.alloc(512);
  if (Buffer.byteLength(name) > 100) throw new Error(`name too long for ustar: ${name}`);
  h.write(name, 0, 100, 'utf8');
  h.write(mode.toString(8).padStart(7, '0') + '\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  h.write('14000000000\0', 136, 'latin1');
  h.fill(0x20, 148, 156);
  h.write(type, 156, 'latin1');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  let sum = 0;
  for (const x of h) sum += x;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}
const pad = (n) => Buffer.alloc((512 - (n % 512)) % 512);

/** A tar of [{ name, data?, type?, mode? }] (data: Buffer/string for files). */
export function makeTar(entries) {
  const parts = [];
  for (const e of entries) {
    const data = e.type === '5' ? Buffer.alloc(0) : Buffer.from(e.data ?? '');
    parts.push(ustarHeader(e.name, data.length, e.type || '0', e.mode ?? (e.type === '5' ? 0o755 : 0o644)), data, pad(data.length));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** scrypt-encrypt `plain` with the scrypt CLI (fast test parameters). */
export function scryptEnc(plain, passphrase, dir) {
  const inp = join(dir, 'plain'), out = join(dir, 'plain.enc');
  writeFileSync(inp, plain);
  const r = spawnSync('scrypt', ['enc', '--passphrase', 'env:QR_CRAFT_PASS', '--logN', '10', '-r', '8', '-p', '1', inp, out],
    { env: { ...process.env, QR_CRAFT_PASS: passphrase }, encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`scrypt enc failed (the Tarsnap scrypt CLI >= 1.3 is needed): ${r.error || r.stderr}`);
  return readFileSync(out);
}

/** One outer member as Qubes appends it: its own little tar archive. */
export function outerMember(name, data) {
  return makeTar([{ name, data }]);
}

/** scrypt-decrypt a container with the scrypt CLI (the inverse of scryptEnc, any parameters). */
export function scryptDec(enc, passphrase, dir) {
  const inp = join(dir, 'cipher.enc'), out = join(dir, 'cipher.plain');
  writeFileSync(inp, enc);
  const r = spawnSync('scrypt', ['dec', '--passphrase', 'env:QR_CRAFT_PASS', inp, out],
    { env: { ...process.env, QR_CRAFT_PASS: passphrase }, encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`scrypt dec failed: ${r.error || r.stderr}`);
  return readFileSync(out);
}

/**
 * A copy of a backup's bytes with its outer members edited. `edit` gets the members in file order,
 * [{ name, data }] (data: the member's bytes), and returns the list to write (edited in place, or a
 * new list: members may be renamed, given other data, reordered, dropped or added). A member whose
 * object is returned unchanged keeps its original bytes (its pax header, ustar header and padding);
 * any other is written as its own little ustar archive, the way Qubes appends each member.
 * Reads the whole file: meant for the small fixtures.
 */
export function rebuildBackup(path, edit) {
  const whole = readFileSync(path);
  const members = listOuterMembers(path);
  let prevEnd = 0;
  const entries = members.map((m) => {
    const end = m.dataOffset + Math.ceil(m.size / 512) * 512;
    const e = { name: m.name, data: whole.subarray(m.dataOffset, m.dataOffset + m.size) };
    Object.defineProperty(e, 'original', { value: { name: e.name, data: e.data, bytes: whole.subarray(prevEnd, end) } });
    prevEnd = end;
    return e;
  });
  const tail = whole.subarray(prevEnd);
  const out = [];
  for (const e of edit(entries)) {
    const o = e.original;
    if (o && o.name === e.name && o.data === e.data) out.push(o.bytes);
    else out.push(Buffer.alloc(1024), outerMember(e.name, e.data));
  }
  out.push(tail.length ? tail : Buffer.alloc(1024));
  return Buffer.concat(out);
}

/** Rewrites, in the file at `path`, the logN byte of the scrypt container whose data starts at
 *  `dataOffset` (an outer member's), keeping its header checksum valid: only the parameter caps
 *  can refuse it then. */
export async function setScryptLogN(path, dataOffset, logN) {
  const fh = await fsOpen(path, 'r+');
  try {
    const hdr = Buffer.alloc(64);
    await fh.read(hdr, 0, 64, dataOffset);
    hdr[7] = logN;
    createHash('sha256').update(hdr.subarray(0, 48)).digest().copy(hdr, 48, 0, 16);
    await fh.write(hdr, 0, 64, dataOffset);
  } finally {
    await fh.close();
  }
}
