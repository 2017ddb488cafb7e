// The WASM backend against the CPU reference: the op table forward and backward (same samples and tolerances as
// WebGPU's walk), bad inputs with the same typed errors, the in-place kernels, results independent of the thread
// count (bitwise), memory and pool stats without leaks, and the seed MLP learning MNIST on it.
import { availableParallelism } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, TypedArray } from '../src/backend/backend.js';
import { WASM_INPLACE, WASM_KERNELS } from '../src/backend/wasm/table.js';
import { WasmBackend } from '../src/backend/wasm/wasm.js';
import { backward, zeroGrad } from '../src/autograd/tape.js';
import { loadMnist } from '../src/data/mnist.js';
import { apply, applyInPlace } from '../src/ops/apply.js';
import type { InPlaceDef, InPlaceName, InPlaceSample } from '../src/ops/inplace.js';
import type { AnyOp, Sample, SampleInput } from '../src/ops/op.js';
import { OPS, type OpName } from '../src/ops/registry.js';
import { ArgumentError } from '../src/errors.js';
import { seedModel } from '../src/nn/models.js';
import { setSeed } from '../src/nn/index.js';
import { adam } from '../src/optim/index.js';
import { INPLACE } from '../src/optim/registry.js';
import { isSoftwareAdapter } from '../src/platform/gpu.js';
import { Rng } from '../src/rng.js';
import { memory, setDefaultBackend } from '../src/tensor.js';
import { cpu, expectClose, sampleData, upload } from './helpers.js';

const THREADS = [1, 2, 4] as const;
const wasm: Record<number, WasmBackend> = {};
beforeAll(async () => {
  for (const t of THREADS) wasm[t] = await WasmBackend.create({ threads: t });
});
afterAll(() => {
  for (const t of THREADS) {
    expect(memory(wasm[t]).liveTensors, `wasm (${t} threads): tensors left alive by this file`).toBe(0);
    wasm[t]!.destroy();
  }
});

const seedOf = (s: string): number => [...s].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7);
const isFloat = (inp: SampleInput) => inp.dtype !== 'int32';
const ops = Object.values(OPS) as AnyOp[];

async function forward(b: Backend, op: AnyOp, s: Sample<object>, seed: number) {
  const rng = new Rng(seed);
  const inputs = s.inputs.map((inp) => upload(b, sampleData(inp, rng), inp.shape));
  const y = apply(op, inputs, s.attrs ?? {});
  const data = await y.data();
  const shape = y.shape;
  for (const t of [...inputs, y]) t.dispose();
  return { data, shape };
}

/** y = op(x...) with every float input requiring grad, then backward from upstream r: the inputs' gradients. */
async function gradients(b: Backend, op: AnyOp, s: Sample<object>, seed: number) {
  const rng = new Rng(seed);
  const datas = s.inputs.map((inp) => sampleData(inp, rng));
  const xs = s.inputs.map((inp, i) => upload(b, datas[i]!, inp.shape).variable(isFloat(inp)));
  const y = apply(op, xs, s.attrs ?? {});
  const r = new Rng(seed + 1);
  const dy = upload(
    b,
    Float32Array.from({ length: y.size }, () => r.uniform(-1, 1)),
    y.shape,
  );
  backward(y, dy);
  const grads = await Promise.all(xs.map((x) => x.grad?.data()));
  zeroGrad(xs);
  for (const t of [...xs, y, dy]) t.dispose();
  return grads;
}

/** The same bits everywhere (NaN payloads included): results must not depend on the thread count. */
function expectSameBits(a: TypedArray, b: TypedArray, what: string): void {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  expect(x.length, `${what}: length`).toBe(y.length);
  let first = -1;
  for (let i = 0; i < x.length && first < 0; i++) if (x[i] !== y[i]) first = i;
  expect(first, `${what}: first differing element (got ${a[first]}, want ${b[first]})`).toBe(-1);
}

const differentiable = (op: AnyOp) => !('none' in op.grad);

