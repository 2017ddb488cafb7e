// PyTorch out and in, checked by PyTorch itself (Debian's python3-torch through /usr/bin/python3 and the committed
// scripts/torch_interop.py): each model exported with toPyTorch/savePyTorch, loaded by its generated model.py, gives
// wgnn's outputs and logits on the same inputs (images NHWC here, NCHW there); a state dict PyTorch writes loads into
// the wgnn model and gives PyTorch's outputs; a state dict that does not fit is one StateDictError naming every key
// and changes nothing; a model fine-tuned on WebGPU, exported, takes one DDP step in PyTorch (torchrun, 2 processes,
// gloo) that lowers its loss.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, TypedArray } from '../src/backend/backend.js';
import { ArgumentError, NonFiniteError, ParseError, StateDictError } from '../src/errors.js';
import { loadPyTorch, savePyTorch, toPyTorch } from '../src/interop/pytorch.js';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors.js';
import { gpt, Layer, layers as L, Sequential, seedModel, setSeed } from '../src/nn/index.js';
import { noGrad } from '../src/autograd/tape.js';
import { sgd } from '../src/optim/index.js';
import { Rng } from '../src/rng.js';
import { keep, memory, setDefaultBackend, tensor, tidy, type Tensor } from '../src/tensor.js';
import { cpu, expectClose, gpuBackend } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, '..', 'scripts', 'torch_interop.py');
const TOL = { atol: 1e-5, rtol: 1e-4 };
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'wgnn-torch-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the script's `forward` on x and returns PyTorch's output in wgnn's layout. */
function torchForward(folder: string, x: TypedArray, shape: readonly number[], logits = false): Float32Array {
  const xf = join(folder, 'x.bin');
  const yf = join(folder, 'y.bin');
  writeFileSync(xf, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  const args = ['forward', '--folder', folder, '--x', xf, '--shape', shape.join(), '--out', yf];
  execFileSync(
    PYTHON,
    [SCRIPT, ...args, ...(x instanceof Int32Array ? ['--int'] : []), ...(logits ? ['--logits'] : [])],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const b = readFileSync(yf);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
}

/** Every tensor of the model redrawn (variances positive), so biases and batch-norm statistics are not trivial. */
function randomize(model: Sequential, seed: number): void {
  const rng = new Rng(seed);
  for (const [name, t] of model.namedTensors()) {
    const v = Float32Array.from({ length: t.size }, () =>
      /Variance/.test(name) ? rng.uniform(0.5, 1.5) : rng.uniform(-0.3, 0.3),
    );
    const w = tensor(v, [...t.shape]);
    w.requiresGrad = t.requiresGrad;
    model.setTensor(name, keep(w));
    t.dispose();
  }
}

/** wgnn's output (predict's) and logits (before the final softmax) in inference mode. */
async function outputs(model: Sequential, x: Tensor): Promise<{ probs: TypedArray; logits: TypedArray }> {
  model.eval();
  const [p, z] = noGrad(() =>
    tidy(() => {
      const h = model.layers.slice(0, -1).reduce((t, l) => l.forward(t), x);
      const last = model.layers[model.layers.length - 1]!;
      return [last.forward(h), last.forwardLogits(h)];
    }),
  );
  const res = { probs: await p!.data(), logits: await z!.data() };
  p!.dispose();
  z!.dispose();
  return res;
}

const rngData = (n: number, seed: number) => {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.uniform());
};
const ids = (n: number, vocab: number, seed: number) => {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => r.int(0, vocab));
};

interface Case {
  name: string;
  model: () => Sequential;
  x: () => TypedArray;
  shape: number[];
}

