// Guards of fit, evaluate and predict: data is checked where it enters (rows, NaN/Inf, labels against the model's
// classes), every option is checked with a message naming it, the weights are checked on the GPU after every step
// and read with the loss (a diverged run stops at the step it diverged, and never overwrites the last good
// checkpoint), and a model runs one fit, evaluate or predict at a time. Run once per backend.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { ArgumentError, BusyError, NonFiniteError } from '../src/errors.js';
import {
  layers,
  sequential,
  setSeed,
  type BatchNormalization,
  type FitOptions,
  type HostTensor,
  type Sequential,
} from '../src/nn/index.js';
import { sgd, type Schedule } from '../src/optim/index.js';
import { Rng } from '../src/rng.js';
import { setDefaultBackend, tensor } from '../src/tensor.js';
import { cpu, gpuBackend } from './helpers.js';
import '../src/autograd/tape.js';

let gpu: WebGpuBackend;
let dir: string;
beforeAll(async () => {
  gpu = await gpuBackend();
  dir = mkdtempSync(join(tmpdir(), 'wgnn-guards-'));
});
afterAll(() => {
  setDefaultBackend(undefined);
  rmSync(dir, { recursive: true, force: true });
});

const FEATURES = 8;
const CLASSES = 3;

/** n rows of 8 features in [-1, 1) and labels 0..2, seeded. */
function data(n: number, seed = 5): [HostTensor, HostTensor] {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: n * FEATURES }, () => rng.uniform(-1, 1));
  const y = Int32Array.from({ length: n }, () => rng.int(0, CLASSES));
  return [
    { data: x, shape: [n, FEATURES] },
    { data: y, shape: [n] },
  ];
}

