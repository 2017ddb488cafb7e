// Step capture and replay: a captured training step replayed with one submit per step gives bitwise the same
// weights and losses as eager steps (CNN with an lr schedule; an MLP with dropout and batch norm), re-captures on a
// new shape, creates no GPU buffers in steady state, and falls back to eager steps when a step cannot be captured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { compileStep } from '../src/autograd/step.js';
import { loadMnist } from '../src/data/mnist.js';
import { CaptureError } from '../src/errors.js';
import { StepMeter, layers, sequential, setSeed, trainStep, type Sequential } from '../src/nn/index.js';
import { seedModel } from '../src/nn/models.js';
import { adam, exponentialDecay, sgd, type Schedule } from '../src/optim/index.js';
import { mean } from '../src/ops/reduce.js';
import { square } from '../src/ops/unary.js';
import { sub } from '../src/ops/binary.js';
import { linear } from '../src/ops/matmul.js';
import { memory, setDefaultBackend, tensor, tidy } from '../src/tensor.js';
import { SHADERS } from '../src/shaders.gen.js';
import { gpuBackend } from './helpers.js';
import '../src/autograd/tape.js';

let gpu: WebGpuBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
  setDefaultBackend(gpu);
});
afterAll(() => setDefaultBackend(undefined));

async function weights(m: Sequential): Promise<Float32Array[]> {
  return Promise.all(m.namedTensors().map(async ([, t]) => (await t.data()) as Float32Array));
}

async function train(
  make: () => Sequential,
  replay: boolean,
  n: number,
  batchSize: number,
  lr: number | Schedule = exponentialDecay({ initial: 2e-3, decayRate: 0.5, decaySteps: 20 }),
) {
  setSeed(11);
  const m = make();
  const opt = adam({ lr });
  m.compile({ optimizer: opt, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const { train: tr } = loadMnist();
  const part = tr.slice(0, n);
  const losses: number[] = [];
  await m.fit(
    { data: part.x, shape: part.xShape },
    { data: part.y, shape: part.yShape },
    {
      batchSize,
      seed: 3,
      replay,
      readEvery: 1,
      verbose: 0,
      callbacks: { onBatchEnd: (_, logs) => void losses.push(logs.loss!) },
    },
  );
  const w = await weights(m);
  opt.dispose();
  m.dispose();
  return { losses, w };
}

const bitwise = (a: Float32Array[], b: Float32Array[]) => {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) =>
    expect(Buffer.from(x.buffer).equals(Buffer.from(b[i]!.buffer)), `tensor ${i} differs`).toBe(true),
  );
};

