// The browser demo end to end: builds demo/ with Vite, serves it on localhost, and drives Debian's Chromium (WebGPU
// through its SwiftShader) with Playwright: the adapter, training, pause, drawing, classifying test digits, the CNN's
// first layer, the bench page, and the CPU fallback. Screenshots go to test-results/. Fails, never skips, without
// Chromium or WebGPU.
import { join } from 'node:path';
import type { Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { DemoState } from '../../demo/hook.js';
import { fmtRate } from '../../demo/format.js';
import { SHOTS, startDemo, type Demo, type Watched } from './browser.js';

/** MLP training steps (batch 32) before the loss and the test digits are checked: ~10 steps/s on SwiftShader. */
const TRAIN_STEPS = 120;
const TEST_DIGITS = 50;
/** After TRAIN_STEPS the MLP gets ~90% of the test digits here; the bar leaves room for GPU rounding. */
const MIN_ACCURACY = 0.8;

let app: Demo;
const open = (path: string, init?: () => void) => app.open(path, init);

const demoState = (p: Page): Promise<DemoState> => p.evaluate(() => window.wgnnDemo!.state());
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function setControl(p: Page, id: string, value: string): Promise<void> {
  await (id === 'model' || id === 'optimizer' ? p.selectOption(`#${id}`, value) : p.fill(`#${id}`, value));
  await p.dispatchEvent(`#${id}`, 'change');
  await p.waitForFunction(() => window.wgnnDemo?.state().status === 'ready');
}

/** Trains until `steps` steps and at least one read of the loss, then pauses. */
async function trainUntil(p: Page, steps: number): Promise<DemoState> {
  await p.click('#start');
  await p.waitForFunction(
    (n) => window.wgnnDemo!.state().step >= n && window.wgnnDemo!.state().curve.step.length > 0,
    steps,
    { timeout: 90_000 },
  );
  await p.click('#pause');
  await p.waitForFunction(() => window.wgnnDemo!.state().status === 'paused');
  return demoState(p);
}

beforeAll(async () => {
  app = await startDemo('demo');
});

afterAll(async () => app?.close());

describe('demo page in Chromium', () => {
  let demo: Watched;
  beforeAll(async () => {
    // Asks for WebGPU: on SwiftShader, a software adapter, `auto` picks the WASM backend (test/e2e/wasm.test.ts).
    demo = await open('index.html?backend=webgpu');
    await demo.page.waitForFunction(() => window.wgnnDemo?.state().ready, null, { timeout: 60_000 });
  });
  afterAll(async () => demo?.context.close());

  const requireWebGpu = async () => {
    const s = await demoState(demo.page);
    if (s.backend !== 'webgpu')
      throw new Error(`the demo runs on ${s.backend}, not WebGPU: Chromium found no WebGPU adapter (${s.adapter})`);
  };

  test('[webgpu] demo finds the WebGPU adapter and shows it', async () => {
    const s = await demoState(demo.page);
    expect(s.backend, `adapter: ${s.adapter}`).toBe('webgpu');
    expect(s.adapter.length).toBeGreaterThan(0);
    await expect.poll(() => demo.page.textContent('#backend')).toContain(`backend webgpu · ${s.adapter}`);
    expect(await demo.page.isHidden('#banner')).toBe(true);
    expect(demo.errors).toEqual([]);
  });

  test(`[webgpu] demo trains the MLP for ${TRAIN_STEPS} steps: the loss falls, the page stays responsive, pause stops between steps`, async () => {
    await requireWebGpu();
    const { page } = demo;
    await setControl(page, 'model', 'mlp');
    await setControl(page, 'optimizer', 'adam');
    await setControl(page, 'batch', '32');
    await setControl(page, 'seed', '1');
    await page.click('#start');
    await page.waitForFunction(() => window.wgnnDemo!.state().step >= 5, null, { timeout: 30_000 });
    // The longest gap between animation frames over a second of training: fit yields to the page every step.
    const maxFrameGap = await page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          let last = performance.now();
          const start = last;
          let worst = 0;
          const frame = (t: number) => {
            worst = Math.max(worst, t - last);
            last = t;
            if (t - start < 1000) requestAnimationFrame(frame);
            else resolve(worst);
          };
          requestAnimationFrame(frame);
        }),
    );
    expect(maxFrameGap, 'longest frame gap (ms) while training').toBeLessThan(500);
    await page.waitForFunction((n) => window.wgnnDemo!.state().step >= n, TRAIN_STEPS, { timeout: 90_000 });
    await page.click('#pause');
    await page.waitForFunction(() => window.wgnnDemo!.state().status === 'paused');
    const s = await demoState(page);
    await page.waitForTimeout(600);
    expect((await demoState(page)).step, 'steps taken while paused').toBe(s.step);
    // The page's default: fit reads the loss every 4 steps, and each read is a point of the curve.
    expect(s.curve.step).toEqual(Array.from({ length: Math.floor(s.step / 4) }, (_, i) => 4 * (i + 1)));
    const first = mean(s.curve.loss.slice(0, 3));
    const last = mean(s.curve.loss.slice(-3));
    console.log(
      `MLP: ${s.step} steps at ${s.stepsPerSecond.toFixed(1)} steps/s; loss ${first.toFixed(3)} -> ${last.toFixed(3)}; max frame gap ${maxFrameGap.toFixed(0)} ms; live ${s.memory.liveBytes} B in ${s.memory.liveTensors} tensors`,
    );
    expect(first).toBeGreaterThan(1.2); // ln 10 = 2.3 untrained
    expect(last, `mean loss of the last 12 batches (first 12: ${first})`).toBeLessThan(first / 2);
    expect(s.stepsPerSecond).toBeGreaterThan(0);
    expect(s.memory.liveBytes).toBeGreaterThan(0);
    expect(await page.textContent('#memory')).toMatch(/MB live/);
    expect(demo.errors).toEqual([]);
  });

  test('[webgpu] drawing a stroke on the pad gives class probabilities that sum to 1', async () => {
    await requireWebGpu();
    const { page } = demo;
    await page.click('#clear');
    expect((await demoState(page)).inputInk).toBe(0);
    const box = (await page.locator('#pad').boundingBox())!;
    const at = (fx: number, fy: number) => [box.x + fx * box.width, box.y + fy * box.height] as const;
    const before = (await demoState(page)).predictions;
    // A "7": the top bar, then the diagonal down.
    await page.mouse.move(...at(0.3, 0.25));
    await page.mouse.down();
    for (const [fx, fy] of [
      [0.5, 0.25],
      [0.7, 0.25],
      [0.6, 0.5],
      [0.5, 0.75],
    ] as const)
      await page.mouse.move(...at(fx, fy), { steps: 6 });
    await page.mouse.up();
    const probs = await page.evaluate(() => window.wgnnDemo!.predicted());
    const s = await demoState(page);
    expect(s.inputInk, 'ink in the 28×28 input').toBeGreaterThan(20);
    expect(s.predictions).toBeGreaterThan(before);
    expect(probs).toHaveLength(10);
    expect(probs.every((p) => p >= 0 && p <= 1)).toBe(true);
    expect(Math.abs(probs.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-4);
    expect(await page.locator('#probs .prob').count()).toBe(10);
    await page.screenshot({ path: join(SHOTS, 'demo-drawn.png') });
    expect(demo.errors).toEqual([]);
  });

  test(`[webgpu] the trained MLP classifies at least ${MIN_ACCURACY * 100}% of the first ${TEST_DIGITS} test digits`, async () => {
    await requireWebGpu();
    const { page } = demo;
    const results = await page.evaluate(async (n) => {
      const out: { label: number; predicted: number }[] = [];
      for (let i = 0; i < n; i++) {
        const { label, probs } = await window.wgnnDemo!.loadTestDigit(i);
        out.push({ label, predicted: probs.indexOf(Math.max(...probs)) });
      }
      return out;
    }, TEST_DIGITS);
    const accuracy = results.filter((r) => r.label === r.predicted).length / results.length;
    console.log(
      `MLP after ${(await demoState(page)).step} steps: ${(accuracy * 100).toFixed(0)}% of ${TEST_DIGITS} test digits`,
    );
    expect(accuracy).toBeGreaterThanOrEqual(MIN_ACCURACY);
    // The last digit is on the pad: its label is shown and the top bar is the prediction.
    const last = results[results.length - 1]!;
    expect(await page.textContent('#digit-label')).toContain(`label ${last.label}`);
    expect(await page.getAttribute('#probs .prob.top', 'data-class')).toBe(String(last.predicted));
    await page.screenshot({ path: join(SHOTS, 'demo-trained.png') });
    expect(demo.errors).toEqual([]);
  });

  test('[webgpu] the CNN trains, shows its 32 3×3 filters and 26×26 feature maps, and resets', async () => {
    await requireWebGpu();
    const { page } = demo;
    await page.click('#reset');
    await page.waitForFunction(() => window.wgnnDemo?.state().status === 'ready');
    await setControl(page, 'model', 'cnn');
    const fresh = (await demoState(page)).memory;
    const s = await trainUntil(page, 4);
    expect(s.curve.loss.length).toBeGreaterThan(0);
    expect(s.curve.loss.every(Number.isFinite)).toBe(true);
    await page.evaluate(() => window.wgnnDemo!.loadTestDigit(0));
    const sizes = async (sel: string) =>
      page.$$eval(sel, (cs) => cs.map((c) => `${(c as HTMLCanvasElement).width}x${(c as HTMLCanvasElement).height}`));
    expect(await sizes('#weights canvas')).toEqual(Array(32).fill('3x3'));
    expect(await sizes('#maps canvas')).toEqual(Array(32).fill('26x26'));
    await page.screenshot({ path: join(SHOTS, 'demo-cnn.png') });
    await page.click('#reset');
    await page.waitForFunction(() => window.wgnnDemo?.state().status === 'ready');
    const after = await demoState(page);
    expect(after.step).toBe(0);
    // The trained run's model, optimizer state and fit's captured step are freed: a fresh CNN holds what it held.
    expect(after.memory.liveTensors, 'tensors alive after a reset').toBe(fresh.liveTensors);
    expect(after.memory.liveBytes, 'bytes alive after a reset').toBe(fresh.liveBytes);
    expect(demo.errors).toEqual([]);
  });
});

