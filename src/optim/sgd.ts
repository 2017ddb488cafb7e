// SGD with momentum, dampening, Nesterov momentum and L2 weight decay, as torch.optim.SGD: the fused kernel
// (shaders/optim_sgd.wgsl) beside its CPU reference, and the optimizer that runs it.
import { f32, u32 } from '../backend/kernel.js';
import { applyInPlace } from '../ops/apply.js';
import { defineInPlace } from '../ops/inplace.js';
import type { Tensor } from '../tensor.js';
import { checkCases, cpuCheck, cpuGrad, dispatchUpdate, updateSamples, type Live, type UpdateAttrs } from './kernel.js';
import { Optimizer, checkRange, type CommonOptions, type Slot } from './optimizer.js';
import type { Schedule } from './schedules.js';
import { WgnnError } from '../errors.js';

export interface SgdAttrs extends UpdateAttrs {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
}

// targets: param [n], momentum_buffer [n] (a [1] placeholder when momentum = 0), flag [1]; inputs: grad [n], scale [1]?
// NOTE: as torch.optim.SGD, weight decay is L2 (λ·p added to the gradient) and the momentum buffer starts as a copy
// of the first gradient (no dampening on that step), then buf = μ·buf + (1 − dampening)·g.
export const sgdKernel = defineInPlace<SgdAttrs>({
  name: 'sgd',
  cpu: ({ targets, inputs, attrs: a }) => {
    const p = targets[0]!.data;
    const buf = targets[1]!.data;
    const grad = cpuGrad(inputs);
    for (let i = 0; i < p.length; i++) {
      let g = grad(i);
      if (a.weightDecay !== 0) g += a.weightDecay * p[i]!;
      if (a.momentum !== 0) {
        buf[i] = a.live.step === 1 ? g : a.momentum * buf[i]! + (1 - a.dampening) * g;
        g = a.nesterov ? g + a.momentum * buf[i]! : buf[i]!;
      }
      p[i] = p[i]! - a.live.lr * g;
    }
    cpuCheck(targets, a.seq);
  },
  gpu: (args) => {
    const a = args.attrs;
    dispatchUpdate('optim_sgd', args, { MOMENTUM: a.momentum !== 0, NESTEROV: a.nesterov }, () => [
      f32(a.live.lr),
      f32(a.weightDecay),
      f32(a.momentum),
      f32(1 - a.dampening),
      u32(a.live.step === 1 ? 1 : 0),
    ]);
  },
  samples: () => {
    const a = (lr: number, step: number, o: Partial<Omit<SgdAttrs, 'live'>> = {}): SgdAttrs => ({
      live: { lr, step },
      momentum: 0,
      dampening: 0,
      nesterov: false,
      weightDecay: 0,
      ...o,
    });
    const buf: [number, number] = [-1, 1];
    return updateSamples([
      { label: 'lr 0.1', attrs: a(0.1, 1), slots: [null] },
      { label: 'weightDecay 0.01', attrs: a(0.05, 3, { weightDecay: 0.01 }), slots: [null] },
      { label: 'momentum 0.9, first step (buffer = g)', attrs: a(0.1, 1, { momentum: 0.9 }), slots: [buf] },
      {
        label: 'momentum 0.9 dampening 0.3 weightDecay 0.01',
        attrs: a(0.05, 3, { momentum: 0.9, dampening: 0.3, weightDecay: 0.01 }),
        slots: [buf],
      },
      {
        label: 'nesterov 0.9 weightDecay 0.1',
        attrs: a(0.05, 2, { momentum: 0.9, nesterov: true, weightDecay: 0.1 }),
        slots: [buf],
      },
      { label: 'nesterov 0.5, first step', attrs: a(0.1, 1, { momentum: 0.5, nesterov: true }), slots: [buf] },
      { label: 'momentum 0.9, clip scale 0.25', attrs: a(0.1, 4, { momentum: 0.9 }), slots: [buf], scale: 0.25 },
      { label: 'clip scale 0.5', attrs: a(0.1, 2), slots: [null], scale: 0.5 },
      // 3e38 + 1e38 rounds to +Inf in f32 (and in the CPU reference's f32 store).
      {
        label: 'check: a finite update overflowing to +Inf',
        attrs: a(1e38, 2),
        slots: [null],
        last: { param: 3e38, grad: -1 },
      },
      ...checkCases(a(0.05, 3, { momentum: 0.9, weightDecay: 0.01 }), [buf]),
    ]);
  },
  // One f32 update against float64 (worst seen: 7e-7 relative).
  tol: { atol: 1e-6, rtol: 1e-5 },
});

export interface SgdOptions extends CommonOptions {
  /** Learning rate or schedule (default 1e-3, as PyTorch). */
  lr?: number | Schedule;
  /** Momentum factor μ (default 0: no momentum buffer). */
  momentum?: number;
  /** Dampening of the gradient in the momentum buffer (default 0). */
  dampening?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0, as PyTorch). */
  nesterov?: boolean;
  /** L2 penalty λ, added to the gradient as λ·p (default 0). */
  weightDecay?: number;
}

/** Stochastic gradient descent, as torch.optim.SGD. */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  protected readonly slots: readonly Slot[];

  constructor(opts: SgdOptions = {}) {
    super(
      'sgd',
      Optimizer.options('sgd', opts, ['lr', 'momentum', 'dampening', 'nesterov', 'weightDecay']).lr ?? 1e-3,
      opts.globalClipnorm,
    );
    this.momentum = checkRange('sgd', 'momentum', opts.momentum ?? 0, { min: 0 });
    this.dampening = checkRange('sgd', 'dampening', opts.dampening ?? 0, { min: 0, max: 1 });
    this.weightDecay = checkRange('sgd', 'weightDecay', opts.weightDecay ?? 0, { min: 0 });
    this.nesterov = Optimizer.flag('sgd', 'nesterov', opts.nesterov, false);
    if (this.nesterov && (this.momentum === 0 || this.dampening !== 0)) {
      throw new WgnnError(
        `sgd: Nesterov momentum needs momentum > 0 and dampening 0, got momentum ${this.momentum}, dampening ${this.dampening}`,
      );
    }
    this.slots = [{ name: 'momentum_buffer', init: 0, used: this.momentum !== 0 }];
  }

  protected update(targets: Tensor[], inputs: Tensor[], live: Live, seq: (() => number) | undefined): void {
    const { momentum, dampening, nesterov, weightDecay } = this;
    applyInPlace(sgdKernel, targets, inputs, { live, seq, momentum, dampening, nesterov, weightDecay });
  }
}

/** SGD: `sgd(0.1)`, `sgd(schedule)` or `sgd({ lr, momentum, nesterov, weightDecay })`. */
export function sgd(opts: number | Schedule | SgdOptions = {}): SGD {
  return new SGD(typeof opts === 'object' ? opts : { lr: opts });
}
