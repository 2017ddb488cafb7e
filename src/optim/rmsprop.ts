// RMSprop (optionally centered, with momentum and L2 weight decay), as torch.optim.RMSprop: the fused kernel
// (shaders/optim_rmsprop.wgsl) beside its CPU reference, and the optimizer that runs it.
import { f32 } from '../backend/kernel.js';
import { applyInPlace } from '../ops/apply.js';
import { defineInPlace } from '../ops/inplace.js';
import type { Tensor } from '../tensor.js';
import { checkCases, cpuCheck, cpuGrad, dispatchUpdate, updateSamples, type Live, type UpdateAttrs } from './kernel.js';
import { Optimizer, checkRange, type CommonOptions, type Slot } from './optimizer.js';
import type { Schedule } from './schedules.js';

export interface RmspropAttrs extends UpdateAttrs {
  alpha: number;
  eps: number;
  weightDecay: number;
  momentum: number;
  centered: boolean;
}

// targets: param [n], square_avg [n], momentum_buffer [n], grad_avg [n] (these two [1] placeholders when momentum
// is 0 / not centered), flag [1]; inputs: grad [n], scale [1]?
// NOTE: as PyTorch (not TensorFlow), eps is added after the square root, weight decay is L2 (λ·p added to the
// gradient), and the centered variant divides by √(v − ḡ²) + eps with ḡ the running mean of g.
export const rmspropKernel = defineInPlace<RmspropAttrs>({
  name: 'rmsprop',
  cpu: ({ targets, inputs, attrs: a }) => {
    const p = targets[0]!.data;
    const v = targets[1]!.data;
    const buf = targets[2]!.data;
    const gAvg = targets[3]!.data;
    const grad = cpuGrad(inputs);
    for (let i = 0; i < p.length; i++) {
      let g = grad(i);
      if (a.weightDecay !== 0) g += a.weightDecay * p[i]!;
      v[i] = a.alpha * v[i]! + (1 - a.alpha) * g * g;
      let avg: number;
      if (a.centered) {
        gAvg[i] = gAvg[i]! + (1 - a.alpha) * (g - gAvg[i]!);
        avg = Math.sqrt(v[i]! - gAvg[i]! * gAvg[i]!) + a.eps;
      } else {
        avg = Math.sqrt(v[i]!) + a.eps;
      }
      if (a.momentum > 0) {
        buf[i] = a.momentum * buf[i]! + g / avg;
        p[i] = p[i]! - a.live.lr * buf[i]!;
      } else {
        p[i] = p[i]! - (a.live.lr * g) / avg;
      }
    }
    cpuCheck(targets, a.seq);
  },
  gpu: (args) => {
    const a = args.attrs;
    dispatchUpdate('optim_rmsprop', args, { MOMENTUM: a.momentum > 0, CENTERED: a.centered }, () => [
      f32(a.live.lr),
      f32(a.weightDecay),
      f32(a.alpha),
      f32(1 - a.alpha), // in float64, as PyTorch (1 − f32(α) in float32 is off by up to 1e-5 relative)
      f32(a.eps),
      f32(a.momentum),
    ]);
  },
  samples: () => {
    const a = (lr: number, o: Partial<Omit<RmspropAttrs, 'live'>> = {}): RmspropAttrs => ({
      live: { lr, step: 1 },
      alpha: 0.99,
      eps: 1e-8,
      weightDecay: 0,
      momentum: 0,
      centered: false,
      ...o,
    });
    // square_avg, then momentum_buffer and grad_avg (or placeholders). Centered: v − ḡ² stays positive.
    const sq: [number, number] = [0, 1];
    const buf: [number, number] = [-1, 1];
    const centered: [number, number] = [0.5, 1];
    const gAvg: [number, number] = [-0.1, 0.1];
    return updateSamples([
      { label: 'lr 0.01', attrs: a(0.01), slots: [sq, null, null] },
      {
        label: 'alpha 0.5 eps 1e-3 weightDecay 0.1',
        attrs: a(0.01, { alpha: 0.5, eps: 1e-3, weightDecay: 0.1 }),
        slots: [sq, null, null],
      },
      { label: 'momentum 0.9', attrs: a(0.01, { momentum: 0.9 }), slots: [sq, buf, null] },
      { label: 'centered', attrs: a(0.01, { centered: true }), slots: [centered, null, gAvg] },
      {
        label: 'centered momentum 0.5 alpha 0.9 weightDecay 0.01',
        attrs: a(0.01, { centered: true, momentum: 0.5, alpha: 0.9, weightDecay: 0.01 }),
        slots: [centered, buf, gAvg],
      },
      { label: 'square_avg from 0', attrs: a(0.01), slots: [[0, 0], null, null] },
      { label: 'momentum 0.9, clip scale 0.5', attrs: a(0.01, { momentum: 0.9 }), slots: [sq, buf, null], scale: 0.5 },
      { label: 'centered, clip scale 2', attrs: a(0.001, { centered: true }), slots: [centered, null, gAvg], scale: 2 },
      ...checkCases(a(0.01, { centered: true, momentum: 0.5 }), [centered, buf, gAvg]),
    ]);
  },
  // f32 against float64: dividing by √v + eps magnifies rounding (worst seen: 3e-6 relative).
  tol: { atol: 1e-6, rtol: 1e-5 },
});

