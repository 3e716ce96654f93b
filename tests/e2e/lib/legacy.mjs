// Formats 3 and 2 (issue 12): the backups the real tools made (tests/fixtures/made-v3/, by
// tests/make-fixtures-v3.sh) and what the page must download for them. Same contract as
// lib/manifest.mjs: <qube>-<file> byte-exact, dom0's home as dom0-home-<user>.tar (every
// entry checked); a template's whole folder comes as <qube>.tar and a link stored in a file's
// place (format 2's icon.png) as <qube>-icon.png.tar: those two only have to arrive, whole
// (the CLI's tests/legacy_cli.rs checks their contents file by file).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './common.mjs';
import { qubeDownloads } from './manifest.mjs';

export const LEGACY_DIR = join(REPO, 'tests', 'fixtures', 'made-v3');

export function legacyBackup(file) {
  const raw = JSON.parse(readFileSync(join(LEGACY_DIR, 'manifest.json'), 'utf8'));
  const b = raw.backups.find((x) => x.file === file);
  if (!b) throw new Error(`${file} not in ${LEGACY_DIR}/manifest.json`);
  return { ...b, path: join(LEGACY_DIR, b.file) };
}

export function legacyExpected(b) {
  const out = {};
  for (const q of b.qubes) {
    if (q.class === 'AdminVM') Object.assign(out, qubeDownloads(q));
    else if (q.files.some((f) => f.path === '.')) out[`${q.name}.tar`] = { kind: 'present' };
    else {
      for (const f of q.files) {
        const top = f.path.split('/')[0];
        // a folder stored in a file's place (`apps/`, `kernels/`) comes as its tar
        if (top !== f.path || f.type === 'dir') out[`${q.name}-${top}.tar`] = { kind: 'present' };
        else if (f.type === 'symlink') out[`${q.name}-${f.path}.tar`] = { kind: 'present' };
        else out[`${q.name}-${f.path}`] = { kind: 'file', qube: q.name, size: f.size, sha256: f.sha256, runs: f.runs };
      }
    }
  }
  return out;
}

/** Qubes' own format 3 test-suite backups (tests/fixtures/qubes-testsuite/<name>.{bin,json}). */
export function testsuiteBackup(name) {
  const dir = join(REPO, 'tests', 'fixtures', 'qubes-testsuite');
  const json = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8'));
  return { file: `${name}.bin`, path: join(dir, `${name}.bin`), passphrase: json.passphrase || 'qubes', json };
}

/** What the page must download for a test-suite backup: every file the json hashes, byte-exact
 *  (`vm-templates/…` qubes are whole folders: <qube>.tar; a folder of files, `apps.templates/`,
 *  comes as <qube>-apps.templates.tar; links as <qube>-<name>.tar; dom0's home as its tar). */
export function testsuiteExpected(b) {
  const out = {};
  for (const q of b.json.qubes) {
    const folder = (q.source_dir || '').startsWith('vm-templates/');
    if (q.name === 'dom0') { out[`dom0-home-${q['backup-path'].split('/').pop()}.tar`] = { kind: 'present' }; continue; }
    if (folder) { out[`${q.name}.tar`] = { kind: 'present' }; continue; }
    for (const f of q.files) {
      const top = f.path.split('/')[0];
      if (top !== f.path) out[`${q.name}-${top}.tar`] = { kind: 'present' };
      else if (f.symlink) out[`${q.name}-${f.path}.tar`] = { kind: 'present' };
      else if (f.sha256) out[`${q.name}-${f.path}`] = { kind: 'file', qube: q.name, size: f.size, sha256: f.sha256 };
    }
  }
  return out;
}
