// One training step, in one place: forward, loss, backward, the optimizer update (which also checks the new weights
// for NaN/Inf), the metric sums, compiled as a CompiledStep (captured once per batch shape, then replayed).
// Sequential.fit trains through it, and so does anything else that trains a model step by step (the benchmarks);
// StepMeter reads it back.
import { CompiledStep, onReplay, type ReadAlong, type StepOptions } from '../autograd/step.js';
import { noGrad } from '../autograd/tape.js';
import type { TypedArray } from '../backend/backend.js';
import { NonFiniteError, WgnnError } from '../errors.js';
import { mul } from '../ops/binary.js';
import { anomalyCheck } from '../ops/inplace.js';
import { applyInPlace } from '../ops/apply.js';
import { countCorrect } from '../ops/metrics.js';
import type { FiniteCheck, Optimizer } from '../optim/optimizer.js';
import { sizeOf } from '../shape.js';
import { keep, tensor, tidy, type Tensor } from '../tensor.js';
import type { Layer } from './layers.js';
import { getLoss, type Loss, type LossName } from './losses.js';
import type { Module } from './module.js';

/** Mean loss and metrics by name (`loss`, `acc`, `val_loss`, ...). */
export interface Logs {
  [metric: string]: number;
}

/** A model that is a stack of layers (a Sequential): its last layer's softmax or sigmoid can fuse into the loss. */
export type LayerStack = Module & { readonly layers: readonly Layer[] };

/** Options of `trainStep`. */
export interface TrainStepOptions {
  optimizer: Optimizer;
  loss: LossName | Loss;
  /** 'accuracy' also counts correct predictions (StepMeter reports them as `acc`). */
  metrics?: readonly 'accuracy'[];
  /** Capture the step once per batch shape and replay it (default true); false runs every op eagerly. */
  replay?: boolean;
}

/**
 * The model's output, or the logits before its final softmax/sigmoid when the loss fuses that activation (the fused
 * cross-entropy kernels are the numerically stable ones; see losses.ts).
 */
export function forwardForLoss(model: LayerStack, x: Tensor, loss: Loss): { out: Tensor; fromLogits: boolean } {
  const layers = model.layers;
  const last = layers[layers.length - 1];
  if (!last || !loss.fuses || last.activation !== loss.fuses) return { out: model.forward(x), fromLogits: false };
  const h = layers.slice(0, -1).reduce((t, l) => l.forward(t), x);
  return { out: last.forwardLogits(h), fromLogits: true };
}

/** Where a step's weight check first saw a NaN or an Inf: the step (from 1, counted since the step was made) and the tensor. */
export interface NonFiniteWeights {
  step: number;
  tensor: string;
}

/** The flag's value while no checked tensor held a NaN or an Inf (a check lowers it to a sequence number). */
const CLEAN = 0x7fffffff;

/**
 * The on-GPU finiteness check of a model's weights and buffers after each update: an int32 flag [1] lowered to
 * min(step in the read window · tensors + tensor index) over the tensors that went NaN or Inf, so it names the first
 * step and the first tensor. The optimizer's update kernels check the parameters they write (no extra dispatch); an
 * anomaly_check dispatch (src/ops/inplace.ts) checks each tensor they did not write (buffers such as batch norm's
 * running statistics, parameters without a gradient). It is read with the step's sums (one copy into the same
 * staging buffer, one map) and reset behind the read, in queue order.
 */
export class WeightCheck {
  private flag: Tensor | undefined;
  /** Steps checked so far (each run and each replay counts one). */
  private steps = 0;
  /** Steps before the current read window: sequence numbers count from here, so they stay small. */
  private base = 0;
  private names: string[] = [];

  /** Steps checked since this check was made. */
  get checked(): number {
    return this.steps;
  }

