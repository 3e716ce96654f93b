// bench-browse.mjs BACKUP PASSPHRASE QUBE FILE FOLDER OUT
// Times the page's file browser in headless Chromium: Open → Browse QUBE (restores it into the
// page, nothing downloaded) → list FOLDER → download FILE (saved to OUT). Prints one JSON
// object on stdout. Used by bench/browse-vs-recipe.sh; no assertions about time.
import { launchChromium, RescuePage } from './lib/chromium.mjs';

const [backup, passphrase, qube, file, folder, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node bench-browse.mjs BACKUP PASSPHRASE QUBE FILE FOLDER OUT');
  process.exit(2);
}
const browser = await launchChromium();
const row = (p) => `[data-testid="fs-entry"][data-path="${p}"]`;
let result;
try {
  const rp = await RescuePage.open(browser.context);
  rp.page.removeAllListeners('download');
  const t0 = Date.now();
  const opened = await rp.openBackup(backup, passphrase, { timeout: 30 * 60e3 });
  if (opened.status?.state === 'error') throw new Error(`Open failed: ${await rp.describe()}`);
  const openMs = Date.now() - t0;
  const t1 = Date.now();
  await rp.page.locator(`[data-testid="qube-row"][data-qube="${qube}"] [data-testid="browse"]`).click();
  await rp.page.locator('[data-testid="fs-entry"]').first().waitFor({ timeout: 60 * 60e3 });
  const browseMs = Date.now() - t1;
  // Walk down to FOLDER, timing its listing alone.
  const parts = folder.split('/').filter(Boolean);
  let at = '', listMs = 0, entries = 0;
  for (const p of parts) {
    at += '/' + p;
    const t = Date.now();
    await rp.page.locator(row(at)).click();
    await rp.page.waitForFunction((prefix) => {
      const rows = document.querySelectorAll('[data-testid="fs-entry"]');
      const s = document.querySelector('[data-testid="browse-status"]');
      return rows.length && rows[0].dataset.path.startsWith(prefix + '/') && s.dataset.state !== 'working';
    }, at, { timeout: 10 * 60e3 });
    listMs = Date.now() - t;
    entries = await rp.page.locator('[data-testid="fs-entry"]').count();
  }
  // Back to the file's folder, then download it.
  const dir = file.slice(0, file.lastIndexOf('/')) || '/';
  const name = file.slice(file.lastIndexOf('/') + 1);
  await rp.page.evaluate(() => window.scrollTo(0, 0));
  const crumbs = dir.split('/').filter(Boolean);
  await rp.tid('breadcrumbs').getByRole('button', { name: crumbs[crumbs.length - 1], exact: true }).click();
  await rp.page.locator(row(file)).waitFor({ timeout: 60000 });
  const t2 = Date.now();
  const [dl] = await Promise.all([rp.page.waitForEvent('download', { timeout: 60 * 60e3 }), rp.page.locator(`${row(file)} [data-testid="fs-download"]`).click()]);
  await dl.saveAs(out);
  const fileMs = Date.now() - t2;
  result = { openMs, browseMs, listMs, entries, fileMs, name };
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
