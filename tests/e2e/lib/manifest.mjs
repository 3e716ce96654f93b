// Reads tests/fixtures/made/manifest.json (schema 1, written by tests/make-fixtures.sh) and
// turns each backup into what the page must produce: one download per recovered file,
// named as in the test contract.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MANIFEST } from './common.mjs';

let cache = null;
export function loadManifest() {
  if (cache) return cache;
  if (!existsSync(MANIFEST)) throw new Error(`fixture manifest missing: ${MANIFEST} (run tests/make-fixtures.sh)`);
  const raw = JSON.parse(readFileSync(MANIFEST, 'utf8'));
  cache = raw.backups.map((b) => ({ ...b, path: join(dirname(MANIFEST), b.file), covers: new Set(b.covers || []) }));
  return cache;
}
export function manifestAvailable() { return existsSync(MANIFEST); }

export function byFile(file) {
  const b = loadManifest().find((x) => x.file === file);
  if (!b) throw new Error(`${file} not in ${MANIFEST}`);
  return b;
}

/** The first backup whose `covers` has every given tag (or that satisfies a predicate). */
export function pick(...tags) {
  const pred = typeof tags[0] === 'function' ? tags[0] : (x) => tags.every((t) => x.covers.has(t));
  const b = loadManifest().find(pred);
  if (!b) throw new Error(`no fixture covering [${tags}] in ${MANIFEST}; have: ` +
    loadManifest().map((x) => `${x.file}[${[...x.covers]}]`).join(', '));
  return b;
}

export const hasRootImg = (b) => b.qubes.some((q) => q.files.some((f) => f.role === 'volume' && f.path === 'root.img'));

/** Download names of one qube, per the contract: <qube>-private.img, -root.img, -firewall.xml,
 *  -notes.txt, and dom0-home-<user>.tar for dom0's home. */
export function qubeDownloads(q) {
  const out = {};
  if (q.user !== undefined || q.class === 'AdminVM') {
    out[`dom0-home-${q.user}.tar`] = { kind: 'home-tar', qube: q.name, user: q.user, entries: q.files.filter((f) => f.role === 'home') };
    return out;
  }
  for (const f of q.files) {
    if (f.role === 'empty') continue; // the placeholder of a qube with no data: nothing to download
    out[`${q.name}-${f.path}`] = { kind: 'file', qube: q.name, size: f.size, sha256: f.sha256, runs: f.runs };
  }
  return out;
}

/** Expected downloads for the given qube names (all qubes with data when null). */
export function expectedFiles(backup, qubes = null) {
  const out = {};
  for (const q of backup.qubes) if (!qubes || qubes.includes(q.name)) Object.assign(out, qubeDownloads(q));
  return out;
}
export const qubeNames = (backup) => backup.qubes.map((q) => q.name);

/** The backups every engine restores as one archive (issue 11): [what, predicate]. */
export const ARCHIVE_CASES = [
  ['every qube of a gzip backup (dom0 home included)', (x) => x.file === 'gzip-pax.bin'],
  ['a 20 GiB sparse volume (20 MiB of data)', (x) => x.covers.has('huge')],
  ['a 2 GiB volume without holes', (x) => x.covers.has('dense')],
  ['the 9 GiB sparse volumes with data past 8 GiB (PAX and GNU old sparse)', (x) => x.covers.has('big-offsets')],
];