const CASES: Case[] = [
  {
    name: 'MLP',
    model: () => seedModel('mlp', [6, 5, 1], 10),
    x: () => rngData(3 * 30, 1),
    shape: [3, 6, 5, 1],
  },
  {
    name: 'seed CNN',
    model: () => seedModel('cnn', [28, 28, 1], 10),
    x: () => rngData(2 * 784, 2),
    shape: [2, 28, 28, 1],
  },
  {
    // Asymmetric 'same' padding (stride 2), dilation, padded pooling both ways, Dense and LayerNorm over an image's
    // channels, a Flatten whose next Dense is behind batch norm, dropout and an activation.
    name: 'awkward CNN',
    model: () =>
      new Sequential([
        L.conv2d({
          filters: 4,
          kernelSize: 3,
          strides: 2,
          padding: 'same',
          activation: 'leaky_relu',
          inputShape: [9, 8, 2],
        }),
        L.batchNormalization({ momentum: 0.9, epsilon: 1e-3 }),
        L.maxPool2d({ poolSize: 2, strides: 1, padding: 'same' }),
        L.conv2d({ filters: 5, kernelSize: [2, 3], dilationRate: [2, 1], padding: [1, 0, 2, 1] }),
        L.avgPool2d({ poolSize: 3, strides: 2, padding: 'same' }),
        L.dense({ units: 6, activation: 'gelu' }),
        L.layerNormalization({ epsilon: 1e-4 }),
        L.flatten(),
        L.batchNormalization(),
        L.dropout({ rate: 0.3 }),
        L.activation({ activation: 'tanh' }),
        L.dense({ units: 7, activation: 'softmax' }),
      ]),
    x: () => rngData(3 * 9 * 8 * 2, 3),
    shape: [3, 9, 8, 2],
  },
  {
    name: 'CNN ending in a Flatten, global pooling',
    model: () =>
      new Sequential([
        L.conv2d({ filters: 3, kernelSize: 3, activation: 'sigmoid', inputShape: [5, 6, 2] }),
        L.averagePooling2d({ poolSize: 2, strides: 1, padding: [1, 0, 0, 1] }),
        L.flatten(),
      ]),
    x: () => rngData(2 * 60, 4),
    shape: [2, 5, 6, 2],
  },
  {
    name: 'sequence model (Embedding, LayerNorm, attention, batch norm over features)',
    model: () =>
      new Sequential([
        L.embedding({ inputDim: 13, outputDim: 8, inputShape: [6] }),
        L.layerNormalization(),
        L.multiHeadAttention({ heads: 2, causal: true }),
        L.dense({ units: 4, activation: 'relu' }),
        L.batchNormalization(),
        L.flatten(),
        L.dense({ units: 5, activation: 'softmax' }),
      ]),
    x: () => ids(3 * 6, 13, 5),
    shape: [3, 6],
  },
  {
    name: 'GPT (tied head)',
    model: () => gpt({ vocabSize: 11, blockSize: 8, layers: 2, heads: 2, dim: 8 }),
    x: () => ids(2 * 7, 11, 6),
    shape: [2, 7],
  },
  {
    name: 'GPT (own head, exact GELU, epsilon 1e-6)',
    model: () =>
      gpt({
        vocabSize: 9,
        blockSize: 6,
        layers: 1,
        heads: 4,
        dim: 16,
        tieWeights: false,
        activation: 'gelu',
        epsilon: 1e-6,
      }),
    x: () => ids(2 * 6, 9, 7),
    shape: [2, 6],
  },
];

describe('toPyTorch: the generated model.py gives wgnn outputs', () => {
  beforeAll(() => setDefaultBackend(cpu));
  for (const [i, c] of CASES.entries()) {
    it(c.name, async () => {
      setSeed(100 + i);
      const model = c.model();
      randomize(model, 200 + i);
      const folder = join(dir, `out${i}`);
      await savePyTorch(model, folder);
      const x = c.x();
      const xt = tensor(x, c.shape, { dtype: x instanceof Int32Array ? 'int32' : 'float32' });
      const { probs, logits } = await outputs(model, xt);
      expectClose(torchForward(folder, x, c.shape), probs, TOL, `${c.name}: model(x)`);
      expectClose(torchForward(folder, x, c.shape, true), logits, TOL, `${c.name}: model(x, logits=True)`);
      xt.dispose();
      model.dispose();
    });
  }
});

