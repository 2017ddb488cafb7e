// ONNX in, checked by onnxruntime-node: four models exported from PyTorch by the committed scripts/onnx_models.py (an
// MLP, the seed CNN, a ResNet-style block with batch norm, a char GPT) give onnxruntime's logits within 1e-4 on the CPU
// backend and on WebGPU; 20 fine-tuning steps in wgnn lower their loss; an unsupported operator or attribute is an
// OnnxError naming node, operator and opset; hostile files (crafted and mutated) give a typed error or a model. ONNX
// out: wgnn models written by toOnnx give wgnn's outputs in onnxruntime-node and again through loadOnnx; a fine-tuned
// ONNX model exported by toPyTorch (a model.py running the same graph) gives them in PyTorch.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { backward, noGrad } from '../src/autograd/tape.js';
import { NonFiniteError, OnnxError, ParseError } from '../src/errors.js';
import { loadOnnx, OnnxGraph } from '../src/interop/onnx.js';
import { toOnnx } from '../src/interop/onnx-export.js';
import { savePyTorch } from '../src/interop/pytorch.js';
import { main } from '../src/cli/main.js';
import { gpt, layers as L, seedModel, Sequential, setSeed } from '../src/nn/index.js';
import type { Loss } from '../src/nn/losses.js';
import { adam } from '../src/optim/index.js';
import { softmaxCrossEntropy } from '../src/ops/index.js';
import { Rng } from '../src/rng.js';
import { keep, memory, setDefaultBackend, tensor, tidy, type Tensor } from '../src/tensor.js';
import { cpu, expectClose, gpuBackend } from './helpers.js';
import { fuzzOnnx, makeOnnxModels, onnxFile, removeOnnxModels } from './onnx-fuzz.js';

const TOL = { atol: 1e-4, rtol: 0 };
const PYTHON = '/usr/bin/python3';
const TORCH_SCRIPT = join(import.meta.dirname, '..', 'scripts', 'torch_interop.py');
let dir: string;
const file = (name: string) => onnxFile(dir, name);

beforeAll(() => {
  const made = makeOnnxModels();
  dir = made.dir;
  expect(made.opset).toBe('17');
}, 120_000);
afterAll(() => removeOnnxModels(dir));

/** Per-sample input shape, and the vocabulary for token ids. */
const MODELS = {
  mlp: { sample: [20], vocab: 0 },
  cnn: { sample: [1, 28, 28], vocab: 0 },
  resnet: { sample: [3, 12, 12], vocab: 0 },
  gpt: { sample: [16], vocab: 29 },
} as const;
type Name = keyof typeof MODELS;
const NAMES = Object.keys(MODELS) as Name[];

function inputs(name: Name, n: number, seed: number): Float32Array | Int32Array {
  const { sample, vocab } = MODELS[name];
  const size = n * (sample as readonly number[]).reduce((a, b) => a * b, 1);
  const r = new Rng(seed);
  return vocab
    ? Int32Array.from({ length: size }, () => r.int(0, vocab))
    : Float32Array.from({ length: size }, () => r.uniform(-1, 1));
}

/** onnxruntime-node's first output on the same input (ids as int64, as the file declares). */
async function ortRun(bytes: Uint8Array, x: Float32Array | Int32Array, shape: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  const feed =
    x instanceof Int32Array
      ? new ort.Tensor(
          'int64',
          BigInt64Array.from(x, (v) => BigInt(v)),
          shape,
        )
      : new ort.Tensor('float32', x, shape);
  const out = await session.run({ [session.inputNames[0]!]: feed });
  const y = out[session.outputNames[0]!]!.data as Float32Array;
  await session.release();
  return y;
}

