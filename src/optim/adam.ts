// Adam and AdamW, as torch.optim.Adam and torch.optim.AdamW: the fused kernel (shaders/optim_adam.wgsl) beside its
// CPU reference, and the optimizer that runs it. AdamW is Adam with decoupled weight decay.
import { f32 } from '../backend/kernel.js';
import { applyInPlace } from '../ops/apply.js';
import { defineInPlace } from '../ops/inplace.js';
import type { Tensor } from '../tensor.js';
import { checkCases, cpuCheck, cpuGrad, dispatchUpdate, updateSamples, type Live, type UpdateAttrs } from './kernel.js';
import { Optimizer, checkRange, type CommonOptions, type Slot } from './optimizer.js';
import type { Schedule } from './schedules.js';

export interface AdamAttrs extends UpdateAttrs {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
}

// targets: param [n], exp_avg [n], exp_avg_sq [n], flag [1]; inputs: grad [n], scale [1]?
// NOTE: as PyTorch, Adam's weight decay is L2 (λ·p added to the gradient) and AdamW's is decoupled (p ← p·(1 − lr·λ)
// before the update); both bias-correct, and eps is added after dividing √v by √(1 − β2^t).
export const adamKernel = defineInPlace<AdamAttrs>({
  name: 'adam',
  cpu: ({ targets, inputs, attrs: a }) => {
    const p = targets[0]!.data;
    const m = targets[1]!.data;
    const v = targets[2]!.data;
    const grad = cpuGrad(inputs);
    const bc1 = 1 - a.beta1 ** a.live.step;
    const bc2 = 1 - a.beta2 ** a.live.step;
    for (let i = 0; i < p.length; i++) {
      let g = grad(i);
      let x = p[i]!;
      if (a.decoupled) x *= 1 - a.live.lr * a.weightDecay;
      else if (a.weightDecay !== 0) g += a.weightDecay * x;
      m[i] = m[i]! + (1 - a.beta1) * (g - m[i]!);
      v[i] = a.beta2 * v[i]! + (1 - a.beta2) * g * g;
      p[i] = x - ((a.live.lr / bc1) * m[i]!) / (Math.sqrt(v[i]!) / Math.sqrt(bc2) + a.eps);
    }
    cpuCheck(targets, a.seq);
  },
  gpu: (args) => {
    const a = args.attrs;
    dispatchUpdate('optim_adam', args, {}, () => [
      f32(a.decoupled ? 0 : a.weightDecay),
      f32(a.decoupled ? 1 - a.live.lr * a.weightDecay : 1),
      f32(1 - a.beta1),
      f32(a.beta2),
      f32(1 - a.beta2),
      f32(a.live.lr / (1 - a.beta1 ** a.live.step)),
      f32(Math.sqrt(1 - a.beta2 ** a.live.step)),
      f32(a.eps),
    ]);
  },
  samples: () => {
    const a = (lr: number, step: number, o: Partial<Omit<AdamAttrs, 'live'>> = {}): AdamAttrs => ({
      live: { lr, step },
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0,
      decoupled: false,
      ...o,
    });
    const slots: [number, number][] = [
      [-1, 1],
      [0, 1],
    ]; // exp_avg, exp_avg_sq (>= 0)
    return updateSamples([
      { label: 'lr 1e-3, first step', attrs: a(1e-3, 1), slots },
      { label: 'lr 0.01, step 5', attrs: a(0.01, 5), slots },
      {
        label: 'betas [0.8,0.99] eps 1e-6 weightDecay 0.1 (L2)',
        attrs: a(0.01, 2, { beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 }),
        slots,
      },
      { label: 'adamw weightDecay 0.01, first step', attrs: a(1e-3, 1, { weightDecay: 0.01, decoupled: true }), slots },
      { label: 'adamw weightDecay 0.1, step 10', attrs: a(0.01, 10, { weightDecay: 0.1, decoupled: true }), slots },
      { label: 'step 1000 (bias corrections near 1)', attrs: a(1e-3, 1000), slots },
      { label: 'clip scale 0.5', attrs: a(0.01, 3), slots, scale: 0.5 },
      {
        label: 'adamw eps 0.1, clip scale 2',
        attrs: a(0.01, 2, { eps: 0.1, weightDecay: 0.01, decoupled: true }),
        slots,
        scale: 2,
      },
      ...checkCases(a(0.01, 5, { weightDecay: 0.1 }), slots),
    ]);
  },
  // f32 against float64: dividing by √v + eps magnifies rounding (worst seen: 3e-6 relative).
  tol: { atol: 1e-6, rtol: 1e-5 },
});