describe.each(ops)('$name', (op) => {
  const samples = ([...op.samples(new Rng(seedOf(op.name)))] as Sample<object>[]).map((s, i) => ({
    s,
    i,
    label: s.name,
  }));

  it.each(samples)(`${op.name} $label [wasm] wasm≈cpu, 1 = 2 = 4 threads bitwise`, async ({ s, i }) => {
    const seed = seedOf(`${op.name}#${i}`);
    const want = await forward(cpu, op, s, seed);
    const got = await forward(wasm[1]!, op, s, seed);
    expect(got.shape).toEqual(want.shape);
    expectClose(got.data, want.data, op.tol, `${op.name} ${s.name} (seed ${seed})`);
    // The reference runs on the calling thread alone: only wasm kernels have threads to compare.
    for (const t of WASM_KERNELS[op.name as OpName] === 'reference' ? [] : [2, 4]) {
      const other = await forward(wasm[t]!, op, s, seed);
      expectSameBits(other.data, got.data, `${op.name} ${s.name}: ${t} threads vs 1`);
    }
  });

  // Backward only for ops with a gradient (the others say why not in the op table): no test is registered to skip.
  const backwardSamples = differentiable(op) ? samples.filter(({ s }) => s.inputs.some(isFloat)) : [];
  if (backwardSamples.length > 0)
    it.each(backwardSamples)(`${op.name} $label [wasm] backward wasm≈cpu`, async ({ s, i }) => {
      const seed = seedOf(`${op.name}@${i}`);
      const want = await gradients(cpu, op, s, seed);
      const got = await gradients(wasm[4]!, op, s, seed);
      const tol = op.gradTol ?? { atol: op.tol.atol * 10, rtol: op.tol.rtol * 10 };
      want.forEach((w, k) => {
        if (w) expectClose(got[k]!, w, tol, `${op.name} ${s.name} d/dx${k} (seed ${seed})`);
      });
    });

  it.each(op.bad.map((c) => ({ c, label: c.name })))(`${op.name} rejects $label [wasm]`, async ({ c }) => {
    const b = wasm[2]!;
    const rng = new Rng(1);
    const inputs = c.inputs.map((inp) => upload(b, sampleData(inp, rng), inp.shape));
    expect(() => apply(op, inputs, c.attrs ?? {})).toThrow(c.error);
    expect(() => apply(op, inputs, c.attrs ?? {})).toThrow(c.message);
    for (const t of inputs) t.dispose();
    const { s } = samples[0]!;
    expectClose(
      (await forward(b, op, s, 3)).data,
      (await forward(cpu, op, s, 3)).data,
      op.tol,
      `${op.name} after error`,
    );
  });
});

/** Runs an in-place kernel on one backend; returns the targets after it, and the inputs before and after. */
async function inPlace(b: Backend, k: InPlaceDef<unknown>, s: InPlaceSample<unknown>, seed: number) {
  const rng = new Rng(seed);
  const targets = s.targets.map((inp) => upload(b, sampleData(inp, rng), inp.shape));
  const inputData = s.inputs.map((inp) => sampleData(inp, rng));
  const inputs = inputData.map((d, i) => upload(b, d, s.inputs[i]!.shape));
  applyInPlace(k, targets, inputs, s.attrs);
  const out = await Promise.all(targets.map((t) => t.data()));
  const inputsAfter = await Promise.all(inputs.map((t) => t.data()));
  for (const t of [...targets, ...inputs]) t.dispose();
  return { out, inputData, inputsAfter };
}

describe.each((Object.entries(INPLACE) as [InPlaceName, InPlaceDef<unknown>][]).map(([key, k]) => ({ key, k })))(
  'in place $key',
  ({ key, k }) => {
    it.each([...k.samples()].map((s, i) => ({ s, i, label: s.name })))(
      `${key} $label [wasm] wasm≈cpu, 1 = 4 threads bitwise`,
      async ({ s, i }) => {
        const seed = seedOf(`${key}#${i}`);
        const want = await inPlace(cpu, k, s, seed);
        const got = await inPlace(wasm[1]!, k, s, seed);
        want.out.forEach((e: TypedArray, j) =>
          expectClose(got.out[j]!, e, k.tol, `${key} ${s.name}: target ${j} (seed ${seed})`),
        );
        got.inputsAfter.forEach((a, j) =>
          expectClose(a, got.inputData[j]!, { atol: 0, rtol: 0 }, `${key} ${s.name}: input ${j} is unchanged`),
        );
        const four = await inPlace(wasm[4]!, k, s, seed);
        four.out.forEach((o, j) => expectSameBits(o, got.out[j]!, `${key} ${s.name}: 4 threads vs 1, target ${j}`));
      },
    );
  },
);