const TORCH_TOL = { atol: 1e-5, rtol: 1e-4 };
/** PyTorch's output of the model.py in `folder` (scripts/torch_interop.py forward; it takes images NHWC). */
function torchForward(folder: string, x: Float32Array | Int32Array, shape: number[]): Float32Array {
  const [n, c, h, w] = shape as [number, number, number, number];
  const nhwc =
    shape.length === 4
      ? Float32Array.from(
          x,
          (_, i) =>
            x[
              ((Math.floor(i / (h * w * c)) * c + (i % c)) * h + (Math.floor(i / (w * c)) % h)) * w +
                (Math.floor(i / c) % w)
            ]!,
        )
      : x;
  writeFileSync(join(folder, 'x.bin'), new Uint8Array(nhwc.buffer, nhwc.byteOffset, nhwc.byteLength));
  const args = ['forward', '--folder', folder, '--x', join(folder, 'x.bin'), '--out', join(folder, 'y.bin')];
  const s = shape.length === 4 ? [n, h, w, c] : shape;
  execFileSync(PYTHON, [TORCH_SCRIPT, ...args, '--shape', s.join(), ...(x instanceof Int32Array ? ['--int'] : [])]);
  const b = readFileSync(join(folder, 'y.bin'));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
}

/** Cross-entropy on the graph's logits [..., classes] against int32 labels [...]. */
const logitsLoss: Loss = {
  name: 'sparseCategoricalCrossentropy',
  compute: (z, y) => softmaxCrossEntropy(z, y),
};

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe.each(['cpu', 'webgpu'] as const)('loadOnnx on %s: logits within 1e-4 of onnxruntime-node', (kind) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = kind === 'cpu' ? cpu : await gpuBackend();
    setDefaultBackend(backend);
  });

  for (const name of NAMES) {
    it(`${name} [batch 5]`, async () => {
      setDefaultBackend(backend);
      const live = memory(backend).liveTensors;
      const bytes = file(name);
      const shape = [5, ...MODELS[name].sample];
      const x = inputs(name, 5, 1);
      const want = await ortRun(bytes, x, shape);
      const model = loadOnnx(bytes);
      model.eval();
      const y = noGrad(() => tidy(() => model.forward(tensor(x, shape))));
      const got = await y.data();
      y.dispose();
      expect(got.length).toBe(want.length);
      expectClose(got, want, TOL, `${name} on ${kind} (max |diff| ${maxDiff(got, want).toExponential(2)})`);
      // predict() gives the same numbers through the model's batching path.
      const p = await model.predict({ data: x, shape }, { batchSize: 2 });
      expectClose(await p.data(), want, TOL, `${name} predict`);
      p.dispose();
      model.dispose();
      expect(memory(backend).liveTensors).toBe(live);
    }, 60_000);
  }
});

describe('what loadOnnx makes', () => {
  beforeAll(() => setDefaultBackend(cpu));

  it('initializers are the weights, under their names: trainable floats, batch-norm statistics and the mask as buffers, conv kernels [R,S,C,K]', () => {
    const resnet = loadOnnx(file('resnet'));
    const params = Object.fromEntries(resnet.namedParameters().map(([k, t]) => [k, t.shape]));
    const buffers = resnet.namedBuffers().map(([k]) => k);
    expect(params['layers.0.stem_weight']).toEqual([3, 3, 3, 16]); // torch [16,3,3,3]
    expect(params['layers.0.bn1_weight']).toEqual([16]);
    expect(params['layers.0.fc_weight']).toEqual([10, 16]);
    expect(buffers.sort()).toEqual(
      ['bn0', 'bn1', 'bn2'].flatMap((b) => [`layers.0.${b}_running_mean`, `layers.0.${b}_running_var`]).sort(),
    );
    expect(resnet.layers[0]).toBeInstanceOf(OnnxGraph);
    resnet.dispose();
    const gpt = loadOnnx(file('gpt'));
    expect(gpt.namedBuffers().map(([k]) => k)).toEqual(['layers.0.blocks_0_mask']);
    expect(gpt.namedParameters().length).toBe(2 + 2 * 12 + 2 + 1);
    expect((gpt.layers[0] as OnnxGraph).idCount).toBe(29); // the rows of the token table the ids index
    gpt.dispose();
  });
});

