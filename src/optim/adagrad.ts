// Adagrad (with learning-rate decay, an initial accumulator value and L2 weight decay), as torch.optim.Adagrad: the
// fused kernel (shaders/optim_adagrad.wgsl) beside its CPU reference, and the optimizer that runs it.
import { f32 } from '../backend/kernel.js';
import { applyInPlace } from '../ops/apply.js';
import { defineInPlace } from '../ops/inplace.js';
import type { Tensor } from '../tensor.js';
import { checkCases, cpuCheck, cpuGrad, dispatchUpdate, updateSamples, type Live, type UpdateAttrs } from './kernel.js';
import { Optimizer, checkRange, type CommonOptions, type Slot } from './optimizer.js';
import type { Schedule } from './schedules.js';

export interface AdagradAttrs extends UpdateAttrs {
  lrDecay: number;
  weightDecay: number;
  eps: number;
}

// targets: param [n], sum [n], flag [1]; inputs: grad [n], scale [1]?
// NOTE: as PyTorch, the decayed rate is lr / (1 + (t − 1)·lrDecay), weight decay is L2 (λ·p added to the gradient),
// eps is added after the square root, and the accumulator starts at initialAccumulatorValue.
export const adagradKernel = defineInPlace<AdagradAttrs>({
  name: 'adagrad',
  cpu: ({ targets, inputs, attrs: a }) => {
    const p = targets[0]!.data;
    const sum = targets[1]!.data;
    const grad = cpuGrad(inputs);
    const clr = a.live.lr / (1 + (a.live.step - 1) * a.lrDecay);
    for (let i = 0; i < p.length; i++) {
      let g = grad(i);
      if (a.weightDecay !== 0) g += a.weightDecay * p[i]!;
      sum[i] = sum[i]! + g * g;
      p[i] = p[i]! - (clr * g) / (Math.sqrt(sum[i]!) + a.eps);
    }
    cpuCheck(targets, a.seq);
  },
  gpu: (args) => {
    const a = args.attrs;
    dispatchUpdate('optim_adagrad', args, {}, () => [
      f32(a.live.lr / (1 + (a.live.step - 1) * a.lrDecay)),
      f32(a.weightDecay),
      f32(a.eps),
    ]);
  },
  samples: () => {
    const a = (lr: number, step: number, o: Partial<Omit<AdagradAttrs, 'live'>> = {}): AdagradAttrs => ({
      live: { lr, step },
      lrDecay: 0,
      weightDecay: 0,
      eps: 1e-10,
      ...o,
    });
    const sum: [number, number] = [0, 1];
    return updateSamples([
      { label: 'lr 0.1, first step', attrs: a(0.1, 1), slots: [sum] },
      { label: 'lrDecay 0.1, step 5', attrs: a(0.1, 5, { lrDecay: 0.1 }), slots: [sum] },
      { label: 'weightDecay 0.01', attrs: a(0.1, 2, { weightDecay: 0.01 }), slots: [sum] },
      { label: 'sum from 0', attrs: a(0.1, 1), slots: [[0, 0]] },
      { label: 'initialAccumulatorValue 0.1', attrs: a(0.1, 1), slots: [[0.1, 0.1]] },
      {
        label: 'lr 0.5 lrDecay 0.01 eps 1e-3, step 100',
        attrs: a(0.5, 100, { lrDecay: 0.01, eps: 1e-3 }),
        slots: [sum],
      },
      { label: 'clip scale 0.5', attrs: a(0.1, 3), slots: [sum], scale: 0.5 },
      {
        label: 'lrDecay 0.5 weightDecay 0.1, clip scale 2',
        attrs: a(0.1, 2, { lrDecay: 0.5, weightDecay: 0.1 }),
        slots: [sum],
        scale: 2,
      },
      ...checkCases(a(0.1, 3, { lrDecay: 0.1, weightDecay: 0.01 }), [sum]),
    ]);
  },
  // f32 against float64: dividing by √sum + eps magnifies rounding (worst seen: 1.2e-6 relative).
  tol: { atol: 1e-6, rtol: 1e-5 },
});

export interface AdagradOptions extends CommonOptions {
  /** Learning rate or schedule (default 1e-2, as PyTorch). */
  lr?: number | Schedule;
  /** Per-step decay of the rate: lr / (1 + (t − 1)·lrDecay) (default 0). */
  lrDecay?: number;
  /** L2 penalty λ, added to the gradient as λ·p (default 0). */
  weightDecay?: number;
  /** Starting value of the squared-gradient sum (default 0). */
  initialAccumulatorValue?: number;
  /** Added to the denominator after the square root (default 1e-10). */
  eps?: number;
}

/** Adagrad, as torch.optim.Adagrad. */
export class Adagrad extends Optimizer {
  readonly lrDecay: number;
  readonly weightDecay: number;
  readonly eps: number;
  protected readonly slots: readonly Slot[];

  constructor(opts: AdagradOptions = {}) {
    super(
      'adagrad',
      Optimizer.options('adagrad', opts, ['lr', 'lrDecay', 'weightDecay', 'initialAccumulatorValue', 'eps']).lr ?? 1e-2,
      opts.globalClipnorm,
    );
    this.lrDecay = checkRange('adagrad', 'lrDecay', opts.lrDecay ?? 0, { min: 0 });
    this.weightDecay = checkRange('adagrad', 'weightDecay', opts.weightDecay ?? 0, { min: 0 });
    this.eps = checkRange('adagrad', 'eps', opts.eps ?? 1e-10, { above: 0 });
    const init = checkRange('adagrad', 'initialAccumulatorValue', opts.initialAccumulatorValue ?? 0, { min: 0 });
    this.slots = [{ name: 'sum', init, used: true }];
  }

  protected update(targets: Tensor[], inputs: Tensor[], live: Live, seq: (() => number) | undefined): void {
    const { lrDecay, weightDecay, eps } = this;
    applyInPlace(adagradKernel, targets, inputs, { live, seq, lrDecay, weightDecay, eps });
  }
}

/** Adagrad: `adagrad(0.1)`, `adagrad(schedule)` or `adagrad({ lr, lrDecay, initialAccumulatorValue, eps })`. */
export function adagrad(opts: number | Schedule | AdagradOptions = {}): Adagrad {
  return new Adagrad(typeof opts === 'object' ? opts : { lr: opts });
}