  /**
   * Runs `update` (inside a training step: the optimizer's step, given the check to fold into its kernels; it returns
   * the tensors it updated), then queues the check of each tensor of `named` it did not update. Each replay checks
   * again, with its own step.
   */
  check(
    named: readonly (readonly [string, Tensor])[],
    update: (check: FiniteCheck | undefined) => Iterable<Tensor>,
  ): void {
    if (named.length === 0) {
      update(undefined);
      return;
    }
    const backend = named[0]![1].backend;
    if (this.flag?.backend !== backend) {
      this.flag?.dispose();
      this.flag = keep(tensor(new Int32Array([CLEAN]), [1], { backend, dtype: 'int32' }));
    }
    const flag = this.flag;
    this.names = named.map(([n]) => n);
    this.steps++;
    onReplay(() => this.steps++);
    const width = named.length;
    const seq = (i: number) => Math.min((this.steps - 1 - this.base) * width + i, CLEAN - 1);
    // A tensor named twice (shared) is checked under its first name.
    const index = new Map<Tensor, number>();
    named.forEach(([, t], i) => {
      if (!index.has(t)) index.set(t, i);
    });
    const updated = new Set(
      update({
        flag,
        seq: (p) => {
          const i = index.get(p);
          if (i === undefined)
            throw new WgnnError(
              `trainStep: the optimizer updated tensor #${p.id}, which is not among the model's tensors`,
            );
          return seq(i);
        },
      }),
    );
    named.forEach(([, t], i) => {
      if (!updated.has(t)) applyInPlace(anomalyCheck, [flag], [t], { seq: () => seq(i) });
    });
  }

  /**
   * Starts a read of the flag: `along` goes to the step's `read` (which copies the flag with the sums and resets it
   * behind the copy); `decode` turns the value read into where the weights first went non-finite since the last read,
   * or undefined. Undefined when nothing was checked yet.
   */
  beginRead():
    | {
        along: ReadAlong;
        /** Where the weights first went non-finite, from the flag's value read, or undefined. */
        decode: (value: TypedArray) => NonFiniteWeights | undefined;
      }
    | undefined {
    const flag = this.flag;
    if (!flag) return undefined;
    const [base, names] = [this.base, this.names];
    this.base = this.steps;
    return {
      along: { tensor: flag, reset: new Int32Array([CLEAN]) },
      decode: ([seq]) =>
        seq === CLEAN
          ? undefined
          : { step: base + Math.floor(seq! / names.length) + 1, tensor: names[seq! % names.length]! },
    };
  }

  /** Frees the flag tensor. */
  dispose(): void {
    this.flag?.dispose();
    this.flag = undefined;
  }
}

/** A model's training step (trainStep): a CompiledStep with the finiteness check of the weights it updates. */
export class TrainStep extends CompiledStep {
  constructor(
    fn: (...inputs: Tensor[]) => Record<string, Tensor>,
    opts: StepOptions,
    /** Checks the weights and buffers after every update; a StepMeter reads it with the sums. */
    readonly weights: WeightCheck,
  ) {
    super(fn, opts);
  }

  override dispose(): void {
    super.dispose();
    this.weights.dispose();
  }
}

/**
 * The training step of `model`: `step.run(x, y)` runs forward, loss, backward and the optimizer update on one batch
 * (x [B,...], y [B] or [B,classes]) and adds to its sums on the GPU: `loss` (the batch's mean loss times B) and, with
 * the accuracy metric, `correct`; it checks every weight and buffer for NaN/Inf on the GPU (`step.weights`), in the
 * update kernels for the parameters they write.
 * Read them with a StepMeter. The step is captured on its first run per batch shape and replayed after; new parameter
 * tensors (a restored checkpoint) re-capture. The caller disposes the step.
 */
export function trainStep(model: LayerStack, opts: TrainStepOptions): TrainStep {
  const loss = getLoss(opts.loss);
  const acc = opts.metrics?.includes('accuracy') ?? false;
  const { optimizer } = opts;
  const weights = new WeightCheck();
  return new TrainStep(
    (xb, yb) => {
      const outs = tidy(() => {
        const r = forwardForLoss(model, xb, loss);
        const l = loss.compute(r.out, yb, r.fromLogits);
        l.backward();
        const rows = xb.shape[0]!;
        // Off the tape: a graph nobody runs backward through would keep its saved tensors.
        return noGrad(() => ({
          loss: mul(l, rows),
          ...(acc ? { correct: correctRows(r.out, yb, r.fromLogits) } : {}),
        }));
      });
      // NOTE: the loss alone misses a NaN in a weight no row reached this step (an unused class's row, a dead unit),
      // which the next batch may reach; and the update that made it is the step to name.
      weights.check(model.namedTensors(), (check) => optimizer.step(model.parameters(), { check }));
      model.zeroGrad();
      return outs;
    },
    {
      replay: opts.replay ?? true,
      key: () =>
        model
          .parameters()
          .map((p) => p.id)
          .join(','),
    },
    weights,
  );
}

