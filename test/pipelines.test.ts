// The pipeline cache and a step's start-up: pipelineStats counts pipelines as they are created and while they are
// pending; CompiledStep.prepare captures the step dry (nothing runs on the GPU), asks for all of its pipelines at once,
// and the runs after it give bitwise the results of runs without it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { expandSource, pipelineStats } from '../src/backend/webgpu/pipelines.js';
import { loadMnist } from '../src/data/mnist.js';
import { setSeed, trainStep } from '../src/nn/index.js';
import { seedModel } from '../src/nn/models.js';
import { adam } from '../src/optim/index.js';
import { relu } from '../src/ops/unary.js';
import { memory, setDefaultBackend, tensor } from '../src/tensor.js';
import { createWebGpuBackend } from '../src/init.js';
import { gpuBackend } from './helpers.js';

let gpu: WebGpuBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
  setDefaultBackend(gpu);
});
afterAll(() => setDefaultBackend(undefined));

describe('shader defines', () => {
  const src = 'fn f() -> u32 {\n// @if SG\n  return 1u;\n// @else\n  return /*@N*/;\n// @endif\n}\n';
  it('an @if block keeps one branch by its define; ENABLE becomes enable directives at the top', () => {
    expect(expandSource(src, { SG: 'true', ENABLE: 'subgroups' }, 't')).toBe(
      'enable subgroups;\nfn f() -> u32 {\n  return 1u;\n}\n',
    );
    expect(expandSource(src, { SG: 'false', N: '2u' }, 't')).toBe('fn f() -> u32 {\n  return 2u;\n}\n');
  });
  it('a missing define, a value other than true/false, or a directive outside a whole block is an error', () => {
    expect(() => expandSource(src, {}, 't')).toThrow(/^t: no definition for marker @SG$/);
    expect(() => expandSource(src, { SG: 'false' }, 't')).toThrow(/^t: no definition for marker @N$/);
    expect(() => expandSource(src, { SG: '1', N: '2u' }, 't')).toThrow(
      /^t: @if SG is '1'; expected 'true' or 'false'$/,
    );
    const open = 'fn f() {\n// @if SG\n  g();\n}\n';
    expect(() => expandSource(open, { SG: 'true' }, 't')).toThrow(/^t: '\/\/ @if SG' outside a whole/);
    const nested = '// @if A\n// @if B\nx\n// @endif\n// @endif\n';
    expect(() => expandSource(nested, { A: 'true', B: 'true' }, 't')).toThrow(/^t: '\/\/ @if B' outside a whole/);
  });
});

const B = 16;
const { train: mnist } = loadMnist();
const batch = (i: number) => [
  { data: mnist.x.slice(i * B * 784, (i + 1) * B * 784), shape: [B, 28, 28, 1] },
  { data: (mnist.y as Int32Array).slice(i * B, (i + 1) * B), shape: [B] },
];

/** Trains the seed MLP `steps` steps on `backend`, reading the loss after each; `prepare`: await step.prepare first. */
async function run(backend: WebGpuBackend, steps: number, prepare: 'await' | 'no-wait' | 'none') {
  setSeed(5);
  const model = seedModel('mlp', [28, 28, 1], 10);
  const opt = adam(1e-3);
  const step = trainStep(model, { optimizer: opt, loss: 'sparseCategoricalCrossentropy' });
  const [x0, y0] = batch(0);
  const d0 = backend.dispatches;
  let dispatchedByPrepare = 0;
  if (prepare === 'await') {
    await step.prepare(x0!, y0!);
    dispatchedByPrepare = backend.dispatches - d0;
  } else if (prepare === 'no-wait') void step.prepare(x0!, y0!); // run() must not need its pipelines to be ready
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const [x, y] = batch(i);
    step.run(x!, y!);
    losses.push((await step.read()).sums.loss!);
  }
  const weights = await Promise.all(model.parameters().map(async (p) => Array.from(await p.data())));
  const counts = [step.captures, step.replays, step.eagerSteps];
  step.dispose();
  opt.dispose();
  model.dispose();
  return { losses, weights, counts, dispatchedByPrepare };
}