describe('wasm backend', () => {
  it('lists every op and in-place kernel; prints how many run on wasm kernels', () => {
    expect(Object.keys(WASM_KERNELS).sort()).toEqual(Object.keys(OPS).sort());
    expect(Object.keys(WASM_INPLACE).sort()).toEqual(Object.keys(INPLACE).sort());
    const onRef = Object.entries(WASM_KERNELS)
      .filter(([, k]) => k === 'reference')
      .map(([n]) => n);
    const inRef = Object.entries(WASM_INPLACE)
      .filter(([, k]) => k === 'reference')
      .map(([n]) => n);
    console.log(
      `wasm: ${Object.keys(OPS).length - onRef.length} of ${Object.keys(OPS).length} ops and ` +
        `${Object.keys(INPLACE).length - inRef.length} of ${Object.keys(INPLACE).length} in-place kernels on wasm kernels; ` +
        `on the CPU reference: ${[...onRef, ...inRef].join(', ') || 'none'}`,
    );
  });

  it('isSoftwareAdapter: fallback adapters, lavapipe and SwiftShader are software; a GPU is not', () => {
    const adapter = (info: Partial<GPUAdapterInfo>, fallback?: boolean) =>
      ({
        info: { vendor: '', architecture: '', device: '', description: '', ...info },
        isFallbackAdapter: fallback,
      }) as unknown as GPUAdapter;
    expect(isSoftwareAdapter(adapter({ vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15' }))).toBe(
      true,
    );
    expect(isSoftwareAdapter(adapter({ vendor: 'google', description: 'SwiftShader Device (Subzero)' }))).toBe(true);
    expect(isSoftwareAdapter(adapter({ vendor: 'nvidia', architecture: 'hopper' }, true))).toBe(true);
    expect(isSoftwareAdapter(adapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100' }))).toBe(
      false,
    );
  });

  it('describes itself: SIMD and its thread count; a bad thread count is an ArgumentError', async () => {
    expect(wasm[1]!.description).toMatch(/SIMD128, 1 thread\b/);
    expect(wasm[4]!.description).toMatch(/SIMD128, 4 threads/);
    expect(wasm[4]!.threads).toBe(4);
    for (const threads of [0, 1.5, NaN]) {
      await expect(WasmBackend.create({ threads })).rejects.toThrow(ArgumentError);
    }
  });

  it("runs on the machine's logical cores by default (os.availableParallelism() in Node, at most 4)", async () => {
    const b = await WasmBackend.create();
    try {
      expect(b.threads).toBe(Math.min(availableParallelism(), 4));
    } finally {
      b.destroy();
    }
  });

  it('training is bitwise the same on 1 and 4 threads, replayed or eager (seed MLP, 6 steps of Adam)', async () => {
    const { train } = loadMnist();
    const part = train.slice(0, 6 * 64);
    const weights = async (b: Backend, replay = true) => {
      setDefaultBackend(b);
      setSeed(5);
      const m = seedModel('mlp', [28, 28, 1], 10);
      const opt = adam(1e-3);
      m.compile({ optimizer: opt, loss: 'sparseCategoricalCrossentropy' });
      await m.fit(
        { data: part.x, shape: part.xShape },
        { data: part.y, shape: part.yShape },
        { batchSize: 64, seed: 2, verbose: 0, replay },
      );
      const w = await Promise.all(m.parameters().map((p) => p.data()));
      opt.dispose();
      m.dispose();
      setDefaultBackend(undefined);
      return w;
    };
    const one = await weights(wasm[1]!);
    const four = await weights(wasm[4]!);
    expect(four.length).toBe(one.length);
    four.forEach((w, i) => expectSameBits(w, one[i]!, `parameter ${i}: 4 threads vs 1`));
    // fit replays its captured step on wasm (after an eager first step): the same bits as every step eager.
    const eager = await weights(wasm[1]!, false);
    eager.forEach((w, i) => expectSameBits(one[i]!, w, `parameter ${i}: fit replayed vs eager`));
  });

  it('pools storage: a released block serves the next tensor of its size class; stats add up', async () => {
    const b = await WasmBackend.create({ threads: 1 });
    const x = upload(b, new Float32Array(1000).fill(2), [1000]);
    const m0 = b.memory();
    expect(m0.liveBytes).toBeGreaterThanOrEqual(4000);
    x.dispose();
    const m1 = b.memory();
    expect(m1.liveBytes).toBe(0);
    expect(m1.pooledBytes).toBe(m0.liveBytes);
    const y = upload(b, new Float32Array(990).fill(3), [990]);
    const m2 = b.memory();
    expect(m2.poolHits).toBe(m1.poolHits + 1);
    expect(m2.buffersCreated).toBe(m1.buffersCreated);
    expect(Array.from((await y.data()).slice(0, 2))).toEqual([3, 3]);
    // Past the initial memory: it grows, and tensors made before keep their data.
    const big = upload(b, new Float32Array(8 << 20).fill(5), [8 << 20]);
    expect((await y.data())[989]).toBe(3);
    expect((await big.data())[(8 << 20) - 1]).toBe(5);
    expect(b.memory().peakBytes).toBeGreaterThanOrEqual(32 << 20);
    y.dispose();
    big.dispose();
    b.destroy();
  });

  it('runs ops on inputs made before the memory grew', async () => {
    const b = await WasmBackend.create({ threads: 2 });
    const x = upload(
      b,
      Float32Array.from({ length: 1 << 18 }, (_, i) => i - 1000),
      [1 << 18],
    );
    const big = upload(b, new Float32Array(16 << 20), [16 << 20]);
    const y = apply(OPS.relu, [x]);
    expect((await y.data())[0]).toBe(0);
    expect((await y.data())[2000]).toBe(1000);
    for (const t of [x, big, y]) t.dispose();
    b.destroy();
  });

  it('the seed MLP learns MNIST on wasm (4 threads); a training loop leaks nothing', async () => {
    const b = wasm[4]!;
    setDefaultBackend(b);
    setSeed(1);
    const { train, test } = loadMnist();
    const m = seedModel('mlp', [28, 28, 1], 10);
    const opt = adam(1e-3);
    m.compile({ optimizer: opt, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const small = train.slice(0, 3000);
    const fit = () =>
      m.fit(
        { data: small.x, shape: small.xShape },
        { data: small.y, shape: small.yShape },
        { epochs: 1, batchSize: 64, verbose: 0 },
      );
    const t0 = performance.now();
    const h1 = await fit();
    const live = memory(b).liveTensors;
    const bytes = memory(b).liveBytes;
    const h2 = await fit();
    expect(memory(b).liveTensors, 'tensors alive after a second epoch').toBe(live);
    expect(memory(b).liveBytes, 'bytes alive after a second epoch').toBe(bytes);
    const { acc } = await m.evaluate(
      { data: test.x, shape: test.xShape },
      { data: test.y, shape: test.yShape },
      { batchSize: 256 },
    );
    console.log(
      `wasm MLP, 2 epochs of 3000 digits: loss ${h1.history.loss![0]!.toFixed(3)} -> ${h2.history.loss![0]!.toFixed(3)}, ` +
        `test acc ${acc.toFixed(3)}, ${((performance.now() - t0) / 2).toFixed(0)} ms/epoch`,
    );
    expect(h2.history.loss![0]!).toBeLessThan(h1.history.loss![0]!);
    expect(acc).toBeGreaterThan(0.85);
    opt.dispose();
    m.dispose();
    setDefaultBackend(undefined);
  });
});
