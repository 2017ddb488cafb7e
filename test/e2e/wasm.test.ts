// The demo on the WASM backend in Chromium: with WebGPU hidden, on a cross-origin isolated page (worker threads over
// a SharedArrayBuffer) and on one without the COOP/COEP headers (one thread, an unshared memory, said on the page);
// the same seed gives the same losses on both; and with SwiftShader's WebGPU adapter (a software one) `auto` picks
// the WASM backend too, which trains faster there. Fails, never skips, without Chromium.
import { join } from 'node:path';
import type { Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { DemoState } from '../../demo/hook.js';
import { NO_WEBGPU, SHOTS, startDemo, type Demo, type OpenOptions } from './browser.js';

/** MLP steps (batch 32, Adam, seed 1): the demo's WebGPU test trains as many and expects the loss halved. */
const TRAIN_STEPS = 120;

let app: Demo;
beforeAll(async () => {
  app = await startDemo('wasm');
});
afterAll(async () => app?.close());

const demoState = (p: Page): Promise<DemoState> => p.evaluate(() => window.wgnnDemo!.state());
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function setControl(p: Page, id: string, value: string): Promise<void> {
  await (id === 'model' || id === 'optimizer' ? p.selectOption(`#${id}`, value) : p.fill(`#${id}`, value));
  await p.dispatchEvent(`#${id}`, 'change');
  await p.waitForFunction(() => window.wgnnDemo?.state().status === 'ready');
}

interface Run {
  state: DemoState;
  header: string;
  banner: string;
  isolated: boolean;
  errors: string[];
}

/** Opens the demo, trains the MLP (Adam, batch 32, seed 1) for `steps` steps, pauses, and closes the page. */
async function trainMlp(path: string, init: (() => void) | undefined, opts: OpenOptions, steps: number): Promise<Run> {
  const { context, page, errors } = await app.open(path, init, opts);
  try {
    await page.waitForFunction(() => window.wgnnDemo?.state().ready, null, { timeout: 60_000 });
    await setControl(page, 'model', 'mlp');
    await setControl(page, 'optimizer', 'adam');
    await setControl(page, 'batch', '32');
    await setControl(page, 'seed', '1');
    await page.click('#start');
    await page.waitForFunction((n) => window.wgnnDemo!.state().step >= n, steps, { timeout: 90_000 });
    await page.click('#pause');
    await page.waitForFunction(() => window.wgnnDemo!.state().status === 'paused');
    const state = await demoState(page);
    await page.screenshot({ path: join(SHOTS, `wasm-${opts.isolated === false ? '1-thread' : 'threads'}.png`) });
    return {
      state,
      header: (await page.textContent('#backend')) ?? '',
      banner: (await page.isVisible('#banner')) ? ((await page.textContent('#banner')) ?? '') : '',
      isolated: await page.evaluate(() => self.crossOriginIsolated),
      errors,
    };
  } finally {
    await context.close();
  }
}

const threadsOf = (header: string): number => Number(/(\d+) threads?/.exec(header)?.[1]);
const threads = (r: Run): string => `${threadsOf(r.header)} thread(s)`;

function expectLossFalls(s: DemoState): void {
  expect(s.curve.loss.every(Number.isFinite)).toBe(true);
  const first = mean(s.curve.loss.slice(0, 3));
  const last = mean(s.curve.loss.slice(-3));
  expect(first).toBeGreaterThan(1.2); // ln 10 = 2.3 untrained
  expect(last, `mean loss of the last 12 batches (first 12: ${first})`).toBeLessThan(first / 2);
}

describe('the demo without WebGPU', () => {
  let threaded: Run;
  let single: Run;

  test(`trains the MLP on the WASM backend with worker threads on a cross-origin isolated page (${TRAIN_STEPS} steps)`, async () => {
    threaded = await trainMlp('index.html', NO_WEBGPU, {}, TRAIN_STEPS);
    const s = threaded.state;
    console.log(
      `wasm, ${threads(threaded)}: ${s.step} steps at ${s.stepsPerSecond.toFixed(1)} steps/s; loss ${s.curve.loss[0]!.toFixed(3)} -> ${s.curve.loss.at(-1)!.toFixed(3)}`,
    );
    expect(threaded.isolated).toBe(true);
    expect(s.backend).toBe('wasm');
    expect(threadsOf(threaded.header), threaded.header).toBeGreaterThan(1);
    expect(threaded.banner).toContain(`training on the WASM backend (${threadsOf(threaded.header)} threads)`);
    expect(threaded.banner).not.toContain('Single-threaded');
    expectLossFalls(s);
    expect(threaded.errors).toEqual([]);
  });

  test('trains on one thread without the COOP/COEP headers, says so, and gives the same losses as the threads', async () => {
    single = await trainMlp('index.html', NO_WEBGPU, { isolated: false }, TRAIN_STEPS);
    const s = single.state;
    console.log(`wasm, ${threads(single)}: ${s.step} steps at ${s.stepsPerSecond.toFixed(1)} steps/s`);
    expect(single.isolated).toBe(false);
    expect(s.backend).toBe('wasm');
    expect(threadsOf(single.header), single.header).toBe(1);
    expect(single.header).toContain('not cross-origin isolated');
    expect(single.banner).toContain('training on the WASM backend (1 thread)');
    expect(single.banner).toContain('Single-threaded: page not cross-origin isolated');
    expectLossFalls(s);
    // Determinism: the thread count changes nothing. Both runs read the loss every 4 steps from the same seed.
    const n = Math.min(s.curve.step.length, threaded.state.curve.step.length);
    expect(n).toBeGreaterThanOrEqual(TRAIN_STEPS / 4);
    expect(s.curve.step.slice(0, n)).toEqual(threaded.state.curve.step.slice(0, n));
    expect(s.curve.loss.slice(0, n), '1 thread vs threads').toEqual(threaded.state.curve.loss.slice(0, n));
    expect(s.curve.acc.slice(0, n)).toEqual(threaded.state.curve.acc.slice(0, n));
    expect(single.errors).toEqual([]);
  });
});

test("with SwiftShader's WebGPU (a software adapter) auto picks the WASM backend, faster there than WebGPU", async () => {
  const steps = 40;
  const auto = await trainMlp('index.html', undefined, {}, steps);
  const gpu = await trainMlp('index.html?backend=webgpu', undefined, {}, steps);
  console.log(
    `SwiftShader: auto -> ${auto.state.backend} ${auto.state.stepsPerSecond.toFixed(1)} steps/s; ?backend=webgpu ${gpu.state.stepsPerSecond.toFixed(1)} steps/s`,
  );
  expect(auto.state.backend).toBe('wasm');
  expect(auto.banner).toContain('No WebGPU on a GPU here: training on the WASM backend');
  expect(gpu.state.backend).toBe('webgpu');
  expect(gpu.state.adapter).toMatch(/swiftshader/i);
  expect(auto.state.stepsPerSecond).toBeGreaterThan(gpu.state.stepsPerSecond);
  expect(auto.errors).toEqual([]);
  expect(gpu.errors).toEqual([]);
});
