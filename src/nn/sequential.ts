// Sequential: a stack of layers with Keras's compile / fit / evaluate / predict / summary, on the same tensors and
// autograd as PyTorch-style modules. Training data stays on the host; each batch is uploaded as it is used.
import type { TypedArray } from '../backend/backend.js';
import {
  ArgumentError,
  BusyError,
  DTypeError,
  DeviceLostError,
  NonFiniteError,
  ParseError,
  ShapeError,
  WgnnError,
  fmtShape,
} from '../errors.js';
import { readCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import { reinit } from '../init.js';
import type { Backend } from '../backend/backend.js';
import type { Optimizer } from '../optim/optimizer.js';
import { Dataset } from '../data/dataset.js';
import type { Augment } from '../data/augment.js';
import { sameShape, sizeOf } from '../shape.js';
import { Tensor, keep, tensor, tidy } from '../tensor.js';
import { loadTensors, parseSafetensors, saveTensors } from '../io/safetensors.js';
import { noGrad } from '../autograd/tape.js';
import type { CompiledStep } from '../autograd/step.js';
import type { Layer } from './layers.js';
import { layerFromConfig } from './registry.js';
import { getLoss, type Loss, type LossName } from './losses.js';
import { Module } from './module.js';
import {
  anyInteger,
  boolean,
  checkOptions,
  fraction,
  func,
  integer,
  object,
  oneOf,
  path,
  show,
  tuple,
  type Rules,
} from '../options.js';
import { planResume, trainingState, type Cursor } from './resume.js';
import { StepMeter, correctRows, forwardForLoss, trainStep, type Logs } from './train.js';

export type { Logs } from './train.js';

/** Node file access (platform/fs.ts), loaded only when a path is given, so browser bundles leave it out. */
const files = () => import('../platform/fs.js');

/** Host data: a typed array and its shape (batch first). */
export interface HostTensor {
  data: TypedArray;
  shape: readonly number[];
}
/** What `fit`, `evaluate` and `predict` take: a tensor, or host data with its shape. */
export type Data = Tensor | HostTensor;

/** Options of `compile`. */
export interface CompileOptions {
  optimizer: Optimizer;
  loss: LossName | Loss;
  metrics?: 'accuracy'[];
}

/** Hooks `fit` calls as it trains (awaited when they return a promise). */
export interface Callbacks {
  /** Before each epoch (from 0). */
  onEpochBegin?(epoch: number): void | Promise<void>;
  /** After each epoch, with its loss, metrics and validation figures. */
  onEpochEnd?(epoch: number, logs: Logs): void | Promise<void>;
  /** After each batch with its loss (read without stalling the GPU: the previous batches' losses). */
  onBatchEnd?(batch: number, logs: Logs): void | Promise<void>;
}

/** Options of `fit`. */
export interface FitOptions {
  epochs?: number;
  batchSize?: number;
  shuffle?: boolean;
  /** Seed of the per-epoch shuffles and augmentation (each epoch's order depends only on seed and epoch). */
  seed?: number;
  /**
   * Data augmentation (e.g. `randomShift({ height: 2, width: 2 })`) applied to each training batch's inputs on the
   * host before upload, with an Rng that depends only on (seed, epoch, batch), so a resumed run sees the same
   * images. Never applied to validation data, `evaluate` or `predict`.
   */
  augment?: Augment;
  validationData?: [Data, Data];
  /** Fraction of the data (the last rows, before shuffling, as Keras) held out for validation. */
  validationSplit?: number;
  callbacks?: Callbacks;
  /** 0: silent; 1: a line per epoch (default). */
  verbose?: 0 | 1;
  /** Capture the training step once per batch shape and replay it (default true); false runs every op eagerly. */
  replay?: boolean;
  /** Read the accumulated loss and metrics every this many steps (default 16); callbacks see them then. */
  readEvery?: number;
  /**
   * Write a checkpoint every `everySteps` steps (weights, optimizer state, RNGs, data cursor). With `resume`, a fit
   * starts from the checkpoint at `path` if there is one. If the GPU device is lost, fit has `reinit` (init.ts) make a
   * new device the default (opened by `recover`, by default one like the last `init()`'s), reloads the last
   * checkpoint and goes on. The loss and the weight check are read before each write: a state whose loss or weights
   * went NaN or Inf is never written (fit throws NonFiniteError), so the last good checkpoint stays.
   */
  checkpoint?: { path: string; everySteps: number; resume?: boolean };
  /** Opens the device to continue on after a loss (with `checkpoint`); `reinit` makes it the default. */
  recover?: () => Promise<Backend>;
  /**
   * Check x (and float targets) for NaN and Inf before training, and throw NonFiniteError naming the first (default
   * true: one pass over the host data). Labels are always checked against the model's classes. The weights are
   * checked on the GPU after every step either way.
   */
  checkFinite?: boolean;
}

/** Options of `evaluate` and `predict`. */
export interface EvaluateOptions {
  batchSize?: number;
  /** Check x (and float targets) for NaN and Inf first, as `fit` does (default true). */
  checkFinite?: boolean;
}

const CALLBACK_RULES: Rules<Callbacks> = { onEpochBegin: func, onEpochEnd: func, onBatchEnd: func };
const CHECKPOINT_RULES: Rules<NonNullable<FitOptions['checkpoint']>> = {
  path,
  everySteps: integer(1),
  resume: boolean,
};
const FIT_RULES: Rules<FitOptions> = {
  epochs: integer(0),
  batchSize: integer(1),
  shuffle: boolean,
  seed: anyInteger,
  augment: func,
  validationData: tuple(2, 'a pair [x, y]'),
  validationSplit: fraction,
  callbacks: object(CALLBACK_RULES),
  verbose: oneOf(0, 1),
  replay: boolean,
  readEvery: integer(1),
  checkpoint: object(CHECKPOINT_RULES, ['path', 'everySteps']),
  recover: func,
  checkFinite: boolean,
};
const EVALUATE_RULES: Rules<EvaluateOptions> = { batchSize: integer(1), checkFinite: boolean };

/** What `fit` returns: each epoch's logs, as Keras's History. */
export interface History {
  epoch: number[];
  history: Record<string, number[]>;
}

/** Host data: a tensor read back once, or `{ data, shape }` checked for its kinds (the Dataset checks the sizes). */
async function hostData(op: string, what: string, d: unknown): Promise<HostTensor> {
  if (d instanceof Tensor) return { data: await d.data(), shape: d.shape };
  const h = d as Partial<HostTensor> | null;
  const typed = h?.data instanceof Float32Array || h?.data instanceof Float64Array || h?.data instanceof Int32Array;
  if (!typed || !Array.isArray(h.shape) || !h.shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new ArgumentError(
      `${op}: ${what} is ${show(d)}; expected a Tensor or { data: Float32Array | Int32Array, shape: number[] }`,
    );
  }
  return h as HostTensor;
}

/**
 * The data as a host Dataset (a tensor is read back once), refused when it has no rows, with a NaN or an Inf
 * (unless `checkFinite` is false) or, for a softmax cross-entropy, with an int32 label outside 0..classes-1.
 */
async function toDataset(
  op: string,
  x: unknown,
  y: unknown,
  checks: {
    what?: string;
    checkFinite?: boolean;
    classes?: (xShape: readonly number[]) => number | undefined;
    /** The first layer's id count: int32 x must hold ids 0..ids-1 (without it, int32 x is refused). */
    ids?: { layer: string; count: number };
  },
): Promise<Dataset<Float32Array | Int32Array>> {
  const of = checks.what ? `${checks.what} ` : '';
  const [xs, ys] = [await hostData(op, `${of}x`, x), await hostData(op, `${of}y`, y)];
  if (xs.shape[0] !== ys.shape[0])
    throw new ShapeError(
      `${op}: ${of}x ${fmtShape(xs.shape)} and y ${fmtShape(ys.shape)} have different numbers of samples`,
    );
  const f32 = xs.data instanceof Float64Array ? Float32Array.from(xs.data) : xs.data;
  const yd = ys.data instanceof Float64Array ? Float32Array.from(ys.data) : ys.data;
  const data = new Dataset(f32, xs.shape, yd, ys.shape);
  if (data.length === 0)
    throw new ArgumentError(
      `${op}: ${checks.what ?? 'the data'} has no rows (x ${fmtShape(xs.shape)}); expected at least one`,
    );
  const bad = checks.checkFinite === false ? undefined : data.firstNonFinite();
  if (bad) {
    const shape = bad.array === 'x' ? xs.shape : ys.shape;
    throw new NonFiniteError(
      `${op}: ${of}${bad.array}[${bad.index}] is ${bad.value} (row ${bad.row} of ${fmtShape(shape)}); expected finite values (or checkFinite: false to skip this check)`,
    );
  }
  const ids = checks.ids;
  if (!ids && data.x instanceof Int32Array)
    throw new DTypeError(
      `${op}: ${of}x ${fmtShape(xs.shape)} is int32; the model's first layer takes float32 inputs (int32 token ids need an embedding first)`,
    );
  if (ids && data.x instanceof Int32Array) {
    const at = data.x.findIndex((v) => v < 0 || v >= ids.count);
    if (at >= 0)
      throw new ArgumentError(
        `${op}: ${of}x[${at}] is ${data.x[at]}; ${ids.layer} takes token ids 0..${ids.count - 1}`,
      );
  }
  const classes = checks.classes?.(data.xShape);
  const label = classes === undefined ? undefined : data.firstLabelOutside(classes);
  if (label) {
    throw new ArgumentError(
      `${op}: ${of}label y[${label.index}] is ${label.value}; the model has ${classes} classes, so labels must be 0..${classes! - 1}`,
    );
  }
  return data;
}

const upload = (data: Float32Array | Int32Array, shape: readonly number[]): Tensor =>
  tensor(data, shape, { dtype: data instanceof Int32Array ? 'int32' : 'float32' });

/** A stack of layers run in order, with Keras's training API: `compile`, `fit`, `evaluate`, `predict`, `save`/`load`, checkpoints, `summary`. */
export class Sequential extends Module {
  layers: Layer[];
  private compiled: { optimizer: Optimizer; loss: Loss; metrics: 'accuracy'[] } | undefined;
  /** Set (e.g. from a callback) to end `fit` after the current step, as Keras's `model.stopTraining`. */
  stopTraining = false;
  /** The last fit's compiled step (its captures hold GPU buffers until the next fit or dispose). */
  private lastStep: CompiledStep | undefined;
  /** The public call running on this model (fit, evaluate or predict), if any. */
  private running: string | undefined;
  /** fit is waiting for one of its callbacks (evaluate and predict may run inside it). */
  private inCallback = false;
  /** evaluate and predict calls running inside a fit callback. */
  private nested = 0;

  constructor(layers: Layer[] = []) {
    super();
    this.layers = [...layers];
    for (const l of this.layers) l.link(this.layers);
  }

  /** Appends a layer (Keras's `model.add`). */
  add(layer: Layer): this {
    this.layers.push(layer);
    layer.link(this.layers);
    return this;
  }

  /** The layers applied in order (a final softmax included). */
  forward(x: Tensor): Tensor {
    return this.layers.reduce((h, l) => l.forward(h), x);
  }

  /** With the first layer's input shape known, builds every layer, so the weights exist before any data flows. */
  protected override prepare(): void {
    let shape = this.layers[0]?.knownInputShape;
    if (!shape) return;
    for (const l of this.layers) {
      l.build(shape);
      shape = l.outputShape(shape);
    }
  }

  /** Sets the optimizer, the loss and the metrics `fit` and `evaluate` use. */
  compile(opts: CompileOptions): void {
    this.compiled = { optimizer: opts.optimizer, loss: getLoss(opts.loss), metrics: opts.metrics ?? [] };
  }

  private need(op: string) {
    if (!this.compiled) throw new WgnnError(`${op}: call compile({ optimizer, loss }) first`);
    return this.compiled;
  }

  /**
   * Trains on (x, y) for `opts.epochs` epochs. Refuses, before any step, an option outside what it accepts, data
   * without rows, a NaN or an Inf in the data (unless `checkFinite: false`) and a label outside the model's classes;
   * stops with NonFiniteError as soon as the loss or a weight goes NaN or Inf (read with the loss, every `readEvery`
   * steps and before each checkpoint, so a checkpoint is never written from such a state).
   */
  async fit(x: Data, y: Data, opts: FitOptions = {}): Promise<History> {
    return this.exclusive('fit', () => this.runFit(x, y, opts));
  }

  private async runFit(x: Data, y: Data, opts: FitOptions): Promise<History> {
    checkOptions('fit', opts, FIT_RULES);
    const { optimizer, loss, metrics } = this.need('fit');
    const checks = { checkFinite: opts.checkFinite, classes: this.labelClasses(loss), ids: this.ids() };
    let train = await toDataset('fit', x, y, checks);
    let val =
      opts.validationData && (await toDataset('fit', ...opts.validationData, { ...checks, what: 'validationData' }));
    if (!val && opts.validationSplit) {
      try {
        ({ train, validation: val } = train.validationSplit(opts.validationSplit));
      } catch (e) {
        throw e instanceof ArgumentError
          ? new ArgumentError(`fit: ${e.message}; expected at least one row in each`)
          : e;
      }
    }
    const epochs = opts.epochs ?? 1;
    const batchSize = opts.batchSize ?? 32;
    const readEvery = opts.readEvery ?? 16;
    const seed = opts.seed ?? 0;
    const history: History = { epoch: [], history: {} };
    const ck = opts.checkpoint;
    // Where training stands: the next (epoch, batch) to run; a resumed or recovered run continues from a checkpoint.
    let cursor = { epoch: 0, batch: 0 };
    if (ck) (await files()).checkWritable(ck.path); // before training, not at the first checkpoint; clears stale temp files
    if (ck?.resume && (await (await files()).fileExists(ck.path)))
      cursor = await this.loadCheckpoint(ck.path, optimizer, { inputShape: train.xShape.slice(1) });
    let step = this.newStep(optimizer, loss, metrics, opts.replay ?? true);
    let epoch = cursor.epoch;
    while (epoch < epochs) {
      this.train();
      await this.callback(() => opts.callbacks?.onEpochBegin?.(epoch));
      const t0 = performance.now();
      const [skipped, e1] = [cursor.batch, epoch + 1];
      const meter = new StepMeter(step, { op: 'fit', where: (n) => `step ${skipped + n} of epoch ${e1}` });
      let batch = 0;
      try {
        for (const b of train.batches(batchSize, {
          shuffle: opts.shuffle ?? true,
          seed,
          epoch,
          augment: opts.augment,
        })) {
          if (batch < cursor.batch) {
            batch++; // already trained before the checkpoint this run resumed from
            continue;
          }
          // A new batch shape: its pipelines compile at once, asynchronously, before the step runs.
          await step.prepare({ data: b.x, shape: b.xShape }, { data: b.y, shape: b.yShape });
          step.run({ data: b.x, shape: b.xShape }, { data: b.y, shape: b.yShape });
          meter.ran(b.xShape[0]!);
          batch++;
          const save = ck !== undefined && (epoch * train.numBatches(batchSize) + batch) % ck.everySteps === 0;
          // Losses, metrics and the weight check stay on the GPU; reading them every few steps keeps the GPU from
          // waiting on JS. A read throws when the loss or a weight went NaN or Inf, so it comes first before a
          // checkpoint: a diverged state never replaces the last good checkpoint.
          if (save || batch % readEvery === 0) await meter.read();
          if (ck && save) await this.saveCheckpoint(ck.path, optimizer, { epoch, batch });
          // After every batch (an app yields to its event loop here); the logs are those of the last read.
          await this.callback(() => opts.callbacks?.onBatchEnd?.(batch - 1, meter.logs()));
          if (this.stopTraining) break;
        }
        await meter.read();
      } catch (e) {
        if (!(e instanceof DeviceLostError) || !ck) throw e;
        // The GPU went away: a new device, the last checkpoint, and on from there (the lost steps run again).
        console.warn(`fit: ${e.message}; recovering from the checkpoint ${ck.path}`);
        await reinit(opts.recover);
        step.dispose();
        cursor = await this.loadCheckpoint(ck.path, optimizer);
        step = this.newStep(optimizer, loss, metrics, opts.replay ?? true);
        epoch = cursor.epoch;
        continue;
      }
      cursor = { epoch: epoch + 1, batch: 0 };
      if (this.stopTraining) {
        this.stopTraining = false;
        break;
      }
      if (meter.rows === 0) {
        epoch++; // resumed at the end of this epoch: nothing ran in it here
        continue;
      }
      const logs = meter.logs();
      if (val) {
        const v = await this.evaluateDataset(val, batchSize);
        for (const [k, value] of Object.entries(v)) logs[`val_${k}`] = value;
      }
      logs.seconds = (performance.now() - t0) / 1000;
      history.epoch.push(epoch);
      for (const [k, v] of Object.entries(logs)) (history.history[k] ??= []).push(v);
      if (opts.verbose !== 0) {
        console.log(
          `epoch ${epoch + 1}/${epochs} ${Object.entries(logs)
            .map(([k, v]) => `${k}=${v.toFixed(4)}`)
            .join(' ')}`,
        );
      }
      await this.callback(() => opts.callbacks?.onEpochEnd?.(epoch, logs));
      epoch++;
    }
    return history;
  }

  /**
   * Runs `body` as the model's one public call at a time: a second fit, evaluate or predict while one runs is a
   * BusyError (steps of two fits would interleave, and evaluate switches dropout and batch norm to eval mode). The
   * exception: evaluate and predict from inside fit's callbacks, which run while fit waits for them (as in Keras).
   */
  private async exclusive<T>(op: string, body: () => Promise<T>): Promise<T> {
    const nested = this.running !== undefined && this.inCallback && op !== 'fit';
    if (this.running !== undefined && !nested) {
      throw new BusyError(
        `${op}: this model is already running ${this.running}(); await it before calling ${op}() (one fit, evaluate or predict at a time per model)`,
      );
    }
    if (nested) this.nested++;
    else this.running = op;
    try {
      return await body();
    } finally {
      if (nested) this.nested--;
      else this.running = undefined;
    }
  }

  /** Runs one of fit's callbacks, inside which evaluate and predict may run; then back to training mode. */
  private async callback(fn: () => void | Promise<void> | undefined): Promise<void> {
    this.inCallback = true;
    try {
      await fn();
    } finally {
      this.inCallback = false;
    }
    if (this.nested > 0) {
      throw new BusyError(
        'fit: an evaluate() or predict() started in a callback was still running when the callback returned; await it inside the callback',
      );
    }
    if (!this.training) this.train(); // an evaluate or predict in the callback left eval mode on
  }

  /**
   * For a softmax cross-entropy on int32 labels: the number of classes of the model's output for inputs x [N, ...]
   * (its last dim), which the labels must stay below. Undefined for other losses.
   */
  private labelClasses(loss: Loss): ((xShape: readonly number[]) => number) | undefined {
    if (loss.name !== 'sparseCategoricalCrossentropy' && loss.name !== 'categoricalCrossentropy') return undefined;
    return (xShape) => {
      const out = this.layers.reduce((shape, l) => l.outputShape(shape), xShape.slice(1));
      return out[out.length - 1] ?? 1;
    };
  }

  /** The first layer's token ids, when it takes ids (an embedding): int32 x is checked against them. */
  private ids(): { layer: string; count: number } | undefined {
    const first = this.layers[0];
    const count = first?.idCount;
    return first && count !== undefined ? { layer: first.name, count } : undefined;
  }

  /** The training step (train.ts), replacing the last fit's: its captures hold GPU buffers. */
  private newStep(optimizer: Optimizer, loss: Loss, metrics: 'accuracy'[], replay: boolean): CompiledStep {
    const step = trainStep(this, { optimizer, loss, metrics, replay });
    this.lastStep?.dispose();
    this.lastStep = step;
    return step;
  }

  /**
   * Writes a checkpoint: weights and buffers, the optimizer's state, its step counts, every layer's kind, config and
   * RNG state, and the data cursor (the next epoch and batch), atomically, with a checksum of the whole file. A NaN
   * or Inf in any tensor is a WgnnError before anything is written: the last good checkpoint at `path` survives.
   */
  async saveCheckpoint(path: string | undefined, optimizer: Optimizer, cursor: Cursor): Promise<Uint8Array> {
    const params = this.parameters();
    const st = optimizer.state(params);
    try {
      const tensors: Record<string, Tensor> = Object.fromEntries(
        this.namedTensors().map(([n, t]) => [`model.${n}`, t]),
      );
      st.params.forEach((ps, i) => {
        for (const [slot, t] of Object.entries(ps?.slots ?? {})) tensors[`optim.${i}.${slot}`] = t;
      });
      return await saveCheckpoint(path, tensors, trainingState(this.layers, optimizer, st, cursor));
    } finally {
      for (const ps of st.params) for (const t of Object.values(ps?.slots ?? {})) t.dispose();
    }
  }

  /**
   * Resumes from a checkpoint written by `saveCheckpoint` (a path in Node, or its bytes): restores the weights and
   * buffers, `optimizer`'s state and every layer's RNG, and returns the data cursor. Everything is verified before
   * anything is assigned: the checksum of the whole file, the state's schema, and the checkpoint against this model
   * and optimizer (layer kinds and configs, tensor names, shapes and finite values, optimizer kind and slots). The
   * first mismatch is a ParseError, and the model, the optimizer and the file are left as they were. A model not
   * built yet is built first, for `inputShape` (per sample) when its first layer declares none.
   */
  async loadCheckpoint(
    source: string | Uint8Array,
    optimizer: Optimizer,
    opts: { inputShape?: readonly number[] } = {},
  ): Promise<Cursor> {
    const what = typeof source === 'string' ? `loadCheckpoint ${source}` : 'loadCheckpoint';
    const ck = await readCheckpoint(source);
    if (!this.layers[0]?.knownInputShape && opts.inputShape) {
      let shape = [...opts.inputShape];
      for (const l of this.layers) {
        l.build(shape);
        shape = l.outputShape(shape);
      }
    }
    const plan = planResume(what, ck, this.layers, this.namedTensors(), this.parameters(), optimizer);
    // Verified: from here on nothing is refused for the file's sake.
    const fresh: Record<string, Tensor> = {};
    try {
      for (const [name, t] of plan.model) fresh[name] = tensor(t.data, t.shape, { dtype: t.dtype });
    } catch (e) {
      for (const t of Object.values(fresh)) t.dispose();
      throw e;
    }
    this.assign(fresh);
    const params = this.parameters();
    const slotTensors: Tensor[] = [];
    try {
      const state = {
        stepCount: plan.optimizer.stepCount,
        params: plan.optimizer.params.map((ps, i) => {
          if (!ps) return null;
          const slots: Record<string, Tensor> = {};
          for (const [k, t] of Object.entries(ps.slots))
            slotTensors.push((slots[k] = tensor(t.data, t.shape, { backend: params[i]!.backend })));
          return { step: ps.step, slots };
        }),
      };
      optimizer.dispose();
      await optimizer.loadState(params, state);
    } finally {
      for (const t of slotTensors) t.dispose();
    }
    this.layers.forEach((l, i) => (l.rng.state = plan.rngs[i]!));
    return plan.cursor;
  }

  /** Mean loss (and metrics) over the data, in eval mode; the data is checked as `fit` checks it. */
  async evaluate(x: Data, y: Data, opts: EvaluateOptions = {}): Promise<Logs> {
    return this.exclusive('evaluate', async () => {
      checkOptions('evaluate', opts, EVALUATE_RULES);
      const { loss } = this.need('evaluate');
      const data = await toDataset('evaluate', x, y, {
        checkFinite: opts.checkFinite,
        classes: this.labelClasses(loss),
        ids: this.ids(),
      });
      return this.evaluateDataset(data, opts.batchSize ?? 32);
    });
  }

  private async evaluateDataset(data: Dataset<Float32Array | Int32Array>, batchSize: number): Promise<Logs> {
    const { loss, metrics } = this.need('evaluate');
    this.eval();
    let lossSum = 0;
    let correct = 0;
    for (const b of data.batches(batchSize, { shuffle: false })) {
      const xb = upload(b.x, b.xShape);
      const yb = upload(b.y, b.yShape);
      const { l, hits } = noGrad(() =>
        tidy(() => {
          const r = forwardForLoss(this, xb, loss);
          return { l: loss.compute(r.out, yb, r.fromLogits), hits: correctRows(r.out, yb, r.fromLogits) };
        }),
      );
      const [lv, hv] = await Promise.all([l.data(), metrics.includes('accuracy') ? hits.data() : undefined]);
      lossSum += lv[0]! * b.xShape[0]!;
      if (hv) correct += hv[0]!;
      for (const t of [xb, yb, l, hits]) t.dispose();
    }
    const logs: Logs = { loss: lossSum / data.length };
    if (metrics.includes('accuracy')) logs.acc = correct / data.length;
    return logs;
  }

  /** The model's output for x, batch by batch, in eval mode; x is checked for rows and NaN/Inf as `fit` checks it. */
  async predict(x: Data, opts: EvaluateOptions = {}): Promise<Tensor> {
    return this.exclusive('predict', () => this.runPredict(x, opts));
  }

  private async runPredict(x: Data, opts: EvaluateOptions): Promise<Tensor> {
    checkOptions('predict', opts, EVALUATE_RULES);
    const xs = await hostData('predict', 'x', x);
    const n = xs.shape[0] ?? 0;
    const data = await toDataset(
      'predict',
      xs,
      { data: new Int32Array(n), shape: [n] },
      { checkFinite: opts.checkFinite, ids: this.ids() },
    );
    this.eval();
    const parts: TypedArray[] = [];
    let shape: readonly number[] = [n];
    for (const b of data.batches(opts.batchSize ?? 32, { shuffle: false })) {
      const xb = upload(b.x, b.xShape);
      const y = noGrad(() => tidy(() => this.forward(xb)));
      parts.push(await y.data());
      shape = y.shape;
      xb.dispose();
      y.dispose();
    }
    const out = new Float32Array(n * sizeOf(shape.slice(1)));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return tensor(out, [n, ...shape.slice(1)]);
  }

  /**
   * Writes the weights (and buffers such as batch-norm statistics) as safetensors, with the layer stack in the
   * metadata so `Sequential.load` can rebuild the model. Returns the bytes; in Node also writes `path` atomically.
   */
  async save(path?: string): Promise<Uint8Array> {
    const first = this.layers[0]?.knownInputShape;
    const spec = this.layers.map((l) => ({ class: l.kind, name: l.name, config: l.config() }));
    const meta = {
      format: 'wgnn.sequential',
      layers: JSON.stringify(spec),
      inputShape: JSON.stringify(first ?? null),
      ...this.metadata(),
    };
    return saveTensors(path, Object.fromEntries(this.namedTensors()), meta);
  }

  /** More metadata for `save` (a subclass's own: a GPT's config and tokenizer). */
  protected metadata(): Record<string, string> {
    return {};
  }

  /** Reads a subclass's own metadata after `load` made the model (a ParseError when it is bad). */
  protected restore(_metadata: Readonly<Record<string, string>>): void {}

  /**
   * Rebuilds a model saved by `save()` (a path in Node, or the bytes) with its weights. The file is checked before
   * anything is allocated: the metadata's JSON and types, every layer's config (as its constructor checks options),
   * the layer limits (`setLayerLimits`), and each weight's name, dtype and shape against the model it describes.
   * Any fault is a ParseError naming the layer and the field.
   */
  static async load<T extends Sequential>(this: new (layers: Layer[]) => T, source: string | Uint8Array): Promise<T> {
    const who = `${this.name}.load`;
    let bytes: Uint8Array;
    if (source instanceof Uint8Array) bytes = source;
    else if (typeof source === 'string') bytes = await (await files()).readFile(source, who);
    else throw new WgnnError(`${who}: source must be a path or a Uint8Array, got ${show(source)}`);
    const file = parseSafetensors(bytes);
    const { metadata } = file;
    if (metadata.format !== 'wgnn.sequential' || !metadata.layers) {
      throw new ParseError(`${who}: the file has no wgnn layer stack in its metadata (format wgnn.sequential)`);
    }
    const json = (key: string, text: string): unknown => {
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new ParseError(`${who}: metadata "${key}" is not JSON (${(e as Error).message})`);
      }
    };
    const specs = json('layers', metadata.layers);
    if (!Array.isArray(specs))
      throw new ParseError(`${who}: metadata "layers" is ${show(specs)}; expected an array of { class, name, config }`);
    const inputShape = metadata.inputShape === undefined ? null : json('inputShape', metadata.inputShape);
    // The layers' own checks (constructors, shapes, limits) name the option; here they become the file's fault.
    const inLayer = <T>(i: number, what: string, f: () => T): T => {
      try {
        return f();
      } catch (e) {
        if (!(e instanceof WgnnError) || e instanceof ParseError) throw e;
        throw new ParseError(`${who}: layer ${i} (${what}): ${e.message}`);
      }
    };
    const layers = specs.map((sp: unknown, i) => {
      if (sp === null || typeof sp !== 'object' || Array.isArray(sp))
        throw new ParseError(`${who}: layer ${i} is ${show(sp)}; expected { class, name, config }`);
      const { class: kind, name, config } = sp as Record<string, unknown>;
      if (typeof kind !== 'string')
        throw new ParseError(`${who}: layer ${i} has class ${show(kind)}; expected a layer class name`);
      if (config === null || typeof config !== 'object' || Array.isArray(config)) {
        throw new ParseError(`${who}: layer ${i} (${kind}) has config ${show(config)}; expected an object`);
      }
      const opts = {
        ...config,
        ...(name !== undefined ? { name } : {}),
        ...(i === 0 && inputShape !== null ? { inputShape } : {}),
      };
      return inLayer(i, kind, () => layerFromConfig(kind, opts, ParseError));
    });
    // The weights the layers will make, from the input shape on: names, shapes and limits, before any is drawn.
    const expected = new Map<string, number[]>();
    let shape = layers[0]?.knownInputShape;
    layers.forEach((l, i) => {
      if (!shape) return;
      const s = shape;
      for (const w of inLayer(i, l.kind, () => l.plannedWeights(s))) expected.set(`layers.${i}.${w.field}`, w.shape);
      shape = l.outputShape(s); // plannedWeights computed it without error
    });
    for (const [name, want] of expected) {
      const w = file.tensors.get(name);
      if (!w || w.dtype !== 'float32' || !sameShape(w.shape, want)) {
        throw new ParseError(
          `${who}: weight ${name} ${w ? `${w.dtype}${fmtShape(w.shape)}` : 'missing'}; the model expects float32${fmtShape(want)}`,
        );
      }
    }
    const extra = [...file.tensors.keys()].filter((n) => !expected.has(n));
    if (extra.length) throw new ParseError(`${who}: weights the model does not have: ${extra.join(', ')}`);
    let model: T;
    try {
      model = new this(layers);
      model.restore(metadata);
    } catch (e) {
      for (const l of layers) l.dispose();
      throw e instanceof WgnnError && !(e instanceof ParseError) ? new ParseError(`${who}: ${e.message}`) : e;
    }
    model.assign(await loadTensors(bytes));
    return model;
  }

  /** Replaces parameters and buffers by name with the given tensors (same shapes), taking ownership of them. */
  private assign(tensors: Record<string, Tensor>): void {
    this.prepare(); // build the weights first, or lazily built ones would replace these later
    for (const [name, old] of this.namedTensors()) {
      const w = tensors[name];
      if (!w) continue;
      w.requiresGrad = old.requiresGrad;
      old.dispose();
      this.setTensor(name, keep(w));
    }
  }

  override dispose(): void {
    this.lastStep?.dispose();
    this.lastStep = undefined;
    super.dispose();
  }

  /** A table of layers, per-sample output shapes and parameter counts (printed and returned). */
  summary(print: (line: string) => void = console.log): string {
    const first = this.layers[0]?.knownInputShape;
    if (!first) throw new WgnnError('summary: the first layer needs an inputShape (or run the model once)');
    this.prepare();
    const lines: string[] = [];
    const row = (a: string, b: string, c: string) => `${a.padEnd(34)} ${b.padEnd(20)}${c.padStart(10)}`;
    lines.push(row('Layer (type)', 'Output shape', 'Params'), '='.repeat(65));
    let shape = first;
    let total = 0;
    for (const l of this.layers) {
      shape = l.outputShape(shape);
      const p = l.countParams();
      total += p;
      lines.push(row(`${l.name} (${l.kind})`, fmtShape([-1, ...shape]).replace('-1', 'null'), String(p)));
    }
    lines.push('='.repeat(65), `Total params: ${total}`);
    const text = lines.join('\n');
    for (const line of lines) print(line);
    return text;
  }
}
