// The page and the native CLI agree on the error class of every damaged backup (issue 9).
//
// One table of damaged backups, each crafted once from a committed real-tool fixture. For every
// row the CLI runs first (`list`; then `verify`, or `extract` for the rows that also check what is
// restored) and gives the reference class (stderr `error[<class>]` and exit code); then the page,
// in Chromium (playwright-core), Firefox ESR (geckodriver) and WebKitGTK (WebKitWebDriver +
// MiniBrowser, reading on the main thread), opens the SAME file and must
// report the same class in `status[data-error]`, at the same stage: a backup the CLI refuses at
// `list` must be refused at Open; one the CLI lists must open, and fail on Verify/Restore.
// Both must also equal the class the table expects (README, "Error matrix").
//
// Rows new with issue 9 (restore rows: the other qubes must still restore byte-exact):
//   swapped-chunks   two chunks of one volume exchanged (names kept)        → tampered
//   renamed-chunk    `.001.enc` renamed `.003.enc` (a gap in the sequence)  → tampered
//   foreign-chunk    a chunk from another backup with the same passphrase  → tampered
// One browser session per engine serves every row (a fresh page load per row).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile, truncate, open as fsOpen } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PAGE, REPO, listOuterMembers, ciphertextByteOffset, tempDir, rmrf, sha256File } from './lib/common.mjs';
import { launchChromium, RescuePage } from './lib/chromium.mjs';
import { launchFirefox, FirefoxRescuePage, FIREFOX_BIN } from './lib/firefox.mjs';
import { launchWebKit, WebKitRescuePage } from './lib/webkit.mjs';
import { manifestAvailable, pick, expectedFiles, qubeNames } from './lib/manifest.mjs';
import { filesProblems } from './lib/assertions.mjs';
import { makeTar, scryptEnc, scryptDec, outerMember, rebuildBackup, setScryptLogN } from './lib/craft.mjs';
import { CLI, EXIT_CODES, runCli } from './lib/cli.mjs';

const log = (...a) => console.log('   #', ...a);

// ------------------------------------------------------------------------------------ the table
// mode: what runs once the backup is open — 'verify' (page: Verify only; CLI: verify) or
// 'restore' (page: Restore, downloads checked; CLI: extract, files checked). victim: the qube
// the damage hits (the others must come out whole); bad: its file that must not be offered.
// build(dir, b) → { path, passphrase } of the damaged file.

/** The base fixture: several qubes, a volume in ≥ 2 chunks, dom0's home. */
const base = () => pick((x) => x.covers.has('gzip') && x.covers.has('pax-sparse') && x.covers.has('dom0-home') && x.qubes.length >= 2 &&
  x.qubes.some((q) => q.files.some((f) => f.role === 'volume' && f.chunks >= 2)));
/** The first qube with a volume in ≥ 2 chunks, and that volume. */
function multiChunkVolume(b) {
  for (const q of b.qubes) for (const f of q.files) if (f.role === 'volume' && f.chunks >= 2) return { qube: q, vol: f };
  throw new Error(`${b.file}: no volume in two or more chunks`);
}
const chunkName = (vol, i) => `${vol.archive_name}.${String(i).padStart(3, '0')}.enc`;
function find(entries, name) {
  const e = entries.find((x) => x.name === name);
  if (!e) throw new Error(`no member ${name}; members: ${entries.map((x) => x.name)}`);
  return e;
}
async function copyOf(b, dir, name) {
  const p = join(dir, name);
  await copyFile(b.path, p);
  return p;
}

