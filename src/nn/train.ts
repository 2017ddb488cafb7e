// One training step, in one place: forward, loss, backward, the optimizer update and the metric sums of a stack of
// layers, compiled by compileStep (captured once per batch shape, then replayed). Sequential.fit trains through it,
// and so does anything else that trains a model step by step (the benchmarks); StepMeter reads its sums back.
import { compileStep, type CompiledStep } from '../autograd/step.js';
import { noGrad } from '../autograd/tape.js';
import { mul } from '../ops/binary.js';
import { countCorrect } from '../ops/metrics.js';
import type { Optimizer } from '../optim/optimizer.js';
import { tidy, type Tensor } from '../tensor.js';
import type { Layer } from './layers.js';
import { getLoss, type Loss, type LossName } from './losses.js';
import type { Module } from './module.js';

/** Mean loss and metrics by name (`loss`, `acc`, `val_loss`, ...). */
export interface Logs {
  [metric: string]: number;
}

/** A model that is a stack of layers (a Sequential): its last layer's softmax or sigmoid can fuse into the loss. */
export type LayerStack = Module & { readonly layers: readonly Layer[] };

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

/**
 * The training step of `model`: `step.run(x, y)` runs forward, loss, backward and the optimizer update on one batch
 * (x [B,...], y [B] or [B,classes]) and adds to its sums on the GPU: `loss` (the batch's mean loss times B) and, with
 * the accuracy metric, `correct`. Read them with a StepMeter. The step is captured on its first run per batch shape
 * and replayed after; new parameter tensors (a restored checkpoint) re-capture. The caller disposes the step.
 */
export function trainStep(model: LayerStack, opts: TrainStepOptions): CompiledStep {
  const loss = getLoss(opts.loss);
  const acc = opts.metrics?.includes('accuracy') ?? false;
  const { optimizer } = opts;
  return compileStep(
    (xb, yb) => {
      const outs = tidy(() => {
        const r = forwardForLoss(model, xb, loss);
        const l = loss.compute(r.out, yb, r.fromLogits);
        l.backward();
        const rows = xb.shape[0]!;
        // Off the tape: a graph nobody runs backward through would keep its saved tensors.
        return noGrad(() => ({ loss: mul(l, rows), ...(acc ? { correct: countCorrect(r.out, yb, r.fromLogits ? 0 : 0.5) } : {}) }));
      });
      optimizer.step(model.parameters());
      model.zeroGrad();
      return outs;
    },
    { replay: opts.replay ?? true, key: () => model.parameters().map((p) => p.id).join(',') },
  );
}

/**
 * Running means of a train step's sums: `ran(rows)` after each `step.run`, `await read()` every few steps (it waits
 * for the GPU, so not after every step), `logs()` for the means over every row read so far.
 */
export class StepMeter {
  private seen = 0;
  private pending = 0;
  private loss = 0;
  private correct: number | undefined;

  constructor(private readonly step: CompiledStep) {}

  /** Rows whose sums have been read back. */
  get rows(): number {
    return this.seen;
  }

  /** Counts a step run on `rows` rows; its sums stay on the GPU until `read`. */
  ran(rows: number): void {
    this.pending += rows;
  }

  /** Reads back the sums of the steps run since the last read and returns their means (empty when none ran). */
  async read(): Promise<Logs> {
    const { sums } = await this.step.read();
    const rows = this.pending;
    this.seen += rows;
    this.pending = 0;
    this.loss += sums.loss ?? 0;
    if (sums.correct !== undefined) this.correct = (this.correct ?? 0) + sums.correct;
    return rows > 0 ? means(sums.loss ?? 0, sums.correct, rows) : {};
  }

  /** Means over every row read so far: `loss`, and `acc` with the accuracy metric (empty before the first read). */
  logs(): Logs {
    return this.seen > 0 ? means(this.loss, this.correct, this.seen) : {};
  }
}

const means = (loss: number, correct: number | undefined, rows: number): Logs => ({ loss: loss / rows, ...(correct !== undefined ? { acc: correct / rows } : {}) });
