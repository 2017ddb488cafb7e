// The GPT page end to end (demo/gpt.html), in Debian's Chromium with WebGPU through SwiftShader: a tiny char GPT
// trains on the fortunes the CLI reads, its loss falls, tokens/s is completed work over wall time, samples appear, the
// prompt box streams, pause stops between steps, saved weights load back and generate the same text; and without
// WebGPU or WebAssembly it trains on the CPU backend and says so. Screenshots go to test-results/. Fails, never skips,
// without Chromium.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { GptState } from '../../demo/hook.js';
import { CharTokenizer, readFortunes } from '../../src/data/text.js';
import { SHOTS, startDemo, type Demo, type Watched } from './browser.js';

/**
 * A GPT small enough for SwiftShader on a loaded 2-core machine: SwiftShader's cost is per dispatch, so one block; its
 * first step compiles every kernel (tens of seconds here), then a step takes about half a second.
 */
const TINY = {
  layers: '1',
  heads: '2',
  dim: '32',
  block: '16',
  batch: '8',
  lr: '0.01',
  warmup: '5',
  steps: '5000',
  seed: '1',
  'eval-every': '15',
  'sample-tokens': '20',
};
/** Steps trained before the loss is compared with its first values (two evaluations). */
const TRAIN_STEPS = 30;
/** The page measures tokens/s over the reads of about this long (RATE_WINDOW_MS in demo/gpt-run.ts). */
const RATE_WINDOW_MS = 5000;

let app: Demo;
const gptState = (p: Page): Promise<GptState> => p.evaluate(() => window.wgnnGpt!.state());
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Sets the controls (each change rebuilds the model) and waits for a ready run built from all of them. */
async function configure(p: Page, controls: Record<string, string>): Promise<void> {
  for (const [id, v] of Object.entries(controls)) {
    await (id === 'read-every' ? p.selectOption(`#${id}`, v) : p.fill(`#${id}`, v));
    await p.dispatchEvent(`#${id}`, 'change');
  }
  const want = { layers: +controls.layers!, dim: +controls.dim!, blockSize: +controls.block!, seed: +controls.seed! };
  await p.waitForFunction(
    (w) => {
      const s = window.wgnnGpt!.state();
      return s.status === 'ready' && Object.entries(w).every(([k, v]) => s.settings?.[k as keyof typeof w] === v);
    },
    want,
    { timeout: 60_000 },
  );
}

async function pause(p: Page): Promise<GptState> {
  await p.click('#pause');
  await p.waitForFunction(() => window.wgnnGpt!.state().status === 'paused', null, { timeout: 30_000 });
  return gptState(p);
}

/** Types a prompt, clicks Generate, and returns the continuation once it has finished. */
async function generate(p: Page, prompt: string, tokens: number, seed: number): Promise<string> {
  await p.fill('#prompt', prompt);
  await p.fill('#gen-tokens', String(tokens));
  await p.fill('#gen-seed', String(seed));
  // The click's handler starts the generation, which generated() then waits for.
  await p.click('#generate');
  return p.evaluate(() => window.wgnnGpt!.generated());
}

beforeAll(async () => {
  app = await startDemo('gpt');
});

afterAll(async () => app?.close());

