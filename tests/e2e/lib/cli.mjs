// The native CLI (`qubes-rescue`) as the reference the page is compared with: runs a command
// and reads the error class from its stderr line `qubes-rescue: error[<class>]: …` and its exit
// code (README, "CLI": the exit code tells the class).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './common.mjs';

export const CLI = process.env.QR_CLI || join(REPO, 'target', 'debug', 'qubes-rescue');

/** Exit code of each error class (README's table; part of the CLI contract). */
export const EXIT_CODES = {
  'wrong-passphrase': 10, tampered: 11, truncated: 12, unsupported: 13,
  'not-a-backup': 14, 'unsafe-params': 15, 'unsafe-path': 16, 'not-found': 3, io: 1,
};

/**
 * Run `qubes-rescue <args>` with the passphrase in $QUBES_RESCUE_PASSPHRASE.
 * Returns { code, classes (every error[...] on stderr, in order), cls (the first one, or null),
 * stderr, stdout, ms }.
 */
export function runCli(args, passphrase, { timeout = 120000 } = {}) {
  const t0 = Date.now();
  const r = spawnSync(CLI, args, {
    env: { ...process.env, QUBES_RESCUE_PASSPHRASE: passphrase },
    stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout, maxBuffer: 64 << 20,
  });
  if (r.error) throw new Error(`${CLI} ${args.join(' ')}: ${r.error.message}`);
  const classes = [...(r.stderr || '').matchAll(/^qubes-rescue: error\[([a-z-]+)\]/gm)].map((m) => m[1]);
  return { code: r.status, signal: r.signal, classes, cls: classes[0] ?? null, stderr: r.stderr || '', stdout: r.stdout || '', ms: Date.now() - t0 };
}

/** The class an exit code stands for (null for 0, undefined for an unknown code). */
export function classOfExit(code) {
  if (code === 0) return null;
  return Object.keys(EXIT_CODES).find((k) => EXIT_CODES[k] === code);
}
