// The results page in Chromium: it lists the committed bench/results/*.json newest first by suite and date, marks the
// superseded ones, draws one chart and one table per family of every file (one bar per timed engine of each case, the
// report's own ratios), fits a phone, and says in its banner why a file it cannot read is not shown. The bench page
// (its smallest case) formats its times and says when the adapter is a CPU emulating WebGPU. Screenshots in
// test-results/.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Report } from '../../bench/report.js';
import { fmtRate, fmtTime } from '../../demo/format.js';
import { label, supersedes } from '../../demo/listing.js';
import { ROOT, SHOTS, startDemo, type Demo } from './browser.js';

const RESULTS = join(ROOT, 'bench', 'results');
const LAVAPIPE = 'mesa-software-llvmpipe-llvm-15-0-6-256-bits.json';

let app: Demo;
beforeAll(async () => {
  app = await startDemo('results');
});
afterAll(async () => app?.close());

const shown = (p: Page, source: string) => p.waitForSelector(`#report[data-source="${source}"]`);
const read = (name: string) => JSON.parse(readFileSync(join(RESULTS, name), 'utf8')) as Report;
const committed = readdirSync(RESULTS).filter((f) => f.endsWith('.json'));

/** A file's start time in ms, or -1 when it has no date (listed after the dated ones). */
const time = (name: string) => Date.parse(read(name).date) || -1;

/**
 * The files superseded, worked out here on their own terms: a newer file of the same adapter and backend, not a
 * --quick one unless this one is, has every case of it.
 */
function superseded(): Set<string> {
  const cases = (r: Report) => r.rows.map((x) => `${x.family}/${x.id}`);
  const how = (r: Report) => [r.adapter.slug, r.options?.backend ?? 'webgpu'].join(' ');
  const out = new Set<string>();
  for (const a of committed)
    for (const b of committed) {
      const [ra, rb] = [read(a), read(b)];
      const later = time(a) > 0 && time(b) > time(a) && (rb.options?.quick !== true || ra.options?.quick === true);
      if (later && how(ra) === how(rb) && cases(ra).every((c) => cases(rb).includes(c))) out.add(a);
    }
  return out;
}

test('a newer file supersedes an older one of the same adapter and backend only where it ran every case of it', () => {
  const TRAIN = ['cnn-b64', 'mlp-b64', 'cnn-b512', 'mlp-b512'];
  const run = (date: string, ids: string[], more: Record<string, unknown> = {}) =>
    ({
      suite: 'train',
      date,
      adapter: { slug: 'mesa-llvmpipe' },
      options: {},
      rows: ids.map((id) => ({ family: 'train', id })),
      ...more,
    }) as unknown as Report;
  const train = run('2026-11-26T18:51:10.669Z', TRAIN);
  const b64 = run('2026-11-26T19:14:47.667Z', TRAIN.slice(0, 2));
  const later = '2026-11-26T21:16:43.141Z';
  const full = run(later, [...TRAIN, 'x'], { suite: 'kernel' });
  expect(supersedes(full, train)).toBe(true);
  expect(supersedes(full, b64)).toBe(true);
  expect(supersedes(b64, train), 'a newer run of fewer cases').toBe(false);
  expect(supersedes(train, b64), 'an older run').toBe(false);
  expect(supersedes(run(later, TRAIN, { adapter: { slug: 'nvidia-hopper' } }), train), 'another adapter').toBe(false);
  expect(supersedes(run(later, TRAIN, { options: { backend: 'wasm' } }), train), 'another backend').toBe(false);
  expect(supersedes(run(later, TRAIN, { options: { quick: true } }), train), 'a --quick run').toBe(false);
  expect(supersedes(full, run('', TRAIN)), 'an undated file').toBe(false);

  expect(label({ name: 'a.json', source: 'a.json', report: b64 })).toBe('train · 2026-11-26 19:14 UTC · mesa-llvmpipe');
  expect(label({ name: 'a.json', source: 'a.json', report: train, supersededBy: { name: 'b', source: 'b' } })).toBe(
    'train · 2026-11-26 18:51 UTC · mesa-llvmpipe · superseded',
  );
  expect(label({ name: 'a.json', source: 'a.json', report: run('', TRAIN, { suite: undefined }) })).toBe(
    'train · undated · mesa-llvmpipe',
  );
  expect(label({ name: 'a.json', source: 'a.json', error: new Error('bad') })).toBe('a.json · unreadable');
});

