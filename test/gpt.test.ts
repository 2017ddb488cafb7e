// The GPT and its layers on both backends: names and shapes (docs/gpt-pytorch.md's table), multi-head attention
// against float64 loops, the whole model's gradients against float64 finite differences, generation with the
// key/value cache against full recomputation, replayed steps against eager ones (bitwise), re-capture on a new shape,
// 500 steps without a leak, fit / predict / save / load / checkpoints, and bad input.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/tape.js';
import type { Backend } from '../src/backend/backend.js';
import { CpuBackend } from '../src/backend/cpu/cpu.js';
import { ArgumentError, DTypeError, ParseError, ShapeError, WgnnError } from '../src/errors.js';
import { GPT, MultiHeadAttention, Sequential, gpt, layers, sequential, type GPTOptions } from '../src/nn/index.js';
import { StepMeter, trainStep } from '../src/nn/train.js';
import { softmaxCrossEntropy } from '../src/ops/loss.js';
import { adamw } from '../src/optim/index.js';
import { Rng } from '../src/rng.js';
import { memory, setDefaultBackend, tensor, tidy } from '../src/tensor.js';
import { CharTokenizer } from '../src/data/text.js';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors.js';
import { cpu, expectClose, gpuBackend } from './helpers.js';

const SMALL: GPTOptions = { vocabSize: 11, blockSize: 8, layers: 2, heads: 2, dim: 16, seed: 5 };

/** Token ids [n, t] in 0..v-1 with 0 and v-1 present. */
function ids(rng: Rng, n: number, t: number, v = SMALL.vocabSize): Int32Array {
  const a = Int32Array.from({ length: n * t }, () => rng.int(0, v));
  a[0] = 0;
  a[a.length - 1] = v - 1;
  return a;
}
const int = (a: Int32Array, shape: number[], backend?: Backend) => tensor(a, shape, { dtype: 'int32', backend });

/** Multi-head self-attention in float64 loops: x [B,T,D], qkv kernel [D,3D] + bias, out kernel [D,D] + bias. */
function attentionRef(
  x: Float32Array,
  [B, T, D]: number[],
  H: number,
  causal: boolean,
  w: { qk: Float32Array; qb: Float32Array; ok: Float32Array; ob: Float32Array },
): Float64Array {
  const hd = D / H;
  const qkv = new Float64Array(B * T * 3 * D);
  for (let r = 0; r < B * T; r++)
    for (let j = 0; j < 3 * D; j++) {
      let s = w.qb[j]!;
      for (let i = 0; i < D; i++) s += x[r * D + i]! * w.qk[i * 3 * D + j]!;
      qkv[r * 3 * D + j] = s;
    }
  const merged = new Float64Array(B * T * D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const at = (tt: number, part: number, i: number) => qkv[(b * T + tt) * 3 * D + part * D + h * hd + i]!;
        const last = causal ? t : T - 1;
        const s = Array.from({ length: last + 1 }, (_, u) => {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += at(t, 0, i) * at(u, 1, i);
          return dot / Math.sqrt(hd);
        });
        const m = Math.max(...s);
        const e = s.map((v) => Math.exp(v - m));
        const z = e.reduce((a, c) => a + c, 0);
        for (let i = 0; i < hd; i++)
          merged[(b * T + t) * D + h * hd + i] = e.reduce((a, p, u) => a + (p / z) * at(u, 2, i), 0);
      }
  const y = new Float64Array(B * T * D);
  for (let r = 0; r < B * T; r++)
    for (let j = 0; j < D; j++) {
      let s = w.ob[j]!;
      for (let i = 0; i < D; i++) s += merged[r * D + i]! * w.ok[i * D + j]!;
      y[r * D + j] = s;
    }
  return y;
}

