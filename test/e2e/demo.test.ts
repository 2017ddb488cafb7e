// The browser demo end to end: builds demo/ with Vite, serves it on localhost, and drives Debian's Chromium (WebGPU
// through its SwiftShader) with Playwright: the adapter and its software banner, empty states, the start-up status,
// honest steps/s, training, pause, drawing, classifying test digits, the evaluation view, training on after "done",
// swapping the optimizer without losing the model, the CNN's first layer, phone and wide layouts, the bench page,
// and the CPU fallback. Screenshots go to test-results/. Fails, never skips, without Chromium or WebGPU.
import { join } from 'node:path';
import type { Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { DemoState } from '../../demo/hook.js';
import { fmtRate } from '../../demo/format.js';
import { SHOTS, startDemo, type Demo, type Watched } from './browser.js';

/** MLP training steps (batch 32) before the loss and the test digits are checked: ~10 steps/s on SwiftShader. */
const TRAIN_STEPS = 120;
const TEST_DIGITS = 50;
/** The shared page's training and test digits (?train=&test=): an epoch of batches of 128 is 16 steps. */
const TRAIN_SIZE = 2048;
const TEST_SIZE = 1000;
/** After TRAIN_STEPS the MLP gets ~90% of the test digits here; the bar leaves room for GPU rounding. */
const MIN_ACCURACY = 0.8;

let app: Demo;
const open = (path: string, init?: () => void) => app.open(path, init);

const demoState = (p: Page): Promise<DemoState> => p.evaluate(() => window.wgnnDemo!.state());
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** What #rate carries for tests: the speed shown, the finished steps, and when the last finished (page clock, ms). */
async function rateAttrs(p: Page): Promise<{ rate: number; done: number; at: number; text: string }> {
  return p.$eval('#rate', (el) => ({
    rate: Number((el as HTMLElement).dataset.rate),
    done: Number((el as HTMLElement).dataset.stepsDone),
    at: Number((el as HTMLElement).dataset.doneAt),
    text: el.textContent ?? '',
  }));
}

/** The evaluation view as shown: the matrix's cells (row-major), the counts in its summary and the accuracy text. */
async function shownEvaluation(p: Page) {
  return p.evaluate(() => {
    const cells = Array.from(document.querySelectorAll<HTMLElement>('#confusion td.cell')).map((td) =>
      Number(td.dataset.count),
    );
    const summary = document.getElementById('eval-summary')!;
    return {
      cells,
      total: Number(summary.dataset.total),
      correct: Number(summary.dataset.correct),
      accuracy: document.getElementById('eval-acc')?.textContent ?? '',
      classAcc: Array.from(document.querySelectorAll('#confusion td.class-acc')).map((td) => td.textContent ?? ''),
      mistakes: Array.from(document.querySelectorAll<HTMLElement>('#mistakes figure')).map((f) => ({
        label: Number(f.dataset.label),
        predicted: Number(f.dataset.predicted),
      })),
    };
  });
}

async function setControl(p: Page, id: string, value: string): Promise<void> {
  await (id === 'model' || id === 'optimizer' ? p.selectOption(`#${id}`, value) : p.fill(`#${id}`, value));
  await p.dispatchEvent(`#${id}`, 'change');
  await p.evaluate(() => window.wgnnDemo!.settled());
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
    // Short epochs (2,048 training digits) and a quick evaluation (1,000 test digits): SwiftShader is slow.
    demo = await open(`index.html?backend=webgpu&train=${TRAIN_SIZE}&test=${TEST_SIZE}`);
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

  test('[webgpu] a software adapter (SwiftShader) gets a banner saying it is a CPU emulator, and the MLP by default', async () => {
    await requireWebGpu();
    const { page } = demo;
    const s = await demoState(page);
    expect(s.adapter, 'Chromium here runs WebGPU on SwiftShader').toMatch(/swiftshader/i);
    expect(s.software).toBe(true);
    expect(await page.isVisible('#software-banner')).toBe(true);
    expect(await page.textContent('#software-banner')).toContain('CPU emulator');
    expect(s.model).toBe('mlp');
    expect(await page.inputValue('#model')).toBe('mlp');
    // The intro and the model summary with its parameter count: 784·128 + 128 + 128·10 + 10.
    expect(await page.textContent('.intro')).toMatch(/Start training[\s\S]*Draw a digit/);
    expect(await page.getAttribute('#summary-line', 'data-params')).toBe('101770');
    expect(await page.textContent('#train-size')).toBe('2,048');
    expect(await page.textContent('#test-size')).toBe('1,000');
    expect(await page.textContent('#summary-line')).toContain('101,770 parameters');
    expect(demo.errors).toEqual([]);
  });

  test('[webgpu] before any prediction, and with a blank pad: no bars, no class marked, charts say "no data yet"', async () => {
    await requireWebGpu();
    const { page } = demo;
    const bars = () =>
      page.$$eval('#probs .bar', (bs) => bs.map((b) => (b as HTMLElement).getBoundingClientRect().width));
    const s = await demoState(page);
    expect(s.inputInk).toBe(0);
    expect(s.probs).toEqual([]);
    expect(await bars()).toEqual(Array(10).fill(0));
    expect(await page.locator('#probs .prob.top').count()).toBe(0);
    expect(await page.textContent('#probs-note')).toMatch(/No prediction yet/);
    for (const chart of ['#chart-steps', '#chart-epochs']) {
      expect(await page.isVisible(`${chart} .chart-empty`), chart).toBe(true);
      expect(await page.textContent(`${chart} .chart-empty`)).toBe('no data yet');
    }
    expect(await page.textContent('#epoch')).toBe('0 / 5');
    // A digit gives bars and a marked class; Clear takes them away again.
    await page.evaluate(() => window.wgnnDemo!.loadTestDigit(0));
    expect((await demoState(page)).probs).toHaveLength(10);
    expect(await page.locator('#probs .prob.top').count()).toBe(1);
    expect(sum(await bars())).toBeGreaterThan(0);
    await page.click('#clear');
    await page.evaluate(() => window.wgnnDemo!.predicted());
    expect((await demoState(page)).probs).toEqual([]);
    expect(await page.locator('#probs .prob.top').count()).toBe(0);
    expect(await bars()).toEqual(Array(10).fill(0));
    expect(await page.textContent('#digit-label')).toBe('');
    expect(demo.errors).toEqual([]);
  });

  test('[webgpu] after Start: "compiling GPU kernels (n of m)… s" until the first step finishes, then steps/s counts finished steps only', async () => {
    await requireWebGpu();
    const { page } = demo;
    // The run the next test goes on with: the MLP, Adam, batches of 32, seed 1.
    await setControl(page, 'model', 'mlp');
    await setControl(page, 'optimizer', 'adam');
    await setControl(page, 'batch', '32');
    await setControl(page, 'seed', '1');
    // Every text the status takes, from the click on (a frame may never paint a short start-up).
    await page.evaluate(() => {
      const el = document.getElementById('status')!;
      const seen: string[] = ((window as unknown as { statusSeen: string[] }).statusSeen = []);
      new MutationObserver(() => seen.push(el.textContent ?? '')).observe(el, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    await page.click('#start');
    await page.waitForFunction(() => window.wgnnDemo!.state().stepsDone >= 1, null, { timeout: 60_000 });
    await expect.poll(() => page.getAttribute('#status', 'data-startup')).toBe('false');
    const seen = await page.evaluate(() => (window as unknown as { statusSeen: string[] }).statusSeen);
    const texts = `status texts: ${[...new Set(seen)].join(' | ')}`;
    const first = seen.findIndex((t) => t.startsWith('compiling'));
    expect(first, texts).toBeGreaterThanOrEqual(0);
    // From the click: the start-up, counting seconds and the pipelines created so far, then cleared.
    const startup = /^compiling GPU kernels(?: \((\d+) of (\d+)\))?… \d+ s$/;
    expect(
      seen.slice(first).every((t) => startup.test(t) || t === 'running'),
      texts,
    ).toBe(true);
    // The training step's pipelines (backward, Adam) are new to this page: some are counted while they compile.
    const counts = seen.map((t) => startup.exec(t)).filter((m) => m?.[1] !== undefined);
    expect(counts.length, texts).toBeGreaterThan(0);
    for (const m of counts) expect(Number(m![1]), texts).toBeLessThan(Number(m![2]));
    await expect.poll(() => page.textContent('#status')).toBe('running');
    expect(await page.textContent('#epoch')).toBe('1 / 5');
    // Two reads of the page's counters a few seconds apart: the steps that finished over the wall time between them
    // (after the first reads, which still compile kernels).
    await page.waitForFunction(() => window.wgnnDemo!.state().stepsDone >= 16, null, { timeout: 60_000 });
    const a = await rateAttrs(page);
    await page.waitForTimeout(5500);
    const b = await rateAttrs(page);
    const s = await demoState(page);
    const measured = (1000 * (b.done - a.done)) / (b.at - a.at);
    console.log(
      `steps/s shown ${b.rate.toFixed(2)} ("${b.text}"), measured ${measured.toFixed(2)} (${b.done - a.done} steps finished in ${((b.at - a.at) / 1000).toFixed(2)} s); queued ${s.step}, finished ${s.stepsDone}`,
    );
    expect(b.done - a.done).toBeGreaterThanOrEqual(8);
    expect(Math.abs(b.rate / measured - 1), `shown ${b.rate} vs measured ${measured}`).toBeLessThan(0.2);
    expect(Number(b.text)).toBeCloseTo(b.rate, 0);
    // Never more finished than queued; and s/epoch and ETA follow from the speed.
    expect(s.stepsDone).toBeLessThanOrEqual(s.step);
    expect(await page.textContent('#epoch-time')).toMatch(/\d s$/);
    expect(await page.textContent('#eta')).toMatch(/\d s$/);
    expect(demo.errors).toEqual([]);
  });

  test(`[webgpu] demo trains the MLP for ${TRAIN_STEPS} steps: the loss falls, the page stays responsive, pause stops between steps`, async () => {
    await requireWebGpu();
    const { page } = demo;
    // The run the test before started goes on.
    expect((await demoState(page)).status).toBe('running');
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
    expect(await page.textContent('#eta'), 'no ETA while paused').toBe('–');
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
    expect(await page.textContent('#digit-label')).toContain(`said ${last.predicted}`);
    expect(await page.getAttribute('#digit-label', 'data-correct')).toBe(String(last.label === last.predicted));
    expect(await page.getAttribute('#probs .prob.top', 'data-class')).toBe(String(last.predicted));
    // A digit it gets wrong is marked wrong.
    const wrong = results.findIndex((r) => r.label !== r.predicted);
    if (wrong >= 0) {
      await page.evaluate((i) => window.wgnnDemo!.loadTestDigit(i), wrong);
      expect(await page.getAttribute('#digit-label', 'data-correct')).toBe('false');
      expect(await page.textContent('#digit-label')).toContain('✗ wrong');
    }
    await page.screenshot({ path: join(SHOTS, 'demo-trained.png') });
    expect(demo.errors).toEqual([]);
  });

  test('[webgpu] after an epoch: the confusion matrix sums to the test digits and its diagonal gives the accuracy shown; training goes on after "done"; the optimizer changes (paused or done), the weights kept', async () => {
    await requireWebGpu();
    const { page } = demo;
    // One short epoch: 2,048 digits in batches of 128 (16 steps).
    await setControl(page, 'batch', '128');
    expect(await page.textContent('#controls-note')).toMatch(
      /Batch size changed: a new MLP; the trained one \(\d+ steps\) was dropped/,
    );
    await page.fill('#epochs', '1');
    await page.dispatchEvent('#epochs', 'change');
    await page.click('#start');
    await page.waitForFunction(() => window.wgnnDemo!.state().status === 'done', null, { timeout: 90_000 });
    await page.evaluate(() => window.wgnnDemo!.evaluated());
    let s = await demoState(page);
    expect(s.step).toBe(16);
    expect(s.stepsDone).toBe(16);
    expect(await page.textContent('#epoch')).toBe('1 / 1');
    expect(s.evaluations).toBe(1);
    let ev = await shownEvaluation(page);
    const testSize = await page.evaluate(() => window.wgnnDemo!.testSize);
    expect(ev.cells).toHaveLength(100);
    expect(ev.total).toBe(TEST_SIZE);
    expect(testSize).toBe(TEST_SIZE);
    expect(sum(ev.cells), 'the matrix counts every test digit once').toBe(testSize);
    const trace = sum(ev.cells.filter((_, i) => i % 11 === 0));
    expect(trace).toBe(ev.correct);
    expect(ev.accuracy).toBe(`${((100 * trace) / testSize).toFixed(1)}%`);
    // The same model on the same digits as fit's validation: the same accuracy.
    expect(Math.abs(trace / testSize - s.epochs[0]!.val_acc!)).toBeLessThan(1e-3);
    expect(ev.classAcc).toHaveLength(10);
    expect(ev.mistakes.length).toBe(Math.min(48, testSize - trace));
    expect(ev.mistakes.every((m) => m.label !== m.predicted)).toBe(true);
    console.log(`after 1 epoch (16 steps of 128): ${ev.accuracy} of ${testSize}; per class ${ev.classAcc.join(' ')}`);
    await page.locator('#eval').screenshot({ path: join(SHOTS, 'demo-eval.png') });

    // "done": the optimizer changes, the weights stay (the same prediction for a test digit before and after).
    const before = (await page.evaluate(() => window.wgnnDemo!.loadTestDigit(3))).probs;
    await page.selectOption('#optimizer', 'sgd');
    await page.dispatchEvent('#optimizer', 'change');
    await page.evaluate(() => window.wgnnDemo!.settled());
    expect(await page.textContent('#controls-note')).toMatch(/Optimizer now sgd .*the weights kept/);
    expect(await page.inputValue('#lr')).toBe('0.05');
    const after = (await page.evaluate(() => window.wgnnDemo!.loadTestDigit(3))).probs;
    expect(after).toEqual(before);

    // Start after "done" trains one more epoch on the same model.
    expect(await page.textContent('#start')).toBe('Train 1 more epoch');
    await page.click('#start');
    await page.waitForFunction(() => window.wgnnDemo!.state().step >= 19, null, { timeout: 60_000 });
    expect(await page.textContent('#epoch')).toBe('2 / 2');
    // Paused mid-epoch, the optimizer changes again without losing the model.
    await page.click('#pause');
    await page.waitForFunction(() => window.wgnnDemo!.state().status === 'paused');
    const paused = await demoState(page);
    const mid = (await page.evaluate(() => window.wgnnDemo!.loadTestDigit(3))).probs;
    expect(mid).not.toEqual(before);
    await page.selectOption('#optimizer', 'momentum');
    await page.dispatchEvent('#optimizer', 'change');
    await page.evaluate(() => window.wgnnDemo!.settled());
    expect(await page.textContent('#controls-note')).toMatch(/Optimizer now momentum .*Resume trains on/);
    s = await demoState(page);
    expect(s.status).toBe('paused');
    expect(s.step).toBe(paused.step);
    expect((await page.evaluate(() => window.wgnnDemo!.loadTestDigit(3))).probs).toEqual(mid);
    // "Evaluate now" while paused: the model as it is, at this step.
    await page.click('#evaluate');
    await page.evaluate(() => window.wgnnDemo!.evaluated());
    expect((await demoState(page)).evaluations).toBe(2);
    ev = await shownEvaluation(page);
    expect(sum(ev.cells)).toBe(testSize);
    expect(ev.accuracy).toBe(`${((100 * sum(ev.cells.filter((_, i) => i % 11 === 0))) / testSize).toFixed(1)}%`);
    expect(await page.getAttribute('#eval-summary', 'data-step')).toBe(String(paused.step));
    // Resume: a new fit with the new optimizer trains on from the same weights.
    await page.click('#start');
    await page.waitForFunction((n) => window.wgnnDemo!.state().stepsDone >= n + 4, paused.step, { timeout: 60_000 });
    await page.click('#pause');
    await page.waitForFunction(() => window.wgnnDemo!.state().status === 'paused');
    s = await demoState(page);
    expect(s.curve.loss.every(Number.isFinite)).toBe(true);
    expect(s.epochsDone).toBe(1);
    expect(await page.textContent('#epoch')).toBe('2 / 2');
    // Back to the page's settings for the tests after this one (the batch size, allowed while paused, starts over).
    await setControl(page, 'batch', '32');
    await setControl(page, 'epochs', '5');
    await setControl(page, 'optimizer', 'adam');
    expect((await demoState(page)).step).toBe(0);
    expect(demo.errors).toEqual([]);
  });

  // The shared page, trained and evaluated by now, at a phone's size and at a wide screen's, then back.
  test('[webgpu] on a 390×844 phone the pad and the probabilities come first, ~80% wide, the pad fully in view', async () => {
    await requireWebGpu();
    const { page } = demo;
    await page.setViewportSize({ width: 390, height: 844 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.evaluate(() => window.wgnnDemo!.loadTestDigit(0));
    const box = async (sel: string) => (await page.locator(sel).boundingBox())!;
    const pad = await box('#pad');
    const probs = await box('#probs');
    expect(pad.x).toBeGreaterThanOrEqual(0);
    expect(pad.y).toBeGreaterThanOrEqual(0);
    expect(pad.x + pad.width).toBeLessThanOrEqual(390);
    expect(pad.y + pad.height, 'the pad ends inside the first viewport').toBeLessThanOrEqual(844);
    expect(pad.width).toBeGreaterThanOrEqual(0.75 * 390);
    expect(probs.width).toBeGreaterThanOrEqual(0.75 * 390);
    expect(probs.y).toBeGreaterThanOrEqual(pad.y + pad.height - 1);
    expect((await box('#train')).y, 'training comes after the pad').toBeGreaterThan(probs.y);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(width, 'no sideways scrolling').toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(SHOTS, 'demo-phone.png') });
    expect(demo.errors).toEqual([]);
  });

  test('[webgpu] on a 1920×1080 screen the page uses the width and a larger pad, fully in view', async () => {
    await requireWebGpu();
    const { page } = demo;
    await page.setViewportSize({ width: 1920, height: 1080 });
    await page.evaluate(() => window.scrollTo(0, 0));
    const pad = (await page.locator('#pad').boundingBox())!;
    const main = (await page.locator('main.panels').boundingBox())!;
    expect(main.width, 'no 1248 px cap').toBeGreaterThan(1700);
    expect(pad.width).toBeGreaterThanOrEqual(320);
    expect(pad.y + pad.height).toBeLessThanOrEqual(1080);
    expect(pad.x + pad.width).toBeLessThanOrEqual(1920);
    await page.screenshot({ path: join(SHOTS, 'demo-wide.png') });
    await page.setViewportSize({ width: 1280, height: 980 });
    expect(demo.errors).toEqual([]);
  });

  test('[webgpu] the CNN trains, shows its 32 3×3 filters and 26×26 feature maps, and resets', async () => {
    await requireWebGpu();
    const { page } = demo;
    await page.click('#reset');
    await page.evaluate(() => window.wgnnDemo!.settled());
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
    expect(await page.textContent('#weights-label')).toContain('3×3');
    expect(await page.textContent('#maps-label')).toContain('26×26');
    // Filters and maps: grids of the same columns, so they line up.
    const columns = (sel: string) => page.$eval(sel, (g) => getComputedStyle(g).gridTemplateColumns);
    expect(await columns('#maps')).toBe(await columns('#weights'));
    await page.screenshot({ path: join(SHOTS, 'demo-cnn.png') });
    // A blank pad: the filters stay, the maps go (with a word why), no class is marked.
    await page.click('#clear');
    await page.evaluate(() => window.wgnnDemo!.predicted());
    expect(await page.locator('#maps canvas').count()).toBe(0);
    expect(await page.textContent('#maps')).toContain('Draw a digit');
    expect(await page.locator('#weights canvas').count()).toBe(32);
    expect(await page.locator('#probs .prob.top').count()).toBe(0);
    await page.click('#reset');
    await page.evaluate(() => window.wgnnDemo!.settled());
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
