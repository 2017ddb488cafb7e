// The results page in Chromium: it lists the committed bench/results/*.json, draws one chart and one table per family
// of the lavapipe run with one bar per timed engine of each case and the report's own ratios, and says in its banner
// why a file it cannot read is not shown. Screenshot in test-results/.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Report } from '../../bench/report.js';
import { ROOT, SHOTS, startDemo, type Demo } from './browser.js';

const RESULTS = join(ROOT, 'bench', 'results');
const LAVAPIPE = 'mesa-software-llvmpipe-llvm-15-0-6-256-bits.json';

let app: Demo;
beforeAll(async () => {
  app = await startDemo('results');
});
afterAll(async () => app?.close());

const shown = (p: Page, source: string) => p.waitForSelector(`#report[data-source="${source}"]`);

test("results page charts every family of the lavapipe run, one bar per timed engine and case, with the report's ratios", async () => {
  const report = JSON.parse(readFileSync(join(RESULTS, LAVAPIPE), 'utf8')) as Report;
  const { context, page, errors } = await app.open('results.html');
  const committed = readdirSync(RESULTS)
    .filter((f) => f.endsWith('.json'))
    .sort();
  expect(
    await page.$$eval('#file option:not([hidden])', (os) => os.map((o) => (o as HTMLOptionElement).value)),
  ).toEqual(committed);

  // Another file first, so that choosing the lavapipe run replaces what is shown.
  const other = committed.find((f) => f !== LAVAPIPE)!;
  await page.selectOption('#file', other);
  await shown(page, other);
  await page.selectOption('#file', LAVAPIPE);
  await shown(page, LAVAPIPE);

  const families = [...new Set(report.rows.map((r) => r.family))];
  expect(await page.$$eval('section.family', (ss) => ss.map((s) => (s as HTMLElement).dataset.family))).toEqual(
    families,
  );
  expect(await page.locator('section.family svg.bars').count()).toBe(families.length);
  for (const family of families) {
    const rows = report.rows.filter((r) => r.family === family);
    const timed = rows.filter((r) => !r.skipped);
    // A bar per engine that passed its check and was timed; n/a, FAIL and skipped cases have none.
    const bars = timed.reduce(
      (n, r) => n + Object.values(r.engines).filter((e) => e.status === 'ok' && e.timing).length,
      0,
    );
    const section = page.locator(`section.family[data-family="${family}"]`);
    expect(await section.locator('svg.bars g.group').count(), `${family}: groups`).toBe(timed.length);
    expect(await section.locator('svg.bars rect.bar').count(), `${family}: bars`).toBe(bars);
    expect(await section.locator('tbody tr').count(), `${family}: table rows`).toBe(rows.length);
  }

  // The ratio column is the report's (bench/report.ts derive(), stored in the file as rows[].derived).
  const ratios = await page.$$eval('tr[data-id] td.ratio', (tds) =>
    tds.map(
      (td) => [`${td.closest('section')!.dataset.family}/${td.parentElement!.dataset.id}`, td.textContent!] as const,
    ),
  );
  const want = report.rows
    .filter((r) => !r.skipped)
    .map((r) => [`${r.family}/${r.id}`, r.derived?.ratio === undefined ? '—' : r.derived.ratio.toFixed(2)] as const);
  expect(ratios).toEqual(want);

  await page.screenshot({ path: join(SHOTS, 'results.png'), fullPage: true });
  expect(errors).toEqual([]);
  await context.close();
});

test("results page shows a malformed file's error in the banner and keeps the report it showed", async () => {
  const { context, page, errors } = await app.open('results.html');
  const first = await page.inputValue('#file');
  await shown(page, first);
  expect(await page.isHidden('#banner')).toBe(true);

  const openFile = (name: string, text: string) =>
    page.setInputFiles('#open', { name, mimeType: 'application/json', buffer: Buffer.from(text) });
  await openFile('truncated.json', '{"adapter": {}, "rows": [');
  await expect.poll(() => page.isVisible('#banner')).toBe(true);
  expect(await page.textContent('#banner')).toMatch(/^Cannot show truncated\.json: .*JSON/);
  expect(await page.getAttribute('#report', 'data-source')).toBe(first);

  await openFile('other.json', '{"hello": "world"}');
  await expect
    .poll(() => page.textContent('#banner'))
    .toContain('Cannot show other.json: not a results file of `npm run bench`');

  // A good file from disk clears the banner and is listed as the file shown.
  await openFile('mine.json', readFileSync(join(RESULTS, LAVAPIPE), 'utf8'));
  await shown(page, 'mine.json (opened)');
  expect(await page.isHidden('#banner')).toBe(true);
  expect(await page.inputValue('#file')).toBe('opened');
  expect(errors).toEqual([]);
  await context.close();
});
