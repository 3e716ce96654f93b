// Two builds (different paths, different cargo target dirs) give a byte-identical page.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { E2E_DIR } from './lib/common.mjs';

it('two builds of the same sources give a byte-identical dist/qubes-rescue.html', { timeout: 60 * 60e3 }, () => {
  const r = spawnSync('bash', [join(E2E_DIR, 'determinism.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  for (const line of (r.stderr || '').split('\n').filter((l) => l.startsWith('determinism:'))) console.log('   #', line);
  assert.equal(r.status, 0, `determinism.sh failed (exit ${r.status}):\n${(r.stderr || '').slice(-4000)}`);
});
