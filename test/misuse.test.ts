// Misuse of the public entry points, as a careless or hostile user would try it: every layer factory and optimizer
// with bad option values, losses and optimizer presets named after Object.prototype's members, model files with
// corrupted layer metadata, inputs of the wrong shape. Each ends in a WgnnError subclass whose message names the
// offending option (never a raw SyntaxError, TypeError or RangeError, never a silent default), nothing absurd is
// allocated, and a valid model still works afterwards, on WebGPU and the CPU backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as wg from '../src/index.js';
import { LimitError, ParseError, ShapeError, WgnnError } from '../src/errors.js';
import { setDefaultBackend } from '../src/tensor.js';
import type { Backend } from '../src/backend/backend.js';
import { cpu, expectClose, gpuBackend } from './helpers.js';

type Cls = abstract new (...args: never[]) => Error;

/** The error `f` throws (or rejects with), or undefined. */
async function caught(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** `f` fails with a `cls` (a WgnnError subclass) whose message matches `names`. */
async function expectMisuse(
  what: string,
  f: () => unknown,
  names: string | RegExp,
  cls: Cls = WgnnError,
): Promise<void> {
  const e = await caught(f);
  expect(e, `${what}: expected a ${cls.name}, got ${e === undefined ? 'no error' : String(e)}`).toBeInstanceOf(cls);
  expect(e, `${what}: ${String(e)}`).toBeInstanceOf(WgnnError);
  const msg = (e as Error).message;
  if (typeof names === 'string') expect(msg, what).toContain(names);
  else expect(msg, what).toMatch(names);
}

const label = (v: unknown): string => (typeof v === 'number' || v === undefined ? String(v) : JSON.stringify(v));

// Bad values by kind of option. Sizes: a huge one is a LimitError, the rest ShapeErrors; all are WgnnErrors.
const SIZE = [-1, 0, 1.5, NaN, Infinity, -Infinity, '3', null, true, {}, [], 1e12];
const PAIR = [...SIZE, [3], [3, -1], [3, 0.5], [3, '3'], [3, 3, 3]];
const PADDING = [-1, 1.5, NaN, Infinity, 'full', '', null, {}, [1, 1], [1, 1, 1, -1], [1, 1, 1, 0.5], 1e12];
const FLAG = ['yes', 1, 0, null, {}];
const ACTIVATION = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'nope', 5, null, {}];
const INITIALIZER = [
  'constructor',
  '__proto__',
  'toString',
  'glorot',
  5,
  null,
  {},
  { kind: 'glorotUniform' },
  { kind: 'randomNormal', stddev: -1 },
  { kind: 'randomNormal', stddev: NaN },
  { kind: 'randomNormal', stddev: '0.02' },
  { kind: 'randomNormal', stddev: 0.02, mean: 1 },
];
const RATE = [-0.1, 1, 1.5, NaN, Infinity, '0.5', null, {}];
const STD = [-1, NaN, Infinity, '0.02', null, 1e12];
const NAME = ['', 5, null, {}, ['a']];
const SEED = [1.5, NaN, Infinity, '1', null, {}];
const SHAPE = [5, 'x', null, {}, [-1], [0], [1.5], [NaN], ['4'], [[4]], [4, null], [1e6, 1e6], [1e12]];