/**
 * Correct predictions of out [B, ..., C] against y, as rows: each row counts the fraction of its positions predicted
 * right (1 per correct row for [B, C]; a sequence [B, T, C] row counts correct/T), so `correct / rows` is the mean
 * accuracy over every position, as Keras's accuracy.
 */
export function correctRows(out: Tensor, y: Tensor, fromLogits: boolean): Tensor {
  const hits = countCorrect(out, y, fromLogits ? 0 : 0.5);
  const perRow = out.rank > 2 ? sizeOf(out.shape.slice(1, -1)) : 1;
  return perRow === 1 ? hits : mul(hits, 1 / perRow);
}

/** Where a StepMeter's errors say they happened. */
export interface MeterOptions {
  /** The caller named first in errors (default `training`). */
  op?: string;
  /** Names the meter's n-th step (from 1) in errors (default `step n`). */
  where?: (n: number) => string;
}

/**
 * Running means of a train step's sums: `ran(rows)` after each `step.run`, `await read()` every few steps (it waits
 * for the GPU, so not after every step), `logs()` for the means over every row read so far. `read` throws
 * NonFiniteError when the mean loss is NaN or Inf, or (with a TrainStep) when its weight check saw a weight go
 * non-finite: the first catches a diverged loss, the second a NaN that relu or max-pool hides from the loss.
 */
export class StepMeter {
  private seen = 0;
  private pending = 0;
  private steps = 0;
  private loss = 0;
  private correct: number | undefined;
  /** The weight check's step count when this meter started: its steps count from here. */
  private readonly first: number;
  private readonly op: string;
  private readonly where: (n: number) => string;

  constructor(
    private readonly step: CompiledStep,
    opts: MeterOptions = {},
  ) {
    this.first = step instanceof TrainStep ? step.weights.checked : 0;
    this.op = opts.op ?? 'training';
    this.where = opts.where ?? ((n) => `step ${n}`);
  }

  /** Rows whose sums have been read back. */
  get rows(): number {
    return this.seen;
  }

  /** Counts a step run on `rows` rows; its sums stay on the GPU until `read`. */
  ran(rows: number): void {
    this.pending += rows;
    this.steps++;
  }

  /**
   * Reads back the sums of the steps run since the last read and returns their means (empty when none ran). Throws
   * NonFiniteError naming the step when the loss or a weight (and which) went NaN or Inf.
   */
  async read(): Promise<Logs> {
    const check = this.step instanceof TrainStep ? this.step.weights.beginRead() : undefined;
    const { sums, along } = await this.step.read(check ? [check.along] : []);
    const rows = this.pending;
    this.seen += rows;
    this.pending = 0;
    this.loss += sums.loss ?? 0;
    if (sums.correct !== undefined) this.correct = (this.correct ?? 0) + sums.correct;
    const bad = check?.decode(along[0]!);
    const loss = this.seen > 0 ? this.loss / this.seen : 0;
    if (bad || !Number.isFinite(loss)) {
      const lossText = Number.isFinite(loss) ? '' : `the loss is ${loss} at ${this.where(this.steps)}; `;
      const weightText = bad
        ? `the weights became non-finite (NaN or Inf) at ${this.where(bad.step - this.first)}, ${bad.tensor} first`
        : '';
      throw new NonFiniteError(
        `${this.op}: ${lossText}training diverged` +
          (bad
            ? `: ${weightText} (non-finite inputs, or a learning rate too high? setAnomalyMode(true) names the first op)`
            : ' (labels outside the classes, non-finite targets, or a learning rate too high?)'),
      );
    }
    return rows > 0 ? means(sums.loss ?? 0, sums.correct, rows) : {};
  }

  /** Means over every row read so far: `loss`, and `acc` with the accuracy metric (empty before the first read). */
  logs(): Logs {
    return this.seen > 0 ? means(this.loss, this.correct, this.seen) : {};
  }
}

const means = (loss: number, correct: number | undefined, rows: number): Logs => ({
  loss: loss / rows,
  ...(correct !== undefined ? { acc: correct / rows } : {}),
});