describe('pipelines [webgpu]', () => {
  it('pipelineStats counts each pipeline once when it is created; prepare shows them pending, then compiled', async () => {
    const s0 = pipelineStats();
    const x = tensor(new Float32Array([-1, 2, -3, 4]), [4], { backend: gpu });
    const y = relu(x);
    await y.data();
    const s1 = pipelineStats();
    // The first relu made its pipeline (none existed on this device); a second relu reuses it.
    expect(s1).toEqual({ compiled: s0.compiled + 1, pending: 0 });
    const y2 = relu(x);
    await y2.data();
    expect(pipelineStats()).toEqual(s1);
    for (const t of [x, y, y2]) t.dispose();

    // A device of its own: none of the step's pipelines exist there yet.
    const own = (await createWebGpuBackend())!;
    setDefaultBackend(own);
    try {
      setSeed(5);
      const model = seedModel('mlp', [28, 28, 1], 10);
      const opt = adam(1e-3);
      const step = trainStep(model, { optimizer: opt, loss: 'sparseCategoricalCrossentropy' });
      const [x0, y0] = batch(0);
      const t0 = tensor(x0!.data, x0!.shape, { backend: own });
      const l0 = tensor(y0!.data, y0!.shape, { backend: own, dtype: 'int32' });
      const before = pipelineStats();
      const ready = step.prepare(t0, l0);
      const during = pipelineStats();
      await ready;
      const after = pipelineStats();
      const used = new Set(step.dispatches().map((d) => d.shader)).size;
      console.log(`prepare: ${during.pending} pending at once, then ${after.compiled - before.compiled} compiled`);
      // Every pipeline of the step was asked for at once (the dry capture), none made before prepare resolved.
      expect(during.pending).toBeGreaterThanOrEqual(used);
      expect(used).toBeGreaterThan(5);
      expect(during.compiled).toBe(before.compiled);
      expect(after.pending).toBe(0);
      expect(after.compiled - before.compiled).toBe(during.pending);
      expect(own.pipelines.compiled).toBe(during.pending);
      // Fewer variants: on a CPU adapter the scalar matmul serves both layers' forwards (relu or none) and the
      // output layer's dx and dw with one pipeline (uniform flags), and both bias gradients (small column sums) share
      // one reduce tile, so the seed MLP's step needs 12 pipelines, not 16 (each costs lavapipe ~0.05-2.5 s of
      // compilation).
      expect(during.pending).toBeLessThanOrEqual(own.software ? 12 : 13);
      const scalarMatmuls = step.dispatches().filter((d) => d.shader === 'matmul').length;
      expect(scalarMatmuls).toBeGreaterThanOrEqual(own.software ? 4 : 3);
      step.dispose();
      opt.dispose();
      t0.dispose();
      l0.dispose();
      model.dispose();
      expect(own.errors).toEqual([]);
    } finally {
      setDefaultBackend(gpu);
      own.destroy();
    }
  });

  it('prepare runs nothing on the GPU; runs after it = runs without it, bitwise (awaited or not)', async () => {
    const plain = await run(gpu, 3, 'none');
    const prepared = await run(gpu, 3, 'await');
    const eager = await run(gpu, 3, 'no-wait');
    expect(prepared.dispatchedByPrepare).toBe(0);
    expect(prepared.losses).toEqual(plain.losses);
    expect(prepared.weights).toEqual(plain.weights);
    expect(eager.losses).toEqual(plain.losses);
    expect(eager.weights).toEqual(plain.weights);
    // One capture, counted as the step it ran eagerly; the other two steps replays, as without prepare.
    expect(prepared.counts).toEqual(plain.counts);
    expect(plain.counts).toEqual([1, 2, 1]);
    expect(memory(gpu).liveTensors).toBe(0);
  });
});
