// Reliability of training: checkpoints resume bitwise, fit() recovers from a lost device through its last checkpoint
// with the same final weights as an uninterrupted run, seeded training is deterministic, and 200 steps of the MLP and
// the CNN, eager and replayed, leak nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { loadMnist } from '../src/data/mnist.js';
import { createWebGpuBackend } from '../src/init.js';
import { setSeed, type Sequential } from '../src/nn/index.js';
import { seedModel } from '../src/nn/models.js';
import { adam } from '../src/optim/index.js';
import { memory, setDefaultBackend } from '../src/tensor.js';
import { gpuBackend } from './helpers.js';
import '../src/autograd/tape.js';

let gpu: WebGpuBackend;
let dir: string;
beforeAll(async () => {
  gpu = await gpuBackend();
  setDefaultBackend(gpu);
  dir = mkdtempSync(join(tmpdir(), 'wgnn-ck-'));
});
afterAll(() => {
  setDefaultBackend(undefined);
  rmSync(dir, { recursive: true, force: true });
});

const { train } = loadMnist();
const data = (n: number) => {
  const p = train.slice(0, n);
  return [
    { data: p.x, shape: p.xShape },
    { data: p.y, shape: p.yShape },
  ] as const;
};

async function weightsOf(m: Sequential): Promise<Buffer[]> {
  return Promise.all(m.namedTensors().map(async ([, t]) => Buffer.from(((await t.data()) as Float32Array).buffer)));
}

function model(kind: 'mlp' | 'cnn') {
  setSeed(21);
  const m = seedModel(kind, [28, 28, 1], 10);
  const opt = adam(1e-3);
  m.compile({ optimizer: opt, loss: 'sparseCategoricalCrossentropy' });
  return { m, opt };
}

describe('checkpoints [webgpu]', () => {
  it('2N steps straight = N steps, checkpoint, a fresh model and optimizer resuming, N more (bitwise)', async () => {
    const [x, y] = data(16 * 20);
    const a = model('mlp');
    await a.m.fit(x, y, { epochs: 2, batchSize: 16, seed: 4, verbose: 0 });
    const straight = await weightsOf(a.m);
    const path = join(dir, 'resume.safetensors');
    const b = model('mlp');
    // Stop after 20 steps (one epoch of two): a checkpoint every 10 steps.
    await b.m.fit(x, y, { epochs: 1, batchSize: 16, seed: 4, verbose: 0, checkpoint: { path, everySteps: 10 } });
    const c = model('mlp'); // its own fresh weights: the checkpoint must replace them
    await c.m.fit(x, y, {
      epochs: 2,
      batchSize: 16,
      seed: 4,
      verbose: 0,
      checkpoint: { path, everySteps: 1000, resume: true },
    });
    const resumed = await weightsOf(c.m);
    resumed.forEach((w, i) => expect(w.equals(straight[i]!), `tensor ${i}`).toBe(true));
    for (const r of [a, b, c]) {
      r.opt.dispose();
      r.m.dispose();
    }
  });
});

describe('device loss [webgpu]', () => {
  it('losing the device at step 37 of 50 (checkpoint every 10) ends with the uninterrupted weights, bitwise', async () => {
    const [x, y] = data(8 * 50);
    const own = (await createWebGpuBackend())!;
    setDefaultBackend(own);
    const a = model('mlp');
    await a.m.fit(x, y, { batchSize: 8, seed: 2, verbose: 0 });
    const straight = await weightsOf(a.m);
    a.opt.dispose();
    a.m.dispose();

    const b = model('mlp');
    let fresh: WebGpuBackend | undefined;
    const path = join(dir, 'loss.safetensors');
    await b.m.fit(x, y, {
      batchSize: 8,
      seed: 2,
      verbose: 0,
      readEvery: 1,
      checkpoint: { path, everySteps: 10 },
      recover: async () => (fresh = (await createWebGpuBackend())!),
      callbacks: { onBatchEnd: (i) => void (i === 36 && !fresh && own.device.destroy()) },
    });
    expect(fresh).toBeDefined();
    expect(own.isLost).toBe(true);
    const recovered = await weightsOf(b.m);
    recovered.forEach((w, i) => expect(w.equals(straight[i]!), `tensor ${i}`).toBe(true));
    console.log(
      'device loss at step 37 of 50: recovered from the step-30 checkpoint; final weights equal the uninterrupted run',
    );
    b.opt.dispose();
    b.m.dispose();
    fresh!.destroy();
    setDefaultBackend(gpu);
  });
});

describe('determinism [webgpu]', () => {
  it('three runs of the same seeded CNN training give bitwise-identical losses and weights', async () => {
    const [x, y] = data(16 * 8);
    const runs: { losses: number[]; w: Buffer[] }[] = [];
    for (let r = 0; r < 3; r++) {
      const { m, opt } = model('cnn');
      const losses: number[] = [];
      await m.fit(x, y, {
        batchSize: 16,
        seed: 9,
        verbose: 0,
        readEvery: 1,
        callbacks: { onBatchEnd: (_, l) => void losses.push(l.loss!) },
      });
      runs.push({ losses, w: await weightsOf(m) });
      opt.dispose();
      m.dispose();
    }
    for (const r of runs.slice(1)) {
      expect(r.losses).toEqual(runs[0]!.losses);
      r.w.forEach((w, i) => expect(w.equals(runs[0]!.w[i]!)).toBe(true));
    }
  });
});

describe('leaks [webgpu]', () => {
  it.each([
    ['mlp', true],
    ['mlp', false],
    ['cnn', true],
    ['cnn', false],
  ] as const)(
    '200 steps of the %s (replay %s): live tensors and bytes back to the baseline, pool flat after warm-up',
    async (kind, replay) => {
      const [x, y] = data(kind === 'cnn' ? 4 * 50 : 16 * 50);
      const base = memory(gpu);
      const { m, opt } = model(kind);
      const fitOnce = () => m.fit(x, y, { batchSize: kind === 'cnn' ? 4 : 16, replay, verbose: 0 });
      await fitOnce();
      const warm = memory(gpu);
      for (let i = 0; i < 3; i++) await fitOnce(); // 200 steps in all
      const end = memory(gpu);
      opt.dispose();
      m.dispose();
      const after = memory(gpu);
      console.log(
        `leaks ${kind} replay=${replay}: live tensors ${base.liveTensors} -> ${after.liveTensors}, live bytes ${base.liveBytes} -> ${after.liveBytes}; ` +
          `pooled after warm-up ${warm.pooledBytes} -> ${end.pooledBytes} B, buffers created ${warm.buffersCreated} -> ${end.buffersCreated}`,
      );
      expect(after.liveTensors).toBe(base.liveTensors);
      expect(after.liveBytes).toBe(base.liveBytes);
      expect(end.pooledBytes).toBe(warm.pooledBytes);
    },
  );
});
