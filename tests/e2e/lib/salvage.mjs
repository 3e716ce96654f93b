// A damaged copy of a real-tool backup for the salvage rows of every engine, and what the CLI
// salvages from it: the page must give the same image bytes and the same lost ranges.
import { copyFile, readFile, open as fsOpen } from 'node:fs/promises';
import { join } from 'node:path';
import { listOuterMembers, ciphertextByteOffset, sha256File } from './common.mjs';
import { pick } from './manifest.mjs';
import { runCli } from './cli.mjs';

/** In `dir`: a copy of a gzip backup with one byte flipped in the 2nd chunk of a volume, and the
 *  CLI's `extract --salvage` of that qube. Returns { path, passphrase, qube, image, report,
 *  cli: { code, sha256, size, lost } } (image/report: the page's download names). */
export async function salvageCase(dir) {
  const b = pick((x) => x.covers.has('gzip') && x.covers.has('pax-sparse') &&
    x.qubes.some((q) => q.files.some((f) => f.role === 'volume' && f.chunks >= 2)));
  const qube = b.qubes.find((q) => q.files.some((f) => f.role === 'volume' && f.chunks >= 2));
  const vol = qube.files.find((f) => f.role === 'volume' && f.chunks >= 2);
  const victim = listOuterMembers(b.path).find((m) => m.name === `${vol.archive_name}.001.enc`);
  const path = join(dir, `salvage-${b.file}`);
  await copyFile(b.path, path);
  const fh = await fsOpen(path, 'r+');
  try {
    const at = ciphertextByteOffset(victim);
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, at);
    one[0] ^= 0x5a;
    await fh.write(one, 0, 1, at);
  } finally {
    await fh.close();
  }
  const out = join(dir, 'cli-salvage');
  const r = runCli(['extract', path, qube.name, '-o', out, '--salvage'], b.passphrase);
  const img = join(out, qube.name, `${vol.path}.salvaged`);
  const { sha256, size } = await sha256File(img);
  const lost = JSON.parse(await readFile(join(out, qube.name, `${vol.path}.salvage.json`), 'utf8')).lost;
  return { path, passphrase: b.passphrase, qube: qube.name, image: `${qube.name}-${vol.path}.salvaged`,
    report: `${qube.name}-${vol.path}.salvage.json`, cli: { code: r.code, cls: r.cls, sha256, size, lost } };
}