/** Every factory of wg.layers: options that make it, and its own options with the bad values for their kind. */
const FACTORIES: Record<keyof typeof wg.layers, { base: Record<string, unknown>; bad: Record<string, unknown[]> }> = {
  dense: {
    base: { units: 2 },
    bad: {
      units: SIZE,
      inputDim: SIZE,
      activation: ACTIVATION,
      useBias: FLAG,
      kernelInitializer: INITIALIZER,
      biasInitializer: INITIALIZER,
    },
  },
  conv2d: {
    base: { filters: 2, kernelSize: 3 },
    bad: {
      filters: SIZE,
      kernelSize: PAIR,
      strides: PAIR,
      dilationRate: PAIR,
      padding: PADDING,
      activation: ACTIVATION,
      useBias: FLAG,
      kernelInitializer: INITIALIZER,
    },
  },
  maxPool2d: { base: {}, bad: { poolSize: PAIR, strides: PAIR, padding: PADDING } },
  maxPooling2d: { base: {}, bad: { poolSize: PAIR, strides: PAIR, padding: PADDING } },
  avgPool2d: { base: {}, bad: { poolSize: PAIR, strides: PAIR, padding: PADDING } },
  averagePooling2d: { base: {}, bad: { poolSize: PAIR, strides: PAIR, padding: PADDING } },
  globalAveragePooling2d: { base: {}, bad: {} },
  flatten: { base: {}, bad: {} },
  dropout: { base: { rate: 0.5 }, bad: { rate: RATE } },
  batchNormalization: {
    base: {},
    bad: { momentum: [-0.1, 1.5, NaN, Infinity, 'x', null, {}], epsilon: [-1, 0, NaN, Infinity, 'x', null] },
  },
  activation: { base: { activation: 'relu' }, bad: { activation: ACTIVATION } },
  embedding: {
    base: { inputDim: 5, outputDim: 3 },
    bad: { inputDim: SIZE, outputDim: SIZE, embeddingsInitializer: INITIALIZER },
  },
  layerNormalization: { base: {}, bad: { epsilon: [-1, 0, NaN, Infinity, 'x', null] } },
  layerNorm: { base: {}, bad: { epsilon: [-1, 0, NaN, Infinity, 'x', null] } },
  tokenAndPositionEmbedding: {
    base: { vocabSize: 5, maxLength: 4, outputDim: 3 },
    bad: { vocabSize: SIZE, maxLength: SIZE, outputDim: SIZE, dropout: RATE, initStd: STD },
  },
  multiHeadAttention: {
    base: { heads: 2 },
    bad: { heads: SIZE, causal: FLAG, dropout: RATE, initStd: STD, outputInitStd: STD },
  },
  transformerBlock: {
    base: { heads: 2 },
    bad: {
      heads: SIZE,
      causal: FLAG,
      dropout: RATE,
      activation: ['relu', 'geluTanh', ...ACTIVATION],
      epsilon: [-1, 0, NaN, Infinity, 'x', null],
      mlpRatio: [-1, 0, NaN, Infinity, 'x', null, 1e12],
      initStd: STD,
      outputInitStd: STD,
    },
  },
  lmHead: { base: { units: 5 }, bad: { units: SIZE, tieWeights: FLAG, initStd: STD } },
};

const factoryCases = Object.entries(FACTORIES).flatMap(([factory, { base, bad }]) => {
  const common: Record<string, unknown[]> = { name: NAME, seed: SEED, inputShape: SHAPE };
  return Object.entries({ ...bad, ...common }).flatMap(([option, values]) =>
    values.map((v) => ({
      title: `${factory}({ ${option}: ${label(v)} })`,
      factory,
      opts: { ...base, [option]: v },
      option,
    })),
  );
});

const make = (factory: string, opts: unknown) =>
  (wg.layers as unknown as Record<string, (o: unknown) => wg.nn.Layer>)[factory]!(opts);