describe('gradients, PyTorch-style', () => {
  beforeAll(() => setDefaultBackend(cpu));

  for (const name of ['resnet', 'gpt'] as const) {
    it(`${name}: loss.backward() gives every trainable initializer a gradient, none to the buffers`, async () => {
      const model = loadOnnx(file(name));
      const shape = [2, ...MODELS[name].sample];
      const labels = name === 'gpt' ? Int32Array.from({ length: 32 }, (_, i) => i % 29) : Int32Array.of(3, 7);
      tidy(() => {
        const z = model.forward(tensor(inputs(name, 2, 4), shape));
        backward(softmaxCrossEntropy(z, tensor(labels, name === 'gpt' ? [2, 16] : [2])));
      });
      for (const [k, p] of model.namedParameters()) {
        expect(p.grad, k).toBeDefined();
        const g = await p.grad!.data();
        expect(
          g.some((v) => v !== 0),
          `${k}: some gradient`,
        ).toBe(true);
        expect(g.every(Number.isFinite), `${k}: finite gradient`).toBe(true);
      }
      for (const [k, b] of model.namedBuffers()) expect(b.grad, k).toBeUndefined();
      model.zeroGrad();
      model.dispose();
      expect(memory(cpu).liveTensors).toBe(0);
    });
  }
});

describe('toOnnx: wgnn models out, run by onnxruntime-node', () => {
  beforeAll(() => setDefaultBackend(cpu));

  it('refuses a diverged model (a NaN weight, in a GPT block too): NonFiniteError naming the tensor', async () => {
    for (const [model, at] of [
      [seedModel('mlp', [4], 3), 1],
      [gpt({ vocabSize: 7, blockSize: 4, layers: 1, heads: 1, dim: 4 }), 5],
    ] as const) {
      const [name, w] = model.namedTensors()[at]!;
      const bad = Float32Array.from(await w.data());
      bad[0] = NaN;
      model.setTensor(name, keep(tensor(bad, [...w.shape])));
      w.dispose();
      const err = await toOnnx(model).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NonFiniteError);
      expect(String(err)).toMatch(/toOnnx: .* holds NaN at index 0; a diverged model is not exported/);
      model.dispose();
    }
  });

  const cases: [string, () => Sequential, number[]][] = [
    ['the seed CNN', () => seedModel('cnn', [28, 28, 1], 10), [28, 28, 1]],
    [
      'conv same/stride 2 + batch norm + avg pool + global pool + dense gelu + layer norm + softmax',
      () =>
        new Sequential([
          L.conv2d({
            filters: 8,
            kernelSize: 3,
            strides: 2,
            padding: 'same',
            activation: 'leaky_relu',
            inputShape: [11, 9, 3],
          }),
          L.batchNormalization({}),
          L.avgPool2d({ poolSize: 2, strides: 1, padding: 'same' }),
          L.conv2d({ filters: 6, kernelSize: [2, 3], dilationRate: 2, activation: 'gelu_tanh' }),
          L.globalAveragePooling2d({}),
          L.dense({ units: 12, activation: 'gelu' }),
          L.layerNormalization({}),
          L.dropout({ rate: 0.5 }),
          L.dense({ units: 5, activation: 'softmax' }),
        ]),
      [11, 9, 3],
    ],
    [
      'MLP on a flattened image with batch norm and tanh',
      () =>
        new Sequential([
          L.maxPool2d({ poolSize: 3, strides: 2, padding: 'same', inputShape: [7, 6, 2] }),
          L.flatten({}),
          L.dense({ units: 16, activation: 'tanh' }),
          L.batchNormalization({}),
          L.dense({ units: 4 }),
        ]),
      [7, 6, 2],
    ],
  ];
  for (const tie of [false, true])
    cases.push([
      `a GPT (2 blocks, causal attention, GELU tanh MLP, head ${tie ? 'tied to the token table' : 'of its own'})`,
      () =>
        gpt({ vocabSize: 13, blockSize: 8, layers: 2, heads: 2, dim: 16, tieWeights: tie, activation: 'gelu_tanh' }),
      [8],
    ]);
  for (const [what, make, sample] of cases) {
    it(`${what}: onnxruntime gives wgnn's outputs; loadOnnx of the file gives them too`, async () => {
      setSeed(5);
      const model = make();
      // Non-trivial statistics and norm parameters, so that every tensor's layout matters.
      const r = new Rng(9);
      for (const [name, t] of model.namedTensors()) {
        const v = Float32Array.from({ length: t.size }, () =>
          /Variance/.test(name) ? r.uniform(0.5, 1.5) : r.uniform(-0.5, 0.5),
        );
        model.setTensor(name, keepLike(tensor(v, [...t.shape]), t));
      }
      model.eval();
      const shape = [3, ...sample];
      const n = 3 * sample.reduce((a, b) => a * b, 1);
      const x = model.layers[0]!.idCount
        ? Int32Array.from({ length: n }, () => r.int(0, 13))
        : Float32Array.from({ length: n }, () => r.uniform(-1, 1));
      const p = await model.predict({ data: x, shape });
      const want = await p.data();
      p.dispose();
      const bytes = await toOnnx(model);
      const got = await ortRun(bytes, x, shape);
      expectClose(got, want, TOL, `${what}: onnxruntime vs wgnn`);
      const back = loadOnnx(bytes);
      const y = await back.predict({ data: x, shape });
      expectClose(await y.data(), want, TOL, `${what}: loadOnnx(toOnnx(model)) vs wgnn`);
      y.dispose();
      back.dispose();
      model.dispose();
      expect(memory(cpu).liveTensors).toBe(0);
    }, 60_000);
  }

  it('a layer ONNX out does not cover is an ArgumentError naming it', async () => {
    const model = new Sequential([L.embedding({ inputDim: 10, outputDim: 4, inputShape: [3] })]);
    await expect(toOnnx(model)).rejects.toThrow(/embedding.*\(Embedding\) has no ONNX export here/);
    model.dispose();
  });
});

