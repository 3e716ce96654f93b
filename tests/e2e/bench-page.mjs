// bench-page.mjs BACKUP PASSPHRASE QUBE [MANIFEST]
// Times the page in headless Chromium: Open (passphrase) → select QUBE → Restore → data-state=done,
// then until every download is written. Prints one JSON object on stdout. Used by
// bench/page-vs-recipe.sh; no assertions about time.
import { launchChromium, RescuePage } from './lib/chromium.mjs';
import { readFileSync, existsSync } from 'node:fs';

const [backup, passphrase, qube, manifestPath] = process.argv.slice(2);
if (!backup || passphrase === undefined || !qube) {
  console.error('usage: node bench-page.mjs BACKUP PASSPHRASE QUBE [MANIFEST]');
  process.exit(2);
}
const browser = await launchChromium();
let out;
try {
  const t0 = Date.now();
  const rp = await RescuePage.open(browser.context);
  const bootMs = Date.now() - t0;
  // CPU time of the page's renderer process (its workers run there too), as in PERF-BASELINE.md
  const cdp = await browser.context.newCDPSession(rp.page);
  await cdp.send('Performance.enable');
  const cpu = async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'ProcessTime')?.value;
  const cpu0 = await cpu();
  const opened = await rp.openBackup(backup, passphrase, { timeout: 30 * 60e3 });
  if (opened.status?.state === 'error') throw new Error(`Open failed: ${await rp.describe()}`);
  await rp.selectQubes([qube]);
  const tClick = Date.now();
  const since = await rp.mark();
  await rp.tid('restore').click();
  const final = await rp.waitForState(['done', 'error'], { since, timeout: 60 * 60e3 });
  const restoreMs = Date.now() - tClick;
  const rendererCpuS = (await cpu()) - cpu0;
  const files = await rp.collectDownloads({ quietMs: 1000 });
  const downloadsMs = Date.now() - tClick;
  const stats = await rp.page.evaluate(() => {
    const s = (window.qubesRescue && window.qubesRescue.stats) || window.__qubesRescueStats || null;
    return s ? JSON.parse(JSON.stringify(s)) : null;
  });
  let check = null;
  if (manifestPath && existsSync(manifestPath)) {
    const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const q = m.backups[0].qubes.find((x) => x.name === qube);
    check = {};
    for (const f of q?.files || []) {
      const name = `${qube}-${f.path}`;
      const g = files[name];
      check[name] = g ? (g.sha256 === f.sha256 ? 'byte-exact' : `DIFFERS (got ${g.sha256})`) : 'missing';
    }
  }
  out = {
    bootMs, openMs: opened.ms, restoreMs, downloadsMs, final, rendererCpuS,
    files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, { size: v.size, sha256: v.sha256, error: v.error }])),
    check, stats, hardwareConcurrency: await rp.page.evaluate(() => navigator.hardwareConcurrency),
  };
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