test('[webgpu] bench page checks matmul 128, 256, 512 against the CPU backend and plots GFLOP/s', async () => {
  const { context, page, errors } = await open('bench.html?backend=webgpu');
  await page.waitForFunction(() => window.wgnnBench?.done, null, { timeout: 90_000 });
  const hook = await page.evaluate(() => window.wgnnBench!);
  expect(hook.backend).toBe('webgpu');
  expect(hook.error).toBeNull();
  const wgnn = hook.rows.filter((r) => r.engine === 'wgnn');
  expect(wgnn.map((r) => r.n)).toEqual([128, 256, 512]);
  for (const r of hook.rows) {
    expect(r.maxErr).toBeLessThan(1e-3);
    expect(r.gflops).toBeGreaterThan(0);
  }
  console.log(`bench: ${hook.rows.map((r) => `${r.engine} n=${r.n} ${r.gflops.toFixed(2)} GFLOP/s`).join('; ')}`);
  const shown = await page.$$eval('td.gflops', (tds) => tds.map((t) => t.textContent));
  expect(shown).toEqual(hook.rows.map((r) => fmtRate(r.gflops)));
  const plot = await page.locator('#chart canvas').boundingBox();
  expect(plot?.width).toBeGreaterThan(100);
  expect(plot?.height).toBeGreaterThan(100);
  await page.screenshot({ path: join(SHOTS, 'bench.png') });
  expect(errors).toEqual([]);
  await context.close();
});