function keepLike(t: Tensor, old: Tensor): Tensor {
  t.requiresGrad = old.requiresGrad;
  old.dispose();
  return keep(t);
}

describe('fine-tuning on WebGPU', () => {
  beforeAll(async () => setDefaultBackend(await gpuBackend()));

  for (const name of NAMES) {
    it(`${name}: 20 Adam steps with fit lower the loss; toOnnx writes the tuned weights, onnxruntime gives wgnn's outputs; toPyTorch's model.py gives them too`, async () => {
      const backend = await gpuBackend();
      setDefaultBackend(backend);
      const live = memory(backend).liveTensors;
      const model = loadOnnx(file(name));
      const n = 16;
      const shape = [n, ...MODELS[name].sample];
      const x = { data: inputs(name, n, 2), shape };
      const r = new Rng(3);
      const y =
        name === 'gpt'
          ? { data: Int32Array.from({ length: n * 16 }, () => r.int(0, 29)), shape: [n, 16] }
          : { data: Int32Array.from({ length: n }, () => r.int(0, 10)), shape: [n] };
      const optimizer = adam(3e-3);
      model.compile({ optimizer, loss: logitsLoss });
      const before = (await model.evaluate(x, y, { batchSize: n })).loss!;
      await model.fit(x, y, { epochs: 20, batchSize: n, verbose: 0 });
      const after = (await model.evaluate(x, y, { batchSize: n })).loss!;
      expect(after, `${name}: loss ${before.toFixed(4)} -> ${after.toFixed(4)}`).toBeLessThan(0.9 * before);
      // Out again: the file with the fine-tuned weights gives wgnn's outputs in onnxruntime.
      const p = await model.predict(x, { batchSize: n });
      const tuned = await p.data();
      p.dispose();
      expectClose(await ortRun(await toOnnx(model), x.data, shape), tuned, TOL, `${name}: fine-tuned, exported`);
      expect(maxDiff(await ortRun(file(name), x.data, shape), tuned)).toBeGreaterThan(1e-3);
      // And to PyTorch: model.py runs the same graph with the tuned weights and gives wgnn's logits.
      const out = join(dir, `torch-${name}`);
      await savePyTorch(model, out);
      expectClose(torchForward(out, x.data, shape), tuned, TORCH_TOL, `${name}: fine-tuned, exported to PyTorch`);
      model.dispose();
      optimizer.dispose();
      expect(memory(backend).liveTensors).toBe(live);
    }, 120_000);
  }
});

