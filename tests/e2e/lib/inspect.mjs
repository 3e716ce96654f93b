import { readFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { digestFile } from './common.mjs';
import { readTar } from './tarread.mjs';

/** sha256 and size of a downloaded file (streamed); for .tar files also the entries. */
export async function inspectDownload(path, name) {
  const r = await digestFile(path);
  if (name.endsWith('.tar')) {
    if (r.size > 512 << 20) r.tarError = 'too big to inspect';
    else {
      try { r.tar = readTar(await readFile(path)); } catch (e) { r.tarError = String(e); }
      // GNU tar itself must accept it (what a user runs next).
      const t = spawnSync('tar', ['-tf', path], { encoding: 'utf8' });
      if (t.status !== 0) { r.tarError = `GNU tar -tf failed: ${(t.stderr || '').slice(0, 500)}`; delete r.tar; }
    }
  }
  return r;
}
