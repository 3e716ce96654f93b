import { readFile, readdir, stat } from 'node:fs/promises';
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO, digestFile, rmrf, tempDir } from './common.mjs';
import { readTar } from './tarread.mjs';

/** The page's one archive of a restore: extracted with GNU tar and with bsdtar (libarchive, the
 *  `tar` of macOS and Windows), each member inspected like a download (plus `disk`: bytes its
 *  extracted file takes on disk, and `bsdtar`: 'same' when bsdtar extracted the same bytes).
 *  Child processes run asynchronously: the test's other waits go on meanwhile.
 *  Returns { folder, members: {download name: …}, problems: [..] }. */
export async function inspectArchive(path) {
  const gnu = await tempDir('qr-archive-gnu-'), bsd = await tempDir('qr-archive-bsd-');
  const problems = [];
  try {
    for (const [tool, dir] of [['tar', gnu], ['bsdtar', bsd]]) {
      const t = await run(tool, ['-xf', path, '-C', dir]);
      if (t.code !== 0) problems.push(`${tool} -xf failed: ${t.stderr.slice(0, 500)}`);
    }
    const top = await readdir(gnu);
    if (top.length !== 1) problems.push(`the archive holds ${top.length} top folders (${top.join(', ')}), not one`);
    const folder = top[0];
    const members = {};
    for (const name of folder ? await readdir(join(gnu, folder)) : []) {
      const p = join(gnu, folder, name), q = join(bsd, folder, name);
      let r;
      if ((await stat(p)).size > 1 << 30) {
        // Over 1 GiB: its data runs only, found with SEEK_DATA (hashing GiBs of holes is slow;
        // that they are holes is checked by the bytes they take on disk).
        r = await sparseRuns(p);
        const o = await sparseRuns(q);
        r.bsdtar = JSON.stringify(o) === JSON.stringify(r) ? 'same' : `differs: ${JSON.stringify(o).slice(0, 200)}`;
      } else {
        r = await inspectDownload(p, name);
        const c = await run('cmp', [p, q]);
        r.bsdtar = c.code === 0 ? 'same' : `differs: ${(c.stdout + c.stderr).trim().slice(0, 200)}`;
      }
      r.disk = (await stat(p)).blocks * 512;
      members[name] = r;
    }
    return { folder, members, problems };
  } finally {
    await rmrf(gnu); await rmrf(bsd);
  }
}

function run(cmd, args) {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: stdout || '', stderr: stderr || String(err || '') }));
  });
}

async function sparseRuns(path) {
  const t = await run('bash', [join(REPO, 'tests', 'make-fixtures.sh'), '--helper', 'runs', path]);
  if (t.code !== 0) return { error: `runs of ${path}: ${t.stderr.slice(0, 300)}` };
  return JSON.parse(t.stdout);
}

/** sha256 and size of a downloaded file (streamed); for .tar files also the entries. */
export async function inspectDownload(path, name) {
  const r = await digestFile(path);
  if (/^qubes-rescue-.*\.tar$/.test(name)) r.archive = await inspectArchive(path);
  else if (name.endsWith('.tar')) {
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