describe('files loadOnnx refuses', () => {
  beforeAll(() => setDefaultBackend(cpu));

  it('an unsupported operator or attribute: OnnxError naming node, operator and opset', () => {
    const cases = [
      ['op', 'hard', 'Hardmax', /operator Hardmax is not supported/],
      ['attr', 'sm', 'Softmax', /attribute foo is not supported/],
    ] as const;
    for (const [f, node, op, msg] of cases) {
      const e = catchError(() => loadOnnx(file(`bad_${f}`)));
      expect(e).toBeInstanceOf(OnnxError);
      expect(e).toMatchObject({ node, op, opset: 17 });
      expect((e as Error).message).toMatch(msg);
      expect((e as Error).message).toContain(`node "${node}" (${op}, opset 17)`);
    }
    expect(memory(cpu).liveTensors).toBe(0);
  });

  it('a cycle, an unknown input, sizes past what the bytes hold, external data: ParseError saying which', () => {
    const cases = [
      ['cycle', /cycle through node "n[12]"/],
      ['unknown', /node "add" \(Add\) reads "nowhere", which nothing produces/],
      ['huge', /holds 1099511627776 elements/],
      ['overflow', /dim 0 is 46116860184273\d+; expected an integer/],
      ['external', /external file/],
      ['short', /needs 4 values; the file holds 12 raw bytes/],
    ] as const;
    for (const [f, msg] of cases) {
      const e = catchError(() => loadOnnx(file(`bad_${f}`)));
      expect(e, f).toBeInstanceOf(ParseError);
      expect((e as Error).message).toMatch(msg);
    }
    const notOnnx = catchError(() => loadOnnx(new Uint8Array([0x0f, 0xff, 0xff])));
    expect(notOnnx).toBeInstanceOf(ParseError);
    expect((notOnnx as Error).message).toMatch(/not a valid ONNX model/);
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

describe('fuzz: hostile bytes give a typed error or a model, never a crash, a hang or a huge allocation', () => {
  beforeAll(() => setDefaultBackend(cpu));

  it('truncations, wrong wire types and 4000 seeded byte mutations of the four models', () => {
    const start = performance.now();
    const models = Object.fromEntries((['mlp', 'resnet', 'gpt', 'cnn'] as const).map((n) => [n, file(n)]));
    // The CNN's weights are most of its bytes: fewer mutations of it keep the test short.
    const counts = fuzzOnnx(models, { mlp: 1250, resnet: 1250, gpt: 1250, cnn: 250 }, 17, true);
    expect(counts.ok + counts.error).toBe(4 * 56 + 3 * 1250 + 250);
    // Both outcomes occur: a flipped weight byte still loads, a broken structure does not.
    expect(counts.error, JSON.stringify(counts)).toBeGreaterThan(100);
    expect(counts.ok, JSON.stringify(counts)).toBeGreaterThan(100);
    expect(memory(cpu).liveTensors).toBe(0);
    expect(performance.now() - start).toBeLessThan(60_000);
  }, 120_000);
});

describe('wgnn export --to pytorch of an ONNX file', () => {
  it("writes model.safetensors and a model.py running the graph in PyTorch: onnxruntime's outputs within 1e-4", async () => {
    const [out, err] = [join(dir, 'cli-cnn'), [] as string[]];
    const code = await main(['export', join(dir, 'cnn.onnx'), out, '--to', 'pytorch'], {
      out: () => {},
      err: (l) => err.push(l),
    });
    expect(code, err.join('\n')).toBe(0);
    const x = inputs('cnn', 2, 5);
    const want = await ortRun(file('cnn'), x, [2, 1, 28, 28]);
    expectClose(torchForward(out, x, [2, 1, 28, 28]), want, TOL, 'the CLI export in PyTorch vs onnxruntime');
  });
});
