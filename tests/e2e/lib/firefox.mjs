// Firefox ESR (headless, geckodriver) with a page object for the test contract, for tests that
// drive many backups through one browser session. Downloads are saved by Firefox into a
// prefs-set folder (WebDriver has no download events): a download is complete when its file is
// there at its expected size and no `.part` file is left.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PAGE_URL, STATE_RECORDER, tempDir, rmrf, sleep, waitFor } from './common.mjs';
import { inspectDownload } from './inspect.mjs';
import { startGeckodriver, Session } from './webdriver.mjs';

export const FIREFOX_BIN = process.env.FIREFOX_BIN || '/usr/bin/firefox-esr';

/** The Firefox profile preferences of every Firefox test: downloads go to `dir` without a dialog. */
export function firefoxPrefs(dir) {
  return {
    'browser.download.folderList': 2,
    'browser.download.dir': dir,
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
  };
}

/** geckodriver + one Firefox session; `close()` ends both and removes the download folder. */
export async function launchFirefox() {
  const dl = await tempDir('firefox-dl');
  let gd;
  try { gd = await startGeckodriver(); } catch (e) { await rmrf(dl); throw e; }
  let s;
  try {
    s = await Session.create(gd.base, {
      browserName: 'firefox',
      acceptInsecureCerts: false,
      'moz:firefoxOptions': { binary: FIREFOX_BIN, args: ['-headless'], prefs: firefoxPrefs(dl), log: { level: 'info' } },
    });
  } catch (e) {
    await gd.stop();
    await rmrf(dl);
    throw e;
  }
  return {
    session: s, gd, dl, version: s.capabilities.browserVersion,
    async close() { await s.quit(); await gd.stop(); await rmrf(dl); },
  };
}

/** Page object over one Firefox session (see launchFirefox); load() starts every case afresh. */
export class FirefoxRescuePage {
  constructor(ff) { this.s = ff.session; this.gd = ff.gd; this.dl = ff.dl; }

  async status() {
    return this.s.exec(`const el = document.querySelector('[data-testid="status"]');
      return { now: el && { state: el.getAttribute('data-state'), error: el.getAttribute('data-error'), text: (el.textContent||'').trim().slice(0,500) }, log: window.__e2eStates || [] };`);
  }

  async describe() {
    let st;
    try { st = await this.status(); st = { now: st.now, transitions: st.log.map((x) => [x.state, x.error]) }; } catch (e) { st = String(e); }
    let files = [];
    try { files = readdirSync(this.dl); } catch {}
    return `${JSON.stringify(st)}\nfiles in download dir: ${files}\ngeckodriver: ${this.gd.logs.join('').slice(-600)}`;
  }

  /** Empty the download folder, load the page, wait until Open is enabled. */
  async load() {
    for (const f of readdirSync(this.dl)) await rmrf(join(this.dl, f));
    await this.s.navigate(PAGE_URL);
    await this.s.exec(STATE_RECORDER);
    await waitFor(async () => this.s.exec(`const b = document.querySelector('[data-testid="open"]'); return !!b && !b.disabled;`),
      { timeout: 60000, interval: 200, describe: () => this.describe() });
  }

  async qubeNames() {
    return this.s.exec(`return [...document.querySelectorAll('[data-testid="qube-row"]')].map((e) => e.getAttribute('data-qube'));`);
  }

  /** Choose the file, type the passphrase, click Open; resolves once qubes are listed or the
   *  status is an error: { ms, status, qubes }. */
  async open(path, passphrase, { timeout = 120000 } = {}) {
    await this.s.sendKeys(await this.s.find('[data-testid="backup-file"]'), path);
    await this.s.sendKeys(await this.s.find('[data-testid="passphrase"]'), passphrase);
    const since = (await this.status()).log.length;
    const t0 = Date.now();
    await this.s.click(await this.s.find('[data-testid="open"]'));
    await waitFor(async () => {
      const st = await this.status();
      if (st.log.slice(since).some((x) => x.state === 'error')) return true;
      if (st.now?.state === 'working') return false;
      return (await this.qubeNames()).length > 0;
    }, { timeout, interval: 200, describe: () => this.describe() });
    const st = (await this.status()).now;
    return { ms: Date.now() - t0, status: st, qubes: st?.state === 'error' ? [] : await this.qubeNames() };
  }

  /** Check every qube's box. */
  async selectAll() {
    for (const box of await this.s.findAll('[data-testid="qube-row"] [data-testid="select"]')) {
      if (!(await this.s.selected(box))) await this.s.click(box);
    }
  }

  /**
   * Click `restore` or `verify`, wait for done|error; then wait for the expected downloads
   * (`expected`: { name: { size? } }, at their size, no `.part` left; 60 s grace), a quiet second,
   * and inspect everything in the download folder. Returns { final, ms, files }.
   */
  async runAndCollect(button, { expected = {}, timeout = 600000, output = 'download' } = {}) {
    // The output is chosen explicitly: the page's default depends on the selection.
    if (button === 'restore') await this.s.click(await this.s.find(`[data-testid="output-${output}"]`));
    const since = (await this.status()).log.length;
    const t0 = Date.now();
    await this.s.click(await this.s.find(`[data-testid="${button}"]`));
    const isEnd = (x) => x.state === 'done' || x.state === 'error';
    await waitFor(async () => (await this.status()).log.slice(since).find(isEnd), { timeout, interval: 200, describe: () => this.describe() });
    const final = (await this.status()).log.slice(since).find(isEnd);
    const ms = Date.now() - t0;
    const names = Object.keys(expected);
    const ready = () => {
      const here = readdirSync(this.dl);
      return names.every((n) => here.includes(n) && (expected[n].size === undefined || statSync(join(this.dl, n)).size === expected[n].size)) &&
        !here.some((f) => f.endsWith('.part'));
    };
    await waitFor(ready, { timeout: 60000, interval: 200 }).catch(() => {});
    await sleep(1000);
    await waitFor(() => !readdirSync(this.dl).some((f) => f.endsWith('.part')), { timeout: 120000, interval: 250, describe: () => this.describe() });
    const files = {};
    for (const f of readdirSync(this.dl)) files[f] = await inspectDownload(join(this.dl, f), f);
    return { final, ms, files };
  }
}