export interface RmspropOptions extends CommonOptions {
  /** Learning rate or schedule (default 1e-2, as PyTorch). */
  lr?: number | Schedule;
  /** Smoothing constant α of the squared-gradient average (default 0.99). */
  alpha?: number;
  /** Added to the denominator after the square root (default 1e-8). */
  eps?: number;
  /** L2 penalty λ, added to the gradient as λ·p (default 0). */
  weightDecay?: number;
  /** Momentum factor μ (default 0: no momentum buffer). */
  momentum?: number;
  /** Normalise by the gradient's variance estimate instead of its second moment (default false). */
  centered?: boolean;
}

/** RMSprop, as torch.optim.RMSprop. */
export class RMSprop extends Optimizer {
  readonly alpha: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly momentum: number;
  readonly centered: boolean;
  protected readonly slots: readonly Slot[];

  constructor(opts: RmspropOptions = {}) {
    super(
      'rmsprop',
      Optimizer.options('rmsprop', opts, ['lr', 'alpha', 'eps', 'weightDecay', 'momentum', 'centered']).lr ?? 1e-2,
      opts.globalClipnorm,
    );
    this.alpha = checkRange('rmsprop', 'alpha', opts.alpha ?? 0.99, { min: 0, max: 1 });
    this.eps = checkRange('rmsprop', 'eps', opts.eps ?? 1e-8, { above: 0 });
    this.weightDecay = checkRange('rmsprop', 'weightDecay', opts.weightDecay ?? 0, { min: 0 });
    this.momentum = checkRange('rmsprop', 'momentum', opts.momentum ?? 0, { min: 0 });
    this.centered = Optimizer.flag('rmsprop', 'centered', opts.centered, false);
    this.slots = [
      { name: 'square_avg', init: 0, used: true },
      { name: 'momentum_buffer', init: 0, used: this.momentum > 0 },
      { name: 'grad_avg', init: 0, used: this.centered },
    ];
  }

  protected update(targets: Tensor[], inputs: Tensor[], live: Live, seq: (() => number) | undefined): void {
    const { alpha, eps, weightDecay, momentum, centered } = this;
    applyInPlace(rmspropKernel, targets, inputs, { live, seq, alpha, eps, weightDecay, momentum, centered });
  }
}

/** RMSprop: `rmsprop(1e-3)`, `rmsprop(schedule)` or `rmsprop({ lr, alpha, eps, momentum, centered })`. */
export function rmsprop(opts: number | Schedule | RmspropOptions = {}): RMSprop {
  return new RMSprop(typeof opts === 'object' ? opts : { lr: opts });
}