describe('GPT structure', () => {
  it('names and shapes follow the documented table; tied heads hold no kernel; parameter counts add up', () => {
    setDefaultBackend(cpu);
    const [V, T, L, D] = [11, 8, 2, 16];
    for (const tieWeights of [true, false]) {
      const m = gpt({ ...SMALL, tieWeights });
      const names = Object.fromEntries(m.namedTensors().map(([n, t]) => [n, t.shape]));
      const want: Record<string, number[]> = { 'layers.0.tokens': [V, D], 'layers.0.positions': [T, D] };
      for (let i = 1; i <= L; i++) {
        Object.assign(want, {
          [`layers.${i}.ln1.gamma`]: [D],
          [`layers.${i}.ln1.beta`]: [D],
          [`layers.${i}.attn.qkv.kernel`]: [D, 3 * D],
          [`layers.${i}.attn.qkv.bias`]: [3 * D],
          [`layers.${i}.attn.out.kernel`]: [D, D],
          [`layers.${i}.attn.out.bias`]: [D],
          [`layers.${i}.ln2.gamma`]: [D],
          [`layers.${i}.ln2.beta`]: [D],
          [`layers.${i}.fc.kernel`]: [D, 4 * D],
          [`layers.${i}.fc.bias`]: [4 * D],
          [`layers.${i}.proj.kernel`]: [4 * D, D],
          [`layers.${i}.proj.bias`]: [D],
        });
      }
      Object.assign(want, { [`layers.${L + 1}.gamma`]: [D], [`layers.${L + 1}.beta`]: [D] });
      if (!tieWeights) want[`layers.${L + 2}.kernel`] = [D, V];
      expect(names).toEqual(want);
      // nanoGPT's count: 12·L·D² + 13·L·D (blocks) + (V + T)·D + 2D, plus V·D for an untied head.
      const count = 12 * L * D * D + 13 * L * D + (V + T) * D + 2 * D + (tieWeights ? 0 : V * D);
      expect(m.parameters().reduce((a, p) => a + p.size, 0)).toBe(count);
      const text = m.summary(() => {});
      expect(text).toContain(`Total params: ${count}`);
      expect(m.config).toEqual({
        vocabSize: V,
        blockSize: T,
        layers: L,
        heads: 2,
        dim: D,
        dropout: 0,
        tieWeights,
        activation: 'gelu_tanh',
        epsilon: 1e-5,
      });
      m.dispose();
    }
  });

  it('initialises as nanoGPT: N(0, 0.02²) kernels and tables, residual projections 0.02/√(2L), zero biases', async () => {
    setDefaultBackend(cpu);
    const m = gpt({ vocabSize: 64, blockSize: 64, layers: 2, heads: 4, dim: 64, seed: 1 });
    const std = async (name: string) => {
      const t = m.namedTensors().find(([n]) => n === name)![1];
      const a = Array.from(await t.data());
      return Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    };
    expect(await std('layers.0.tokens')).toBeCloseTo(0.02, 3);
    expect(await std('layers.1.fc.kernel')).toBeCloseTo(0.02, 3);
    expect(await std('layers.1.proj.kernel')).toBeCloseTo(0.02 / Math.sqrt(4), 3);
    expect(await std('layers.2.attn.out.kernel')).toBeCloseTo(0.02 / Math.sqrt(4), 3);
    expect(await std('layers.1.attn.qkv.bias')).toBe(0);
    m.dispose();
  });
});

