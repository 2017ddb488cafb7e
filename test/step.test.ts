// Step capture and replay: a captured training step replayed with one submit per step (a read adds one map, no
// submit) gives bitwise the same weights and losses as eager steps (CNN with an lr schedule; an MLP with dropout and
// batch norm; reads every step, every 16, never), re-captures on a new shape, creates no GPU buffers in steady state,
// and falls back to eager steps when a step cannot be captured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { WasmBackend } from '../src/backend/wasm/wasm.js';
import { compileStep } from '../src/autograd/step.js';
import { loadMnist } from '../src/data/mnist.js';
import { CaptureError } from '../src/errors.js';
import { StepMeter, layers, sequential, setSeed, trainStep, type Sequential } from '../src/nn/index.js';
import { gpt } from '../src/nn/gpt.js';
import { Rng } from '../src/rng.js';
import { seedModel } from '../src/nn/models.js';
import { adam, adamw, exponentialDecay, sgd, type Schedule } from '../src/optim/index.js';
import { mean } from '../src/ops/reduce.js';
import { square } from '../src/ops/unary.js';
import { sub } from '../src/ops/binary.js';
import { linear } from '../src/ops/matmul.js';
import { memory, setDefaultBackend, tensor, tidy, type Tensor } from '../src/tensor.js';
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

