// Issue 11 item 4, "for people, not just engines": the whole flow with the keyboard alone,
// labels and roles a screen reader announces (axe-core: no serious or critical violation, in
// every step and in dark mode), a layout usable at 375 px, and a status line that never covers
// content. Chromium (playwright-core), the built-in demo backup, default settings.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { PAGE, existsSync, sleep } from './lib/common.mjs';
import { launchChromium, RescuePage } from './lib/chromium.mjs';

const require = createRequire(import.meta.url);
const log = (...a) => console.log('   #', ...a);

/** axe-core's violations of impact serious or critical, as readable lines. */
async function seriousViolations(page) {
  const source = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  // Evaluated through the DevTools protocol, so the page's CSP (no foreign scripts) still holds for the page.
  await page.evaluate(source);
  const result = await page.evaluate(() => window.axe.run(document));
  assert.ok(result.passes.length > 10, `axe-core checked almost nothing (${result.passes.length} rules passed)`);
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
}

/** Presses Tab until `selector` has the focus; fails after `max` presses. */
async function tabTo(page, selector, max = 60) {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return i;
    await page.keyboard.press('Tab');
  }
  const at = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 120));
  assert.fail(`${selector} is not reachable with Tab (focus ended on ${at})`);
}

/** Opens the demo with the keyboard alone, then restores every qube with it. */
async function keyboardDemo(rp, afterOpen = async () => {}) {
  const page = rp.page;
  const since = await rp.mark();
  await tabTo(page, '#demo');
  await page.keyboard.press('Enter');
  await sleep(300);
  if (!(await page.locator('[data-testid="qube-row"]').count())) {
    await tabTo(page, '#passphrase');
    if (!(await page.locator('#passphrase').inputValue())) await page.keyboard.type('demo');
    await page.keyboard.press('Enter'); // submits the form: Open
  }
  const opened = await rp.waitOpened({ since });
  assert.notEqual(opened.status?.state, 'error', await rp.describe());
  await afterOpen();
  await tabTo(page, '#select-all');
  await page.keyboard.press('Space');
  assert.ok(await page.locator('#select-all').isChecked(), 'Space did not tick "select all"');
  await tabTo(page, '#restore');
  const run = await rp.mark();
  await page.keyboard.press('Enter');
  const final = await rp.waitForState(['done', 'error'], { since: run, timeout: 120000 });
  return { final, files: await rp.collectDownloads({ expectNames: [] }) };
}

describe('qubes-rescue page for people (keyboard, screen readers, small screens, dark mode)', () => {
  let browser;
  before(async () => {
    assert.ok(existsSync(PAGE), `page not built: ${PAGE} (run ./build.sh)`);
    browser = await launchChromium();
  });
  after(async () => { await browser?.close(); });

  it('restores the demo with the keyboard alone, and axe-core finds nothing serious at any step', async () => {
    const rp = await RescuePage.open(browser.context);
    try {
      const found = [];
      found.push(...(await seriousViolations(rp.page)).map((v) => `start: ${v}`));
      const r = await keyboardDemo(rp, async () => {
        found.push(...(await seriousViolations(rp.page)).map((v) => `opened: ${v}`));
      });
      assert.equal(r.final.state, 'done', await rp.describe());
      assert.ok(Object.keys(r.files).length > 0, 'nothing was downloaded');
      found.push(...(await seriousViolations(rp.page)).map((v) => `done: ${v}`));
      // Every result link is a focusable, named control.
      const unnamed = await rp.page.evaluate(() => [...document.querySelectorAll('#result-list a, #result-list button')]
        .filter((a) => !(a.textContent.trim() || a.getAttribute('aria-label'))).length);
      assert.equal(unnamed, 0, 'result links without a name');
      await rp.page.emulateMedia({ colorScheme: 'dark' });
      const bg = await rp.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      const [R, G, B] = bg.match(/\d+/g).map(Number);
      assert.ok(0.2126 * R + 0.7152 * G + 0.0722 * B < 80, `dark mode keeps a light background (${bg})`);
      found.push(...(await seriousViolations(rp.page)).map((v) => `dark: ${v}`));
      assert.deepEqual(found, [], 'axe-core: serious or critical violations');
    } finally {
      await rp.page.close().catch(() => {});
    }
  });

  it('is usable 375 px wide: nothing wider than the screen, and the status line covers nothing', async () => {
    const rp = await RescuePage.open(browser.context);
    try {
      await rp.page.setViewportSize({ width: 375, height: 740 });
      const r = await keyboardDemo(rp);
      assert.equal(r.final.state, 'done', await rp.describe());
      const layout = await rp.page.evaluate(() => {
        const wide = [...document.querySelectorAll('body *')]
          .filter((e) => e.offsetParent && !e.closest('.table-wrap, pre') && e.getBoundingClientRect().right > innerWidth + 1)
          .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''));
        const status = document.getElementById('status');
        const pos = getComputedStyle(status).position;
        // A fixed or sticky status line would sit over the content under it.
        return { scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 5), statusPosition: pos };
      });
      log(`375 px: page ${layout.scroll} px wide, status ${layout.statusPosition}`);
      assert.ok(layout.scroll <= 375, `the page scrolls sideways at 375 px (${layout.scroll} px): ${layout.wide.join(', ')}`);
      assert.ok(!['fixed', 'sticky'].includes(layout.statusPosition), `the status line is ${layout.statusPosition}`);
      assert.deepEqual(await seriousViolations(rp.page), [], 'axe-core at 375 px');
    } finally {
      await rp.page.close().catch(() => {});
    }
  });
});