describe('layer factories refuse bad options, naming them', () => {
  it.each(factoryCases)('$title', async ({ factory, opts, option }) => {
    await expectMisuse(`${factory} ${option}`, () => make(factory, opts), option);
  });

  it.each(Object.keys(FACTORIES))(
    '%s: options that are not an object, or hold an unknown (misspelt) option',
    async (factory) => {
      for (const opts of [null, 5, 'x', [1]])
        await expectMisuse(`${factory}(${label(opts)})`, () => make(factory, opts), 'options must be an object');
      const base = FACTORIES[factory as keyof typeof FACTORIES].base;
      for (const key of ['trainable', 'kernel_size', 'constructor', '__proto__']) {
        const opts = JSON.parse(`{"${key}": 1}`) as object; // an own key, even for __proto__
        await expectMisuse(`${factory} ${key}`, () => make(factory, { ...base, ...opts }), `unknown option "${key}"`);
      }
    },
  );

  it('a size past the layer limits is a LimitError naming the limit; setLayerLimits raises it, and checks its own options', async () => {
    await expectMisuse(
      'units 1e12',
      () => wg.layers.dense({ units: 1e12 }),
      /units 1000000000000, over the limit of \d+ \(maxParams\); setLayerLimits/,
      LimitError,
    );
    await expectMisuse(
      'inputShape 1e12',
      () => wg.layers.flatten({ inputShape: [1e6, 1e6] }),
      /inputShape \[1000000,1000000\] holds 1000000000000, over the limit .*maxSampleSize/,
      LimitError,
    );
    await expectMisuse(
      'conv 1e4 x 1e4 x 1e3',
      () => wg.layers.conv2d({ filters: 1000, kernelSize: 10000 }),
      /kernel \[10000,10000,C,1000\] holds at least 100000000000.*maxParams/,
      LimitError,
    );
    const prev = wg.nn.setLayerLimits({ maxParams: 14 });
    try {
      expect(prev.maxParams).toBe(2 ** 26);
      const d = wg.layers.dense({ units: 3, inputShape: [4] }); // 4·3 + 3 = 15 parameters
      await expectMisuse(
        'dense of 15 under a limit of 14',
        () => d.parameters(),
        /kernel \[4,3\], bias \[3\] hold 15, over the limit of 14 \(maxParams\)/,
        LimitError,
      );
    } finally {
      wg.nn.setLayerLimits(prev);
    }
    expect(wg.nn.setLayerLimits({})).toEqual(prev);
    for (const bad of [{ maxParams: -1 }, { maxParams: 1.5 }, { maxSampleSize: 'x' }, { maxParms: 5 }, null]) {
      await expectMisuse(
        `setLayerLimits(${label(bad)})`,
        () => wg.nn.setLayerLimits(bad as never),
        /setLayerLimits: (maxParams|maxSampleSize|unknown option "maxParms"|limits must be an object)/,
      );
    }
    expect(wg.nn.setLayerLimits({})).toEqual(prev);
  });
});

const OPTIM: Record<string, { make: (o: unknown) => unknown; bad: Record<string, unknown[]> }> = {
  sgd: {
    make: (o) => wg.optim.sgd(o as never),
    bad: {
      momentum: [-0.1, NaN, Infinity, 'x', null],
      dampening: [-1, 2, NaN],
      weightDecay: [-1, NaN, '0'],
      nesterov: ['yes', 1],
    },
  },
  adam: {
    make: (o) => wg.optim.adam(o as never),
    bad: {
      betas: [[0.9, 1], [-0.1, 0.9], [NaN, 0.9], [0.9], 0.9, 'x', null, [0.9, '0.9']],
      eps: [0, -1, NaN, Infinity, 'x'],
      weightDecay: [-1, NaN],
      decoupledWeightDecay: ['yes', 1],
    },
  },
  adamw: {
    make: (o) => wg.optim.adamw(o as never),
    bad: { betas: [[0.9, 1], [0.9]], eps: [0, -1], weightDecay: [-0.1, NaN, 'x'] },
  },
  rmsprop: {
    make: (o) => wg.optim.rmsprop(o as never),
    bad: { alpha: [-1, 2, NaN], eps: [0, -1], weightDecay: [-1], momentum: [-1, NaN, 'x'], centered: ['yes', 1] },
  },
  adagrad: {
    make: (o) => wg.optim.adagrad(o as never),
    bad: { lrDecay: [-1, NaN], weightDecay: [-1], eps: [0, -1], initialAccumulatorValue: [-1, NaN] },
  },
};
const optimCases = Object.entries(OPTIM).flatMap(([rule, { make: mk, bad }]) =>
  Object.entries({
    ...bad,
    lr: [-1, NaN, Infinity, '0.1', null, {}],
    globalClipnorm: [0, -1, NaN, Infinity, '1', null],
  }).flatMap(([option, values]) =>
    values.map((v) => ({ title: `${rule}({ ${option}: ${label(v)} })`, rule, mk, opts: { [option]: v }, option })),
  ),
);