/** An MLP whose step has per-step state: dropout's seed and batch norm's running statistics. */
const dropoutMlp = () =>
  sequential([
    layers.flatten({ inputShape: [28, 28, 1] }),
    layers.dense({ units: 64, activation: 'relu' }),
    layers.batchNormalization(),
    layers.dropout({ rate: 0.3, seed: 5 }),
    layers.dense({ units: 10, activation: 'softmax' }),
  ]);

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
    const eager = await train(dropoutMlp, false, 20 * 32, 32);
    const replay = await train(dropoutMlp, true, 20 * 32, 32);
    expect(replay.losses).toEqual(eager.losses);
    bitwise(replay.w, eager.w);
  });

  it('a short last batch is captured apart; the steady state is one submit and no new buffer per step', async () => {
    const mlp = () => seedModel('mlp', [28, 28, 1], 10);
    // 20 full batches and one short batch of 7 rows, read every step (each read joins its step's submit).
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

  it("replaying with the capture's own input tensors again leaves them in place (no copy of a buffer onto itself), = eager", async () => {
    // A linear model on device tensors x [2,3], y [2,1], three runs on the same two tensors: 1 capture, 2 replays.
    const run = async (replay: boolean) => {
      const w = tensor([0.5, -0.25, 1], [3, 1]).variable();
      const b = tensor([0], [1]).variable();
      const opt = sgd({ lr: 0.1 });
      const step = compileStep(
        (xb, yb) => {
          const loss = tidy(() => mean(square(sub(linear(xb!, w, b), yb!))));
          loss.backward();
          opt.step([w, b]);
          opt.zeroGrad([w, b]);
          return { loss };
        },
        { replay },
      );
      const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
      const y = tensor([1, -2], [2, 1]);
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) {
        step.run(x, y);
        losses.push((await step.read()).sums.loss!);
      }
      const counts = [step.captures, step.replays, step.eagerSteps];
      const ws = [(await w.data()) as Float32Array, (await b.data()) as Float32Array];
      step.dispose();
      opt.dispose();
      for (const t of [w, b, x, y]) t.dispose();
      return { losses, counts, ws };
    };
    const r = await run(true);
    const e = await run(false);
    expect(r.counts).toEqual([1, 2, 1]); // the capture runs its step eagerly once
    expect(e.counts).toEqual([0, 0, 3]);
    expect(r.losses).toEqual(e.losses);
    expect(new Set(r.losses).size).toBe(3); // the weights moved between the runs: each replay saw the updated ones
    bitwise(r.ws, e.ws);
    expect(gpu.errors).toEqual([]);
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

  it('a replayed step is one submit, read or not; a read of the sums and the weight check is one map', async () => {
    setSeed(11);
    // Batch norm: the weight check adds anomaly_check dispatches on its moving statistics (its flag is read too).
    const m = sequential([
      layers.flatten({ inputShape: [28, 28, 1] }),
      layers.dense({ units: 32, activation: 'relu' }),
      layers.batchNormalization(),
      layers.dense({ units: 10, activation: 'softmax' }),
    ]);
    const opt = adam(1e-3);
    const step = trainStep(m, { optimizer: opt, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const meter = new StepMeter(step);
    const p = loadMnist().train.slice(0, 64);
    const host = (i: number) => {
      const b = p.slice(16 * (i % 4), 16 * ((i % 4) + 1));
      return [
        { data: b.x, shape: b.xShape },
        { data: b.y, shape: b.yShape },
      ] as const;
    };
    step.run(...host(0));
    meter.ran(16);
    await meter.read();
    const counted = async (steps: number, each: (i: number) => Promise<void>) => {
      const [s0, m0] = [gpu.submits, gpu.maps];
      for (let i = 0; i < steps; i++) await each(i);
      await gpu.sync();
      return { submits: (gpu.submits - s0) / steps, maps: (gpu.maps - m0) / steps };
    };
    // Host batches, read after every step: the read's copy joins the replay's submit.
    const readEach = await counted(6, async (i) => {
      step.run(...host(i));
      meter.ran(16);
      await meter.read();
    });
    // Host batches, no read: each step's input writes submit the step before; a microtask submits the last.
    const noRead = await counted(6, async (i) => {
      step.run(...host(i));
      meter.ran(16);
    });
    await meter.read();
    // Device tensors (not the captured ones): the input copies go in the replay's command buffer.
    const dev: Tensor[][] = [0, 1].map((i) => {
      const [x, y] = host(i);
      return [tensor(x.data, x.shape), tensor(y.data, y.shape, { dtype: 'int32' })];
    });
    const devRead = await counted(4, async (i) => {
      step.run(...dev[i % 2]!);
      meter.ran(16);
      await meter.read();
    });
    console.log(
      `per replayed step: ${readEach.submits} submits and ${readEach.maps} maps read every step; ${noRead.submits} submits unread; device inputs ${devRead.submits}/${devRead.maps}`,
    );
    expect(step.captures).toBe(1);
    expect(readEach).toEqual({ submits: 1, maps: 1 });
    expect(noRead).toEqual({ submits: 1, maps: 0 });
    expect(devRead).toEqual({ submits: 1, maps: 1 });
    expect(step.dispatches().filter((d) => d.op === 'anomaly_check').length).toBeGreaterThan(0);
    expect(gpu.errors).toEqual([]);
    for (const t of dev.flat()) t.dispose();
    step.dispose();
    opt.dispose();
    m.dispose();
  });

  it('replay = eager, bitwise, with the loss read every step, every 16 steps and never (seed MLP, 20 steps)', async () => {
    const run = async (replay: boolean, every: number) => {
      setSeed(11);
      const m = seedModel('mlp', [28, 28, 1], 10);
      const opt = adam(1e-3);
      const step = trainStep(m, {
        optimizer: opt,
        loss: 'sparseCategoricalCrossentropy',
        metrics: ['accuracy'],
        replay,
      });
      const meter = new StepMeter(step);
      const p = loadMnist().train.slice(0, 16 * 5);
      const logs: number[] = [];
      for (let i = 0; i < 20; i++) {
        const b = p.slice(16 * (i % 5), 16 * ((i % 5) + 1));
        step.run({ data: b.x, shape: b.xShape }, { data: b.y, shape: b.yShape });
        meter.ran(16);
        if ((i + 1) % every === 0) logs.push(...Object.values(await meter.read()));
      }
      const w = await weights(m);
      logs.push(...Object.values(await meter.read())); // the steps since the last read (every 16: 4; never: all 20)
      const counts = [step.captures, step.replays];
      step.dispose();
      opt.dispose();
      m.dispose();
      return { logs, w, counts };
    };
    for (const every of [1, 16, Infinity]) {
      const e = await run(false, every);
      const r = await run(true, every);
      expect(r.counts, `read every ${every}`).toEqual([1, 19]);
      expect(r.logs, `read every ${every}`).toEqual(e.logs);
      bitwise(r.w, e.w);
    }
  });
});

describe('step replay [wasm]', () => {
  let wasm: WasmBackend;
  beforeAll(async () => {
    wasm = await WasmBackend.create({ threads: 2 });
    setDefaultBackend(wasm);
  });
  afterAll(() => {
    expect(memory(wasm).liveTensors, 'wasm: tensors left alive').toBe(0);
    wasm.destroy();
    setDefaultBackend(gpu);
  });

  it('replay = eager, bitwise: the seed CNN (Adam, decaying learning rate) and an MLP with dropout and batch norm', async () => {
    const cnn = () => seedModel('cnn', [28, 28, 1], 10);
    for (const [make, steps, batch] of [
      [cnn, 12, 8],
      [dropoutMlp, 20, 32],
    ] as const) {
      const eager = await train(make, false, steps * batch, batch);
      const replay = await train(make, true, steps * batch, batch);
      expect(replay.losses).toEqual(eager.losses);
      bitwise(replay.w, eager.w);
    }
  });

  it('replay = eager, bitwise: a tiny GPT (attention runs its CPU reference on wasm, replayed on the pinned blocks)', async () => {
    const run = async (replay: boolean) => {
      const m = gpt({ vocabSize: 11, blockSize: 8, layers: 1, heads: 2, dim: 16, dropout: 0, seed: 3 });
      const opt = adamw({ lr: 1e-2, weightDecay: 0.1 });
      const step = trainStep(m, { optimizer: opt, loss: 'sparseCategoricalCrossentropy', replay });
      const meter = new StepMeter(step);
      const rng = new Rng(4);
      const losses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const ids = () => ({ data: Int32Array.from({ length: 2 * 8 }, () => rng.int(0, 11)), shape: [2, 8] });
        step.run(ids(), ids());
        meter.ran(2);
        losses.push((await meter.read()).loss!);
      }
      const w = await Promise.all(m.parameters().map((p) => p.data() as Promise<Float32Array>));
      step.dispose();
      opt.dispose();
      m.dispose();
      return { losses, w };
    };
    const eager = await run(false);
    const replay = await run(true);
    expect(replay.losses).toEqual(eager.losses);
    bitwise(replay.w, eager.w);
  });

  it("a replay runs the capture's kernel calls (no op dispatch in JavaScript); profile times each; reads cannot be captured", async () => {
    setSeed(11);
    const m = seedModel('mlp', [28, 28, 1], 10);
    const opt = adam(1e-3);
    const step = trainStep(m, { optimizer: opt, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const meter = new StepMeter(step);
    const p = loadMnist().train.slice(0, 48);
    const batch = (i: number) => p.slice(16 * (i % 3), 16 * ((i % 3) + 1));
    step.run({ data: batch(0).x, shape: batch(0).xShape }, { data: batch(0).y, shape: batch(0).yShape });
    // Tensors made and freed between replays: the blocks the recording writes are never handed to them.
    const bystanders = [16 * 784, 16 * 128, 128, 16 * 10, 784 * 128, 7].map((n, i) =>
      tensor(
        Float32Array.from({ length: n }, (_, j) => i + j / n),
        [n],
      ),
    );
    const before = await Promise.all(bystanders.map((t) => t.data()));
    const live0 = memory(wasm).liveTensors;
    for (let i = 1; i < 6; i++) {
      const b = batch(i);
      step.run({ data: b.x, shape: b.xShape }, { data: b.y, shape: b.yShape });
      meter.ran(16);
    }
    expect([step.captures, step.replays]).toEqual([1, 5]);
    expect(memory(wasm).liveTensors, 'a replay makes no tensor').toBe(live0);
    const after = await Promise.all(bystanders.map((t) => t.data()));
    after.forEach((d, i) =>
      expect(Buffer.from(d.buffer).equals(Buffer.from(before[i]!.buffer)), `bystander ${i}`).toBe(true),
    );
    bystanders.forEach((t) => t.dispose());
    const ds = step.dispatches();
    const ops = ds.map((d) => d.op);
    expect(ops[0]).toBe('matmul_bias');
    for (const op of ['softmax_cross_entropy', 'softmax_cross_entropy_bwd_x', 'count_correct', 'adam'])
      expect(ops).toContain(op);
    expect(ops.slice(-2)).toEqual(['accumulate', 'accumulate']);
    expect(ds.every((d) => d.bytes > 0 && d.workgroups[0] >= 1)).toBe(true);
    const ms = await step.profile(2);
    expect(ms).toHaveLength(ds.length);
    expect(ms!.every((t) => Number.isFinite(t) && t >= 0)).toBe(true);
    expect(Number.isFinite((await meter.read()).loss)).toBe(true);
    // The arena never shrinks: every block is live or pooled, those kept for the capture counted as pooled.
    const held = memory(wasm);
    step.dispose();
    opt.dispose();
    m.dispose();
    const freed = memory(wasm);
    expect(freed.liveBytes + freed.pooledBytes).toBe(held.liveBytes + held.pooledBytes);

    const w = tensor([0.5, -0.25, 1], [3, 1]).variable();
    const b = tensor([0], [1]).variable();
    const o = sgd({ lr: 0.1 });
    let partial: Tensor | undefined; // the loss of the step that ran only partly
    const reading = compileStep((x, y) => {
      const loss = tidy(() => mean(square(sub(linear(x, w, b), y))));
      partial = loss;
      loss.backward();
      void loss.data();
      o.step([w, b]);
      o.zeroGrad([w, b]);
      return { loss };
    });
    expect(() =>
      reading.run(
        { data: Float32Array.from([1, 2, 3]), shape: [1, 3] },
        { data: Float32Array.from([1]), shape: [1, 1] },
      ),
    ).toThrow(/a captured step cannot read tensors back/);
    partial!.dispose();
    o.zeroGrad([w, b]);
    reading.dispose();
    o.dispose();
    w.dispose();
    b.dispose();
  });
});