export interface AdamOptions extends CommonOptions {
  /** Learning rate or schedule (default 1e-3). */
  lr?: number | Schedule;
  /** Decay rates (β1, β2) of the first and second moment averages (default [0.9, 0.999]). */
  betas?: readonly [number, number];
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** Weight decay λ (default 0 for Adam, 1e-2 for AdamW). */
  weightDecay?: number;
  /** AdamW: decay the parameter by lr·λ instead of adding λ·p to the gradient (PyTorch's decoupled_weight_decay). */
  decoupledWeightDecay?: boolean;
}

/** Adam, as torch.optim.Adam (and AdamW with `decoupledWeightDecay`, as torch.optim.AdamW). */
export class Adam extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly decoupled: boolean;
  protected readonly slots: readonly Slot[] = [
    { name: 'exp_avg', init: 0, used: true },
    { name: 'exp_avg_sq', init: 0, used: true },
  ];

  constructor(opts: AdamOptions = {}) {
    const name = (opts as AdamOptions | null)?.decoupledWeightDecay === true ? 'adamw' : 'adam';
    super(
      name,
      Optimizer.options(name, opts, ['lr', 'betas', 'eps', 'weightDecay', 'decoupledWeightDecay']).lr ?? 1e-3,
      opts.globalClipnorm,
    );
    const [b1, b2] = Optimizer.tuple(name, 'betas', opts.betas ?? [0.9, 0.999], 2);
    this.beta1 = checkRange(name, 'betas[0]', b1, { min: 0, below: 1 });
    this.beta2 = checkRange(name, 'betas[1]', b2, { min: 0, below: 1 });
    this.eps = checkRange(name, 'eps', opts.eps ?? 1e-8, { above: 0 });
    this.weightDecay = checkRange(name, 'weightDecay', opts.weightDecay ?? 0, { min: 0 });
    this.decoupled = Optimizer.flag(name, 'decoupledWeightDecay', opts.decoupledWeightDecay, false);
  }

  protected update(targets: Tensor[], inputs: Tensor[], live: Live, seq: (() => number) | undefined): void {
    const { beta1, beta2, eps, weightDecay, decoupled } = this;
    applyInPlace(adamKernel, targets, inputs, { live, seq, beta1, beta2, eps, weightDecay, decoupled });
  }
}

/** Adam: `adam(1e-3)`, `adam(schedule)` or `adam({ lr, betas, eps, weightDecay })`. */
export function adam(opts: number | Schedule | AdamOptions = {}): Adam {
  return new Adam(typeof opts === 'object' ? opts : { lr: opts });
}

/** AdamW (decoupled weight decay, default λ = 1e-2 as PyTorch): `adamw(1e-3)` or `adamw({ lr, weightDecay })`. */
export function adamw(opts: number | Schedule | Omit<AdamOptions, 'decoupledWeightDecay'> = {}): Adam {
  if (typeof opts !== 'object') return new Adam({ lr: opts, weightDecay: 1e-2, decoupledWeightDecay: true });
  // null or an array goes on as it is, for Adam's options check to name it.
  return new Adam(
    opts === null || Array.isArray(opts)
      ? opts
      : { ...opts, weightDecay: opts.weightDecay ?? 1e-2, decoupledWeightDecay: true },
  );
}
