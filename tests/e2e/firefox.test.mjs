// One full restore in Firefox ESR (headless) through geckodriver, with
// downloads saved by Firefox into a prefs-set folder (no download events in
// WebDriver: wait until the expected files exist and no .part is left).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { PAGE, PAGE_URL, tempDir, rmrf, sleep, waitFor } from './lib/common.mjs';
import { inspectDownload } from './lib/inspect.mjs';
import { startGeckodriver, Session } from './lib/webdriver.mjs';
import { pick, expectedFiles } from './lib/manifest.mjs';
import { assertFilesMatch } from './lib/assertions.mjs';

const FIREFOX_BIN = process.env.FIREFOX_BIN || '/usr/bin/firefox-esr';
const log = (...a) => console.log('   #', ...a);

const STATE_RECORDER = `
  const log = (window.__e2eStates = window.__e2eStates || []);
  const el = document.querySelector('[data-testid="status"]');
  if (el && !window.__e2eObserving) {
    window.__e2eObserving = true;
    const rec = () => {
      const s = { state: el.getAttribute('data-state'), error: el.getAttribute('data-error'), text: (el.textContent || '').trim().slice(0, 300) };
      const last = log[log.length - 1];
      if (!last || last.state !== s.state || last.error !== s.error) log.push(s);
    };
    rec();
    new MutationObserver(rec).observe(el, { attributes: true, attributeFilter: ['data-state', 'data-error'] });
  }
  return log.length;`;

describe('qubes-rescue page in Firefox ESR', () => {
  let gd, s, dl, profileNote = '';
  before(async () => {
    assert.ok(existsSync(PAGE), `page not built: ${PAGE}`);
    assert.ok(existsSync(FIREFOX_BIN), `${FIREFOX_BIN} missing`);
    dl = await tempDir('firefox-dl');
    gd = await startGeckodriver();
    s = await Session.create(gd.base, {
      browserName: 'firefox',
      acceptInsecureCerts: false,
      'moz:firefoxOptions': {
        binary: FIREFOX_BIN,
        args: ['-headless'],
        prefs: {
          'browser.download.folderList': 2,
          'browser.download.dir': dl,
          'browser.download.useDownloadDir': true,
          'browser.download.always_ask_before_handling_new_types': false,
          'browser.helperApps.neverAsk.saveToDisk': 'application/octet-stream,application/x-tar,application/xml,text/xml,text/plain,application/x-raw-disk-image',
          'browser.download.manager.showWhenStarting': false,
          'browser.download.alwaysOpenPanel': false,
          'browser.shell.checkDefaultBrowser': false,
          'datareporting.policy.dataSubmissionEnabled': false,
          'toolkit.telemetry.enabled': false,
          'app.update.auto': false,
          'network.captive-portal-service.enabled': false,
          'network.connectivity-service.enabled': false,
        },
        log: { level: 'info' },
      },
    });
    profileNote = `firefox ${s.capabilities.browserVersion}`;
    log(profileNote);
  });
  after(async () => {
    await s?.quit();
    await gd?.stop();
    await rmrf(dl);
  });

  async function status() {
    return s.exec(`const el = document.querySelector('[data-testid="status"]');
      return { now: el && { state: el.getAttribute('data-state'), error: el.getAttribute('data-error'), text: (el.textContent||'').trim().slice(0,500) }, log: window.__e2eStates || [] };`);
  }
  const describeAll = async () => `${JSON.stringify(await status().catch((e) => String(e)))}\nfiles in download dir: ${readdirSync(dl)}\ngeckodriver: ${gd.logs.join('').slice(-3000)}`;

  it('restores a gzip backup byte-exact (downloads via browser.download.dir)', { timeout: 15 * 60e3 }, async () => {
    const b = pick('gzip', 'pax-sparse');
    const expected = expectedFiles(b);
    await s.navigate(PAGE_URL);
    await s.exec(STATE_RECORDER);
    // The page compiles its wasm and starts workers before Open is enabled.
    await waitFor(async () => s.exec(`const b = document.querySelector('[data-testid="open"]'); return !!b && !b.disabled;`),
      { timeout: 60000, interval: 200, describe: describeAll });
    await s.sendKeys(await s.find('[data-testid="backup-file"]'), b.path);
    await s.sendKeys(await s.find('[data-testid="passphrase"]'), b.passphrase);
    const t0 = Date.now();
    await s.click(await s.find('[data-testid="open"]'));
    await waitFor(async () => {
      if ((await s.findAll('[data-testid="qube-row"]')).length) return true;
      return (await status()).now?.state === 'error';
    }, { timeout: 120000, interval: 250, describe: describeAll });
    const rows = await s.findAll('[data-testid="qube-row"]');
    assert.ok(rows.length > 0, `no qubes listed: ${await describeAll()}`);
    log(`opened in ${Date.now() - t0} ms, ${rows.length} qubes`);
    for (const row of await s.findAll('[data-testid="qube-row"] [data-testid="select"]')) {
      if (!(await s.selected(row))) await s.click(row);
    }
    const since = (await status()).log.length;
    const t1 = Date.now();
    await s.click(await s.find('[data-testid="restore"]'));
    await waitFor(async () => (await status()).log.slice(since).find((x) => x.state === 'done' || x.state === 'error'),
      { timeout: 10 * 60e3, interval: 250, describe: describeAll });
    const st = await status();
    const final = st.log.slice(since).find((x) => x.state === 'done' || x.state === 'error');
    assert.equal(final.state, 'done', await describeAll());
    // Firefox writes <name>.part (and may create the final name empty at start): wait until every
    // expected file is complete and no .part remains, then until sizes stop changing.
    const names = Object.keys(expected);
    await waitFor(() => {
      const here = readdirSync(dl);
      return names.every((n) => here.includes(n) && (expected[n].size === undefined || statSync(join(dl, n)).size === expected[n].size)) &&
        !here.some((f) => f.endsWith('.part'));
    }, { timeout: 10 * 60e3, interval: 250, describe: describeAll });
    await sleep(1000);
    log(`restore ${Date.now() - t1} ms, downloads: ${readdirSync(dl).join(', ')}`);
    const got = {};
    for (const f of readdirSync(dl)) got[f] = await inspectDownload(join(dl, f), f);
    assertFilesMatch(got, expected, { context: await describeAll() });
  });
});