describe('optimizers, schedules and clipping refuse bad options, naming them', () => {
  it.each(optimCases)('$title', async ({ rule, mk, opts, option }) => {
    await expectMisuse(`${rule} ${option}`, () => mk(opts), option === 'betas' ? /betas/ : option);
  });

  it.each(Object.keys(OPTIM))(
    '%s(lr) with a bad rate, options that are not an object, or an unknown option',
    async (rule) => {
      const mk = OPTIM[rule]!.make;
      for (const lr of [-1, NaN, Infinity, '0.1'])
        await expectMisuse(`${rule}(${label(lr)})`, () => mk(lr), `${rule}: lr must be >= 0`);
      await expectMisuse(`${rule}(null)`, () => mk(null), 'options must be an object, got null');
      await expectMisuse(`${rule}([])`, () => mk([]), 'options must be an object');
      await expectMisuse(`${rule} learningRate`, () => mk({ learningRate: 0.1 }), 'unknown option "learningRate"');
      await expectMisuse(
        `${rule} __proto__`,
        () => mk(JSON.parse('{"__proto__": {"lr": 5}}')),
        'unknown option "__proto__"',
      );
    },
  );

  it('setting lr to a bad value, a schedule giving one, and bad schedule or clip options', async () => {
    const opt = wg.optim.sgd(0.1);
    for (const lr of [-1, NaN, 'x'])
      await expectMisuse(`lr = ${label(lr)}`, () => (opt.lr = lr as never), 'sgd: lr must be >= 0');
    expect(opt.lr).toBe(0.1);
    const s = wg.optim;
    const bad: [string, () => unknown, string][] = [
      ['stepDecay stepSize 0', () => s.stepDecay({ initial: 1, stepSize: 0 }), 'stepSize'],
      ['stepDecay initial NaN', () => s.stepDecay({ initial: NaN, stepSize: 1 }), 'initial'],
      ['stepDecay initial -1', () => s.stepDecay({ initial: -1, stepSize: 1 }), 'initial'],
      ['stepDecay gamma "x"', () => s.stepDecay({ initial: 1, stepSize: 1, gamma: 'x' as never }), 'gamma'],
      ['stepDecay null', () => s.stepDecay(null as never), 'options must be an object'],
      [
        'exponentialDecay decayRate -1',
        () => s.exponentialDecay({ initial: 1, decayRate: -1, decaySteps: 1 }),
        'decayRate',
      ],
      [
        'exponentialDecay decaySteps NaN',
        () => s.exponentialDecay({ initial: 1, decayRate: 0.5, decaySteps: NaN }),
        'decaySteps',
      ],
      [
        'exponentialDecay staircase "yes"',
        () => s.exponentialDecay({ initial: 1, decayRate: 0.5, decaySteps: 1, staircase: 'yes' as never }),
        'staircase',
      ],
      ['cosineDecay alpha 2', () => s.cosineDecay({ initial: 1, decaySteps: 10, alpha: 2 }), 'alpha'],
      [
        'cosineDecay decay_steps',
        () => s.cosineDecay({ initial: 1, decay_steps: 10 } as never),
        'unknown option "decay_steps"',
      ],
      ['clipGradNorm -1', () => s.clipGradNorm([], -1), 'maxNorm'],
      ['clipGradNorm NaN', () => s.clipGradNorm([], NaN), 'maxNorm'],
      ['clipGradNorm "1"', () => s.clipGradNorm([], '1' as never), 'maxNorm'],
    ];
    for (const [what, f, option] of bad) await expectMisuse(what, f, option);
  });

  it('optimizer presets and losses by a name from Object.prototype are unknown names, listing the known ones', async () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'nope']) {
      expect(Object.hasOwn(wg.optim.OPTIMIZERS, name), name).toBe(false);
      expect((wg.optim.OPTIMIZERS as Record<string, unknown>)[name], name).toBeUndefined();
      await expectMisuse(
        `preset ${name}`,
        () => wg.optim.optimizerPreset(name),
        /unknown optimizer .*; expected one of adam, adamw, sgd/,
      );
      await expectMisuse(
        `loss ${name}`,
        () => wg.nn.getLoss(name as never),
        /compile: unknown loss .*; expected one of mse, .*sparseCategoricalCrossentropy/,
      );
      const m = wg.sequential([wg.layers.dense({ units: 1 })]);
      await expectMisuse(
        `compile loss ${name}`,
        () => m.compile({ optimizer: wg.optim.sgd(0.1), loss: name as never }),
        'unknown loss',
      );
    }
    for (const loss of [5, null, {}, { compute: 1 }])
      await expectMisuse(`loss ${label(loss)}`, () => wg.nn.getLoss(loss as never), 'unknown loss');
    expect(wg.optim.optimizerPreset('adam').lr).toBe(1e-3);
    expect(wg.nn.getLoss('mse').name).toBe('mse');
  });
});

