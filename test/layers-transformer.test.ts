// The transformer layers Embedding and LayerNormalization on both backends: values against plain loops, gradients,
// training through trainStep (replayed = eager, bitwise), save/load, summary and bad options.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { DTypeError, ShapeError, WgnnError } from '../src/errors.js';
import { Embedding, LayerNormalization, layers, sequential, Sequential, setSeed } from '../src/nn/index.js';
import { trainStep } from '../src/nn/train.js';
import { mul } from '../src/ops/binary.js';
import { sum } from '../src/ops/reduce.js';
import { adam } from '../src/optim/index.js';
import { Rng } from '../src/rng.js';
import { setDefaultBackend, tensor } from '../src/tensor.js';
import { cpu, expectClose, gpuBackend } from './helpers.js';
import '../src/autograd/tape.js';

const V = 11;
const D = 6;

/** Token indices [n, t] in 0..V-1, with 0 and V-1 always present. */
function tokens(rng: Rng, n: number, t: number): Int32Array {
  const a = Int32Array.from({ length: n * t }, () => rng.int(0, V - 1));
  a[0] = 0;
  a[a.length - 1] = V - 1;
  return a;
}

/** torch.nn.functional.layer_norm in float64 loops over rows of width d. */
function layerNormRef(x: ArrayLike<number>, d: number, g: ArrayLike<number>, b: ArrayLike<number>, eps: number) {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let m = 0;
    for (let j = 0; j < d; j++) m += x[r * d + j]!;
    m /= d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (x[r * d + j]! - m) ** 2;
    v /= d;
    for (let j = 0; j < d; j++) out[r * d + j] = ((x[r * d + j]! - m) / Math.sqrt(v + eps)) * g[j]! + b[j]!;
  }
  return out;
}

