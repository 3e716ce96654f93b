// E2E tests of the file browser (issue 4) in Chromium: restore a qube, Browse, walk to a nested
// file through `fs-entry` rows, download it and a whole folder (.zip), and compare the bytes
// with what the native CLI's `qubes-rescue get` writes from the same backup (the CLI is itself
// checked byte-exact against the source trees in tests/browse_images.rs).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, lstatSync, existsSync as exists } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { PAGE, REPO, tempDir, rmrf, waitFor, listOuterMembers, ciphertextByteOffset } from './lib/common.mjs';
import { copyFile, open as fsOpen } from 'node:fs/promises';
import { launchChromium, RescuePage } from './lib/chromium.mjs';
import { byFile } from './lib/manifest.mjs';

const CLI = process.env.QR_CLI || join(REPO, 'target', 'debug', 'qubes-rescue');
const log = (...a) => console.log('   #', ...a);
const sha = (b) => createHash('sha256').update(b).digest('hex');

/** `qubes-rescue get` into a fresh folder; returns the path written. */
function cliGet(backup, spec, path, dir, name) {
  const out = join(dir, name);
  execFileSync(CLI, ['get', backup.path, spec, path, '-o', out], { env: { ...process.env, QUBES_RESCUE_PASSPHRASE: backup.passphrase }, stdio: ['ignore', 'ignore', 'pipe'] });
  return out;
}

/** Every regular file under `root` as relative path → sha256 (symlinks left out, like the zip). */
function treeDigest(root) {
  const out = {};
  const walk = (d, rel) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n), r = rel ? rel + '/' + n : n;
      const st = lstatSync(p);
      if (st.isDirectory()) { out[r + '/'] = 'dir'; walk(p, r); } else if (st.isFile()) out[r] = sha(readFileSync(p));
    }
  };
  walk(root, '');
  return out;
}

