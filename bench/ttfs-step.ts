// What the time-to-first-step benchmark (bench/ttfs.ts) times, shared by its Node child and its browser page
// (bench/ttfs.html): from `init()` to the first loss on the host, `fit` on one batch of 64, as a user's script does it.
import * as wg from '../src/index.js';

/** Rows of the one batch `fit` trains on. */
export const BATCH = 64;
/** Side of the 28 x 28 x 1 images the seed models take. */
export const SIDE = 28;
/** The seed model a run builds. */
export type TtfsModel = 'mlp' | 'cnn';

/** What one fresh process (Node) or browser measured, ms from its time origin on. */
export interface TtfsRun {
  model: TtfsModel;
  /** Start-up and the imports, before `init()` (Node: from the process's start; a page: from its navigation). */
  importMs: number;
  /** `init({ backend: 'webgpu' })`: adapter and device. */
  initMs: number;
  /** From `init()` returning to the first loss on the host: build, compile, `fit` on one batch (its kernels compile here). */
  stepMs: number;
  /** init() to the first loss: what the row times. */
  totalMs: number;
  /**
   * CPU time of the process (all threads: lavapipe compiles and runs kernels in its own) over the same span; on a
   * shared machine the steadier figure, since other processes stretch the wall time but not this. Node only.
   */
  cpuMs?: number;
  /** Browser: from launching Chromium to the page's result (the browser's own start-up and the page load included). */
  launchMs?: number;
  loss: number;
  /** Pipelines compiled, and still pending, at the first loss. */
  pipelines: { compiled: number; pending: number };
}

/** A deterministic batch (where MNIST is not at hand): compile time does not depend on the data. */
export function patternBatch(): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(BATCH * SIDE * SIDE);
  const y = new Int32Array(BATCH);
  x.forEach((_, i) => (x[i] = ((i * 7919) % 256) / 255));
  y.forEach((_, i) => (y[i] = i % 10));
  return { x, y };
}

/**
 * `init()` on WebGPU, the seed model, `fit` on the batch: the first training step as a user meets it. `cpuMs` reads
 * the process's CPU time so far, where there is one to read. Shuts the backend down after.
 */
export async function firstStep(
  model: TtfsModel,
  batch: { x: Float32Array; y: Int32Array },
  importMs: number,
  cpuMs?: () => number,
): Promise<TtfsRun> {
  const t0 = performance.now();
  const cpu0 = cpuMs?.();
  await wg.init({ backend: 'webgpu', quiet: true });
  const t1 = performance.now();
  wg.setSeed(1234);
  const net = wg.nn.seedModel(model, [SIDE, SIDE, 1], 10);
  net.compile({ optimizer: wg.optim.adam(1e-3), loss: 'sparseCategoricalCrossentropy' });
  const h = await net.fit(
    { data: batch.x, shape: [BATCH, SIDE, SIDE, 1] },
    { data: batch.y, shape: [BATCH] },
    { epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0 },
  );
  const t2 = performance.now();
  const cpu = cpu0 === undefined ? undefined : cpuMs!() - cpu0;
  const loss = h.history.loss?.[0] ?? NaN;
  const pipelines = wg.pipelineStats();
  wg.shutdown();
  return {
    model,
    importMs,
    initMs: t1 - t0,
    stepMs: t2 - t1,
    totalMs: t2 - t0,
    ...(cpu === undefined ? {} : { cpuMs: cpu }),
    loss,
    pipelines,
  };
}
