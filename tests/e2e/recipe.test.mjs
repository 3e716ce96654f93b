// The page's "Restore by hand" section (shown without scripts too) must be a recipe that works:
// its shell text, taken from the built page, restores the demo backup with the real scrypt, tar
// and gzip, and every volume comes out byte-exact (sha256 from the manifest).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { PAGE } from './lib/common.mjs';
import { pick } from './lib/manifest.mjs';

const unescape = (s) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');

describe('the page\'s "Restore by hand" recipe', () => {
  it('restores the demo backup byte-exact with the real tools, as written in the page', () => {
    const html = readFileSync(PAGE, 'utf8');
    const section = html.match(/<details id="by-hand"[\s\S]*?<\/details>/);
    assert.ok(section, 'the page has no "Restore by hand" section');
    assert.ok(/<noscript>[\s\S]*href="#by-hand"/.test(html), 'the <noscript> text does not point to it');
    const pre = section[0].match(/<pre>([\s\S]*?)<\/pre>/);
    assert.ok(pre, 'the section has no recipe');
    const demo = pick((b) => b.file === 'demo.bin');
    let script = unescape(pre[1]);
    // The two lines a person edits: where the backup is, and typing the passphrase.
    assert.ok(script.includes('/path/to/qubes-backup-file') && script.includes("read -rs -p 'Passphrase: ' P"), script);
    script = script.replace('/path/to/qubes-backup-file', demo.path).replace("read -rs -p 'Passphrase: ' P; echo", 'P=$QR_RECIPE_PASS');
    const dir = mkdtempSync(join(tmpdir(), 'qr-recipe-'));
    try {
      writeFileSync(join(dir, 'recipe.sh'), script);
      const r = spawnSync('bash', ['recipe.sh'], { cwd: dir, encoding: 'utf8', env: { ...process.env, QR_RECIPE_PASS: demo.passphrase } });
      assert.equal(r.status, 0, `the recipe failed:\n${r.stderr}`);
      let checked = 0;
      for (const q of demo.qubes) {
        for (const f of q.files) {
          if (f.role !== 'volume' || !f.sha256) continue;
          const got = createHash('sha256').update(readFileSync(join(dir, 'restore', f.archive_name))).digest('hex');
          assert.equal(got, f.sha256, f.archive_name);
          checked++;
        }
      }
      assert.ok(checked > 0, 'no volume checked');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