describe('file browser in Chromium', () => {
  let browser, work;
  before(async () => {
    assert.ok(exists(PAGE), `page not built: ${PAGE}`);
    assert.ok(exists(CLI), `CLI not built: ${CLI} (cargo build)`);
    browser = await launchChromium();
    work = await tempDir('browse');
  });
  after(async () => { await browser?.close(); await rmrf(work); });

  /** A page whose downloads this test saves itself (the page object's handler deletes them). */
  async function page() {
    const rp = await RescuePage.open(browser.context);
    rp.page.removeAllListeners('download');
    rp.saved = new Map();
    rp.page.on('download', (d) => {
      const name = d.suggestedFilename();
      const to = join(work, `${Date.now()}-${name}`);
      rp.saved.set(name, d.saveAs(to).then(() => to));
    });
    return rp;
  }

  async function waitDownload(rp, name) {
    await waitFor(() => rp.saved.has(name), { timeout: 60000, describe: async () => `no download ${name}; got ${[...rp.saved.keys()]}\n${await rp.describe()}` });
    const p = await rp.saved.get(name);
    rp.saved.delete(name);
    return p;
  }

  const row = (rp, path) => rp.page.locator(`[data-testid="fs-entry"][data-path="${path.replace(/"/g, '\\"')}"]`);

  /** Clicks folder rows from the folder `from` (shown now) down to `path` (absolute). */
  async function walkTo(rp, path, from = '') {
    const parts = path.slice(from.length).split('/').filter(Boolean);
    let at = from;
    for (const p of parts) {
      at += '/' + p;
      const r = row(rp, at);
      await r.waitFor({ state: 'visible', timeout: 30000 }).catch(async (e) => { throw new Error(`${at}: ${e.message}\n${await browseState(rp)}`); });
      await r.click();
    }
    await rp.page.locator('[data-testid="fs-entry"]').first().waitFor({ timeout: 30000 });
  }

  async function browseState(rp) {
    return await rp.page.evaluate(() => {
      const s = document.querySelector('[data-testid="browse-status"]');
      return `browse-status=${s?.dataset.state}: ${s?.textContent}; rows: ` +
        [...document.querySelectorAll('[data-testid="fs-entry"]')].map((r) => r.dataset.path).join(', ');
    }) + '\n' + await rp.describe();
  }

  it('restores a qube, browses to a nested file and a folder, downloads both byte-exact', { timeout: 10 * 60e3 }, async () => {
    const b = byFile('gzip-pax.bin');
    const rp = await page();
    try {
      const opened = await rp.openBackup(b.path, b.passphrase);
      assert.notEqual(opened.status?.state, 'error', await rp.describe());
      await rp.selectQubes(['work']);
      const since = await rp.mark();
      await rp.tid('restore').click();
      const fin = await rp.waitForState(['done', 'error'], { since, timeout: 300000 });
      assert.equal(fin.state, 'done', await rp.describe());
      await waitDownload(rp, 'work-private.img');

      await rp.page.locator('[data-testid="qube-row"][data-qube="work"] [data-testid="browse"]').click();
      assert.equal(await rp.tid('volume').inputValue(), 'private.img');
      await walkTo(rp, '/home/user/Documents');
      for (const name of ['report.txt', 'Ünïcödé-名前.txt']) {
        const path = `/home/user/Documents/${name}`;
        await row(rp, path).locator('[data-testid="fs-download"]').click();
        const got = await waitDownload(rp, name);
        const want = cliGet(b, 'work', path, work, 'cli-' + sha(name));
        assert.equal(sha(readFileSync(got)), sha(readFileSync(want)), `${path}: page and CLI differ`);
        log(`${path}: ${readFileSync(got).length} bytes, same as qubes-rescue get`);
      }
      // Breadcrumbs back up, then the folder as a .zip, unpacked and compared with `get`'s tree.
      await rp.tid('breadcrumbs').getByRole('button', { name: 'user', exact: true }).click();
      await row(rp, '/home/user/Documents').locator('[data-testid="fs-download-zip"]').click();
      const zip = await waitDownload(rp, 'Documents.zip');
      const unpacked = join(work, 'unzipped');
      execFileSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; z.extractall(sys.argv[2])', zip, unpacked]);
      const want = cliGet(b, 'work', '/home/user/Documents', work, 'cli-Documents');
      const a = treeDigest(join(unpacked, 'Documents')), c = treeDigest(want);
      assert.deepEqual(a, c, 'the folder .zip differs from qubes-rescue get');
      assert.ok(Object.keys(a).some((k) => k.endsWith('data.bin')), `nested file missing: ${Object.keys(a)}`);
      log(`Documents.zip: ${Object.keys(a).length} entries, same tree as qubes-rescue get`);
    } finally {
      await rp.page.close().catch(() => {});
    }
  });

  it('salvage: a tampered middle chunk of an uncompressed backup gives .salvaged + lost ranges like the CLI; status stays tampered', { timeout: 10 * 60e3 }, async () => {
    const b = byFile('uncompressed.bin');
    const chunks = listOuterMembers(b.path).filter((m) => /\/private\.img\.\d{3}\.enc$/.test(m.name));
    const vol = [...new Set(chunks.map((m) => m.name.replace(/\.\d{3}\.enc$/, '')))].find((v) => chunks.filter((m) => m.name.startsWith(v + '.')).length >= 3);
    assert.ok(vol, 'a volume of at least three chunks');
    const victim = chunks.filter((m) => m.name.startsWith(vol + '.'))[1];
    const qube = b.qubes.find((q) => q.files.some((f) => f.archive_name === vol)).name;
    const copy = join(work, 'salvage-' + b.file);
    await copyFile(b.path, copy);
    const fh = await fsOpen(copy, 'r+');
    const one = Buffer.alloc(1);
    const off = ciphertextByteOffset(victim);
    await fh.read(one, 0, 1, off); one[0] ^= 0x01; await fh.write(one, 0, 1, off); await fh.close();
    log(`flipped a bit of ${victim.name} (qube ${qube})`);
    const rp = await page();
    try {
      const opened = await rp.openBackup(copy, b.passphrase);
      assert.notEqual(opened.status?.state, 'error', await rp.describe());
      await rp.selectQubes([qube]);
      await rp.tid('salvage').check();
      const since = await rp.mark();
      await rp.tid('restore').click();
      const fin = await rp.waitForState(['done', 'error'], { since, timeout: 300000 });
      assert.equal(fin.state, 'error', await rp.describe());
      assert.equal(fin.error, 'tampered', await rp.describe());
      const img = await waitDownload(rp, `${qube}-private.img.salvaged`);
      const json = JSON.parse(readFileSync(await waitDownload(rp, `${qube}-private.img.salvage.json`), 'utf8'));
      assert.ok(json.lost.length >= 1, 'lost ranges listed');
      const rows = await rp.page.locator('[data-testid="lost-range"]').count();
      assert.equal(rows, json.lost.length, 'the page lists every lost range');

      const out = join(work, 'cli-salvage');
      let code = 0;
      try {
        execFileSync(CLI, ['extract', copy, qube, '-o', out, '--salvage'], { env: { ...process.env, QUBES_RESCUE_PASSPHRASE: b.passphrase }, stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (e) { code = e.status; }
      assert.equal(code, 11, 'the CLI reports tampered');
      assert.deepEqual(json, JSON.parse(readFileSync(join(out, qube, 'private.img.salvage.json'), 'utf8')), 'lost ranges differ from the CLI');
      assert.equal(sha(readFileSync(img)), sha(readFileSync(join(out, qube, 'private.img.salvaged'))), 'salvaged image differs from the CLI');
      log(`salvaged ${qube}: lost ${JSON.stringify(json.lost)}, same as qubes-rescue extract --salvage`);
    } finally {
      await rp.page.close().catch(() => {});
    }
  });

  it('a salvaged ext4 image marks exactly the files that read lost bytes', { timeout: 10 * 60e3 }, async () => {
    // An uncompressed backup (real tools: tests/qubes-backup.sh) of an ext4 private.img with
    // 64 KiB chunks; one chunk in the middle of the stream is damaged.
    const dir = join(work, 'lost-ext4');
    const src = join(dir, 'src', 'home', 'user');
    execFileSync('mkdir', ['-p', src]);
    const { randomBytes } = await import('node:crypto');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(src, 'big.bin'), randomBytes(1536 * 1024));
    writeFileSync(join(src, 'small.bin'), randomBytes(40 * 1024));
    writeFileSync(join(src, 'note.txt'), 'a note\n');
    const img = join(dir, 'private.img');
    execFileSync('truncate', ['-s', '8M', img]);
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-E', 'root_owner=0:0', '-d', join(dir, 'src'), img]);
    writeFileSync(join(dir, 'spec'), 'vm\t5\tlosty\tAppVM\tred\t-\tlvm\nvol\t5\tprivate\t' + img + '\tpax\n');
    const xml = execFileSync(join(REPO, 'tests', 'make-fixtures.sh'), ['--helper', 'qubes-xml', join(dir, 'spec')]);
    writeFileSync(join(dir, 'qubes.xml'), xml);
    const backup = join(dir, 'losty.bin');
    execFileSync('bash', ['-c', `source "${REPO}/tests/qubes-backup.sh"; export SCRYPT_ARGS="--logN 10 -r 8 -p 1";
      begin_backup "$1" pass 20240101T000000-1 none 65536; add_qubes_xml "$2"; add_volume_pax vm5/ private.img "$3"; end_backup`, '_', backup, join(dir, 'qubes.xml'), img]);
    const chunks = listOuterMembers(backup).filter((m) => /^vm5\/private\.img\.\d{3}\.enc$/.test(m.name));
    const victim = chunks[Math.floor(chunks.length * 0.6)];
    const fh = await fsOpen(backup, 'r+');
    const one = Buffer.alloc(1);
    const off = ciphertextByteOffset(victim);
    await fh.read(one, 0, 1, off); one[0] ^= 0x01; await fh.write(one, 0, 1, off); await fh.close();
    // Where each file's blocks are, from the real debugfs.
    const blocksOf = (f) => execFileSync('debugfs', ['-R', `blocks /home/user/${f}`, img], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString().trim().split(/\s+/).filter(Boolean).map(Number);
    const rp = await page();
    try {
      const opened = await rp.openBackup(backup, 'pass');
      assert.notEqual(opened.status?.state, 'error', await rp.describe());
      await rp.selectQubes(['losty']);
      await rp.tid('salvage').check();
      const since = await rp.mark();
      await rp.tid('restore').click();
      const fin = await rp.waitForState(['done', 'error'], { since, timeout: 300000 });
      assert.equal(fin.error, 'tampered', await rp.describe());
      const lost = await rp.page.locator('[data-testid="lost-range"]').evaluateAll((rows) => rows.map((r) => [Number(r.dataset.start), Number(r.dataset.end)]));
      assert.ok(lost.length, 'lost ranges shown');
      const want = ['big.bin', 'note.txt', 'small.bin'].filter((f) => blocksOf(f).some((b) => lost.some(([a, e]) => b * 4096 < e && a < (b + 1) * 4096)));
      assert.ok(want.length, `the damaged chunk ${victim.name} should hit a file (lost ${JSON.stringify(lost)})`);
      await rp.page.locator('[data-testid="qube-row"][data-qube="losty"] [data-testid="browse"]').click();
      await walkTo(rp, '/home/user');
      await rp.page.waitForFunction(() => /salvaged/.test(document.querySelector('[data-testid="browse-status"]').textContent) &&
        document.querySelector('[data-testid="browse-status"]').dataset.state !== 'working', null, { timeout: 60000 });
      const marked = await rp.page.locator('[data-testid="fs-entry"][data-lost="true"]').evaluateAll((rows) => rows.map((r) => r.dataset.path.split('/').pop()).sort());
      assert.deepEqual(marked, want, 'the ⚠ rows are the files whose blocks lie in the lost ranges');
      log(`salvaged ext4: lost ${JSON.stringify(lost)}; marked ${marked.join(', ')} (debugfs agrees)`);
    } finally {
      await rp.page.close().catch(() => {});
    }
  });

  it('browses without a prior restore: root.img (GPT, partition picked) and dom0 home', { timeout: 10 * 60e3 }, async () => {
    const b = byFile('gzip-pax.bin');
    const rp = await page();
    try {
      const opened = await rp.openBackup(b.path, b.passphrase);
      assert.notEqual(opened.status?.state, 'error', await rp.describe());
      await rp.page.locator('[data-testid="qube-row"][data-qube="standalone"] [data-testid="browse"]').click();
      await rp.page.locator('[data-testid="fs-entry"]').first().waitFor({ timeout: 120000 }).catch(async (e) => { throw new Error(e.message + '\n' + await browseState(rp)); });
      assert.equal(rp.saved.size, 0, 'Browse must not download the whole image');
      await rp.tid('volume').selectOption('root.img');
      await row(rp, '/etc').waitFor({ timeout: 30000 });
      assert.ok(await rp.tid('partition').isVisible(), 'a partitioned disk shows its partitions');
      await walkTo(rp, '/etc');
      await row(rp, '/etc/os-release').locator('[data-testid="fs-download"]').click();
      const got = await waitDownload(rp, 'os-release');
      const want = cliGet(b, 'standalone/root.img', '/etc/os-release', work, 'cli-os-release');
      assert.equal(sha(readFileSync(got)), sha(readFileSync(want)));

      await rp.page.locator('[data-testid="qube-row"][data-qube="dom0"] [data-testid="browse"]').click();
      await walkTo(rp, '/home/user/Documents/deep/er/est', '/home'); // dom0's home opens at /home
      const long = 'a-file-name-that-is-long-enough-to-need-a-GNU-long-name-header-in-the-tar-stream.txt';
      await row(rp, `/home/user/Documents/deep/er/est/${long}`).locator('[data-testid="fs-download"]').click();
      const home = await waitDownload(rp, long);
      const entry = b.qubes.find((q) => q.name === 'dom0').files.find((f) => f.path.endsWith(long));
      assert.equal(sha(readFileSync(home)), entry.sha256, 'dom0 home file differs from the manifest');
      log('root.img /etc/os-release and a dom0 home file with a GNU long name: byte-exact');
    } finally {
      await rp.page.close().catch(() => {});
    }
  });
});
