// A minimal W3C WebDriver client (enough to drive Firefox ESR via geckodriver)
// so the Firefox test needs no Python/Selenium and runs under node --test.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { sleep, waitFor } from './common.mjs';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export function findGeckodriver() {
  const cands = [process.env.GECKODRIVER, join(process.env.CARGO_HOME || join(homedir(), '.cargo'), 'bin', 'geckodriver')];
  try { cands.push(execFileSync('sh', ['-c', 'command -v geckodriver'], { encoding: 'utf8' }).trim()); } catch {}
  return cands.find((p) => p && existsSync(p));
}

export async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

export async function startGeckodriver() {
  const bin = findGeckodriver();
  if (!bin) throw new Error('geckodriver not found (cargo install --locked geckodriver)');
  const port = await freePort();
  const proc = spawn(bin, ['--port', String(port), '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs = [];
  proc.stdout.on('data', (d) => logs.push(d.toString()));
  proc.stderr.on('data', (d) => logs.push(d.toString()));
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    try { return (await fetch(`${base}/status`)).ok; } catch { return false; }
  }, { timeout: 20000, describe: () => logs.join('').slice(-2000) });
  return {
    base, logs, proc,
    async stop() { proc.kill('SIGTERM'); await sleep(300); if (proc.exitCode === null) proc.kill('SIGKILL'); },
  };
}

export class Session {
  static async create(base, capabilities) {
    const r = await call(base, 'POST', '/session', { capabilities: { alwaysMatch: capabilities } });
    const s = new Session();
    s.base = base; s.id = r.sessionId; s.capabilities = r.capabilities;
    return s;
  }
  cmd(method, path, body) { return call(this.base, method, `/session/${this.id}${path}`, body); }
  navigate(url) { return this.cmd('POST', '/url', { url }); }
  async find(css) { return (await this.cmd('POST', '/element', { using: 'css selector', value: css }))[ELEMENT]; }
  async findAll(css) { return (await this.cmd('POST', '/elements', { using: 'css selector', value: css })).map((e) => e[ELEMENT]); }
  click(el) { return this.cmd('POST', `/element/${el}/click`, {}); }
  clear(el) { return this.cmd('POST', `/element/${el}/clear`, {}); }
  sendKeys(el, text) { return this.cmd('POST', `/element/${el}/value`, { text }); }
  attr(el, name) { return this.cmd('GET', `/element/${el}/attribute/${name}`); }
  selected(el) { return this.cmd('GET', `/element/${el}/selected`); }
  exec(script, args = []) { return this.cmd('POST', '/execute/sync', { script, args }); }
  /** script gets its callback as the last argument */
  execAsync(script, args = []) { return this.cmd('POST', '/execute/async', { script, args }); }
  quit() { return call(this.base, 'DELETE', `/session/${this.id}`).catch(() => {}); }
}

async function call(base, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok || json.value?.error) {
    const e = json.value || {};
    throw new Error(`WebDriver ${method} ${path}: ${e.error || res.status} ${e.message || ''}`.trim());
  }
  return json.value;
}