describe('GPT page in Chromium', () => {
  let gpt: Watched;
  beforeAll(async () => {
    // Asks for WebGPU: on SwiftShader, a software adapter, `auto` picks the WASM backend.
    gpt = await app.open('gpt.html?backend=webgpu');
    await gpt.page.waitForFunction(() => window.wgnnGpt?.state().ready, null, { timeout: 60_000 });
  });
  afterAll(async () => gpt?.context.close());

  test('[webgpu] the page finds the adapter and loads the fortunes the CLI reads (same vocabulary)', async () => {
    const s = await gptState(gpt.page);
    expect(s.backend, `adapter: ${s.adapter}`).toBe('webgpu');
    expect(await gpt.page.isHidden('#banner')).toBe(true);
    expect(s.vocab).toBe(CharTokenizer.fromText(await readFortunes()).chars);
    expect(await gpt.page.textContent('#corpus')).toMatch(/^Debian's fortunes: [\d,]+ characters/);
    expect(gpt.errors).toEqual([]);
  });

  test(`[webgpu] a tiny GPT trains ${TRAIN_STEPS} steps: the loss falls, tokens/s is completed work, samples appear`, async () => {
    const { page } = gpt;
    await configure(page, TINY);
    await page.click('#start');
    await page.waitForFunction(
      (n) => {
        const s = window.wgnnGpt!.state();
        return s.stepsRead >= n && s.samples.length >= 2;
      },
      TRAIN_STEPS,
      { timeout: 180_000 },
    );
    const t = await gptState(page);
    console.log(
      `GPT: ${t.step} steps; loss ${t.curve.loss.map((l) => l.toFixed(2)).join(' ')}; ` +
        `val ${t.val.loss.map((v) => v.toFixed(3)).join(', ')}`,
    );
    // Each read is a point: every 4 steps (the page's default), and at each evaluation.
    expect(t.curve.step.slice(0, 5)).toEqual([4, 8, 12, 15, 16]);
    const first = t.curve.loss[0]!;
    const last = mean(t.curve.loss.slice(-3));
    expect(first).toBeGreaterThan(4); // ln 113 = 4.73 untrained
    expect(last, `mean loss of the last 3 reads (first read: ${first})`).toBeLessThan(first - 0.5);
    expect(t.val.step.slice(0, 2)).toEqual([15, 30]);
    for (const v of t.val.loss) expect(v, 'validation loss').toBeLessThan(first - 0.5);
    // The samples: 20 characters each from the vocabulary, newest first on the page.
    for (const s of t.samples) {
      expect([...s.text]).toHaveLength(20);
      expect(
        [...s.text].every((c) => t.vocab.includes(c)),
        s.text,
      ).toBe(true);
    }
    const shownSamples = await page.$$eval('#samples pre', (ps) => ps.map((p) => Number(p.dataset.step)));
    expect(shownSamples.slice(-2)).toEqual([30, 15]);
    await page.screenshot({ path: join(SHOTS, 'gpt-trained.png') });

    // tokens/s as the page shows it, against the completed tokens the hook counts over the page's own clock between
    // two reads of the loss a window apart. Evaluations off and the loss read every step meanwhile, so the two
    // windows differ by one step at most and no evaluation falls in one only.
    await page.selectOption('#read-every', '1');
    await page.dispatchEvent('#read-every', 'change');
    await page.fill('#eval-every', '0');
    await page.dispatchEvent('#eval-every', 'change');
    const afterRead = async (): Promise<GptState> => {
      const n = (await gptState(page)).stepsRead;
      await page.waitForFunction((k) => window.wgnnGpt!.state().stepsRead > k, n, { timeout: 30_000 });
      return gptState(page);
    };
    await afterRead();
    const a = await afterRead();
    await page.waitForTimeout(RATE_WINDOW_MS);
    const b = await afterRead();
    const counted = ((b.tokensRead - a.tokensRead) * 1000) / (b.time - a.time);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(r)));
    const shown = Number(await page.textContent('#tps'));
    console.log(
      `GPT: ${counted.toFixed(0)} tokens/s counted over ${(b.time - a.time).toFixed(0)} ms ` +
        `(${b.stepsRead - a.stepsRead} steps), ${b.tokensPerSecond.toFixed(0)} shown`,
    );
    expect(counted).toBeGreaterThan(0);
    expect(Math.abs(b.tokensPerSecond - counted), `shown ${b.tokensPerSecond}, counted ${counted}`).toBeLessThan(
      0.2 * counted,
    );
    expect(Math.abs(shown - b.tokensPerSecond)).toBeLessThan(0.2 * counted);
    expect(b.memory.liveBytes).toBeGreaterThan(0);
    expect(await page.textContent('#memory')).toMatch(/MB live/);
    expect(gpt.errors).toEqual([]);
  }, 240_000);

  test('[webgpu] the prompt box streams a continuation token by token while the model trains', async () => {
    const { page } = gpt;
    expect((await gptState(page)).status).toBe('running');
    // Every change of the output box, as the page makes it.
    await page.evaluate(() => {
      const w = window as unknown as { seen: string[] };
      w.seen = [];
      const out = document.getElementById('continuation')!;
      new MutationObserver(() => w.seen.push(out.textContent ?? '')).observe(out, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    const text = await generate(page, 'The ', 20, 3);
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    const s = await gptState(page);
    expect(s.generation.tokens).toBe(20);
    expect([...text]).toHaveLength(20);
    expect([...text].every((c) => s.vocab.includes(c))).toBe(true);
    expect(await page.textContent('#continuation')).toBe(`The ${text}`);
    // Streamed: the page showed the continuation growing, not only its end.
    const partial = seen.filter((t) => t.length > 4 && t.length < 4 + text.length);
    expect(partial.length, `the box's texts: ${JSON.stringify(seen)}`).toBeGreaterThan(1);
    expect(s.status).toBe('running');
    expect(gpt.errors).toEqual([]);
  });

  test('[webgpu] pause stops between steps with every loss read; resume goes on', async () => {
    const { page } = gpt;
    const s = await pause(page);
    expect(s.stepsRead, 'every queued step read back at the pause').toBe(s.step);
    await page.waitForTimeout(800);
    expect((await gptState(page)).step, 'steps taken while paused').toBe(s.step);
    expect(await page.textContent('#start')).toBe('Resume');
    await page.click('#start');
    await page.waitForFunction((n) => window.wgnnGpt!.state().step >= n + 8, s.step, { timeout: 30_000 });
    const t = await pause(page);
    expect(t.curve.loss.every(Number.isFinite)).toBe(true);
    expect(gpt.errors).toEqual([]);
  });

  test('[webgpu] saved weights load back from the file and generate the same text for the same seed', async () => {
    const { page } = gpt;
    const before = await generate(page, 'Q: ', 24, 7);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
    const saved = await gptState(page);
    expect(download.suggestedFilename()).toBe(`wgnn-gpt-step${saved.step}.safetensors`);
    const path = await download.path();
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as {
      __metadata__: Record<string, string>;
    };
    expect(JSON.parse(header.__metadata__.gpt!)).toMatchObject({ layers: 1, heads: 2, dim: 32, blockSize: 16 });
    expect(JSON.parse(header.__metadata__.tokenizer!)).toEqual({ kind: 'char', chars: saved.vocab });
    // Train on, so the weights in the tab are no longer the saved ones; then load the file.
    await page.click('#start');
    await page.waitForFunction((n) => window.wgnnGpt!.state().step >= n + 8, saved.step, { timeout: 30_000 });
    await pause(page);
    await page.setInputFiles('#load-file', path);
    await page.waitForFunction(() => window.wgnnGpt!.state().loads === 1, null, { timeout: 30_000 });
    const loaded = await gptState(page);
    expect(loaded.status).toBe('ready');
    expect(loaded.step).toBe(0);
    expect(await page.textContent('#status')).toContain('weights from');
    expect(await generate(page, 'Q: ', 24, 7)).toBe(before);
    // The loaded model trains on.
    await page.click('#start');
    await page.waitForFunction(() => window.wgnnGpt!.state().stepsRead >= 4, null, { timeout: 30_000 });
    await pause(page);
    await page.screenshot({ path: join(SHOTS, 'gpt.png') });
    expect(gpt.errors).toEqual([]);
  });
});

test('without WebGPU or WebAssembly the GPT page trains on the CPU backend and says so', async () => {
  // NOTE: hides navigator.gpu and WebAssembly before the page's scripts run, as a browser without either has none
  // (without WebGPU alone, the page trains on the WASM backend).
  const { context, page, errors } = await app.open('gpt.html', () => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });
    delete (globalThis as { WebAssembly?: unknown }).WebAssembly;
  });
  await page.waitForFunction(() => window.wgnnGpt?.state().ready, null, { timeout: 60_000 });
  expect((await gptState(page)).backend).toBe('cpu');
  expect(await page.isVisible('#banner')).toBe(true);
  expect(await page.textContent('#banner')).toContain('No WebGPU adapter');
  expect(await page.textContent('#memory-label')).toBe('memory (CPU)');
  await configure(page, { ...TINY, dim: '16', batch: '4', 'read-every': '1' });
  await page.click('#start');
  await page.waitForFunction(() => window.wgnnGpt!.state().stepsRead >= 3, null, { timeout: 60_000 });
  const s = await pause(page);
  expect(s.curve.loss.length).toBeGreaterThanOrEqual(3);
  expect(s.curve.loss.every(Number.isFinite)).toBe(true);
  expect(s.tokensPerSecond).toBeGreaterThan(0);
  await page.screenshot({ path: join(SHOTS, 'gpt-cpu-fallback.png') });
  expect(errors).toEqual([]);
  await context.close();
});