describe('step replay [webgpu]', () => {
  it('replay = eager, bitwise, over 50 steps of the seed CNN (Adam with a decaying learning rate)', async () => {
    const cnn = () => seedModel('cnn', [28, 28, 1], 10);
    const eager = await train(cnn, false, 50 * 8, 8);
    const replay = await train(cnn, true, 50 * 8, 8);
    expect(replay.losses).toEqual(eager.losses);
    bitwise(replay.w, eager.w);
  });

  it('replay = eager with dropout and batch norm (seeds and running statistics advance per replay)', async () => {
    const mlp = () =>
      sequential([
        layers.flatten({ inputShape: [28, 28, 1] }),
        layers.dense({ units: 64, activation: 'relu' }),
        layers.batchNormalization(),
        layers.dropout({ rate: 0.3, seed: 5 }),
        layers.dense({ units: 10, activation: 'softmax' }),
      ]);
    const eager = await train(mlp, false, 20 * 32, 32);
    const replay = await train(mlp, true, 20 * 32, 32);
    expect(replay.losses).toEqual(eager.losses);
    bitwise(replay.w, eager.w);
  });

  it('a short last batch is captured apart; the steady state is one submit and no new buffer per step', async () => {
    const mlp = () => seedModel('mlp', [28, 28, 1], 10);
    // 20 full batches and one short batch of 7 rows; readEvery 1 adds one readback submit per step.
    const r = await train(mlp, true, 20 * 32 + 7, 32, 1e-3);
    const e = await train(mlp, false, 20 * 32 + 7, 32, 1e-3);
    bitwise(r.w, e.w);
    setSeed(11);
    const m = mlp();
    const opt = sgd({ lr: 0.01, momentum: 0.9 });
    m.compile({ optimizer: opt, loss: 'sparseCategoricalCrossentropy' });
    const { train: tr } = loadMnist();
    const part = tr.slice(0, 64 * 30);
    const fitOnce = () =>
      m.fit(
        { data: part.x, shape: part.xShape },
        { data: part.y, shape: part.yShape },
        { batchSize: 64, verbose: 0, readEvery: 1000 },
      );
    await fitOnce();
    await fitOnce();
    const before = memory(gpu);
    const s0 = gpu.submits;
    await fitOnce(); // a new fit captures again (1 eager step) then replays 29
    const after = memory(gpu);
    // 30 steps: the capture's own submit(s), 29 replays, one read at the end of the epoch.
    expect(gpu.submits - s0).toBeLessThanOrEqual(29 + 3);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.liveTensors).toBe(before.liveTensors);
    console.log(
      `steady replay: ${gpu.submits - s0} submits for 30 steps; buffers created ${before.buffersCreated} -> ${after.buffersCreated}`,
    );
    opt.dispose();
    m.dispose();
  });

  it('a step that reads a tensor back cannot be captured: a clear error, then eager steps', async () => {
    const w = tensor([0.5, -0.25, 1], [3, 1]).variable();
    const b = tensor([0], [1]).variable();
    const opt = sgd({ lr: 0.1 });
    let reads = 0;
    const step = compileStep((x, y) => {
      const loss = tidy(() => mean(square(sub(linear(x, w, b), y))));
      loss.backward();
      void loss.data().then(() => reads++); // a readback inside the step: not capturable
      opt.step([w, b]);
      opt.zeroGrad([w, b]);
      return { loss };
    });
    const x = { data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3] };
    const y = { data: Float32Array.from([1, 2]), shape: [2, 1] };
    expect(() => step.run(x, y)).toThrow(
      /step: cannot be captured .*a captured step cannot read tensors back.*later steps run eagerly/,
    );
    opt.zeroGrad([w, b]);
    for (let i = 0; i < 3; i++) step.run(x, y);
    const r = await step.read();
    expect(step.captures).toBe(0);
    expect(step.eagerSteps).toBe(3);
    expect(r.steps).toBe(3);
    expect(reads).toBeGreaterThanOrEqual(3);
    expect(Number.isFinite(r.sums.loss!)).toBe(true);
    step.dispose();
    opt.dispose();
    for (const t of [w, b]) t.dispose();
  });

  it("replaying with the capture's own input tensor again leaves it in place (no copy of a buffer onto itself)", async () => {
    const w = tensor([0.5, -0.25, 1], [3, 1]).variable();
    const b = tensor([0], [1]).variable();
    const opt = sgd({ lr: 0.1 });
    const step = compileStep((xb) => {
      const loss = tidy(() => mean(square(linear(xb!, w, b))));
      loss.backward();
      opt.step([w, b]);
      opt.zeroGrad([w, b]);
      return { loss };
    });
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    for (let i = 0; i < 3; i++) step.run(x);
    const r = await step.read();
    expect(step.captures).toBe(1);
    expect(step.replays).toBe(2);
    expect(r.steps).toBe(3);
    expect(Number.isFinite(r.sums.loss!)).toBe(true);
    expect(gpu.errors).toEqual([]);
    step.dispose();
    opt.dispose();
    for (const t of [w, b, x]) t.dispose();
  });

  it("trainStep: the weight check adds an anomaly_check only for the tensors the update does not write (batch norm's moving statistics)", async () => {
    setSeed(11);
    const m = sequential([
      layers.dense({ units: 16, activation: 'relu', inputShape: [8] }),
      layers.batchNormalization(),
      layers.dense({ units: 3, activation: 'softmax' }),
    ]);
    const opt = sgd({ lr: 0.1, momentum: 0.9 });
    const step = trainStep(m, { optimizer: opt, loss: 'sparseCategoricalCrossentropy' });
    const x = { data: Float32Array.from({ length: 4 * 8 }, (_, i) => Math.sin(i)), shape: [4, 8] };
    const y = { data: Int32Array.from([0, 1, 2, 1]), shape: [4] };
    for (let i = 0; i < 2; i++) step.run(x, y);
    expect([step.captures, step.replays]).toEqual([1, 1]);
    const ops = step.dispatches().map((d) => d.op);
    expect(ops.filter((o) => o === 'sgd')).toHaveLength(m.parameters().length);
    expect(m.namedBuffers().length).toBe(2);
    expect(ops.filter((o) => o === 'anomaly_check')).toHaveLength(2);
    await new StepMeter(step).read();
    step.dispose();
    opt.dispose();
    m.dispose();
  });

  it("trainStep: the capture lists a replay's dispatches by op and kernel, profile times each; an eager step has none", async () => {
    setSeed(11);
    const m = seedModel('mlp', [28, 28, 1], 10);
    const opt = adam(1e-3);
    const step = trainStep(m, { optimizer: opt, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const meter = new StepMeter(step);
    const p = loadMnist().train.slice(0, 48);
    let perReplay = 0;
    for (let i = 0; i < 3; i++) {
      const b = p.slice(16 * i, 16 * (i + 1));
      const d0 = gpu.dispatches;
      step.run({ data: b.x, shape: b.xShape }, { data: b.y, shape: b.yShape });
      perReplay = gpu.dispatches - d0;
      meter.ran(16);
    }
    expect([step.captures, step.replays]).toEqual([1, 2]);
    const ds = step.dispatches();
    expect(ds.length).toBe(perReplay);
    const ops = ds.map((d) => d.op);
    // Forward (dense 784->128 with its bias), loss, backward, the accuracy count, Adam on the 4 parameters, the 2 sums.
    expect(ops[0]).toBe('matmul_bias');
    for (const op of ['softmax_cross_entropy', 'softmax_cross_entropy_bwd_x', 'count_correct'])
      expect(ops).toContain(op);
    expect(ops.filter((o) => o === 'adam')).toHaveLength(4);
    // The weight check runs inside Adam's kernels: every tensor of this model is a parameter Adam writes.
    expect(ops).not.toContain('anomaly_check');
    expect(ops.slice(-2)).toEqual(['accumulate', 'accumulate']);
    for (const d of ds) {
      expect(Object.keys(SHADERS), d.op).toContain(d.shader);
      expect(d.bytes, d.op).toBeGreaterThan(0);
      expect(
        d.workgroups.every((w) => Number.isInteger(w) && w >= 1),
        d.op,
      ).toBe(true);
    }
    const ms = await step.profile(2);
    if (gpu.features.has('timestamp-query')) {
      expect(ms).toHaveLength(ds.length);
      expect(ms!.every((t) => Number.isFinite(t) && t >= 0)).toBe(true);
      expect(ms!.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    } else expect(ms).toBeUndefined();
    // The meter: means over the 48 rows; the accuracy is a count of correct rows over 48.
    const logs = await meter.read();
    expect(Number.isFinite(logs.loss)).toBe(true);
    expect(logs.acc! * 48).toBeCloseTo(Math.round(logs.acc! * 48), 4);
    expect(meter.logs()).toEqual(logs);
    step.dispose();
    expect(step.dispatches()).toEqual([]);

    const eager = trainStep(m, { optimizer: opt, loss: 'sparseCategoricalCrossentropy', replay: false });
    eager.run({ data: p.x.subarray(0, 16 * 784), shape: [16, 28, 28, 1] }, { data: p.y.subarray(0, 16), shape: [16] });
    expect(eager.dispatches()).toEqual([]);
    await expect(eager.profile(1)).rejects.toThrow(CaptureError);
    eager.dispose();
    opt.dispose();
    m.dispose();
  });
});