/** A seeded 8 -> 16 (relu) -> 3 (softmax) MLP with SGD, compiled for sparse labels. */
function model(lr: number | Schedule = 0.05): { m: Sequential; done: () => void } {
  setSeed(9);
  const m = sequential([
    layers.dense({ units: 16, activation: 'relu', inputShape: [FEATURES] }),
    layers.dense({ units: CLASSES, activation: 'softmax' }),
  ]);
  const opt = sgd({ lr });
  m.compile({ optimizer: opt, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return {
    m,
    done: () => {
      opt.dispose();
      m.dispose();
    },
  };
}

async function weights(m: Sequential): Promise<Buffer[]> {
  return Promise.all(
    m.namedTensors().map(async ([, t]) => Buffer.from(((await t.data()) as Float32Array).slice().buffer)),
  );
}

const quiet: FitOptions = { batchSize: 4, shuffle: false, verbose: 0 };

/** The error `p` rejects with (it must reject). */
async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection; the call succeeded');
}

describe.each(['cpu', 'webgpu'] as const)('training guards [%s]', (name) => {
  const be = (): Backend => (name === 'cpu' ? cpu : gpu);
  beforeAll(() => setDefaultBackend(be()));

  it('a NaN or an Inf in the data is refused where it enters fit, evaluate and predict, naming index, value and row; nothing trains', async () => {
    const { m, done } = model();
    const before = await weights(m);
    const [x, y] = data(20);
    const poisoned = (at: number, v: number): HostTensor => {
      const d = Float32Array.from(x.data);
      d[at] = v;
      return { data: d, shape: x.shape };
    };
    let e = await failure(m.fit(poisoned(43, NaN), y, quiet));
    expect(e).toBeInstanceOf(NonFiniteError);
    expect(e.message).toBe(
      'fit: x[43] is NaN (row 5 of [20,8]); expected finite values (or checkFinite: false to skip this check)',
    );
    e = await failure(m.fit(x, y, { ...quiet, validationData: [poisoned(159, -Infinity), y] }));
    expect(e).toBeInstanceOf(NonFiniteError);
    expect(e.message).toMatch(/^fit: validationData x\[159\] is -Infinity \(row 19 of \[20,8\]\)/);
    e = await failure(m.evaluate(poisoned(0, Infinity), y));
    expect(e.message).toMatch(/^evaluate: x\[0\] is Infinity \(row 0 of \[20,8\]\)/);
    e = await failure(m.predict(poisoned(9, NaN)));
    expect(e).toBeInstanceOf(NonFiniteError);
    expect(e.message).toMatch(/^predict: x\[9\] is NaN \(row 1 of \[20,8\]\)/);
    // Float targets are checked too (one-hot rows for a categorical cross-entropy).
    const dense = Float32Array.from({ length: 20 * CLASSES }, (_, i) =>
      i % CLASSES === (y.data[Math.floor(i / CLASSES)] ?? 0) ? 1 : 0,
    );
    dense[7] = NaN;
    m.compile({ optimizer: sgd(0.05), loss: 'categoricalCrossentropy' });
    e = await failure(m.fit(x, { data: dense, shape: [20, CLASSES] }, quiet));
    expect(e).toBeInstanceOf(NonFiniteError);
    expect(e.message).toMatch(/^fit: y\[7\] is NaN \(row 2 of \[20,3\]\)/);
    const after = await weights(m);
    after.forEach((w, i) => expect(w.equals(before[i]!), `tensor ${i} changed`).toBe(true));
    done();
  });

  it('with checkFinite: false a NaN input trains, and the weight check stops fit naming the step it went NaN and the first tensor', async () => {
    const { m, done } = model();
    const [x, y] = data(20);
    const d = Float32Array.from(x.data);
    d[9 * FEATURES + 2] = NaN; // row 9: the third batch of 4
    const e = await failure(m.fit({ data: d, shape: x.shape }, y, { ...quiet, readEvery: 100, checkFinite: false }));
    console.log(`[${name}] ${e.message}`);
    expect(e).toBeInstanceOf(NonFiniteError);
    expect(e.message).toMatch(
      /^fit: the loss is NaN at step 5 of epoch 1; training diverged: the weights became non-finite \(NaN or Inf\) at step 3 of epoch 1, layers\.0\.kernel first/,
    );
    done();
  });

  it("a NaN in a tensor the optimizer does not write (batch norm's moving variance) stops fit naming it", async () => {
    // In training, batch norm normalises with the batch's statistics: the loss and every parameter stay finite, and
    // only the check of the tensors outside the update (an anomaly_check each) sees the NaN the moving average keeps.
    setSeed(9);
    const m = sequential([
      layers.dense({ units: 16, activation: 'relu', inputShape: [FEATURES] }),
      layers.batchNormalization(),
      layers.dense({ units: CLASSES, activation: 'softmax' }),
    ]);
    const opt = sgd(0.05);
    m.compile({ optimizer: opt, loss: 'sparseCategoricalCrossentropy' });
    const bn = m.layers[1] as BatchNormalization;
    bn.build([16]);
    bn.movingVariance.dispose();
    bn.movingVariance = tensor(
      Float32Array.from({ length: 16 }, (_, i) => (i === 7 ? NaN : 1)),
      [16],
    );
    const [x, y] = data(20);
    const e = await failure(m.fit(x, y, { ...quiet, readEvery: 100 }));
    expect(e).toBeInstanceOf(NonFiniteError);
    expect(e.message).toMatch(
      /^fit: training diverged: the weights became non-finite \(NaN or Inf\) at step 1 of epoch 1, layers\.1\.movingVariance first/,
    );
    opt.dispose();
    m.dispose();
  });

  it('weights that go non-finite while the loss is still finite stop fit at that step; the last good checkpoint survives byte for byte', async () => {
    // The learning rate is Inf from the 6th step: its update makes every weight Inf or NaN, but its loss (computed
    // before the update) is finite. A checkpoint every step: the 6th must not be written.
    const { m, done } = model((s) => (s >= 5 ? Infinity : 0.05));
    const [x, y] = data(40);
    const path = join(dir, `diverged-${name}.safetensors`);
    let good: Buffer | undefined;
    let lastBatch = -1;
    const e = await failure(
      m.fit(x, y, {
        ...quiet,
        readEvery: 1000,
        checkpoint: { path, everySteps: 1 },
        callbacks: {
          onBatchEnd: (b) => {
            if (b === 4) good = readFileSync(path); // the checkpoint after the 5th step, the last good state
            lastBatch = b;
          },
        },
      }),
    );
    console.log(`[${name}] ${e.message}`);
    if (name === 'cpu') {
      // NOTE: every CPU step is eager, so the optimizer sees the schedule's Inf before the update (a replayed GPU step
      // runs its recorded update: there the weight check catches it).
      expect(e.message).toMatch(
        /^sgd: the schedule gave learning rate Infinity at step 5; expected a finite number >= 0/,
      );
    } else {
      expect(e).toBeInstanceOf(NonFiniteError);
      expect(e.message).toMatch(
        /^fit: training diverged: the weights became non-finite \(NaN or Inf\) at step 6 of epoch 1, layers\.0\.kernel first/,
      );
    }
    expect(lastBatch).toBe(4); // the 5th batch's callback ran; the 6th step stopped before its checkpoint
    expect(readFileSync(path).equals(good!), 'the checkpoint after step 5 was overwritten').toBe(true);
    done();
  });

  it('the step named is the one that diverged, not the one that read it (readEvery 4, second epoch)', async () => {
    // 10 steps an epoch; Inf from the 13th step (epoch 2, step 3); read at epoch 2, step 4, where the loss is NaN too.
    const { m, done } = model((s) => (s >= 12 ? Infinity : 0.05));
    const [x, y] = data(40);
    const e = await failure(m.fit(x, y, { ...quiet, epochs: 3, readEvery: 4 }));
    if (name === 'cpu') {
      expect(e.message).toMatch(/^sgd: the schedule gave learning rate Infinity at step 12;/); // eager: see above
      done();
      return;
    }
    expect(e).toBeInstanceOf(NonFiniteError);
    expect(e.message).toMatch(
      /^fit: the loss is NaN at step 4 of epoch 2; training diverged: the weights became non-finite \(NaN or Inf\) at step 3 of epoch 2, layers\.0\.kernel first/,
    );
    done();
  });

  it('sparse labels outside the classes are refused naming the label and its index (3 of 3 classes, -1, 10^9, an int32 tensor)', async () => {
    const { m, done } = model();
    const before = await weights(m);
    const [x, y] = data(20);
    const relabel = (at: number, v: number): HostTensor => {
      const d = Int32Array.from(y.data);
      d[at] = v;
      return { data: d, shape: y.shape };
    };
    let e = await failure(m.fit(x, relabel(7, 3), quiet));
    expect(e).toBeInstanceOf(ArgumentError);
    expect(e.message).toBe('fit: label y[7] is 3; the model has 3 classes, so labels must be 0..2');
    e = await failure(m.fit(x, y, { ...quiet, validationData: [x, relabel(0, -1)] }));
    expect(e.message).toBe('fit: validationData label y[0] is -1; the model has 3 classes, so labels must be 0..2');
    e = await failure(m.evaluate(x, relabel(19, 1e9)));
    expect(e).toBeInstanceOf(ArgumentError);
    expect(e.message).toBe('evaluate: label y[19] is 1000000000; the model has 3 classes, so labels must be 0..2');
    const yt = tensor(relabel(3, 3).data, [20], { dtype: 'int32' });
    e = await failure(m.evaluate(x, yt));
    expect(e.message).toMatch(/^evaluate: label y\[3\] is 3;/);
    yt.dispose();
    (await weights(m)).forEach((w, i) => expect(w.equals(before[i]!), `tensor ${i} changed`).toBe(true));
    done();
  });

  it('every fit, evaluate and predict option is checked where it enters, with a message naming it; the model stays usable', async () => {
    const { m, done } = model();
    const [x, y] = data(8);
    const fits: [Record<string, unknown>, string][] = [
      [{ epochs: -1 }, 'fit: epochs is -1; expected an integer >= 0'],
      [{ epochs: NaN }, 'fit: epochs is NaN; expected an integer >= 0'],
      [{ epochs: 1.5 }, 'fit: epochs is 1.5; expected an integer >= 0'],
      [{ batchSize: 0 }, 'fit: batchSize is 0; expected an integer >= 1'],
      [{ batchSize: -1 }, 'fit: batchSize is -1; expected an integer >= 1'],
      [{ batchSize: 1.5 }, 'fit: batchSize is 1.5; expected an integer >= 1'],
      [{ readEvery: 0 }, 'fit: readEvery is 0; expected an integer >= 1'],
      [{ validationSplit: 1 }, 'fit: validationSplit is 1; expected a number > 0 and < 1 (or 0: none)'],
      [{ validationSplit: -0.5 }, 'fit: validationSplit is -0.5; expected a number > 0 and < 1 (or 0: none)'],
      [{ shuffle: 'yes' }, 'fit: shuffle is "yes"; expected true or false'],
      [{ verbose: 2 }, 'fit: verbose is 2; expected one of 0, 1'],
      [{ seed: 0.5 }, 'fit: seed is 0.5; expected an integer'],
      [{ replay: 1 }, 'fit: replay is 1; expected true or false'],
      [{ checkFinite: 'no' }, 'fit: checkFinite is "no"; expected true or false'],
      [{ validationData: [x] }, 'fit: validationData is [an object]; expected a pair [x, y]'],
      [{ augment: 3 }, 'fit: augment is 3; expected a function'],
      [{ callbacks: { onBatchEnd: true } }, 'fit: callbacks.onBatchEnd is true; expected a function'],
      [
        { callbacks: { onEpochStart: () => {} } },
        'fit: unknown option callbacks.onEpochStart; expected one of callbacks.onEpochBegin, callbacks.onEpochEnd, callbacks.onBatchEnd',
      ],
      [
        { checkpoint: { path: join(dir, 'never.safetensors'), everySteps: 0 } },
        'fit: checkpoint.everySteps is 0; expected an integer >= 1',
      ],
      [
        { checkpoint: { path: join(dir, 'never.safetensors'), everySteps: -1 } },
        'fit: checkpoint.everySteps is -1; expected an integer >= 1',
      ],
      [{ checkpoint: { everySteps: 5 } }, 'fit: checkpoint.path is missing; expected a non-empty path'],
      [{ checkpoint: 'ck.safetensors' }, 'fit: checkpoint is "ck.safetensors"; expected an object'],
      [
        { epoch: 3 },
        'fit: unknown option epoch; expected one of epochs, batchSize, shuffle, seed, augment, validationData, validationSplit, callbacks, verbose, replay, readEvery, checkpoint, recover, checkFinite',
      ],
    ];
    for (const [opts, message] of fits) {
      const e = await failure(m.fit(x, y, opts as FitOptions));
      expect(e, JSON.stringify(opts)).toBeInstanceOf(ArgumentError);
      expect(e.message).toBe(message);
    }
    const others: [() => Promise<unknown>, string][] = [
      [() => m.evaluate(x, y, { batchSize: 0 }), 'evaluate: batchSize is 0; expected an integer >= 1'],
      [() => m.evaluate(x, y, { checkFinite: null } as never), 'evaluate: checkFinite is null; expected true or false'],
      [() => m.predict(x, { batchSize: 1.5 }), 'predict: batchSize is 1.5; expected an integer >= 1'],
      [
        () => m.predict(x, { batchsize: 4 } as never),
        'predict: unknown option batchsize; expected one of batchSize, checkFinite',
      ],
      [
        () => m.predict([1, 2, 3] as never),
        'predict: x is [1,2,3]; expected a Tensor or { data: Float32Array | Int32Array, shape: number[] }',
      ],
      [
        () => m.evaluate(x, { data: [0, 1], shape: [2] } as never),
        'evaluate: y is an object; expected a Tensor or { data: Float32Array | Int32Array, shape: number[] }',
      ],
    ];
    for (const [call, message] of others) {
      const e = await failure(call());
      expect(e).toBeInstanceOf(ArgumentError);
      expect(e.message).toBe(message);
    }
    // epochs 0 trains nothing (as Keras); a plain fit afterwards runs (nothing was left locked or half-done).
    expect((await m.fit(x, y, { ...quiet, epochs: 0 })).epoch).toEqual([]);
    const h = await m.fit(x, y, quiet);
    expect(h.epoch).toEqual([0]);
    expect(Number.isFinite(h.history.loss![0])).toBe(true);
    done();
  });

  it('data without rows is refused naming the split: training data, validation data, a validation split, evaluate, predict', async () => {
    const { m, done } = model();
    const [x, y] = data(8);
    const [x0, y0] = [
      { data: new Float32Array(0), shape: [0, FEATURES] },
      { data: new Int32Array(0), shape: [0] },
    ];
    const cases: [() => Promise<unknown>, string][] = [
      [() => m.fit(x0, y0, quiet), 'fit: the data has no rows (x [0,8]); expected at least one'],
      [
        () => m.fit(x, y, { ...quiet, validationData: [x0, y0] }),
        'fit: validationData has no rows (x [0,8]); expected at least one',
      ],
      [
        () =>
          m.fit(
            { data: x.data.subarray(0, FEATURES), shape: [1, FEATURES] },
            { data: y.data.subarray(0, 1), shape: [1] },
            { ...quiet, validationSplit: 0.5 },
          ),
        'fit: validationSplit(0.5) of 1 rows leaves 0 for training and 1 for validation; expected at least one row in each',
      ],
      [() => m.evaluate(x0, y0), 'evaluate: the data has no rows (x [0,8]); expected at least one'],
      [() => m.predict(x0), 'predict: the data has no rows (x [0,8]); expected at least one'],
    ];
    for (const [call, message] of cases) {
      const e = await failure(call());
      expect(e).toBeInstanceOf(ArgumentError);
      expect(e.message).toBe(message);
    }
    done();
  });

  it('a second fit, evaluate or predict while one runs is a BusyError naming the running call; the first ends as if alone', async () => {
    const [x, y] = data(24);
    const alone = model();
    await alone.m.fit(x, y, { ...quiet, epochs: 2 });
    const want = await weights(alone.m);
    alone.done();

    const { m, done } = model();
    const first = m.fit(x, y, { ...quiet, epochs: 2 });
    const refused = await Promise.all([
      failure(m.fit(x, y, { ...quiet, epochs: 2 })),
      failure(m.evaluate(x, y)),
      failure(m.predict(x)),
    ]);
    for (const e of refused) expect(e).toBeInstanceOf(BusyError);
    expect(refused.map((e) => e.message)).toEqual([
      'fit: this model is already running fit(); await it before calling fit() (one fit, evaluate or predict at a time per model)',
      'evaluate: this model is already running fit(); await it before calling evaluate() (one fit, evaluate or predict at a time per model)',
      'predict: this model is already running fit(); await it before calling predict() (one fit, evaluate or predict at a time per model)',
    ]);
    await first;
    (await weights(m)).forEach((w, i) =>
      expect(w.equals(want[i]!), `tensor ${i} differs from the run alone`).toBe(true),
    );

    const evaluating = m.evaluate(x, y);
    expect((await failure(m.fit(x, y, quiet))).message).toMatch(/^fit: this model is already running evaluate\(\)/);
    expect(Number.isFinite((await evaluating).loss)).toBe(true);

    // A failed call releases the model; evaluate and predict inside fit's callbacks run (fit waits for them), a fit there does not.
    await failure(m.fit(x, { data: Int32Array.from(y.data, () => 7), shape: y.shape }, quiet));
    const inside: number[] = [];
    let nested: Error | undefined;
    await m.fit(x, y, {
      ...quiet,
      callbacks: {
        onEpochEnd: async () => {
          inside.push((await m.evaluate(x, y)).loss!);
          const p = await m.predict(x);
          inside.push(p.shape[0]!);
          p.dispose();
          nested = await failure(m.fit(x, y, quiet));
        },
      },
    });
    expect(Number.isFinite(inside[0])).toBe(true);
    expect(inside[1]).toBe(24);
    expect(nested).toBeInstanceOf(BusyError);
    expect(nested!.message).toMatch(/^fit: this model is already running fit\(\)/);
    expect(m.training).toBe(true); // back in training mode after the evaluate in the callback
    done();
  });
});
