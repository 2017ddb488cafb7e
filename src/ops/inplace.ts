// In-place updates outside the optimizers: state that must stay in one buffer so a captured step can replay it.
import type { InPlaceKernel } from '../backend/backend.js';
import { f32, grid1d, u32 } from '../backend/kernel.js';
import { ShapeError, fmtShape } from '../errors.js';
import { sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { applyInPlace } from './apply.js';

/** avg [n] = momentum · avg + (1 − momentum) · x [n], in float64 on the CPU. */
export const emaUpdate: InPlaceKernel<{ momentum: number }> = {
  name: 'ema_update',
  cpu: ({ targets: [avg], inputs: [x], attrs }) => {
    const m = attrs.momentum;
    for (let i = 0; i < avg!.data.length; i++) avg!.data[i] = m * avg!.data[i]! + (1 - m) * x!.data[i]!;
  },
  gpu: ({ targets: [avg], inputs: [x], attrs, ctx }) => {
    const n = avg!.shape.reduce((a, b) => a * b, 1);
    ctx.dispatch({
      shader: 'ema_update',
      overrides: { WG: 64 },
      workgroups: grid1d(n, 64, ctx.limits.maxComputeWorkgroupsPerDimension),
      outputs: [avg!],
      inputs: [x!],
      uniforms: [u32(n), f32(attrs.momentum)],
    });
  },
};

/** Moves the running average `avg` towards `x` in place (`avg` keeps its buffer). */
export function emaInPlace(avg: Tensor, x: Tensor, momentum: number): void {
  if (!sameShape(avg.shape, x.shape)) throw new ShapeError(`ema_update: average ${fmtShape(avg.shape)} and value ${fmtShape(x.shape)} differ`);
  applyInPlace(emaUpdate, [avg], [x], { momentum });
}