describe('loadPyTorch: a state dict PyTorch wrote', () => {
  beforeAll(() => setDefaultBackend(cpu));
  for (const i of [2, 4, 6]) {
    const c = CASES[i]!;
    it(`${c.name}: gives PyTorch's outputs`, async () => {
      setSeed(300 + i);
      const model = c.model();
      const folder = join(dir, `in${i}`);
      const theirs = join(dir, `in${i}-torch`);
      await savePyTorch(model, folder);
      execFileSync(PYTHON, [SCRIPT, 'randomize', '--folder', folder, '--seed', `${i}`, '--out', join(dir, `s${i}`)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      await savePyTorch(model, theirs);
      copyFileSync(join(dir, `s${i}`), join(theirs, 'model.safetensors'));
      await loadPyTorch(model, readFileSync(join(dir, `s${i}`)));
      const x = c.x();
      const xt = tensor(x, c.shape, { dtype: x instanceof Int32Array ? 'int32' : 'float32' });
      const { probs } = await outputs(model, xt);
      expectClose(torchForward(theirs, x, c.shape), probs, TOL, `${c.name}: outputs after loadPyTorch`);
      xt.dispose();
      model.dispose();
    });
  }

  it('a state dict that does not fit: one StateDictError naming every key; the model unchanged', async () => {
    setSeed(7);
    const model = CASES[1]!.model();
    const before = await Promise.all(model.namedTensors().map(([, t]) => t.data()));
    const file = parseSafetensors((await toPyTorch(model)).safetensors);
    const keys = [...file.tensors.keys()];
    expect(keys).toContain('layers.0.weight');
    expect(file.tensors.get('layers.0.weight')!.shape).toEqual([32, 1, 3, 3]); // [K, C, R, S]
    const linear = keys.filter((k) => file.tensors.get(k)!.shape.length === 2);
    expect(linear.length).toBe(2);
    const [dropped, flipped] = ['layers.0.bias', linear.at(-1)!];
    const entries = [...file.tensors]
      .filter(([k]) => k !== dropped)
      .map(([name, t]) => ({
        name,
        dtype: t.dtype,
        shape: name === flipped ? [...t.shape].reverse() : t.shape,
        data: t.data as Float32Array,
      }));
    entries.push({ name: 'layers.9.weight', dtype: 'float32', shape: [1], data: new Float32Array(1) });
    const poisoned = linear[0]!;
    const at = entries.findIndex((e) => e.name === poisoned);
    const nan = Float32Array.from(entries[at]!.data);
    nan[5] = NaN;
    entries[at] = { ...entries[at]!, data: nan };
    entries.push({ name: 'layers.1.num_batches_tracked', dtype: 'int32', shape: [], data: new Int32Array(1) } as never);
    const bad = serializeSafetensors(entries as never);
    const err = await loadPyTorch(model, bad).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StateDictError);
    const e = err as StateDictError;
    expect(e.missing).toEqual([`${dropped} [32]`]);
    expect(e.unexpected).toEqual(['layers.9.weight']);
    expect(e.mismatched).toEqual([
      `${poisoned}: NaN at index 5, expected finite values`,
      `${flipped}: F32 [${[...file.tensors.get(flipped)!.shape].reverse()}], expected float [${file.tensors.get(flipped)!.shape}]`,
    ]);
    expect(e.message).toMatch(
      /missing: layers\.0\.bias.*unexpected: layers\.9\.weight.*mismatched: layers\.\d+\.weight/,
    );
    const after = await Promise.all(model.namedTensors().map(([, t]) => t.data()));
    after.forEach((a, i) => expect(a).toEqual(before[i]));
    model.dispose();
  });
});

describe('misuse', () => {
  beforeAll(() => setDefaultBackend(cpu));
  const fails = async (f: () => unknown) =>
    (async () => f())().then(
      () => undefined,
      (e: unknown) => e,
    );

  it('not a model, a model without an input shape, a layer PyTorch has no module for, bytes that are not safetensors', async () => {
    for (const bad of [undefined, {}, { layers: [] }, 'model'])
      expect(await fails(() => toPyTorch(bad as never))).toBeInstanceOf(ArgumentError);
    const lazy = new Sequential([L.dense({ units: 3 })]);
    expect(String(await fails(() => toPyTorch(lazy)))).toMatch(/no input shape yet/);
    class Custom extends Layer {
      outputShape(s: number[]): number[] {
        return s;
      }
      protected run(x: Tensor): Tensor {
        return x;
      }
      config(): Record<string, unknown> {
        return {};
      }
    }
    const custom = new Sequential([L.dense({ units: 3, inputShape: [2] }), new Custom('custom', {})]);
    expect(String(await fails(() => toPyTorch(custom)))).toMatch(/custom \(Custom\) has no PyTorch counterpart/);
    const mlp = seedModel('mlp', [4], 3);
    const before = await Promise.all(mlp.namedTensors().map(([, t]) => t.data()));
    expect(await fails(() => loadPyTorch(mlp, 'x' as never))).toBeInstanceOf(ArgumentError);
    for (const bytes of [new Uint8Array(3), new TextEncoder().encode('{"a":1}'), new Uint8Array(64).fill(255)])
      expect(await fails(() => loadPyTorch(mlp, bytes))).toBeInstanceOf(ParseError);
    const after = await Promise.all(mlp.namedTensors().map(([, t]) => t.data()));
    after.forEach((a, i) => expect(a).toEqual(before[i]));
    // A diverged model is not exported: NonFiniteError naming the tensor, nothing returned.
    const [name, w] = mlp.namedTensors()[1]!;
    const bad = Float32Array.from(await w.data());
    bad[2] = Infinity;
    mlp.setTensor(name, keep(tensor(bad, [...w.shape])));
    w.dispose();
    const err = await fails(() => toPyTorch(mlp));
    expect(err).toBeInstanceOf(NonFiniteError);
    expect(String(err)).toContain(`${name} [${w.shape}] holds Infinity at index 2`);
    for (const m of [lazy, custom, mlp]) m.dispose();
  });
});

describe('fine-tuned on WebGPU, exported, continued in PyTorch', () => {
  let gpu: Backend;
  beforeAll(async () => {
    gpu = await gpuBackend();
    setDefaultBackend(gpu);
  });

  it('20 SGD steps of the seed CNN in wgnn; model.py gives its logits; one DDP step (torchrun, 2 processes) lowers the loss', async () => {
    setSeed(11);
    const model = seedModel('cnn', [28, 28, 1], 10);
    const optimizer = sgd(0.05);
    model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy' });
    const n = 64;
    const x = rngData(n * 784, 12).map((v) => Math.abs(v));
    const r = new Rng(13);
    const y = Int32Array.from({ length: n }, () => r.int(0, 10));
    await model.fit(
      { data: x, shape: [n, 28, 28, 1] },
      { data: y, shape: [n] },
      { epochs: 10, batchSize: 32, verbose: 0 },
    );
    const folder = join(dir, 'tuned');
    await savePyTorch(model, folder);
    const xt = tensor(x.slice(0, 8 * 784), [8, 28, 28, 1]);
    const { logits } = await outputs(model, xt);
    expectClose(
      torchForward(folder, x.slice(0, 8 * 784), [8, 28, 28, 1], true),
      logits,
      TOL,
      'logits after fine-tuning',
    );
    xt.dispose();
    model.dispose();
    optimizer.dispose();
    expect(memory(gpu).liveTensors).toBe(0);

    writeFileSync(join(folder, 'x.bin'), new Uint8Array(x.buffer));
    writeFileSync(join(folder, 'labels.bin'), new Uint8Array(y.buffer));
    // --redirects 2 --tee 1: torch 1.13's torchrun cannot parse its default "0" on Python 3.11
    const result = join(folder, 'ddp.json');
    const run = ['--nproc_per_node', '2', '--master_port', '29517', '--redirects', '2', '--tee', '1', SCRIPT, 'ddp'];
    const args = ['--folder', folder, '--x', join(folder, 'x.bin'), '--shape', `${n},28,28,1`];
    execFileSync(
      '/usr/bin/torchrun',
      [...run, ...args, '--y', join(folder, 'labels.bin'), '--lr', '0.05', '--out', result],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, OMP_NUM_THREADS: '1' },
      },
    );
    const res = JSON.parse(readFileSync(result, 'utf8')) as { world: number; before: number; after: number };
    expect(res.world).toBe(2);
    expect(res.after).toBeLessThan(res.before);
  }, 300_000);
});