const ROWS = [
  {
    id: 'wrong-passphrase', what: 'the right backup, a wrong passphrase', expect: 'wrong-passphrase', mode: 'verify',
    build: async (dir, b) => ({ path: b.path, passphrase: `${b.passphrase}x` }),
  },
  {
    id: 'flipped-bit', what: 'one bit flipped inside a chunk\'s ciphertext', expect: 'tampered', mode: 'verify',
    build: async (dir, b) => {
      const { vol } = multiChunkVolume(b);
      const victim = listOuterMembers(b.path).find((m) => m.name === chunkName(vol, 1));
      const path = await copyOf(b, dir, 'flipped-bit.bin');
      const off = ciphertextByteOffset(victim);
      const fh = await fsOpen(path, 'r+');
      const one = Buffer.alloc(1);
      await fh.read(one, 0, 1, off); one[0] ^= 0x01; await fh.write(one, 0, 1, off); await fh.close();
      return { path, passphrase: b.passphrase };
    },
  },
  {
    id: 'cut-short', what: 'the file cut in the middle of its last chunk', expect: 'truncated', mode: 'verify',
    build: async (dir, b) => {
      const members = listOuterMembers(b.path);
      const last = members[members.length - 1];
      const path = await copyOf(b, dir, 'cut-short.bin');
      await truncate(path, last.dataOffset + Math.floor(last.size / 2));
      return { path, passphrase: b.passphrase };
    },
  },
  {
    id: 'not-a-backup', what: 'a file that is not a backup', expect: 'not-a-backup', mode: 'verify',
    build: async (dir) => {
      const path = join(dir, 'holiday-photos.bin');
      await writeFile(path, Buffer.concat([Buffer.from('this is not a Qubes backup\n'), Buffer.alloc(20000, 7)]));
      return { path, passphrase: 'whatever' };
    },
  },
  {
    id: 'format-3-wrong-passphrase', what: 'a format-3 backup (Qubes\' own test suite), a wrong passphrase', expect: 'wrong-passphrase', mode: 'verify',
    build: async () => ({ path: join(REPO, 'tests', 'fixtures', 'qubes-testsuite', 'v3_test_220_r2_encrypted.bin'), passphrase: 'qubesx' }),
  },
  {
    id: 'format-3-flipped-piece', what: 'a format-3 backup with one byte of a piece flipped', expect: 'tampered', mode: 'verify',
    build: async (dir) => {
      const src = join(REPO, 'tests', 'fixtures', 'made-v3', 'v3-enc-gzip.bin');
      const victim = listOuterMembers(src).find((m) => m.name === 'vm5/private.img.001');
      const path = join(dir, 'format-3-flipped-piece.bin');
      await copyFile(src, path);
      const fh = await fsOpen(path, 'r+');
      const one = Buffer.alloc(1);
      const off = victim.dataOffset + Math.floor(victim.size / 2);
      await fh.read(one, 0, 1, off); one[0] ^= 0x20; await fh.write(one, 0, 1, off); await fh.close();
      return { path, passphrase: 'qubes', qubes: ['dom0', 'fedora-23', 'work', 'work-web'] }; // its own qubes, not the base fixture's
    },
  },
  {
    id: 'absurd-kdf', what: 'backup-header.hmac asking for logN=30 (1 TiB)', expect: 'unsafe-params', mode: 'verify',
    build: async (dir, b) => {
      const m = listOuterMembers(b.path).find((x) => x.name === 'backup-header.hmac');
      const path = await copyOf(b, dir, 'absurd-kdf.bin');
      await setScryptLogN(path, m.dataOffset, 30); // 128 * r * 2^30 bytes = 1 TiB at r=8
      return { path, passphrase: b.passphrase };
    },
  },
  {
    id: 'escaping-member', what: 'an outer member named ../…', expect: 'unsafe-path', mode: 'verify',
    build: async (dir, b) => {
      const path = join(dir, 'escaping-member.bin');
      await writeFile(path, rebuildBackup(b.path, (es) => [...es, { name: '../qubes-rescue-e2e-escape.000.enc', data: es[es.length - 1].data }]));
      return { path, passphrase: b.passphrase };
    },
  },
  {
    id: 'escaping-home-entry', what: 'dom0\'s home holding an entry ../../../tmp/…', expect: 'unsafe-path', mode: 'verify',
    build: async (dir, b) => {
      // The dom0 home stream replaced by a hostile tar, encrypted with the right chunk passphrase
      // (so only the path can be blamed).
      const dom0 = b.qubes.find((q) => q.user !== undefined);
      const inner = gzipSync(makeTar([
        { name: `${dom0.backup_path}/`, type: '5' },
        { name: `${dom0.backup_path}/fine.txt`, data: 'fine\n' },
        { name: `${dom0.backup_path}/../../../tmp/qubes-rescue-e2e-escape.txt`, data: 'escaped\n' },
      ]));
      const chunk = `${dom0.backup_path}.000`;
      const enc = scryptEnc(inner, `${b.backup_id}!${chunk}!${b.passphrase}`, dir);
      const path = join(dir, 'escaping-home-entry.bin');
      await writeFile(path, rebuildBackup(b.path, (es) => [
        ...es.filter((e) => !e.name.startsWith(`${dom0.backup_path}.`)), { name: `${chunk}.enc`, data: enc },
      ]));
      return { path, passphrase: b.passphrase };
    },
  },
  {
    id: 'swapped-chunks', what: 'two chunks of one volume exchanged (names kept)', expect: 'tampered', mode: 'restore', damagesVolume: true,
    build: async (dir, b) => {
      const { vol } = multiChunkVolume(b);
      const path = join(dir, 'swapped-chunks.bin');
      await writeFile(path, rebuildBackup(b.path, (es) => {
        const x = find(es, chunkName(vol, 0)), y = find(es, chunkName(vol, 1));
        [x.data, y.data] = [y.data, x.data];
        return es;
      }));
      return { path, passphrase: b.passphrase };
    },
  },
  {
    id: 'renamed-chunk', what: 'a chunk renamed .001.enc → .003.enc (a gap)', expect: 'tampered', mode: 'restore', damagesVolume: true,
    build: async (dir, b) => {
      const { vol } = multiChunkVolume(b);
      const path = join(dir, 'renamed-chunk.bin');
      await writeFile(path, rebuildBackup(b.path, (es) => {
        find(es, chunkName(vol, 1)).name = chunkName(vol, 3);
        return es;
      }));
      return { path, passphrase: b.passphrase };
    },
  },
  {
    id: 'foreign-chunk', what: 'a chunk from another backup made with the same passphrase', expect: 'tampered', mode: 'restore', damagesVolume: true,
    build: async (dir, b) => {
      // The same plaintext, encrypted by the real scrypt the way Qubes would for a backup with
      // another id: chunk passphrase `<other backup id>!<member path>!<passphrase>`.
      const { vol } = multiChunkVolume(b);
      const name = chunkName(vol, 0);
      const other = b.backup_id.replace(/(\d)$/, (d) => String((Number(d) + 1) % 10));
      assert.notEqual(other, b.backup_id);
      const path = join(dir, 'foreign-chunk.bin');
      await writeFile(path, rebuildBackup(b.path, (es) => {
        const e = find(es, name);
        const stem = name.replace(/\.enc$/, '');
        const plain = scryptDec(e.data, `${b.backup_id}!${stem}!${b.passphrase}`, dir);
        e.data = scryptEnc(plain, `${other}!${stem}!${b.passphrase}`, dir);
        return es;
      }));
      return { path, passphrase: b.passphrase };
    },
  },
];

