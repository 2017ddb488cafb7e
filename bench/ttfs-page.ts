// The time-to-first-step benchmark in a browser tab (bench/ttfs.html?model=mlp|cnn): the first training step as in
// bench/ttfs-step.ts; the result, or the error, goes to `window.ttfs` (a promise bench/ttfs.ts awaits) and the page.
import { firstStep, patternBatch, type TtfsRun } from './ttfs-step.js';

const importMs = performance.now();

async function run(): Promise<TtfsRun> {
  const model = new URLSearchParams(location.search).get('model');
  if (model !== 'mlp' && model !== 'cnn') throw new Error(`?model=${model}: expected mlp or cnn`);
  return firstStep(model, patternBatch(), importMs);
}

const out = document.getElementById('out')!;
const result = run();
(window as unknown as { ttfs: Promise<TtfsRun> }).ttfs = result;
result.then(
  (r) => (out.textContent = JSON.stringify(r)),
  (e: unknown) => (out.textContent = `error: ${e instanceof Error ? e.message : String(e)}`),
);
