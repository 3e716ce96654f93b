// Chromium (Debian package) driven by playwright-core, plus a page object for
// the qubes-rescue TEST CONTRACT (issue 3, item 8).
import { chromium } from 'playwright-core';
import net from 'node:net';
import { PAGE_URL, STATE_RECORDER, tempDir, rmrf, sleep, waitFor } from './common.mjs';
import { inspectDownload } from './inspect.mjs';

export const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * A trap proxy: Chromium is told to send every http(s)/ws(s) request through
 * it, so any network attempt that gets past the page's CSP (from the page, a
 * worker, or the browser itself) is seen here at the socket level.
 * It answers nothing useful (502) and records the request line.
 */
const BROWSER_SERVICE = /^(update\.googleapis\.com|accounts\.google\.com|clients\d*\.google\.com|[a-z0-9-]+\.gvt1\.com|optimizationguide-pa\.googleapis\.com|safebrowsing\.googleapis\.com|content-autofill\.googleapis\.com)$/;
function hostOf(line) {
  const m = line.match(/^CONNECT ([^:\s]+)/) || line.match(/^\w+ \w+:\/\/([^/:\s]+)/);
  return m ? m[1].toLowerCase() : '';
}
export async function startTrapProxy() {
  const hits = [];
  const server = net.createServer((sock) => {
    let head = '';
    sock.on('data', (d) => {
      if (head.length < 4096) head += d.toString('latin1');
      if (head.includes('\r\n')) {
        hits.push({ at: Date.now(), line: head.split('\r\n')[0] });
        sock.end('HTTP/1.1 502 Blocked by qubes-rescue e2e\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      }
    });
    sock.on('error', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    hits,
    port: server.address().port,
    /** Hits other than Chromium's own service traffic (updater, sign-in), which
     *  Debian's Chromium sends despite --disable-background-networking and
     *  which no page can cause. */
    pageHits: () => hits.filter((h) => !BROWSER_SERVICE.test(hostOf(h.line))),
    browserHits: () => hits.filter((h) => BROWSER_SERVICE.test(hostOf(h.line))),
    close: () => new Promise((r) => server.close(r)),
  };
}

export async function launchChromium({ proxyPort } = {}) {
  const userDataDir = await tempDir('chromium-profile');
  const downloadsPath = await tempDir('chromium-dl');
  const args = [...CHROMIUM_ARGS];
  if (proxyPort) args.push(`--proxy-server=http://127.0.0.1:${proxyPort}`, '--proxy-bypass-list=<-loopback>');
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_BIN,
    headless: true,
    args,
    acceptDownloads: true,
    downloadsPath,
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      await rmrf(userDataDir);
      await rmrf(downloadsPath);
    },
  };
}

/** Chromium with an off-the-record context (a private window: Blobs stay in memory, nothing
 *  of the profile is written to disk), downloads accepted. */
export async function launchChromiumOffTheRecord() {
  const downloadsPath = await tempDir('chromium-otr-dl');
  const browser = await chromium.launch({ executablePath: CHROMIUM_BIN, headless: true, args: [...CHROMIUM_ARGS], downloadsPath });
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  return {
    context,
    offTheRecord: true,
    async close() {
      await browser.close().catch(() => {});
      await rmrf(downloadsPath);
    },
  };
}

/** Page object for the test contract. */
export class RescuePage {
  constructor(page) {
    this.page = page;
    this.console = [];
    this.downloads = new Map(); // suggested filename -> Promise<{sha256,size}|{error}>
    this.downloadOrder = [];
    page.on('console', (m) => this.console.push(`[console.${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => this.console.push(`[pageerror] ${e.message}`));
    page.on('crash', () => this.console.push('[crash] page crashed'));
    page.on('worker', (w) => this.console.push(`[worker] started ${w.url().slice(0, 60)}`));
    page.on('download', (d) => this._onDownload(d));
  }

  static async open(context, url = PAGE_URL) {
    const page = await context.newPage();
    const rp = new RescuePage(page);
    await page.goto(url, { waitUntil: 'load' });
    await rp.installStateRecorder();
    await rp.waitReady();
    return rp;
  }

  /** The page boots (compiles wasm, starts workers) before Open is enabled. */
  async waitReady(timeout = 60000) {
    await this.page.locator('[data-testid="open"]:not([disabled])').waitFor({ state: 'attached', timeout })
      .catch(async (e) => { throw new Error(`page never became ready: ${e.message}\n${await this.describe()}`); });
  }

  tid(id) { return this.page.getByTestId(id); }

  /** Records every data-state/data-error transition of `status` (see STATE_RECORDER). */
  async installStateRecorder() {
    await this.page.evaluate(`(() => {${STATE_RECORDER}})()`);
  }

  async states() { return this.page.evaluate(() => window.__e2eStates || []); }
  async status() {
    return this.page.evaluate(() => {
      const el = document.querySelector('[data-testid="status"]');
      return el ? { state: el.getAttribute('data-state'), error: el.getAttribute('data-error'), text: (el.textContent || '').trim().slice(0, 500) } : null;
    });
  }
  async mark() { return (await this.states()).length; }

  /** Wait for one of `wanted` states recorded at or after index `since`. */
  async waitForState(wanted, { since = 0, timeout = 120000 } = {}) {
    const want = Array.isArray(wanted) ? wanted : [wanted];
    await waitFor(async () => {
      const log = await this.states();
      return log.slice(since).find((s) => want.includes(s.state));
    }, { timeout, interval: 200, describe: () => this.describe() });
    const log = await this.states();
    return log.slice(since).find((s) => want.includes(s.state));
  }

  async describe() {
    let st = null, log = [];
    try { st = await this.status(); log = await this.states(); } catch (e) { st = `unavailable: ${e.message}`; }
    return `status=${JSON.stringify(st)} transitions=${JSON.stringify(log.map((s) => [s.state, s.error]))}\n` +
      `downloads so far: ${JSON.stringify(this.downloadOrder)}\n` + this.console.slice(-40).join('\n');
  }

  async chooseBackup(path) { await this.tid('backup-file').setInputFiles(path); }

  /** Choose the file, type the passphrase, click Open; resolve when the qubes are listed (or error). */
  async openBackup(path, passphrase, { timeout = 120000 } = {}) {
    await this.chooseBackup(path);
    await this.tid('passphrase').fill(passphrase);
    const since = await this.mark();
    await this.tid('open').click();
    return this.waitOpened({ since, timeout });
  }

  /** Open is over when, after `since`, the status went to working and then left it (or shows an
   *  error); a page that never shows working counts as opened once qube rows are there. */
  async waitOpened({ since = 0, timeout = 120000 } = {}) {
    const t0 = Date.now();
    await waitFor(async () => {
      const tr = (await this.states()).slice(since);
      if (tr.some((s) => s.state === 'error')) return true;
      const w = tr.findIndex((s) => s.state === 'working');
      if (w >= 0) return tr.slice(w + 1).some((s) => s.state !== 'working');
      return Date.now() - t0 > 2000 && (await this.page.locator('[data-testid="qube-row"]').count()) > 0;
    }, { timeout, interval: 200, describe: () => this.describe() });
    const st = await this.status();
    return { ms: Date.now() - t0, status: st, qubes: st?.state === 'error' ? [] : await this.qubeNames() };
  }

  async qubeNames() {
    return this.page.locator('[data-testid="qube-row"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-qube')));
  }

  /** Check exactly the given qubes (all when names is null). */
  async selectQubes(names = null) {
    const all = await this.qubeNames();
    for (const q of all) {
      const box = this.page.locator(`[data-testid="qube-row"][data-qube="${q}"] [data-testid="select"]`);
      await box.setChecked(names === null || names.includes(q));
    }
    return all;
  }

  _onDownload(d) {
    const name = d.suggestedFilename();
    this.downloadOrder.push(name);
    const p = (async () => {
      const path = await d.path(); // waits for the download to finish
      if (!path) return { error: await d.failure() };
      const r = await inspectDownload(path, name);
      await d.delete().catch(() => {});
      return r;
    })().catch((e) => ({ error: String(e) }));
    if (this.downloads.has(name)) this.console.push(`[e2e] duplicate download name ${name}`);
    this.downloads.set(name, p);
  }

  /**
   * Click `restore` (or `verify`), wait for done|error, then for every
   * expected download to arrive (and a short quiet period for unexpected ones).
   * Returns { final, ms, files: {name: {sha256,size}|{error}} }.
   */
  async runAndCollect(button = 'restore', { expectNames = [], timeout = 600000, quietMs = 1500, output = 'download' } = {}) {
    // The output is chosen explicitly: the page's default depends on the selection.
    if (button === 'restore') await this.page.locator(`[data-testid="output-${output}"]`).check();
    const since = await this.mark();
    const t0 = Date.now();
    await this.tid(button).click();
    const final = await this.waitForState(['done', 'error'], { since, timeout });
    const ms = Date.now() - t0;
    const files = await this.collectDownloads({ expectNames, quietMs });
    return { final, ms, files, transitions: await this.states() };
  }

  /** Wait for the expected downloads (30 s grace), then a quiet period, then every download's
   *  hash: { name: {sha256,size,tar?}|{error} }. */
  async collectDownloads({ expectNames = [], quietMs = 1500 } = {}) {
    await waitFor(() => expectNames.every((n) => this.downloads.has(n)), {
      timeout: 30000, describe: () => `missing downloads ${expectNames.filter((n) => !this.downloads.has(n))}; got ${this.downloadOrder}`,
    }).catch(() => {});
    let n = -1;
    while (n !== this.downloads.size) { n = this.downloads.size; await sleep(quietMs); }
    const files = {};
    for (const [k, p] of this.downloads) files[k] = await p;
    return files;
  }
}