// ------------------------------------------------------------------------------------ the test

/** For restore rows: the qube hit, the download that must not be offered, and what must be. */
function restoreExpectations(b) {
  const { qube, vol } = multiChunkVolume(b);
  const others = qubeNames(b).filter((q) => q !== qube.name);
  const bad = `${qube.name}-${vol.path}`;
  const victimOthers = Object.fromEntries(Object.entries(expectedFiles(b, [qube.name])).filter(([n]) => n !== bad));
  return { victim: qube.name, vol, bad, good: expectedFiles(b, others), victimOthers };
}

describe('the page and the CLI report the same error class on the same damaged backup', () => {
  if (!manifestAvailable()) {
    it('has fixtures', () => assert.fail('tests/fixtures/made/manifest.json missing (run tests/make-fixtures.sh)'));
    return;
  }
  let dir, b;
  const made = new Map(); // row id → { path, passphrase, cli: { stage, cls, code, stderr, ... } }

  before(async () => {
    assert.ok(existsSync(CLI), `the CLI is not built: ${CLI} (cargo build --bin qubes-rescue, or set QR_CLI)`);
    b = base();
    dir = await tempDir('agreement');
    const t0 = Date.now();
    for (const row of ROWS) {
      const f = await row.build(dir, b);
      // The CLI's verdict: `list` (refused at open?), then verify / extract.
      const list = runCli(['list', f.path], f.passphrase);
      let cli;
      if (list.code !== 0) cli = { stage: 'open', cmd: 'list', ...list };
      else if (row.mode === 'restore') {
        const out = join(dir, `${row.id}.out`);
        cli = { stage: 'run', cmd: 'extract', out, ...runCli(['extract', f.path, '-o', out], f.passphrase) };
      } else cli = { stage: 'run', cmd: 'verify', ...runCli(['verify', f.path], f.passphrase) };
      made.set(row.id, { ...f, cli });
    }
    log(`${ROWS.length} damaged copies of ${b.file} made and run through the CLI in ${Date.now() - t0} ms`);
  });
  after(async () => { await rmrf(dir); });

  const cliDesc = (c) => `qubes-rescue ${c.cmd} → exit ${c.code}; stderr:\n${c.stderr.trim().split('\n').slice(0, 6).join('\n')}`;

  describe('the CLI (reference)', () => {
    for (const row of ROWS) {
      it(`${row.id}: ${row.what} → ${row.expect}`, async () => {
        const { cli } = made.get(row.id);
        log(`${row.id}: ${cli.cmd} exit ${cli.code} error[${cli.cls}] (${cli.ms} ms)`);
        assert.equal(cli.cls, row.expect, `the CLI reports ${cli.cls}, the table expects ${row.expect}\n${cliDesc(cli)}`);
        assert.equal(cli.code, EXIT_CODES[cli.cls], `exit code ${cli.code} does not match error[${cli.cls}]\n${cliDesc(cli)}`);
        if (row.mode === 'restore' && cli.stage === 'run') {
          // extract: the other qubes' volumes and small files are written, byte-exact; the damaged
          // volume is not left under its final name.
          const x = restoreExpectations(b);
          assert.ok(!existsSync(join(cli.out, x.victim, x.vol.path)), `${x.victim}/${x.vol.path} written although damaged`);
          for (const q of b.qubes) {
            if (q.name === x.victim || q.user !== undefined) continue;
            for (const f of q.files.filter((f) => f.sha256)) {
              const p = join(cli.out, q.name, f.path);
              assert.ok(existsSync(p), `extract did not write ${q.name}/${f.path}\n${cliDesc(cli)}`);
              assert.equal((await sha256File(p)).sha256, f.sha256, `extract wrote ${q.name}/${f.path} wrong`);
            }
          }
        }
      });
    }
  });

  /**
   * The page half of a row, on one engine. `eng` gives: load(), open(path, pass) →
   * { status, qubes }, selectAll(), run(mode, expected) → { final, files }, describe().
   */
  async function pageRow(eng, row) {
    const m = made.get(row.id);
    const cli = m.cli;
    const t0 = Date.now();
    await eng.load();
    const opened = await eng.open(m.path, m.passphrase);
    let page, files = null, stage;
    if (opened.status?.state === 'error') {
      stage = 'open';
      page = opened.status.error;
    } else {
      stage = 'run';
      if (cli.stage === 'open') {
        assert.fail(`the CLI refuses this backup at list (error[${cli.cls}]) but the page opens it (qubes ${opened.qubes})\n${cliDesc(cli)}\n${await eng.describe()}`);
      }
      for (const q of m.qubes || qubeNames(b)) assert.ok(opened.qubes.includes(q), `qube ${q} not listed (listed: ${opened.qubes})\n${await eng.describe()}`);
      await eng.selectAll();
      const x = row.mode === 'restore' ? restoreExpectations(b) : null;
      const r = await eng.run(row.mode, x ? x.good : {});
      files = r.files;
      page = r.final.state === 'error' ? r.final.error : `(no error: data-state=${r.final.state})`;
    }
    const ctx = await eng.describe();
    log(`${row.id}: CLI ${cli.cmd} → ${cli.cls} (${cli.stage}); page → ${page} (${stage}) in ${Date.now() - t0} ms` +
      (files ? `; downloads: ${Object.keys(files).join(', ') || 'none'}` : ''));
    // Everything wrong with this row, reported together.
    const problems = [];
    if (page !== cli.cls) problems.push(`the page reports data-error=${page}, the CLI (${cli.cmd}) reports error[${cli.cls}]`);
    if (page !== row.expect) problems.push(`the page reports data-error=${page}, the table expects ${row.expect}`);
    if (stage !== cli.stage) problems.push(`the page fails at ${stage === 'open' ? 'Open' : 'Verify/Restore'}, the CLI at ${cli.stage === 'open' ? 'list' : cli.cmd}`);
    if (files && row.mode === 'restore') {
      const x = restoreExpectations(b);
      if (x.bad in files) problems.push(`${x.bad} was downloaded although one of its chunks is damaged`);
      // The other qubes whole and byte-exact; the victim's other files may be offered, then exact.
      const offered = Object.fromEntries(Object.entries(x.victimOthers).filter(([n]) => n in files));
      problems.push(...filesProblems(Object.fromEntries(Object.entries(files).filter(([n]) => n !== x.bad)), { ...x.good, ...offered }));
    } else if (files && Object.keys(files).length) problems.push(`Verify only downloaded ${Object.keys(files)}`);
    if (problems.length) assert.fail(`${row.id} (${row.what}):\n  ${problems.join('\n  ')}\n${cliDesc(cli)}\n--- page ---\n${ctx}`);
  }

  describe('Chromium', () => {
    let browser, rp = null;
    const eng = {
      async load() { await rp?.page.close().catch(() => {}); rp = await RescuePage.open(browser.context); },
      async open(path, pass) { return rp.openBackup(path, pass); },
      async selectAll() { await rp.selectQubes(null); },
      async run(mode, expected) {
        const r = await rp.runAndCollect(mode, { expectNames: Object.keys(expected), quietMs: mode === 'verify' ? 500 : 1000 });
        return { final: r.final, files: r.files };
      },
      describe: () => rp.describe(),
    };
    before(async () => {
      assert.ok(existsSync(PAGE), `page not built: ${PAGE} (run ./build.sh)`);
      browser = await launchChromium();
    });
    after(async () => { await rp?.page.close().catch(() => {}); await browser?.close(); });
    for (const row of ROWS) {
      it(`${row.id}: ${row.what} → ${row.expect}, as the CLI says`, { timeout: 3 * 60e3 }, async () => { await pageRow(eng, row); });
    }
  });

  describe('Firefox ESR', () => {
    let ff, fp;
    const eng = {
      load: () => fp.load(),
      open: (path, pass) => fp.open(path, pass),
      selectAll: () => fp.selectAll(),
      run: (mode, expected) => fp.runAndCollect(mode, { expected }),
      describe: () => fp.describe(),
    };
    before(async () => {
      assert.ok(existsSync(PAGE), `page not built: ${PAGE} (run ./build.sh)`);
      assert.ok(existsSync(FIREFOX_BIN), `${FIREFOX_BIN} missing`);
      ff = await launchFirefox();
      fp = new FirefoxRescuePage(ff);
      log(`firefox ${ff.version}`);
    });
    after(async () => { await ff?.close(); });
    for (const row of ROWS) {
      it(`${row.id}: ${row.what} → ${row.expect}, as the CLI says`, { timeout: 3 * 60e3 }, async () => { await pageRow(eng, row); });
    }
  });

  describe('WebKitGTK', () => {
    let wk, wp;
    const eng = {
      load: () => wp.load(),
      open: (path, pass) => wp.open(path, pass),
      selectAll: () => wp.selectAll(),
      run: (mode, expected) => wp.runAndCollect(mode, { expected }),
      describe: () => wp.describe(),
    };
    before(async () => {
      assert.ok(existsSync(PAGE), `page not built: ${PAGE} (run ./build.sh)`);
      wk = await launchWebKit();
      wp = new WebKitRescuePage(wk);
      log(`MiniBrowser ${wk.version}`);
    });
    after(async () => { await wk?.close(); });
    for (const row of ROWS) {
      it(`${row.id}: ${row.what} → ${row.expect}, as the CLI says`, { timeout: 3 * 60e3 }, async () => { await pageRow(eng, row); });
    }
  });
});
