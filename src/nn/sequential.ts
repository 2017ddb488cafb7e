// Sequential: a stack of layers with Keras's compile / fit / evaluate / predict / summary, on the same tensors and
// autograd as PyTorch-style modules. Training data stays on the host; each batch is uploaded as it is used.
import type { TypedArray } from '../backend/backend.js';
import { DeviceLostError, ParseError, ShapeError, WgnnError, fmtShape } from '../errors.js';
import { readCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import { reinit } from '../init.js';
import type { Backend } from '../backend/backend.js';
import type { Optimizer } from '../optim/optimizer.js';
import { Dataset } from '../data/dataset.js';
import type { Augment } from '../data/augment.js';
import { sizeOf } from '../shape.js';
import { Tensor, keep, tensor, tidy } from '../tensor.js';
import { loadTensors, parseSafetensors, saveTensors } from '../io/safetensors.js';
import { noGrad } from '../autograd/tape.js';
import type { CompiledStep } from '../autograd/step.js';
import { countCorrect } from '../ops/metrics.js';
import { Layer, layerFromConfig } from './layers.js';
import { getLoss, type Loss, type LossName } from './losses.js';
import { Module } from './module.js';
import { planResume, trainingState, type Cursor } from './resume.js';
import { StepMeter, forwardForLoss, trainStep, type Logs } from './train.js';

export type { Logs } from './train.js';

/** Node file access (platform/fs.ts), loaded only when a path is given, so browser bundles leave it out. */
const files = () => import('../platform/fs.js');

/** Host data: a typed array and its shape (batch first). */
export interface HostTensor {
  data: TypedArray;
  shape: readonly number[];
}
export type Data = Tensor | HostTensor;

export interface CompileOptions {
  optimizer: Optimizer;
  loss: LossName | Loss;
  metrics?: 'accuracy'[];
}

export interface Callbacks {
  onEpochBegin?(epoch: number): void | Promise<void>;
  onEpochEnd?(epoch: number, logs: Logs): void | Promise<void>;
  /** After each batch with its loss (read without stalling the GPU: the previous batches' losses). */
  onBatchEnd?(batch: number, logs: Logs): void | Promise<void>;
}

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
   * checkpoint and goes on.
   */
  checkpoint?: { path: string; everySteps: number; resume?: boolean };
  /** Opens the device to continue on after a loss (with `checkpoint`); `reinit` makes it the default. */
  recover?: () => Promise<Backend>;
}

export interface History {
  epoch: number[];
  history: Record<string, number[]>;
}

/** The data as a host Dataset (a tensor is read back once). */
async function toDataset(op: string, x: Data, y: Data): Promise<Dataset> {
  const host = async (d: Data): Promise<HostTensor> => (d instanceof Tensor ? { data: await d.data(), shape: d.shape } : d);
  const [xs, ys] = [await host(x), await host(y)];
  if (xs.data instanceof Int32Array) throw new ShapeError(`${op}: x ${fmtShape(xs.shape)} is int32; expected float32 inputs`);
  if (xs.shape[0] !== ys.shape[0]) throw new ShapeError(`${op}: x ${fmtShape(xs.shape)} and y ${fmtShape(ys.shape)} have different numbers of samples`);
  const f32 = xs.data instanceof Float32Array ? xs.data : Float32Array.from(xs.data);
  const yd = ys.data instanceof Float64Array ? Float32Array.from(ys.data) : ys.data;
  return new Dataset(f32, xs.shape, yd, ys.shape);
}

const upload = (data: Float32Array | Int32Array, shape: readonly number[]): Tensor =>
  tensor(data, shape, { dtype: data instanceof Int32Array ? 'int32' : 'float32' });

export class Sequential extends Module {
  layers: Layer[];
  private compiled: { optimizer: Optimizer; loss: Loss; metrics: 'accuracy'[] } | undefined;
  /** Set (e.g. from a callback) to end `fit` after the current step, as Keras's `model.stopTraining`. */
  stopTraining = false;
  /** The last fit's compiled step (its captures hold GPU buffers until the next fit or dispose). */
  private lastStep: CompiledStep | undefined;