describe.each(['cpu', 'webgpu'] as const)('transformer layers [%s]', (name) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = name === 'cpu' ? cpu : await gpuBackend();
    setDefaultBackend(backend);
  });
  afterAll(() => setDefaultBackend(undefined));

  it('embedding rows at int32 indices of any rank; layer norm against a float64 loop with gamma/beta', async () => {
    const emb = new Embedding({ inputDim: V, outputDim: D, seed: 3 });
    const idx = tokens(new Rng(1), 2 * 3, 5);
    const x = tensor(idx, [2, 3, 5], { dtype: 'int32' });
    const e = emb.forward(x);
    expect(e.shape).toEqual([2, 3, 5, D]);
    const table = await emb.embeddings.data();
    const want = new Float32Array(idx.length * D);
    idx.forEach((k, i) => want.set(table.subarray(k * D, (k + 1) * D), i * D));
    expect(Array.from(await e.data())).toEqual(Array.from(want));
    // Keras's uniform in [-0.05, 0.05], not all equal.
    expect(table.every((v) => Math.abs(v) <= 0.05)).toBe(true);
    expect(new Set(table).size).toBeGreaterThan(V * D - 3);

    const ln = new LayerNormalization({ epsilon: 1e-3 });
    ln.build([3, 5, D]);
    const g = Float32Array.from({ length: D }, (_, j) => 0.5 + j * 0.25);
    const b = Float32Array.from({ length: D }, (_, j) => j * 0.1 - 0.2);
    ln.gamma.dispose();
    ln.beta.dispose();
    ln.gamma = tensor(g, [D]).variable();
    ln.beta = tensor(b, [D]).variable();
    const scaled = mul(e, 40); // rows with a larger spread than the small initial table
    const y = ln.forward(scaled);
    expect(y.shape).toEqual([2, 3, 5, D]);
    const ref = layerNormRef(await scaled.data(), D, g, b, 1e-3);
    expectClose(await y.data(), Float32Array.from(ref), { atol: 1e-5, rtol: 1e-4 }, 'layerNormalization');
    for (const t of [x, e, scaled, y]) t.dispose();
    emb.dispose();
    ln.dispose();
  });

  it('gradients reach the embedding rows used (summed over repeats) and gamma/beta', async () => {
    const emb = new Embedding({ inputDim: V, outputDim: D, seed: 5 });
    const ln = new LayerNormalization();
    const idx = Int32Array.from([3, 0, 3, 10, 7, 3]); // 3 repeated; rows 1, 2, 4-6, 8, 9 unused
    const x = tensor(idx, [2, 3], { dtype: 'int32' });
    const c = tensor(
      Float32Array.from({ length: 6 * D }, (_, i) => Math.sin(i + 1)),
      [2, 3, D],
    );
    const h = emb.forward(x);
    const y = ln.forward(h);
    const loss = sum(mul(y, c));
    loss.backward();
    const [gE, gG, gB] = await Promise.all([emb.embeddings.grad!.data(), ln.gamma.grad!.data(), ln.beta.grad!.data()]);
    const cd = await c.data();
    const hd = await h.data();
    // d beta = Σ_rows c; d gamma = Σ_rows x̂ · c (x̂ the normalised rows, gamma 1 and beta 0 at init).
    const xhat = layerNormRef(hd, D, new Float64Array(D).fill(1), new Float64Array(D), 1e-5);
    const wantB = new Float32Array(D);
    const wantG = new Float32Array(D);
    for (let r = 0; r < 6; r++)
      for (let j = 0; j < D; j++) {
        wantB[j] += cd[r * D + j]!;
        wantG[j] += xhat[r * D + j]! * cd[r * D + j]!;
      }
    expectClose(gB, wantB, { atol: 1e-5, rtol: 1e-5 }, 'd beta');
    expectClose(gG, wantG, { atol: 1e-4, rtol: 1e-3 }, 'd gamma');
    for (let row = 0; row < V; row++) {
      const norm = Math.hypot(...gE.subarray(row * D, (row + 1) * D));
      if (idx.includes(row)) expect(norm, `row ${row}`).toBeGreaterThan(0);
      else expect(norm, `row ${row}`).toBe(0);
    }
    for (const t of [x, c, h, y, loss]) t.dispose();
    emb.dispose();
    ln.dispose();
  });

  const T = 6;
  const model = (seed: number) => {
    setSeed(seed);
    return sequential([
      layers.embedding({ inputDim: V, outputDim: D, inputShape: [T] }),
      layers.layerNormalization({ epsilon: 1e-3 }),
      layers.flatten(),
      layers.dense({ units: 3, activation: 'softmax' }),
    ]);
  };

  it('trains with trainStep on int32 tokens (the loss falls); replayed steps equal eager ones bitwise', async () => {
    const rng = new Rng(9);
    const batches = Array.from({ length: 4 }, () => {
      const xs = tokens(rng, 8, T);
      // The class is the first token mod 3: learnable only through the embedding rows.
      const ys = Int32Array.from({ length: 8 }, (_, i) => xs[i * T]! % 3);
      return [
        { data: xs, shape: [8, T] },
        { data: ys, shape: [8] },
      ] as const;
    });
    const run = async (replay: boolean) => {
      const m = model(21);
      const opt = adam({ lr: 0.05 });
      const step = trainStep(m, { optimizer: opt, loss: 'sparseCategoricalCrossentropy', replay });
      const losses: number[] = [];
      for (let epoch = 0; epoch < 8; epoch++) {
        for (const [x, y] of batches) step.run(x, y);
        const r = await step.read();
        losses.push(r.sums.loss! / (r.steps * 8));
      }
      const weights = await Promise.all(m.parameters().map((p) => p.data()));
      const counts = [step.captures, step.replays];
      step.dispose();
      opt.dispose();
      m.dispose();
      return { losses, weights, counts };
    };
    const replayed = await run(true);
    const eager = await run(false);
    if (name === 'webgpu') expect(replayed.counts[1]).toBeGreaterThan(0); // the CPU backend has no captures
    expect(eager.counts).toEqual([0, 0]);
    expect(replayed.losses.at(-1)!).toBeLessThan(replayed.losses[0]! * 0.5);
    expect(replayed.losses).toEqual(eager.losses);
    expect(replayed.weights.length).toBe(5); // embeddings, gamma, beta, kernel, bias
    replayed.weights.forEach((w, i) => expect(Array.from(w), `weight ${i}`).toEqual(Array.from(eager.weights[i]!)));
  });

  it('save -> Sequential.load: the same weights and predictions, bitwise; summary lists the parameter counts', async () => {
    const m = model(4);
    const x = tensor(tokens(new Rng(2), 3, T), [3, T], { dtype: 'int32' });
    const p = m.forward(x);
    const back = await Sequential.load(await m.save());
    expect(back.layers.map((l) => l.kind)).toEqual(['Embedding', 'LayerNormalization', 'Flatten', 'Dense']);
    expect((back.layers[1] as LayerNormalization).epsilon).toBe(1e-3);
    const q = back.forward(x);
    expect(Array.from(await q.data())).toEqual(Array.from(await p.data()));
    const named = back.namedTensors();
    expect(named.map(([n]) => n)).toEqual(m.namedTensors().map(([n]) => n));
    for (const [i, [, t]] of m.namedTensors().entries())
      expect(Array.from(await named[i]![1].data())).toEqual(Array.from(await t.data()));
    const lines: string[] = [];
    back.summary((l) => lines.push(l));
    const text = lines.join('\n');
    expect(text).toMatch(/embedding.*\[null,6,6\]\s+66\b/);
    expect(text).toMatch(/layer_normalization.*\[null,6,6\]\s+12\b/);
    expect(lines.at(-1)).toBe(`Total params: ${V * D + 2 * D + (T * D * 3 + 3)}`);
    for (const t of [x, p, q]) t.dispose();
    m.dispose();
    back.dispose();
  });

  it('a float32 input to an embedding is a DTypeError naming the layer; bad options are typed errors naming them', () => {
    const emb = new Embedding({ inputDim: V, outputDim: D, name: 'tok' });
    const xf = tensor([0, 1, 2], [1, 3]);
    expect(() => emb.forward(xf)).toThrow(DTypeError);
    expect(() => emb.forward(xf)).toThrow(/tok: input \[1,3\] is float32; expected int32/);
    xf.dispose();
    emb.dispose();
    for (const bad of [0, -1, 1.5, 'x']) {
      expect(() => layers.embedding({ inputDim: bad as number, outputDim: 2 })).toThrow(ShapeError);
      expect(() => layers.embedding({ inputDim: bad as number, outputDim: 2 })).toThrow(/inputDim/);
      expect(() => layers.embedding({ inputDim: 2, outputDim: bad as number })).toThrow(/outputDim/);
    }
    for (const bad of [0, -1e-5, NaN, 'x'])
      expect(() => layers.layerNormalization({ epsilon: bad as number })).toThrow(/epsilon/);
    expect(() => layers.layerNorm({ eps: 1e-5 } as never)).toThrow(WgnnError);
    expect(() => layers.layerNorm({ eps: 1e-5 } as never)).toThrow(/unknown option "eps"/);
    expect(() => layers.embedding({ inputDim: 2, outputDim: 2, vocab: 3 } as never)).toThrow(/unknown option "vocab"/);
  });
});