let gpu: Backend;
beforeAll(async () => {
  gpu = await gpuBackend();
});
afterAll(() => setDefaultBackend(undefined));

/** The file of `bytes` with metadata entries replaced (undefined: removed), weights unchanged. */
function withMetadata(bytes: Uint8Array, patch: Record<string, string | undefined>): Uint8Array {
  const file = wg.parseSafetensors(bytes);
  const entries = [...file.tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.data }));
  const meta: Record<string, string> = { ...file.metadata };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete meta[k];
    else meta[k] = v;
  }
  return wg.serializeSafetensors(entries, meta);
}

/** The saved layer stack with layer `i`'s config changed. */
function withConfig(bytes: Uint8Array, i: number, change: Record<string, unknown>): Uint8Array {
  const specs = JSON.parse(wg.parseSafetensors(bytes).metadata.layers!) as { config: Record<string, unknown> }[];
  specs[i]!.config = { ...specs[i]!.config, ...change };
  return withMetadata(bytes, { layers: JSON.stringify(specs) });
}

describe.each(['cpu', 'webgpu'] as const)('models [%s]', (which) => {
  let b: Backend;
  beforeAll(() => {
    b = which === 'cpu' ? cpu : gpu;
    setDefaultBackend(b);
  });

  // dense [4] -> [3], batch norm, dropout, dense -> [2]: every kind of config a model file carries, small.
  const model = () =>
    wg.sequential([
      wg.layers.dense({ units: 3, activation: 'relu', inputShape: [4], seed: 1 }),
      wg.layers.batchNormalization(),
      wg.layers.dropout({ rate: 0.25 }),
      wg.layers.dense({ units: 2, seed: 2 }),
    ]);
  const x = () =>
    wg.tensor(
      Float32Array.from({ length: 8 }, (_, i) => Math.sin(i)),
      [2, 4],
    );

  /** The original model's bytes, and a check that a valid file still loads and computes as the original does. */
  async function stillWorks(m: wg.Sequential, bytes: Uint8Array): Promise<void> {
    setDefaultBackend(b);
    const back = await wg.Sequential.load(bytes);
    const input = x();
    m.eval();
    back.eval();
    const [a, c] = wg.tidy(() => [m.forward(input), back.forward(input)]);
    expectClose(await c.data(), await a.data(), { atol: 0, rtol: 0 }, 'a valid file after the misuse');
    for (const t of [input, a, c]) t.dispose();
    back.dispose();
  }

  it('Sequential.load: metadata that is not JSON, or JSON of the wrong type, is a ParseError naming the field', async () => {
    const m = model();
    const bytes = await m.save();
    const live = wg.memory(b).liveTensors;
    const cases: [Record<string, string | undefined>, string | RegExp][] = [
      [{ layers: '[{' }, 'metadata "layers" is not JSON'],
      [{ layers: 'nope' }, 'metadata "layers" is not JSON'],
      [{ layers: '{}' }, 'metadata "layers" is an object; expected an array'],
      [{ layers: '5' }, 'metadata "layers" is 5; expected an array'],
      [{ layers: 'null' }, 'metadata "layers" is null; expected an array'],
      [{ layers: '"Dense"' }, 'metadata "layers" is "Dense"; expected an array'],
      [{ layers: '[5]' }, 'layer 0 is 5; expected { class, name, config }'],
      [{ layers: '[null]' }, 'layer 0 is null'],
      [{ layers: '[[]]' }, 'layer 0 is []'],
      [{ layers: '[{"class": 5, "config": {}}]' }, 'layer 0 has class 5'],
      [{ layers: '[{"config": {"units": 3}}]' }, 'layer 0 has class undefined'],
      [{ layers: '[{"class": "Dense"}]' }, 'layer 0 (Dense) has config undefined; expected an object'],
      [{ layers: '[{"class": "Dense", "config": [3]}]' }, 'layer 0 (Dense) has config [3]'],
      [{ layers: '[{"class": "Dense", "config": null}]' }, 'layer 0 (Dense) has config null'],
      [{ layers: '[{"class": "Dense", "config": "units: 3"}]' }, 'layer 0 (Dense) has config "units: 3"'],
      [
        { layers: '[{"class": "Dense", "name": 5, "config": {"units": 3}}]' },
        /layer 0 \(Dense\): dense(_\d+)?: name must be a non-empty string, got 5/,
      ],
      [
        { layers: '[{"class": "Dense", "config": {"units": 3, "__proto__": {"units": 5}}}]' },
        'unknown option "__proto__"',
      ],
      [{ inputShape: 'x' }, 'metadata "inputShape" is not JSON'],
      [{ inputShape: '{}' }, /layer 0 \(Dense\): .*inputShape must be an array/],
      [{ inputShape: '5' }, /layer 0 \(Dense\): .*inputShape must be an array/],
      [{ inputShape: '0' }, /layer 0 \(Dense\): .*inputShape must be an array/],
      [{ inputShape: '[-1]' }, /layer 0 \(Dense\): .*inputShape\[0\] must be an integer >= 1, got -1/],
      [{ inputShape: '[0]' }, /inputShape\[0\] must be an integer >= 1, got 0/],
      [{ inputShape: '[1.5]' }, /inputShape\[0\] must be an integer >= 1, got 1.5/],
      [{ inputShape: '["4"]' }, /inputShape\[0\] must be an integer >= 1, got "4"/],
      [{ inputShape: '[[4]]' }, /inputShape\[0\] must be an integer >= 1, got \[4\]/],
      [
        { inputShape: '[1000000,1000000]' },
        /layer 0 \(Dense\): .*inputShape \[1000000,1000000\] holds 1000000000000, over the limit/,
      ],
      [{ inputShape: '[5]' }, 'weight layers.0.kernel float32[4,3]; the model expects float32[5,3]'],
      [{ inputShape: undefined }, /weights the model does not have: layers\.0\.bias, layers\.0\.kernel/],
    ];
    for (const [patch, names] of cases) {
      await expectMisuse(
        `load with ${JSON.stringify(patch)}`,
        () => wg.Sequential.load(withMetadata(bytes, patch)),
        names,
        ParseError,
      );
    }
    expect(wg.memory(b).liveTensors, 'tensors left by the failed loads').toBe(live);
    await stillWorks(m, bytes);
    m.dispose();
  });

  it('Sequential.load: a layer class, activation or option named after Object.prototype is a ParseError', async () => {
    const m = model();
    const bytes = await m.save();
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      await expectMisuse(
        `activation ${name}`,
        () => wg.Sequential.load(withConfig(bytes, 0, { activation: name })),
        `layer 0 (Dense): dense`,
        ParseError,
      );
      await expectMisuse(
        `activation ${name}`,
        () => wg.Sequential.load(withConfig(bytes, 0, { activation: name })),
        `unknown activation "${name}"`,
        ParseError,
      );
      await expectMisuse(
        `kernelInitializer ${name}`,
        () => wg.Sequential.load(withConfig(bytes, 0, { kernelInitializer: name })),
        'kernelInitializer must be one of',
        ParseError,
      );
    }
    await stillWorks(m, bytes);
    m.dispose();
  });

  // Each config change of a saved layer, the layer it is in, and what the error names.
  const CONFIGS: [number, Record<string, unknown>, string | RegExp][] = [
    [0, { units: -1 }, /layer 0 \(Dense\): dense(_\d+)?: units must be an integer >= 1, got -1/],
    [0, { units: 0 }, 'units must be an integer >= 1, got 0'],
    [0, { units: 2.5 }, 'units must be an integer >= 1, got 2.5'],
    [0, { units: 'NaN' }, 'units must be an integer >= 1, got "NaN"'],
    [0, { units: null }, 'units must be an integer >= 1, got null'],
    [0, { units: '3' }, 'units must be an integer >= 1, got "3"'],
    [0, { units: 1e12 }, /units 1000000000000, over the limit of \d+ \(maxParams\)/],
    [
      0,
      { units: 2e7 },
      /layer 0 \(Dense\): dense(_\d+)?: kernel \[4,20000000\], bias \[20000000\] hold 100000000, over the limit of \d+ \(maxParams\)/,
    ],
    [0, { units: 5 }, 'weight layers.0.kernel float32[4,3]; the model expects float32[4,5]'],
    [0, { useBias: 'no' }, 'useBias must be true or false'],
    [0, { useBias: false }, 'weights the model does not have: layers.0.bias'],
    [0, { trainable: false }, 'unknown option "trainable"'],
    [1, { epsilon: -1 }, /layer 1 \(BatchNormalization\): batch_normalization(_\d+)?: epsilon must be > 0, got -1/],
    [1, { epsilon: 0 }, 'epsilon must be > 0, got 0'],
    [1, { momentum: 'x' }, 'momentum must be in [0, 1], got "x"'],
    [1, { momentum: 1.5 }, 'momentum must be in [0, 1], got 1.5'],
    [
      1,
      { inputShape: [7] },
      /layer 1 \(BatchNormalization\): batch_normalization(_\d+)?: declared for input \[7\] per sample, got \[3\]/,
    ],
    [2, { rate: 1 }, /layer 2 \(Dropout\): dropout(_\d+)?: rate must be in \[0, 1\), got 1/],
    [2, { rate: -0.5 }, 'rate must be in [0, 1), got -0.5'],
    [2, { rate: '0.5' }, 'rate must be in [0, 1), got "0.5"'],
  ];

  it.each(CONFIGS)(
    'Sequential.load: layer %i with config %o is a ParseError naming the layer and the field',
    async (i, change, names) => {
      const m = model();
      const bytes = await m.save();
      const live = wg.memory(b).liveTensors;
      const t0 = performance.now();
      await expectMisuse(
        `layer ${i} ${JSON.stringify(change)}`,
        () => wg.Sequential.load(withConfig(bytes, i, change)),
        names,
        ParseError,
      );
      expect(performance.now() - t0, 'refused before allocating anything').toBeLessThan(2000);
      expect(wg.memory(b).liveTensors).toBe(live);
      await stillWorks(m, bytes);
      m.dispose();
    },
  );

  it('Sequential.load: sizes of conv and pooling layers from a file (kernel, strides, pool, padding) are checked', async () => {
    const m = wg.sequential([
      wg.layers.conv2d({ filters: 2, kernelSize: 3, inputShape: [6, 6, 1] }),
      wg.layers.maxPool2d(),
      wg.layers.flatten(),
    ]);
    const bytes = await m.save();
    const cases: [number, Record<string, unknown>, string | RegExp][] = [
      [0, { filters: -2 }, /layer 0 \(Conv2D\): .*filters must be an integer >= 1, got -2/],
      [0, { kernelSize: 0 }, 'kernelSize must be an integer >= 1, got 0'],
      [0, { kernelSize: [3, -1] }, 'kernelSize[1] must be an integer >= 1, got -1'],
      [0, { kernelSize: 'x' }, 'kernelSize must be a positive integer or [height, width], got "x"'],
      [0, { kernelSize: { h: 3 } }, 'kernelSize must be a positive integer or [height, width], got an object'],
      [0, { strides: 0 }, 'strides must be an integer >= 1, got 0'],
      [0, { strides: 1e12 }, /strides 1000000000000, over the limit .*maxSampleSize/],
      [0, { padding: 'full' }, "padding must be 'valid', 'same'"],
      [0, { kernelSize: 7 }, /layer 0 \(Conv2D\): conv2d: .*7x7/],
      [
        0,
        { filters: 1e6, kernelSize: 100 },
        /layer 0 \(Conv2D\): .*kernel \[100,100,C,1000000\] holds at least 10000000000.*maxParams/,
      ],
      [1, { poolSize: 1e12 }, /layer 1 \(MaxPooling2D\): .*poolSize 1000000000000, over the limit/],
      [1, { poolSize: -2 }, 'poolSize must be an integer >= 1, got -2'],
      [1, { padding: [1, 1, 1, -1] }, 'padding[3] must be an integer >= 0, got -1'],
    ];
    for (const [i, change, names] of cases) {
      await expectMisuse(
        `layer ${i} ${JSON.stringify(change)}`,
        () => wg.Sequential.load(withConfig(bytes, i, change)),
        names,
        ParseError,
      );
    }
    const back = await wg.Sequential.load(bytes);
    expect(back.summary(() => {})).toBe(m.summary(() => {}));
    back.dispose();
    m.dispose();
  });

  it('Sequential.load: a source that is neither bytes nor a readable path is a WgnnError', async () => {
    for (const source of [5, null, {}, ['a']])
      await expectMisuse(
        `load(${label(source)})`,
        () => wg.Sequential.load(source as never),
        'source must be a path or a Uint8Array',
      );
    await expectMisuse(
      'load(missing path)',
      () => wg.Sequential.load('/nonexistent/dir/m.safetensors'),
      /Sequential.load: cannot read \/nonexistent\/dir\/m.safetensors: .*ENOENT/,
    );
  });

  it('an input whose per-sample shape differs from the declared one is a ShapeError, not a silent rebuild', async () => {
    const m = wg.sequential([
      wg.layers.dense({ units: 3, inputShape: [4], name: 'first' }),
      wg.layers.dense({ units: 2 }),
    ]);
    const x5 = wg.tensor(new Float32Array(10), [2, 5]);
    await expectMisuse(
      'forward [2,5]',
      () => m.forward(x5),
      'first: declared for input [4] per sample, got [5]',
      ShapeError,
    );
    await expectMisuse(
      'predict [2,5]',
      () => m.predict(x5),
      'first: declared for input [4] per sample, got [5]',
      ShapeError,
    );
    expect(m.layers[0]!.inputShape, 'not built for [5]').not.toEqual([5]);
    // Eager (PyTorch-style) layers with inputDim say the same.
    const d = new wg.nn.Dense({ units: 2, inputDim: 4, name: 'eager' });
    await expectMisuse(
      'Dense inputDim 4, x [2,5]',
      () => d.forward(x5),
      'eager: declared for input [4] per sample, got [5]',
      ShapeError,
    );
    await expectMisuse(
      'inputDim and inputShape',
      () => new wg.nn.Dense({ units: 2, inputDim: 4, inputShape: [4] }),
      'inputShape and inputDim both given',
    );
    // Without a declared shape a model still builds on first use, then holds to that shape.
    const lazy = wg.sequential([wg.layers.dense({ units: 3, name: 'lazy' })]);
    const y = wg.tidy(() => lazy.forward(x5));
    expect(y.shape).toEqual([2, 3]);
    const x4 = wg.tensor(new Float32Array(8), [2, 4]);
    await expectMisuse(
      'lazy then [2,4]',
      () => lazy.forward(x4),
      'lazy: built for input [5] per sample, got [4]',
      ShapeError,
    );
    // Not a tensor, or no batch axis.
    await expectMisuse('forward(5)', () => m.layers[0]!.forward(5 as never), 'first: input must be a Tensor, got 5');
    const s = wg.scalar(1);
    await expectMisuse(
      'forward(scalar)',
      () => m.layers[0]!.forward(s),
      'first: input [] has no batch axis',
      ShapeError,
    );
    // The declared shape works.
    const ok = wg.tidy(() => m.forward(x4));
    expect(ok.shape).toEqual([2, 2]);
    for (const t of [x5, x4, y, s, ok]) t.dispose();
    for (const mod of [m, lazy, d]) mod.dispose();
  });

  it('a layer of 10^12 weights is refused before anything is allocated, and the engine goes on', async () => {
    const live = wg.memory(b);
    const t0 = performance.now();
    const m = wg.sequential([wg.layers.dense({ units: 1e6, inputShape: [1e6] })]);
    await expectMisuse(
      'parameters()',
      () => m.parameters(),
      /kernel \[1000000,1000000\], bias \[1000000\] hold 1000001000000, over the limit .*maxParams/,
      LimitError,
    );
    await expectMisuse('summary()', () => m.summary(() => {}), 'maxParams', LimitError);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(wg.memory(b).liveTensors).toBe(live.liveTensors);
    expect(wg.memory(b).liveBytes).toBe(live.liveBytes);
    const good = model();
    await stillWorks(good, await good.save());
    good.dispose();
  });
});