test('results page lists every committed file by suite and date, newest first, with the superseded ones marked', async () => {
  const { context, page, errors } = await app.open('results.html');
  await page.waitForSelector('#report[data-source]');
  const options = await page.$$eval('#file option', (os) =>
    os.map((o) => ({
      value: (o as HTMLOptionElement).value,
      text: o.textContent!.trim(),
      hidden: (o as HTMLOptionElement).hidden,
    })),
  );
  // No empty, hidden or placeholder option: one per committed file, newest first.
  const newestFirst = [...committed].sort((a, b) => time(b) - time(a) || a.localeCompare(b));
  expect(options.map((o) => o.value)).toEqual(newestFirst);
  expect(options.filter((o) => o.hidden || o.text === '')).toEqual([]);
  const old = superseded();
  expect(old.size, 'the committed files include an older run of cases run again since').toBeGreaterThan(0);
  for (const o of options) {
    const r = read(o.value);
    // Files written before the bench named its suite: the families they ran.
    expect(o.text, o.value).toContain(r.suite ?? [...new Set(r.rows.map((x) => x.family))].join('+'));
    const iso = time(o.value) > 0 ? new Date(time(o.value)).toISOString() : undefined;
    expect(o.text, o.value).toContain(iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC` : 'undated');
    expect(o.text.endsWith(' · superseded'), `${o.value} superseded`).toBe(old.has(o.value));
  }
  // The page opens on the newest file not superseded.
  expect(await page.inputValue('#file')).toBe(newestFirst.find((f) => !old.has(f)));

  // A superseded file says which newer file has all its cases, and shows that one on request.
  const stale = newestFirst.find((f) => old.has(f))!;
  await page.selectOption('#file', stale);
  await shown(page, stale);
  const note = await page.textContent('.superseded');
  // The longest name the note holds: one file's name can end another's (mesa-….json in ttfs-mesa-….json).
  const newer = committed.filter((f) => note!.includes(f)).sort((a, b) => b.length - a.length)[0]!;
  expect(newer, note!).toBeDefined();
  expect(time(newer)).toBeGreaterThan(time(stale));
  await page.click('.superseded button');
  await shown(page, newer);
  expect(await page.inputValue('#file')).toBe(newer);
  expect(errors).toEqual([]);
  await context.close();
});

test("results page charts every family of every committed file, one bar per timed engine and case, with the report's ratios", async () => {
  const report = read(LAVAPIPE);
  const { context, page, errors } = await app.open('results.html');
  await page.waitForSelector('#report[data-source]');
  // Each file in turn, the lavapipe run last, so that choosing it replaces what is shown.
  for (const name of [...committed.filter((f) => f !== LAVAPIPE), LAVAPIPE]) {
    const r = read(name);
    await page.selectOption('#file', name);
    await shown(page, name);
    const families = [...new Set(r.rows.map((x) => x.family))];
    expect(await page.$$eval('section.family', (ss) => ss.map((s) => (s as HTMLElement).dataset.family))).toEqual(
      families,
    );
    expect(await page.locator('section.family svg.bars').count(), name).toBe(families.length);
    for (const family of families) {
      const rows = r.rows.filter((x) => x.family === family);
      const timed = rows.filter((x) => !x.skipped);
      // A bar per engine that passed its check and was timed; n/a, FAIL and skipped cases have none.
      const bars = timed.reduce(
        (n, x) => n + Object.values(x.engines).filter((e) => e.status === 'ok' && e.timing).length,
        0,
      );
      const section = page.locator(`section.family[data-family="${family}"]`);
      expect(await section.locator('svg.bars g.group').count(), `${name} ${family}: groups`).toBe(timed.length);
      expect(await section.locator('svg.bars rect.bar').count(), `${name} ${family}: bars`).toBe(bars);
      expect(await section.locator('tbody tr').count(), `${name} ${family}: table rows`).toBe(rows.length);
    }
    // Every time in the tables has its unit, to three significant digits.
    for (const t of await page.$$eval('td.time', (tds) => tds.map((td) => td.textContent!)))
      expect(t, name).toMatch(/^\d+(\.\d+)? (s|ms|µs)$/);
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
  await page.waitForSelector('#report[data-source]');
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

test('results page fits a 390 px phone: no sideways page scroll, the tables scroll in their own box', async () => {
  const { context, page, errors } = await app.open('results.html');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForSelector('#report[data-source]');
  for (const name of committed) {
    await page.selectOption('#file', name);
    await shown(page, name);
    const fit = await page.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      viewport: window.innerWidth,
      tables: Array.from(document.querySelectorAll('#report table')).map((t) => {
        const box = t.parentElement!;
        return { wrapped: box.classList.contains('table-scroll'), overflow: getComputedStyle(box).overflowX };
      }),
      // The widest table's own width against its box's: wider, so its box scrolls.
      widest: Math.max(
        ...Array.from(document.querySelectorAll('.table-scroll')).map((b) => b.scrollWidth - b.clientWidth),
      ),
    }));
    expect(fit.page, `${name}: page width`).toBeLessThanOrEqual(fit.viewport);
    expect(fit.tables.length).toBeGreaterThan(0);
    expect(
      fit.tables.filter((t) => !t.wrapped || t.overflow !== 'auto'),
      name,
    ).toEqual([]);
    if (name === LAVAPIPE) expect(fit.widest, 'a table wider than the phone').toBeGreaterThan(0);
  }
  await page.screenshot({ path: join(SHOTS, 'results-phone.png') });
  expect(errors).toEqual([]);
  await context.close();
});

test('[webgpu] bench page: times with units, GFLOP/s to 3 digits, and on SwiftShader a caveat that it is a CPU', async () => {
  const { context, page, errors } = await app.open('bench.html?backend=webgpu&n=128&tfjs=0');
  await page.waitForFunction(() => window.wgnnBench?.done, null, { timeout: 60_000 });
  const hook = await page.evaluate(() => window.wgnnBench!);
  expect(hook.error).toBeNull();
  expect(hook.backend).toBe('webgpu');
  expect(hook.rows.map((r) => [r.engine, r.n])).toEqual([['wgnn', 128]]);
  expect(await page.isVisible('#software')).toBe(true);
  expect(await page.textContent('#software-name')).toMatch(/swiftshader/i);
  expect(await page.textContent('#software')).toContain('CPU emulating WebGPU, not a GPU');
  const times = await page.$$eval('td.time', (tds) => tds.map((td) => td.textContent!));
  expect(times).toEqual(hook.rows.map((r) => fmtTime(r.ms)));
  for (const t of times) expect(t).toMatch(/^\d+(\.\d+)? (s|ms|µs)$/);
  const rates = await page.$$eval('td.gflops', (tds) => tds.map((td) => td.textContent!));
  expect(rates).toEqual(hook.rows.map((r) => fmtRate(r.gflops)));
  for (const g of rates) expect(g).toMatch(/^\d+(\.\d+)?$/);
  await page.screenshot({ path: join(SHOTS, 'bench-software.png') });
  expect(errors).toEqual([]);
  await context.close();

  // The same page on an adapter whose info names a GPU (replaced before the page runs): no caveat, unless the browser
  // calls it a fallback adapter (?fake=fallback, read by the init script; the page ignores it).
  const spoof = () => {
    const fallback = new URLSearchParams(location.search).get('fake') === 'fallback';
    const info = Object.getOwnPropertyDescriptor(GPUAdapter.prototype, 'info')!;
    Object.defineProperty(GPUAdapter.prototype, 'info', {
      get() {
        const real = info.get!.call(this) as GPUAdapterInfo;
        const gpu = { vendor: 'nvidia', architecture: 'hopper', device: 'h200', description: 'NVIDIA H200' };
        return { ...real, ...gpu, isFallbackAdapter: fallback };
      },
    });
  };
  for (const fake of ['gpu', 'fallback']) {
    // The caveat is settled before the first case starts: no need to wait for the timing.
    const w = await app.open(`bench.html?backend=webgpu&n=128&tfjs=0&fake=${fake}`, spoof);
    await w.page.waitForFunction(() => document.getElementById('bench-status')!.textContent!.startsWith('wgnn, n = '));
    expect(await w.page.textContent('#backend')).toContain('NVIDIA H200');
    expect(await w.page.isVisible('#software'), fake).toBe(fake === 'fallback');
    expect(w.errors).toEqual([]);
    await w.context.close();
  }
});
