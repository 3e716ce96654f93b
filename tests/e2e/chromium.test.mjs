// E2E tests of dist/qubes-rescue.html in Debian's Chromium (headless, file://),
// driven through the TEST CONTRACT of issue 3 item 8.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile, open as fsOpen } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { PAGE, PAGE_URL, existsSync, listOuterMembers, ciphertextByteOffset, tempDir, rmrf, sleep } from './lib/common.mjs';
import { launchChromium, RescuePage, startTrapProxy } from './lib/chromium.mjs';
import { pick, expectedFiles, loadManifest } from './lib/manifest.mjs';
import { assertFilesMatch } from './lib/assertions.mjs';

const DEMO_TESTID = process.env.QR_DEMO_TESTID || 'demo';
const log = (...a) => console.log('   #', ...a);

describe('qubes-rescue page in Chromium', () => {
  let browser;
  const pages = [];
  before(async () => {
    assert.ok(existsSync(PAGE), `page not built: ${PAGE}`);
    loadManifest();
    browser = await launchChromium();
  });
  after(async () => {
    for (const p of pages) await p.page.close().catch(() => {});
    await browser?.close();
  });
  async function newPage() {
    const rp = await RescuePage.open(browser.context);
    pages.push(rp);
    return rp;
  }
  async function fullRestore(backup, { qubes = null } = {}) {
    const rp = await newPage();
    const opened = await rp.openBackup(backup.path, backup.passphrase);
    assert.notEqual(opened.status?.state, 'error', `open failed: ${await rp.describe()}`);
    const listed = opened.qubes;
    for (const q of Object.keys(backup.qubes)) assert.ok(listed.includes(q), `qube ${q} not listed (listed: ${listed})`);
    await rp.selectQubes(qubes);
    const expected = expectedFiles(backup, qubes);
    const r = await rp.runAndCollect('restore', { expectNames: Object.keys(expected) });
    log(`${backup.file}: opened in ${opened.ms} ms, restore ${r.ms} ms, ${Object.keys(r.files).length} downloads`);
    return { rp, r, expected };
  }
  async function restoreAndCompare(backup) {
    const { rp, r, expected } = await fullRestore(backup);
    const ctx = await rp.describe();
    assert.equal(r.final.state, 'done', `expected data-state=done\n${ctx}`);
    assertFilesMatch(r.files, expected, { context: ctx });
    await rp.page.close();
  }

  it('is one self-contained file with a CSP that forbids network', async () => {
    const html = await readFile(PAGE, 'utf8');
    const csp = html.match(/<meta[^>]+http-equiv=["']?Content-Security-Policy["']?[^>]*>/i);
    assert.ok(csp, 'no CSP meta tag');
    for (const d of ["default-src 'none'", "connect-src 'none'"]) assert.ok(csp[0].includes(d), `CSP lacks ${d}: ${csp[0]}`);
    const ext = [...html.matchAll(/<(?:script|link|img|iframe|object|embed|source|audio|video)\b[^>]*\b(?:src|href)\s*=\s*["']?(?!data:|blob:|#)[^"'\s>]+/gi)].map((m) => m[0].slice(0, 120));
    assert.deepEqual(ext, [], 'external references in the page');
    const shaFile = `${PAGE}.sha256`;
    assert.ok(existsSync(shaFile), `${shaFile} missing`);
    const want = (await readFile(shaFile, 'utf8')).trim().split(/\s+/)[0];
    const got = createHash('sha256').update(await readFile(PAGE)).digest('hex');
    assert.equal(got, want, 'dist/qubes-rescue.html.sha256 does not match the page');
  });

  it('restores a gzip backup with PAX sparse volumes byte-exact', async () => {
    await restoreAndCompare(pick('gzip', 'pax'));
  });

  it('restores a zstd backup byte-exact', async () => {
    await restoreAndCompare(pick('zstd'));
  });

  it('restores a qube with root.img byte-exact', async () => {
    await restoreAndCompare(pick('root-img'));
  });

  it('restores a sparse volume larger than 8 GiB byte-exact', { timeout: 30 * 60e3 }, async () => {
    await restoreAndCompare(pick('sparse-8g'));
  });

  it('reports a wrong passphrase as wrong-passphrase after one KDF', async () => {
    const b = pick('gzip');
    const rp = await newPage();
    const t0 = Date.now();
    const opened = await rp.openBackup(b.path, `${b.passphrase}-wrong`, { timeout: 60000 });
    const ms = Date.now() - t0;
    log(`wrong passphrase reported in ${ms} ms`);
    assert.equal(opened.status?.state, 'error', `expected error, got ${await rp.describe()}`);
    assert.equal(opened.status?.error, 'wrong-passphrase', await rp.describe());
    assert.equal(await rp.page.locator('[data-testid="qube-row"]').count(), 0, 'qubes listed despite a wrong passphrase');
    // The right passphrase then works in the same page.
    await rp.tid('passphrase').fill(b.passphrase);
    const since = await rp.mark();
    await rp.tid('open').click();
    const again = await rp.waitOpened({ since });
    assert.ok(again.qubes.length > 0, `right passphrase after a wrong one did not list qubes: ${await rp.describe()}`);
    await rp.page.close();
  });

  it('reports a tampered chunk as tampered and still restores the other qubes', async () => {
    const b = pick('gzip', 'pax');
    const qubes = Object.keys(b.qubes);
    assert.ok(qubes.length >= 2, `${b.file} needs at least two qubes for this test`);
    // Find a chunk of a volume of one qube (outer member names are vmN/<file>.NNN.enc).
    const members = listOuterMembers(b.path).filter((m) => /\.\d{3,}\.enc$/.test(m.name) && m.name.includes('/') && m.size > 128);
    const victim = members.find((m) => /\/private\.img\.\d+\.enc$/.test(m.name)) || members[0];
    assert.ok(victim, 'no chunk to tamper with');
    const dir = await tempDir('tamper');
    try {
      const copy = join(dir, 'tampered-' + b.file);
      await copyFile(b.path, copy);
      const off = ciphertextByteOffset(victim);
      const fh = await fsOpen(copy, 'r+');
      const one = Buffer.alloc(1);
      await fh.read(one, 0, 1, off); one[0] ^= 0x01; await fh.write(one, 0, 1, off); await fh.close();
      log(`flipped byte at ${off} inside ${victim.name}`);

      const rp = await newPage();
      const opened = await rp.openBackup(copy, b.passphrase);
      assert.notEqual(opened.status?.state, 'error', `open failed: ${await rp.describe()}`);
      // Which qube owns the victim chunk? Ask the page's list: the manifest gives names, the
      // backup-path (vmN/) mapping is in the manifest when present, else the page must fail one qube.
      await rp.selectQubes(null);
      const all = expectedFiles(b);
      const r = await rp.runAndCollect('restore', { expectNames: [] });
      const ctx = await rp.describe();
      assert.equal(r.final.state, 'error', `expected data-state=error\n${ctx}`);
      assert.equal(r.final.error, 'tampered', `expected data-error=tampered\n${ctx}`);
      // The victim's qube: the one whose expected files did not all arrive intact.
      const bad = new Set();
      for (const [name, f] of Object.entries(all)) {
        const g = r.files[name];
        if (!g || g.error || g.sha256 !== f.sha256) bad.add(f.qube);
      }
      assert.equal(bad.size, 1, `exactly one qube should fail, got [${[...bad]}]\n${ctx}`);
      const good = qubes.filter((q) => !bad.has(q));
      assertFilesMatch(r.files, expectedFiles(b, good), { allowExtra: true, context: ctx });
      // Nothing from the bad volume may be offered as if it were fine.
      const badVolume = victim.name.replace(/^.*\//, '').replace(/\.\d+\.enc$/, '');
      const [badQube] = [...bad];
      const badName = `${badQube}-${badVolume}`;
      if (r.files[badName] && !r.files[badName].error) {
        assert.notEqual(r.files[badName].sha256, all[badName]?.sha256, 'tampered volume downloaded as correct?');
        assert.fail(`a download ${badName} was offered for the tampered volume`);
      }
      log(`tampered ${badQube}; ${good.length} other qube(s) restored byte-exact`);
      await rp.page.close();
    } finally {
      await rmrf(dir);
    }
  });

  it('verify only checks without downloading', async () => {
    const b = pick('gzip');
    const rp = await newPage();
    await rp.openBackup(b.path, b.passphrase);
    await rp.selectQubes(null);
    const r = await rp.runAndCollect('verify', { quietMs: 1000 });
    assert.equal(r.final.state, 'done', await rp.describe());
    assert.deepEqual(Object.keys(r.files), [], 'verify produced downloads');
    await rp.page.close();
  });

  it('runs the built-in demo backup', async () => {
    const b = pick('demo');
    const rp = await newPage();
    const since = await rp.mark();
    await rp.tid(DEMO_TESTID).click();
    // The demo may open by itself, or pre-fill the passphrase and wait for Open.
    let rows = 0;
    for (let i = 0; i < 20 && !rows; i++) { await sleep(250); rows = await rp.page.locator('[data-testid="qube-row"]').count(); }
    if (!rows) {
      const st = await rp.status();
      if (st?.state !== 'working') {
        if (!(await rp.tid('passphrase').inputValue())) await rp.tid('passphrase').fill(b.passphrase);
        await rp.tid('open').click();
      }
    }
    const opened = await rp.waitOpened({ since });
    assert.notEqual(opened.status?.state, 'error', await rp.describe());
    await rp.selectQubes(null);
    const expected = expectedFiles(b);
    const r = await rp.runAndCollect('restore', { expectNames: Object.keys(expected) });
    const ctx = await rp.describe();
    assert.equal(r.final.state, 'done', ctx);
    assertFilesMatch(r.files, expected, { context: ctx });
    await rp.page.close();
  });
});

describe('no network from the page', () => {
  let proxy, browser;
  before(async () => {
    proxy = await startTrapProxy();
    browser = await launchChromium({ proxyPort: proxy.port });
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
  });

  async function recorder(page) {
    const seen = [];
    const ctx = page.context();
    ctx.on('request', (r) => seen.push({ via: 'request', url: r.url() }));
    ctx.on('requestfailed', (r) => seen.push({ via: 'requestfailed', url: r.url(), failure: r.failure()?.errorText }));
    page.on('websocket', (w) => seen.push({ via: 'websocket', url: w.url() }));
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on('Network.requestWillBeSent', (e) => seen.push({ via: 'cdp', url: e.request.url, id: e.requestId }));
    cdp.on('Network.webSocketCreated', (e) => seen.push({ via: 'cdp-ws', url: e.url }));
    cdp.on('Network.loadingFailed', (e) => seen.push({ via: 'cdp-failed', id: e.requestId, blockedReason: e.blockedReason, error: e.errorText }));
    return seen;
  }
  const isLocal = (u) => /^(file|blob|data):/i.test(u || '');

  it('makes no network request during a full restore', async () => {
    const b = pick('gzip', 'pax');
    const page = await browser.context.newPage();
    const seen = await recorder(page);
    const rp = new RescuePage(page);
    await page.goto(PAGE_URL);
    await rp.installStateRecorder();
    await rp.openBackup(b.path, b.passphrase);
    await rp.selectQubes(null);
    const expected = expectedFiles(b);
    const r = await rp.runAndCollect('restore', { expectNames: Object.keys(expected) });
    assert.equal(r.final.state, 'done', await rp.describe());
    assertFilesMatch(r.files, expected, { context: await rp.describe() });
    const urls = seen.filter((s) => s.url !== undefined);
    const remote = urls.filter((s) => !isLocal(s.url));
    log(`${urls.length} requests recorded (schemes: ${[...new Set(urls.map((s) => s.url.split(':')[0]))]}); ` +
      `trap proxy: ${proxy.pageHits().length} page-attributable, ${proxy.browserHits().length} from Chromium's own services (ignored)`);
    assert.deepEqual(remote, [], 'non-local requests during restore');
    assert.deepEqual(proxy.pageHits(), [], 'the trap proxy saw network traffic');
    await page.close();
  });

  it('blocks a deliberate fetch, WebSocket and image by CSP (page and worker)', async () => {
    const page = await browser.context.newPage();
    const seen = await recorder(page);
    await page.goto(PAGE_URL);
    const res = await page.evaluate(async () => {
      const violations = [];
      document.addEventListener('securitypolicyviolation', (e) => violations.push({ where: 'page', directive: e.effectiveDirective || e.violatedDirective, blocked: e.blockedURI }));
      const out = { violations };
      try { const r = await fetch('https://example.com/'); out.fetch = `resolved ${r.status}`; } catch (e) { out.fetch = `rejected: ${e}`; }
      try {
        out.ws = await new Promise((res) => {
          const ws = new WebSocket('wss://example.com/'); ws.onopen = () => res('open'); ws.onerror = () => res('error');
          setTimeout(() => res('timeout'), 3000);
        });
      } catch (e) { out.ws = `threw: ${e.name}`; }
      out.img = await new Promise((res) => { const i = new Image(); i.onload = () => res('loaded'); i.onerror = () => res('error'); i.src = 'https://example.com/x.png'; setTimeout(() => res('timeout'), 3000); });
      // A classic Blob worker inherits the page CSP.
      try {
        const src = `self.addEventListener('securitypolicyviolation', e => postMessage({v: e.effectiveDirective || e.violatedDirective, b: e.blockedURI}));
          fetch('https://example.com/w').then(r => postMessage({fetch: 'resolved ' + r.status}), e => postMessage({fetch: 'rejected: ' + e}));`;
        const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
        out.worker = await new Promise((res) => {
          const msgs = []; w.onmessage = (e) => { msgs.push(e.data); };
          w.onerror = (e) => msgs.push({ error: e.message || 'error event' });
          setTimeout(() => res(msgs), 2000);
        });
        w.terminate();
      } catch (e) { out.worker = [{ threw: String(e) }]; }
      await new Promise((r) => setTimeout(r, 300));
      return out;
    });
    log(JSON.stringify(res));
    assert.match(res.fetch, /^rejected/, 'fetch to https://example.com was not blocked');
    assert.notEqual(res.ws, 'open', 'WebSocket opened');
    assert.notEqual(res.img, 'loaded', 'remote image loaded');
    assert.ok(res.violations.some((v) => v.directive === 'connect-src' && /example\.com/.test(v.blocked)), `no connect-src securitypolicyviolation: ${JSON.stringify(res.violations)}`);
    assert.ok(res.violations.some((v) => v.directive === 'img-src'), `no img-src violation: ${JSON.stringify(res.violations)}`);
    const wf = res.worker.find((m) => m.fetch);
    assert.ok(wf && /^rejected/.test(wf.fetch), `worker fetch not blocked: ${JSON.stringify(res.worker)}`);
    assert.deepEqual(proxy.hits.filter((h) => /example\.com/.test(h.line)), [], 'a blocked request still reached the network');
    assert.deepEqual(proxy.pageHits(), [], 'the trap proxy saw network traffic');
    // Any request DevTools saw for example.com must have been blocked by CSP, not sent.
    const failedIds = new Map(seen.filter((s) => s.via === 'cdp-failed').map((s) => [s.id, s]));
    for (const s of seen.filter((x) => x.via === 'cdp' && !isLocal(x.url))) {
      const f = failedIds.get(s.id);
      assert.ok(f && /csp/i.test(`${f.blockedReason} ${f.error}`), `request ${s.url} not blocked by CSP: ${JSON.stringify(f)}`);
    }
    await page.close();
  });
});