  constructor(layers: Layer[] = []) {
    super();
    this.layers = [...layers];
  }

  add(layer: Layer): this {
    this.layers.push(layer);
    return this;
  }

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

  compile(opts: CompileOptions): void {
    this.compiled = { optimizer: opts.optimizer, loss: getLoss(opts.loss), metrics: opts.metrics ?? [] };
  }

  private need(op: string) {
    if (!this.compiled) throw new WgnnError(`${op}: call compile({ optimizer, loss }) first`);
    return this.compiled;
  }

  async fit(x: Data, y: Data, opts: FitOptions = {}): Promise<History> {
    const { optimizer, loss, metrics } = this.need('fit');
    let train = await toDataset('fit', x, y);
    let val = opts.validationData && (await toDataset('fit: validationData', ...opts.validationData));
    if (!val && opts.validationSplit) ({ train, validation: val } = train.validationSplit(opts.validationSplit));
    const epochs = opts.epochs ?? 1;
    const batchSize = opts.batchSize ?? 32;
    const readEvery = opts.readEvery ?? 16;
    const seed = opts.seed ?? 0;
    const history: History = { epoch: [], history: {} };
    const ck = opts.checkpoint;
    // Where training stands: the next (epoch, batch) to run; a resumed or recovered run continues from a checkpoint.
    let cursor = { epoch: 0, batch: 0 };
    if (ck) (await files()).checkWritable(ck.path); // before training, not at the first checkpoint; clears stale temp files
    if (ck?.resume && (await (await files()).fileExists(ck.path))) cursor = await this.loadCheckpoint(ck.path, optimizer, { inputShape: train.xShape.slice(1) });
    let step = this.newStep(optimizer, loss, metrics, opts.replay ?? true);
    let epoch = cursor.epoch;
    while (epoch < epochs) {
      this.train();
      await opts.callbacks?.onEpochBegin?.(epoch);
      const t0 = performance.now();
      const meter = new StepMeter(step);
      let batch = 0;
      try {
        for (const b of train.batches(batchSize, { shuffle: opts.shuffle ?? true, seed, epoch, augment: opts.augment })) {
          if (batch < cursor.batch) {
            batch++; // already trained before the checkpoint this run resumed from
            continue;
          }
          step.run({ data: b.x, shape: b.xShape }, { data: b.y, shape: b.yShape });
          meter.ran(b.xShape[0]!);
          batch++;
          // Losses and metrics stay on the GPU; reading them every few steps keeps the GPU from waiting on JS.
          if (batch % readEvery === 0) {
            await meter.read();
            const l = meter.logs().loss;
            if (l !== undefined && !Number.isFinite(l)) {
              throw new WgnnError(`fit: the loss is ${l} at step ${batch} of epoch ${epoch + 1}; training diverged (lower the learning rate?)`);
            }
          }
          if (ck && (epoch * train.numBatches(batchSize) + batch) % ck.everySteps === 0) {
            await this.saveCheckpoint(ck.path, optimizer, { epoch, batch });
          }
          // After every batch (an app yields to its event loop here); the logs are those of the last read.
          await opts.callbacks?.onBatchEnd?.(batch - 1, meter.logs());
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
      if (!Number.isFinite(logs.loss)) {
        throw new WgnnError(`fit: the loss is ${logs.loss} in epoch ${epoch + 1}; training diverged (lower the learning rate?)`);
      }
      if (val) {
        const v = await this.evaluateDataset(val, batchSize);
        for (const [k, value] of Object.entries(v)) logs[`val_${k}`] = value;
      }
      logs.seconds = (performance.now() - t0) / 1000;
      history.epoch.push(epoch);
      for (const [k, v] of Object.entries(logs)) (history.history[k] ??= []).push(v);
      if (opts.verbose !== 0) {
        console.log(`epoch ${epoch + 1}/${epochs} ${Object.entries(logs).map(([k, v]) => `${k}=${v.toFixed(4)}`).join(' ')}`);
      }
      await opts.callbacks?.onEpochEnd?.(epoch, logs);
      epoch++;
    }
    return history;
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
      const tensors: Record<string, Tensor> = Object.fromEntries(this.namedTensors().map(([n, t]) => [`model.${n}`, t]));
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
  async loadCheckpoint(source: string | Uint8Array, optimizer: Optimizer, opts: { inputShape?: readonly number[] } = {}): Promise<Cursor> {
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
          for (const [k, t] of Object.entries(ps.slots)) slotTensors.push((slots[k] = tensor(t.data, t.shape, { backend: params[i]!.backend })));
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

  /** Mean loss (and metrics) over the data, in eval mode. */
  async evaluate(x: Data, y: Data, opts: { batchSize?: number } = {}): Promise<Logs> {
    return this.evaluateDataset(await toDataset('evaluate', x, y), opts.batchSize ?? 32);
  }

  private async evaluateDataset(data: Dataset, batchSize: number): Promise<Logs> {
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
          return { l: loss.compute(r.out, yb, r.fromLogits), hits: countCorrect(r.out, yb, r.fromLogits ? 0 : 0.5) };
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

  /** The model's output for x, batch by batch, in eval mode. */
  async predict(x: Data, opts: { batchSize?: number } = {}): Promise<Tensor> {
    const xs = x instanceof Tensor ? { data: await x.data(), shape: x.shape } : x;
    const n = xs.shape[0]!;
    const data = await toDataset('predict', xs, { data: new Int32Array(n), shape: [n] });
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
    const meta = { format: 'wgnn.sequential', layers: JSON.stringify(spec), inputShape: JSON.stringify(first ?? null) };
    return saveTensors(path, Object.fromEntries(this.namedTensors()), meta);
  }

  /** Rebuilds a model saved by `save()` (a path in Node, or the bytes) with its weights. */
  static async load(source: string | Uint8Array): Promise<Sequential> {
    const bytes = typeof source === 'string' ? await (await files()).readFile(source) : source;
    const { metadata } = parseSafetensors(bytes);
    if (metadata.format !== 'wgnn.sequential' || !metadata.layers) {
      throw new ParseError('Sequential.load: the file has no wgnn layer stack in its metadata (format wgnn.sequential)');
    }
    const specs = JSON.parse(metadata.layers) as { class: string; name: string; config: Record<string, unknown> }[];
    const inputShape = JSON.parse(metadata.inputShape ?? 'null') as number[] | null;
    const model = new Sequential(specs.map((sp, i) => layerFromConfig(sp.class, { ...sp.config, name: sp.name, ...(i === 0 && inputShape ? { inputShape } : {}) }, ParseError)));
    const tensors = await loadTensors(bytes);
    const mine = model.namedTensors();
    const names = new Set(Object.keys(tensors));
    for (const [name, t] of mine) {
      const w = tensors[name];
      if (!w || fmtShape(w.shape) !== fmtShape(t.shape) || w.dtype !== t.dtype) {
        throw new ParseError(`Sequential.load: weight ${name} ${w ? `${w.dtype}${fmtShape(w.shape)}` : 'missing'}; the model expects ${t.dtype}${fmtShape(t.shape)}`);
      }
      names.delete(name);
    }
    if (names.size) throw new ParseError(`Sequential.load: weights the model does not have: ${[...names].join(', ')}`);
    model.assign(tensors);
    return model;
  }

  /** Replaces parameters and buffers by name with the given tensors (same shapes), taking ownership of them. */
  private assign(tensors: Record<string, Tensor>): void {
    this.prepare(); // build the weights first, or lazily built ones would replace these later
    for (const l of this.layers) {
      for (const [field, t] of Object.entries(l)) {
        if (!(t instanceof Tensor)) continue;
        const i = this.layers.indexOf(l);
        const w = tensors[`layers.${i}.${field}`];
        if (!w) continue;
        w.requiresGrad = t.requiresGrad;
        t.dispose();
        (l as unknown as Record<string, Tensor>)[field] = keep(w);
      }
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
