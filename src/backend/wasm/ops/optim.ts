// The in-place kernels on the WASM backend (assembly/optim.ts): fused optimizer updates with the WebGPU kernels'
// f32 arithmetic and uniforms (src/optim/*.ts), the running sums and averages, anomaly mode's check. Targets are
// [param, ...state slots, flag]; inputs [grad, clip scale?]; a slot the options leave unused is a [1] placeholder.
import type { AnomalyCheckAttrs } from '../../../ops/inplace.js';
import type { AdagradAttrs } from '../../../optim/adagrad.js';
import type { AdamAttrs } from '../../../optim/adam.js';
import type { UpdateAttrs } from '../../../optim/kernel.js';
import type { RmspropAttrs } from '../../../optim/rmsprop.js';
import type { SgdAttrs } from '../../../optim/sgd.js';
import { sizeOf } from '../../../shape.js';
import type { WasmInPlaceCtx, WasmInPlaceKernel } from '../kernel.js';
import { tasksFor } from './common.js';

/** One update over targets[0]: its pointers and the common arguments [flag, grad, scale, n, check, seq]. */
function update<A extends UpdateAttrs>(
  fn: string,
  { targets, inputs, attrs, parallel }: WasmInPlaceCtx<A>,
  own: readonly number[],
): void {
  const n = sizeOf(targets[0]!.shape);
  const flag = targets[targets.length - 1]!.ptr;
  const slots = targets.slice(0, -1).map((t) => t.ptr);
  const seq = attrs.seq ? attrs.seq() : 0;
  const common = [flag, inputs[0]!.ptr, inputs[1]?.ptr ?? 0, n, attrs.seq ? 1 : 0, seq];
  parallel(fn, [...slots, ...common, ...own], tasksFor(n));
}

export const optimKernels = {
  adam: ((ctx) => {
    const a = ctx.attrs;
    update('optim_adam', ctx, [
      a.decoupled ? 0 : a.weightDecay,
      a.decoupled ? 1 - a.live.lr * a.weightDecay : 1,
      1 - a.beta1,
      a.beta2,
      1 - a.beta2,
      a.live.lr / (1 - a.beta1 ** a.live.step),
      Math.sqrt(1 - a.beta2 ** a.live.step),
      a.eps,
    ]);
  }) as WasmInPlaceKernel<AdamAttrs>,
  sgd: ((ctx) => {
    const a = ctx.attrs;
    update('optim_sgd', ctx, [
      a.live.lr,
      a.weightDecay,
      a.momentum,
      1 - a.dampening,
      a.live.step === 1 ? 1 : 0,
      a.momentum !== 0 ? 1 : 0,
      a.nesterov ? 1 : 0,
    ]);
  }) as WasmInPlaceKernel<SgdAttrs>,
  rmsprop: ((ctx) => {
    const a = ctx.attrs;
    update('optim_rmsprop', ctx, [
      a.live.lr,
      a.weightDecay,
      a.alpha,
      1 - a.alpha, // in float64, as PyTorch
      a.eps,
      a.momentum,
      a.centered ? 1 : 0,
      a.momentum > 0 ? 1 : 0,
    ]);
  }) as WasmInPlaceKernel<RmspropAttrs>,
  adagrad: ((ctx) => {
    const a = ctx.attrs;
    update('optim_adagrad', ctx, [a.live.lr / (1 + (a.live.step - 1) * a.lrDecay), a.weightDecay, a.eps]);
  }) as WasmInPlaceKernel<AdagradAttrs>,
  // acc [n] += x [n]
  accumulate: (({ targets: [acc], inputs: [x], parallel }) => {
    const n = sizeOf(acc!.shape);
    parallel('accumulate', [acc!.ptr, x!.ptr, n], tasksFor(n));
  }) as WasmInPlaceKernel<object>,
  ema_update: (({ targets: [avg], inputs: [x], attrs, parallel }) => {
    const n = sizeOf(avg!.shape);
    parallel('ema_update', [avg!.ptr, x!.ptr, n, attrs.momentum], tasksFor(n));
  }) as WasmInPlaceKernel<{ momentum: number }>,
  anomaly_check: (({ targets: [flag], inputs: [x], attrs, parallel }) => {
    const n = sizeOf(x!.shape);
    parallel('anomaly_check', [flag!.ptr, x!.ptr, n, attrs.seq()], tasksFor(n));
  }) as WasmInPlaceKernel<AnomalyCheckAttrs>,
};