describe.each(['cpu', 'webgpu'] as const)('GPT [%s]', (name) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = name === 'cpu' ? cpu : await gpuBackend();
    setDefaultBackend(backend);
  });
  afterAll(() => setDefaultBackend(undefined));

  it.each([
    [2, 5, 8, 2, true],
    [1, 1, 16, 1, true],
    [3, 7, 12, 3, false],
  ])('multi-head attention B%i T%i D%i H%i causal %s against float64 loops', async (B, T, D, H, causal) => {
    const rng = new Rng(B * 100 + T);
    const mha = new MultiHeadAttention({ heads: H, causal, seed: 7, initStd: 0.3 });
    const xs = Float32Array.from({ length: B * T * D }, () => rng.uniform(-1, 1));
    const y = mha.forward(tensor(xs, [B, T, D]));
    const w = {
      qk: (await mha.qkv.kernel.data()) as Float32Array,
      qb: (await mha.qkv.bias!.data()) as Float32Array,
      ok: (await mha.out.kernel.data()) as Float32Array,
      ob: (await mha.out.bias!.data()) as Float32Array,
    };
    expectClose(await y.data(), attentionRef(xs, [B, T, D], H, causal, w), { atol: 1e-5, rtol: 1e-4 }, 'y');
    // The forward (heads read out of the packed projection) and attend (split heads, the cache's path): the same bits.
    const a = mha.attend(tensor(xs, [B, T, D]));
    expect([...(await a.y.data())], 'forward = attend(x).y').toEqual([...(await y.data())]);
    for (const t of [a.y, a.cache.k, a.cache.v]) t.dispose();
    mha.dispose();
  });

  it('generation with the key/value cache gives exactly the tokens of full recomputation, past the block size', async () => {
    const m = gpt({ ...SMALL, initStd: 0.3 });
    for (const opts of [{ temperature: 0 }, { temperature: 1, seed: 3 }, { temperature: 0.7, topK: 4, seed: 9 }]) {
      const streamed: number[] = [];
      const cached = await m.generate([1, 2, 3], { maxTokens: 14, ...opts, onToken: (id) => void streamed.push(id) });
      const full = await m.generate([1, 2, 3], { maxTokens: 14, ...opts, cache: false });
      expect(Array.from(cached), JSON.stringify(opts)).toEqual(Array.from(full));
      expect(streamed).toEqual(Array.from(cached));
      expect(Array.from(await m.generate([1, 2, 3], { maxTokens: 14, ...opts }))).toEqual(Array.from(cached));
    }
    // A prompt longer than the block size keeps its last blockSize tokens.
    const long = Array.from({ length: 13 }, (_, i) => i % 11);
    expect(Array.from(await m.generate(long, { maxTokens: 3, temperature: 0 }))).toEqual(
      Array.from(await m.generate(long.slice(-8), { maxTokens: 3, temperature: 0 })),
    );
    expect(m.training, 'generate restores the training mode').toBe(true);
    m.dispose();
  });

  it('replayed steps equal eager steps bitwise (dropout on); a short last batch and a new T re-capture', async () => {
    const run = async (replay: boolean) => {
      const m = gpt({ ...SMALL, dropout: 0.1 });
      const step = trainStep(m, {
        optimizer: adamw({ lr: 3e-3, weightDecay: 0.1 }),
        loss: 'sparseCategoricalCrossentropy',
        replay,
      });
      const rng = new Rng(2);
      const meter = new StepMeter(step);
      for (const [b, t] of [
        [4, 8],
        [4, 8],
        [4, 8],
        [3, 8],
        [4, 5],
        [4, 8],
      ] as const) {
        const a = ids(rng, b, t + 1);
        const x = new Int32Array(b * t);
        const y = new Int32Array(b * t);
        for (let r = 0; r < b; r++)
          for (let j = 0; j < t; j++) [x[r * t + j], y[r * t + j]] = [a[r * (t + 1) + j]!, a[r * (t + 1) + j + 1]!];
        step.run({ data: x, shape: [b, t] }, { data: y, shape: [b, t] });
        meter.ran(b);
      }
      const logs = await meter.read();
      const weights = await Promise.all(m.parameters().map((p) => p.data()));
      const counts = { captures: step.captures, replays: step.replays };
      step.dispose();
      m.dispose();
      return { logs, weights, counts };
    };
    const eager = await run(false);
    const replayed = await run(true);
    expect(replayed.logs).toEqual(eager.logs);
    replayed.weights.forEach((w, i) => expect(Array.from(w), `parameter ${i}`).toEqual(Array.from(eager.weights[i]!)));
    if (name === 'webgpu') expect(replayed.counts).toEqual({ captures: 3, replays: 3 });
  });

  it('fit on int32 token windows lowers the loss; predict gives next-token probabilities; evaluate agrees', async () => {
    const m = gpt({ ...SMALL, dropout: 0 });
    m.compile({ optimizer: adamw({ lr: 1e-2 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    // A cyclic sequence: each token's successor is fixed, so the model can learn it exactly.
    const n = 24;
    const x = new Int32Array(n * 8);
    const y = new Int32Array(n * 8);
    for (let r = 0; r < n; r++)
      for (let j = 0; j < 8; j++) [x[r * 8 + j], y[r * 8 + j]] = [(r + j) % 11, (r + j + 1) % 11];
    const h = await m.fit(
      { data: x, shape: [n, 8] },
      { data: y, shape: [n, 8] },
      { epochs: 8, batchSize: 8, verbose: 0 },
    );
    const loss = h.history.loss!;
    expect(loss[loss.length - 1]!).toBeLessThan(loss[0]! * 0.5);
    const p = await m.predict({ data: x.subarray(0, 16), shape: [2, 8] });
    expect(p.shape).toEqual([2, 8, 11]);
    const pv = await p.data();
    for (let r = 0; r < 16; r++)
      expect(Array.from(pv.subarray(r * 11, (r + 1) * 11)).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    const ev = await m.evaluate({ data: x, shape: [n, 8] }, { data: y, shape: [n, 8] });
    expect(ev.acc!).toBeGreaterThan(0.5);
    p.dispose();
    m.dispose();
  });

  it('save and load: same logits bitwise, config kept; a checkpoint resumes to the same weights', async () => {
    const m = gpt({ ...SMALL, tieWeights: false, activation: 'gelu', epsilon: 1e-6 });
    const x = int(ids(new Rng(4), 2, 6), [2, 6]);
    const before = await m.logits(x).data();
    const loaded = await GPT.load(await m.save());
    expect(loaded).toBeInstanceOf(GPT);
    expect(loaded.config).toEqual(m.config);
    expect(Array.from(await loaded.logits(x).data())).toEqual(Array.from(before));
    // Resume: a fit stopped after 2 of 4 epochs (its checkpoint on disk) and resumed equals one fit of 4 epochs.
    const data = ids(new Rng(8), 16, 9);
    const xs = new Int32Array(16 * 8);
    const ys = new Int32Array(16 * 8);
    for (let r = 0; r < 16; r++)
      for (let j = 0; j < 8; j++) [xs[r * 8 + j], ys[r * 8 + j]] = [data[r * 9 + j]!, data[r * 9 + j + 1]!];
    const path = join(mkdtempSync(join(tmpdir(), 'wgnn-gpt-')), 'ck.safetensors');
    const fitFor = async (epochs: number, checkpoint?: { path: string; everySteps: number; resume?: boolean }) => {
      const model = await GPT.load(await m.save());
      model.compile({ optimizer: adamw({ lr: 1e-2 }), loss: 'sparseCategoricalCrossentropy' });
      const X = { data: xs, shape: [16, 8] };
      await model.fit(X, { data: ys, shape: [16, 8] }, { epochs, batchSize: 8, verbose: 0, seed: 2, checkpoint });
      return model;
    };
    const straight = await fitFor(4);
    const first = await fitFor(2, { path, everySteps: 2 });
    const resumed = await fitFor(4, { path, everySteps: 100, resume: true });
    const a = await Promise.all(straight.parameters().map((p) => p.data()));
    const b = await Promise.all(resumed.parameters().map((p) => p.data()));
    a.forEach((w, i) => expect(Array.from(b[i]!), `parameter ${i}`).toEqual(Array.from(w)));
    for (const t of [m, loaded, straight, first, resumed]) t.dispose();
    x.dispose();
  });

  it('bad input: token ids out of range, T > blockSize, float input, bad prompts, a bad model file; usable after', async () => {
    const m = gpt(SMALL);
    m.compile({ optimizer: adamw({ lr: 1e-3 }), loss: 'sparseCategoricalCrossentropy' });
    const good = { data: new Int32Array(16).fill(1), shape: [2, 8] };
    await expect(
      m.fit(
        { data: new Int32Array(18).fill(1), shape: [2, 9] },
        { data: new Int32Array(18), shape: [2, 9] },
        { verbose: 0 },
      ),
    ).rejects.toThrow(ShapeError);
    await expect(m.fit(good, { data: new Int32Array(16).fill(11), shape: [2, 8] }, { verbose: 0 })).rejects.toThrow(
      /label y\[0\] is 11; the model has 11 classes/,
    );
    await expect(m.predict({ data: new Float32Array(16), shape: [2, 8] })).rejects.toThrow(DTypeError);
    const dense = sequential([layers.dense({ units: 2, inputShape: [3] })]);
    await expect(dense.predict({ data: new Int32Array(6), shape: [2, 3] })).rejects.toThrow(
      /is int32; the model's first layer takes float32 inputs \(int32 token ids need an embedding first\)/,
    );
    dense.dispose();
    const outside = { data: Int32Array.from({ length: 16 }, (_, i) => (i === 5 ? 11 : 1)), shape: [2, 8] };
    await expect(m.fit(outside, good, { verbose: 0 })).rejects.toThrow(/x\[5\] is 11; .* takes token ids 0..10/);
    await expect(m.predict(outside)).rejects.toThrow(ArgumentError);
    await expect(m.evaluate(outside, good)).rejects.toThrow(ArgumentError);
    await expect(m.generate([0, 11], { maxTokens: 1 })).rejects.toThrow(
      /prompt\[1\] is 11; expected a token id in 0..10/,
    );
    await expect(m.generate([], { maxTokens: 1 })).rejects.toThrow(ArgumentError);
    await expect(m.generate('hello', { maxTokens: 1 })).rejects.toThrow(/tokenizer/);
    await expect(m.generate([1], { maxTokens: 1, temperature: -1 } as never)).rejects.toThrow(WgnnError);
    await expect(m.generate([1], { maxTokens: 1, topK: 12 })).rejects.toThrow(WgnnError);
    expect(() => gpt({ ...SMALL, dim: 15 })).toThrow(/multiple of heads/);
    expect(() => gpt({ ...SMALL, blocksize: 8 } as never)).toThrow(/unknown option "blocksize"/);
    // A Sequential file is not a GPT; a GPT file with a layer missing is refused before anything is built.
    const seqBytes = await m.save();
    await expect(GPT.load(seqBytes.slice(0, 100))).rejects.toThrow(ParseError);
    const h = await m.fit(good, good, { epochs: 1, verbose: 0 });
    expect(Number.isFinite(h.history.loss![0])).toBe(true);
    m.dispose();
  });
});

describe('GPT gradients', () => {
  it.each([true, false])(
    'the loss gradient of every parameter against float64 central differences (tied %s)',
    async (tieWeights) => {
      const cpu64 = new CpuBackend({ float64: true });
      setDefaultBackend(cpu64);
      const m = gpt({ vocabSize: 7, blockSize: 5, layers: 1, heads: 2, dim: 8, tieWeights, seed: 3, initStd: 0.3 });
      const rng = new Rng(6);
      const x = int(ids(rng, 2, 4, 7), [2, 4], cpu64);
      const y = int(ids(rng, 2, 4, 7), [2, 4], cpu64);
      const lossOf = () => tidy(() => softmaxCrossEntropy(m.logits(x), y));
      const l = lossOf();
      backward(l);
      const eps = 1e-6;
      for (const [n, p] of m.namedParameters()) {
        const g = await p.grad!.data();
        for (const i of [0, Math.floor(p.size / 2), p.size - 1]) {
          const orig = (await p.data())[i]!;
          const at = async (v: number) => {
            const d = Float64Array.from(await p.data());
            d[i] = v;
            cpu64.write(p.live('test').handle, d);
            const t = lossOf();
            const r = (await t.data())[0]!;
            t.dispose();
            return r;
          };
          const fd = ((await at(orig + eps)) - (await at(orig - eps))) / (2 * eps);
          await at(orig);
          expect(Math.abs(g[i]! - fd), `${n}[${i}]: autograd ${g[i]} vs ${fd}`).toBeLessThanOrEqual(
            1e-6 + 1e-5 * Math.abs(fd),
          );
        }
      }
      l.dispose();
      m.dispose();
      setDefaultBackend(undefined);
    },
  );
});

describe('memory [webgpu]', () => {
  it('500 GPT training steps: live bytes back to the baseline after dispose; the pool stops growing after warm-up', async () => {
    const gpu = await gpuBackend();
    setDefaultBackend(gpu);
    const base = memory(gpu);
    const m = gpt({ ...SMALL, dropout: 0.1 });
    const optimizer = adamw({ lr: 1e-3 });
    const step = trainStep(m, { optimizer, loss: 'sparseCategoricalCrossentropy' });
    const rng = new Rng(1);
    const x = { data: ids(rng, 4, 8), shape: [4, 8] };
    const y = { data: ids(rng, 4, 8), shape: [4, 8] };
    let created = 0;
    for (let i = 0; i < 500; i++) {
      step.run(x, y);
      if (i % 50 === 49) await step.read();
      if (i === 99) created = memory(gpu).buffersCreated; // after warm-up: captures and the first reads
    }
    await step.read();
    const end = memory(gpu);
    expect(end.buffersCreated, 'no buffer created after step 100').toBe(created);
    step.dispose();
    optimizer.dispose(); // its moments
    m.dispose();
    const after = memory(gpu);
    console.log(
      `GPT 500 steps: live bytes ${base.liveBytes} -> ${after.liveBytes}, buffers created by step 100: ${created}, by step 500: ${end.buffersCreated}`,
    );
    expect(after.liveTensors).toBe(base.liveTensors);
    expect(after.liveBytes).toBe(base.liveBytes);
    setDefaultBackend(undefined);
  });
});

describe('a tied head in a plain Sequential', () => {
  it('ties to the token embedding before it: Sequential.load of a GPT file gives the GPT logits', async () => {
    setDefaultBackend(cpu);
    const m = gpt(SMALL);
    const bytes = await m.save();
    const plain = await Sequential.load(bytes);
    expect(plain).not.toBeInstanceOf(GPT);
    const x = int(ids(new Rng(3), 2, 8), [2, 8]);
    const [a, b] = [
      await m.logits(x).data(),
      await plain.layers
        .at(-1)!
        .forwardLogits(plain.layers.slice(0, -1).reduce((h, l) => l.forward(h), x))
        .data(),
    ];
    expect(Array.from(b)).toEqual(Array.from(a));
    const orphan = sequential([layers.lmHead({ units: 11, tieWeights: true, inputShape: [4, 16] })]);
    expect(() => orphan.forward(tensor(new Float32Array(64), [1, 4, 16]))).toThrow(/none comes before it/);
    for (const t of [m, plain, orphan]) t.dispose();
    x.dispose();
    setDefaultBackend(undefined);
  });
});

describe('hostile GPT files', () => {
  it('a bad tokenizer or a layer stack that is not a GPT is a ParseError; nothing is built from it', async () => {
    setDefaultBackend(cpu);
    const m = gpt(SMALL);
    m.tokenizer = CharTokenizer.fromText('abcdefghij ');
    const file = parseSafetensors(await m.save());
    const entries = [...file.tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.data }));
    const withMeta = (meta: Record<string, string>) => serializeSafetensors(entries, { ...file.metadata, ...meta });
    const before = memory(cpu).liveTensors;
    for (const [tokenizer, why] of [
      ['{not json', /"tokenizer" is not JSON/],
      ['{"kind":"bpe","chars":"ab"}', /metadata "tokenizer": .*kind/],
      ['{"kind":"char","chars":"aab"}', /metadata "tokenizer": .*'a' \(U\+0061\) twice/],
      [
        JSON.stringify({ kind: 'char', chars: 'abcdefghijklmnopqrstuvwxyz' }),
        /metadata "tokenizer": .*26 tokens for a model whose vocabulary is 11/,
      ],
    ] as const) {
      await expect(GPT.load(withMeta({ tokenizer })), tokenizer).rejects.toThrow(ParseError);
      await expect(GPT.load(withMeta({ tokenizer })), tokenizer).rejects.toThrow(why);
    }
    const dense = sequential([layers.dense({ units: 2, inputShape: [3] })]);
    const plain = await dense.save();
    dense.dispose();
    await expect(GPT.load(plain)).rejects.toThrow(
      /GPT\.load: GPT: layers \[Dense\]; expected \[TokenAndPositionEmbedding/,
    );
    expect(memory(cpu).liveTensors, 'no tensor left from a refused file').toBe(before);
    const back = await GPT.load(withMeta({}));
    expect(back.tokenizer!.decode([0, 1])).toBe(' a');
    for (const t of [m, back]) t.dispose();
    setDefaultBackend(undefined);
  });
});