test('without WebGPU or WebAssembly the demo falls back to the CPU backend, says so, and still trains', async () => {
  // NOTE: hides navigator.gpu and WebAssembly before the page's scripts run, as a browser without either has none
  // (without WebGPU alone, the demo trains on the WASM backend: test/e2e/wasm.test.ts).
  const { context, page, errors } = await open('index.html', () => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });
    delete (globalThis as { WebAssembly?: unknown }).WebAssembly;
  });
  await page.waitForFunction(() => window.wgnnDemo?.state().ready, null, { timeout: 60_000 });
  expect((await demoState(page)).backend).toBe('cpu');
  expect(await page.isVisible('#banner')).toBe(true);
  expect(await page.textContent('#banner')).toContain('No WebGPU adapter');
  await setControl(page, 'batch', '32');
  const s = await trainUntil(page, 4);
  expect(s.curve.loss.length).toBeGreaterThan(0);
  expect(s.curve.loss.every(Number.isFinite)).toBe(true);
  const probs = await page.evaluate(async () => (await window.wgnnDemo!.loadTestDigit(0)).probs);
  expect(Math.abs(probs.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-4);
  await page.screenshot({ path: join(SHOTS, 'demo-cpu-fallback.png') });
  expect(errors).toEqual([]);
  await context.close();
});
