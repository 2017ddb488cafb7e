// Sequential: a stack of layers with Keras's compile / fit / evaluate / predict / summary, on the same tensors and
// autograd as PyTorch-style modules. Training data stays on the host; each batch is uploaded as it is used.
import type { TypedArray } from '../backend/backend.js';
import { ParseError, ShapeError, WgnnError, fmtShape } from '../errors.js';
import type { Optimizer } from '../optim/optimizer.js';
import { Dataset } from '../data/dataset.js';
import { sizeOf } from '../shape.js';
import { Tensor, keep, tensor, tidy } from '../tensor.js';
import { loadTensors, parseSafetensors, saveTensors } from '../io/safetensors.js';
import { noGrad } from '../autograd/tape.js';
import { compileStep, type CompiledStep } from '../autograd/step.js';
import { mul } from '../ops/binary.js';
import { countCorrect } from '../ops/metrics.js';
import { Layer, layerFromConfig } from './layers.js';
import { getLoss, type Loss, type LossName } from './losses.js';
import { Module } from './module.js';

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

export interface Logs {
  [metric: string]: number;
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
  /** Seed of the per-epoch shuffles (each epoch's order depends only on seed and epoch). */
  seed?: number;
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
  private compiled: { optimizer: Optimizer; loss: Loss; metrics: string[] } | undefined;
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

  /** The output, or the logits before a final softmax/sigmoid when the loss fuses it (see losses.ts). */
  private forwardForLoss(x: Tensor, loss: Loss): { out: Tensor; fromLogits: boolean } {
    const last = this.layers[this.layers.length - 1];
    if (!last || !loss.fuses || last.activation !== loss.fuses) return { out: this.forward(x), fromLogits: false };
    const h = this.layers.slice(0, -1).reduce((t, l) => l.forward(t), x);
    return { out: last.forwardLogits(h), fromLogits: true };
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
    const history: History = { epoch: [], history: {} };
    const acc = metrics.includes('accuracy');
    // One training step; captured on its first run per batch shape and replayed after (unless replay: false).
    const step = compileStep(
      (xb, yb) => {
        const outs = tidy(() => {
          const r = this.forwardForLoss(xb, loss);
          const l = loss.compute(r.out, yb, r.fromLogits);
          l.backward();
          const rows = xb.shape[0]!;
          // Off the tape: a graph nobody runs backward through would keep its saved tensors.
          return noGrad(() => ({ loss: mul(l, rows), ...(acc ? { correct: countCorrect(r.out, yb, r.fromLogits ? 0 : 0.5) } : {}) }));
        });
        optimizer.step(this.parameters());
        this.zeroGrad();
        return outs;
      },
      { replay: opts.replay ?? true, key: () => this.parameters().map((p) => p.id).join(',') },
    );
    this.lastStep?.dispose();
    this.lastStep = step;
    for (let epoch = 0; epoch < epochs; epoch++) {
      this.train();
      await opts.callbacks?.onEpochBegin?.(epoch);
      const t0 = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let pending = 0;
      let batch = 0;
      const drain = async () => {
        const r = await step.read();
        lossSum += r.sums.loss ?? 0;
        correct += r.sums.correct ?? 0;
        seen += pending;
        pending = 0;
      };
      for (const b of train.batches(batchSize, { shuffle: opts.shuffle ?? true, seed: opts.seed ?? 0, epoch })) {
        step.run({ data: b.x, shape: b.xShape }, { data: b.y, shape: b.yShape });
        pending += b.xShape[0]!;
        // Losses and metrics stay on the GPU; reading them every few steps keeps the GPU from waiting on JS.
        if (++batch % readEvery === 0) await drain();
        if (opts.callbacks?.onBatchEnd && seen > 0) {
          await opts.callbacks.onBatchEnd(batch - 1, { loss: lossSum / seen, ...(acc ? { acc: correct / seen } : {}) });
        }
      }
      await drain();
      if (!Number.isFinite(lossSum)) {
        throw new WgnnError(`fit: the loss is ${lossSum / seen} in epoch ${epoch + 1}; training diverged (lower the learning rate?)`);
      }
      const logs: Logs = { loss: lossSum / seen };
      if (acc) logs.acc = correct / seen;
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
    }
    return history;
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
          const r = this.forwardForLoss(xb, loss);
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
    const spec = this.layers.map((l) => ({ class: l.constructor.name, name: l.name, config: l.config() }));
    const meta = { format: 'wgnn.sequential', layers: JSON.stringify(spec), inputShape: JSON.stringify(first ?? null) };
    return saveTensors(path, Object.fromEntries(this.namedTensors()), meta);
  }

  /** Rebuilds a model saved by `save()` (a path in Node, or the bytes) with its weights. */
  static async load(source: string | Uint8Array): Promise<Sequential> {
    const bytes = typeof source === 'string' ? new Uint8Array(await (await import('node:fs/promises')).readFile(source)) : source;
    const { metadata } = parseSafetensors(bytes);
    if (metadata.format !== 'wgnn.sequential' || !metadata.layers) {
      throw new ParseError('Sequential.load: the file has no wgnn layer stack in its metadata (format wgnn.sequential)');
    }
    const specs = JSON.parse(metadata.layers) as { class: string; name: string; config: Record<string, unknown> }[];
    const inputShape = JSON.parse(metadata.inputShape ?? 'null') as number[] | null;
    const model = new Sequential(specs.map((sp, i) => layerFromConfig(sp.class, { ...sp.config, name: sp.name, ...(i === 0 && inputShape ? { inputShape } : {}) })));
    const tensors = await loadTensors(bytes);
    const mine = model.namedTensors();
    const names = new Set(Object.keys(tensors));
    for (const [name, t] of mine) {
      const w = tensors[name];
      if (!w || fmtShape(w.shape) !== fmtShape(t.shape)) {
        throw new ParseError(`Sequential.load: weight ${name} ${w ? fmtShape(w.shape) : 'missing'}; the model expects ${fmtShape(t.shape)}`);
      }
      names.delete(name);
    }
    if (names.size) throw new ParseError(`Sequential.load: weights the model does not have: ${[...names].join(', ')}`);
    model.assign(tensors);
    return model;
  }

  /** Replaces parameters and buffers by name with the given tensors (same shapes), taking ownership of them. */
  private assign(tensors: Record<string, Tensor>): void {
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
      lines.push(row(`${l.name} (${l.constructor.name})`, fmtShape([-1, ...shape]).replace('-1', 'null'), String(p)));
    }
    lines.push('='.repeat(65), `Total params: ${total}`);
    const text = lines.join('\n');
    for (const line of lines) print(line);
    return text;
  }
}
