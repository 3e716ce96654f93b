// WebKitGTK (Safari's engine): WebKitWebDriver driving MiniBrowser under xvfb-run, default
// settings (no allow-file-access flags), with a page object for the test contract.
// MiniBrowser saves a download straight into $HOME (no dialog under automation), so the driver
// runs with HOME set to a fresh folder: a download is complete when its file is there at its
// expected size and no other file is still growing. MiniBrowser lists every download in its
// window, which shrinks the page's view until clicks miss: each load() starts a fresh browser.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PAGE_URL, STATE_RECORDER, tempDir, rmrf, sleep, waitFor } from './common.mjs';
import { inspectDownload } from './inspect.mjs';
import { Session, freePort } from './webdriver.mjs';

export const WEBKIT_DRIVER = process.env.WEBKIT_DRIVER || '/usr/bin/WebKitWebDriver';
export const MINIBROWSER = process.env.MINIBROWSER || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';


/** WebKitWebDriver (in its own X server) and a MiniBrowser session; `newSession()` replaces the
 *  session with a fresh browser; `close()` ends both and removes the download folder. */
export async function launchWebKit() {
  for (const bin of [WEBKIT_DRIVER, MINIBROWSER]) if (!existsSync(bin)) throw new Error(`${bin} missing (apt-get install webkit2gtk-driver libwebkit2gtk-4.1-0 xvfb)`);
  const home = await tempDir('webkit-home');
  const port = await freePort();
  // Its own process group, so that stopping it ends xvfb-run, Xvfb, the driver and the browser.
  const proc = spawn('xvfb-run', ['-a', '-s', '-screen 0 1400x1100x24', WEBKIT_DRIVER, `--port=${port}`, '--host=127.0.0.1'],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, HOME: home } });
  const logs = [];
  proc.stdout.on('data', (d) => logs.push(d.toString()));
  proc.stderr.on('data', (d) => logs.push(d.toString()));
  const stop = async () => {
    try { process.kill(-proc.pid, 'SIGTERM'); } catch {}
    await sleep(300);
    try { process.kill(-proc.pid, 'SIGKILL'); } catch {}
  };
  const base = `http://127.0.0.1:${port}`;
  const wk = {
    session: null, logs, dl: home, version: null,
    async newSession() {
      if (wk.session) await wk.session.quit();
      wk.session = await Session.create(base, {
        browserName: 'MiniBrowser',
        'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
      });
      wk.version = wk.session.capabilities.browserVersion;
      // Room for the page: in a small window the sticky status line covers what a click aims at.
      await wk.session.cmd('POST', '/window/rect', { width: 1280, height: 1024 }).catch(() => {});
      return wk.session;
    },
    async close() { await wk.session?.quit(); await stop(); await rmrf(home); },
  };
  try {
    await waitFor(async () => {
      try { return (await fetch(`${base}/status`)).ok; } catch { return false; }
    }, { timeout: 30000, describe: () => logs.join('').slice(-2000) });
    await wk.newSession();
  } catch (e) {
    await stop();
    await rmrf(home);
    throw e;
  }
  return wk;
}

/** The downloads in MiniBrowser's $HOME (its dot-folders are its own). */
function downloads(dir) {
  return readdirSync(dir).filter((f) => !f.startsWith('.') && statSync(join(dir, f)).isFile());
}

/** Page object over one WebKit session (see launchWebKit); load() starts every case afresh. */
export class WebKitRescuePage {
  constructor(wk) { this.s = wk.session; this.wk = wk; this.dl = wk.dl; }

  async status() {
    return this.s.exec(`const el = document.querySelector('[data-testid="status"]');
      return { now: el && { state: el.getAttribute('data-state'), error: el.getAttribute('data-error'), text: (el.textContent||'').trim().slice(0,500) }, log: window.__e2eStates || [] };`);
  }

  async footer() { return this.s.exec(`return document.getElementById('env-info').textContent;`); }

  async describe() {
    let st;
    try { st = await this.status(); st = { now: st.now, transitions: st.log.map((x) => [x.state, x.error]) }; } catch (e) { st = String(e); }
    let files = [];
    try { files = downloads(this.dl); } catch {}
    return `${JSON.stringify(st)}\nfiles in download dir: ${files}\nwebkit: ${this.wk.logs.join('').slice(-600)}`;
  }

  /** Empty the download folder, start a fresh browser, load the page (`query`, by default
   *  $QR_PAGE_QUERY: e.g. '?reads=worker' forces the read path that fails here), wait until Open
   *  is enabled. */
  async load(query = process.env.QR_PAGE_QUERY || '') {
    for (const f of downloads(this.dl)) await rmrf(join(this.dl, f));
    this.s = await this.wk.newSession();
    await this.s.navigate(PAGE_URL + query);
    await this.s.exec(STATE_RECORDER);
    await this.waitEnabled('open', 60000);
  }

