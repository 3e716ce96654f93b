import { readFile } from 'node:fs/promises';
import { sha256File } from './common.mjs';
import { readTar } from './tarread.mjs';

/** sha256 and size of a downloaded file (streamed); for .tar files also the entries. */
export async function inspectDownload(path, name) {
  const r = await sha256File(path);
  if (name.endsWith('.tar')) {
    if (r.size > 512 << 20) r.tarError = 'too big to inspect';
    else {
      try { r.tar = readTar(await readFile(path)); } catch (e) { r.tarError = String(e); }
    }
  }
  return r;
}