  // A WebDriver click on a disabled button is silently lost in WebKit: wait until it is enabled.
  async waitEnabled(testid, timeout = 60000) {
    await waitFor(async () => this.s.exec(`const b = document.querySelector('[data-testid="${testid}"]'); return !!b && !b.disabled;`),
      { timeout, interval: 200, describe: () => this.describe() });
  }

  // A real click at the element's centre, scrolled there first (off the bottom, the sticky status
  // line would take it).
  async click(css) {
    await this.s.exec(`document.querySelector(${JSON.stringify(css)}).scrollIntoView({ block: 'center' });`);
    try {
      await this.s.click(await this.s.find(css));
    } catch (e) {
      const where = await this.s.exec(`const el = document.querySelector(${JSON.stringify(css)}); const r = el.getBoundingClientRect();
        const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
        return { rect: [r.x, r.y, r.width, r.height], disabled: el.disabled, hiddenStep: !!el.closest('[hidden]'), view: [innerWidth, innerHeight, scrollY], top: top && top.outerHTML.slice(0, 200) };`);
      throw new Error(`${e.message}\n${css}: ${JSON.stringify(where)}`);
    }
  }

  async qubeNames() {
    return this.s.exec(`return [...document.querySelectorAll('[data-testid="qube-row"]')].map((e) => e.getAttribute('data-qube'));`);
  }

  /** Clicks `testid` and waits until qubes are listed or the status is an error: { ms, status, qubes }. */
  async openWith(testid, { timeout = 180000 } = {}) {
    const since = (await this.status()).log.length;
    const t0 = Date.now();
    await this.waitEnabled(testid);
    await this.click(`[data-testid="${testid}"]`);
    await waitFor(async () => {
      const st = await this.status();
      if (st.log.slice(since).some((x) => x.state === 'error')) return true;
      if (st.now?.state === 'working') return false;
      return (await this.qubeNames()).length > 0;
    }, { timeout, interval: 200, describe: () => this.describe() });
    const st = (await this.status()).now;
    return { ms: Date.now() - t0, status: st, qubes: st?.state === 'error' ? [] : await this.qubeNames() };
  }

  /** Choose the file (its path sent to the file input), type the passphrase, Open. */
  async open(path, passphrase, opts) {
    await this.s.sendKeys(await this.s.find('[data-testid="backup-file"]'), path);
    await this.s.sendKeys(await this.s.find('[data-testid="passphrase"]'), passphrase);
    return this.openWith('open', opts);
  }

  async selectAll() {
    for (const q of await this.qubeNames()) {
      const box = `[data-testid="qube-row"][data-qube="${q}"] [data-testid="select"]`;
      if (!(await this.s.selected(await this.s.find(box)))) await this.click(box);
    }
  }

  /**
   * Click `restore` or `verify`, wait for done|error; then wait for the expected downloads
   * (`expected`: { name: { size? } }) at their size, until no file grows for a second, and
   * inspect everything in the download folder. Returns { final, ms, files }.
   */
  /** The archive the page lists after a restore, as `expected` for runAndCollect: {name: {size}}. */
  async archiveOffered() {
    const a = await this.s.exec(`const li = document.querySelector('[data-testid="archive"]');
      return li && { name: li.querySelector('a').textContent, size: Number(li.dataset.bytes) };`);
    return a ? { [a.name]: { size: a.size } } : {};
  }

  async runAndCollect(button, { expected = {}, timeout = 600000, output = 'download' } = {}) {
    // The output is chosen explicitly: the page's default depends on the selection.
    if (button === 'restore') await this.click(`[data-testid="output-${output}"]`);
    const since = (await this.status()).log.length;
    const t0 = Date.now();
    await this.waitEnabled(button);
    await this.click(`[data-testid="${button}"]`);
    const isEnd = (x) => x.state === 'done' || x.state === 'error';
    await waitFor(async () => (await this.status()).log.slice(since).find(isEnd), { timeout, interval: 200, describe: () => this.describe() });
    const final = (await this.status()).log.slice(since).find(isEnd);
    const ms = Date.now() - t0;
    if (output === 'archive') expected = await this.archiveOffered();
    const names = Object.keys(expected);
    const ready = () => {
      const here = downloads(this.dl);
      return names.every((n) => here.includes(n) && (expected[n].size === undefined || statSync(join(this.dl, n)).size === expected[n].size));
    };
    await waitFor(ready, { timeout: 60000, interval: 200 }).catch(() => {});
    const sizes = () => JSON.stringify(downloads(this.dl).map((f) => [f, statSync(join(this.dl, f)).size]));
    for (let before = sizes(); ; ) { await sleep(1000); const now = sizes(); if (now === before) break; before = now; }
    const files = {};
    for (const f of downloads(this.dl)) files[f] = await inspectDownload(join(this.dl, f), f);
    return { final, ms, files };
  }
}
