// max_pool2d (+ argmax) / avg_pool2d and their input gradients on the wasm backend (assembly/pool.ts). Every output
// element is computed by one task from its own inputs (the max backward by units of image and channel block that own
// their part of dx), so the task count only sets the speed.
import type { AvgPool2dAttrs, AvgPool2dBwdAttrs, Pool2dAttrs, Pool2dBwdAttrs } from '../../../ops/pool.js';
import type { OpName } from '../../../ops/registry.js';
import { pair, slideWindow } from '../../../ops/window.js';
import type { Shape } from '../../../shape.js';
import type { WasmKernel } from '../kernel.js';
import { MAX_TASKS } from './matmul.js';

/** x [N,H,W,C] and the window as the op's shape rule resolved them (it has already checked them). */
function geometry(op: string, xs: Shape, a: Pool2dAttrs) {
  const [N, H, W, C] = xs as [number, number, number, number];
  const [kh, kw] = pair(a.poolSize);
  const win = slideWindow(
    op,
    'x',
    H,
    W,
    [kh, kw],
    { stride: a.strides ?? a.poolSize, dilation: 1, padding: a.padding },
    { noun: 'window', strideAttr: 'strides', padBelowSize: true },
  );
  return { N, H, W, C, kh, kw, ...win };
}
type Geom = ReturnType<typeof geometry>;

/** The geometry words of the pooling kernels, in their argument order. */
const words = (g: Geom): number[] => [g.N, g.H, g.W, g.C, g.P, g.Q, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl];

/** Tasks for `units` units of `work` element reads each: one per 32 Ki reads. */
const tasksFor = (units: number, work: number): number =>
  Math.max(1, Math.min(units, MAX_TASKS, Math.ceil((units * work) / 32768)));

// y, argmax [N,P,Q,C] from x [N,H,W,C].
const maxPool: WasmKernel<Pool2dAttrs> = (ctx) => {
  const g = geometry('max_pool2d', ctx.inputs[0]!.shape, ctx.attrs);
  if (g.N * g.C === 0) return;
  const args = [ctx.inputs[0]!.ptr, ctx.out.ptr, ctx.aux!.ptr, ...words(g)];
  ctx.parallel('max_pool2d', args, tasksFor(g.N * g.P, g.Q * g.C * g.kh * g.kw));
};

// y [N,P,Q,C] from x [N,H,W,C].
const avgPool: WasmKernel<AvgPool2dAttrs> = (ctx) => {
  const g = geometry('avg_pool2d', ctx.inputs[0]!.shape, ctx.attrs);
  if (g.N * g.C === 0) return;
  const args = [ctx.inputs[0]!.ptr, ctx.out.ptr, ...words(g), +ctx.attrs.countIncludePad];
  ctx.parallel('avg_pool2d', args, tasksFor(g.N * g.P, g.Q * g.C * g.kh * g.kw));
};

// dx [N,H,W,C] from dy, argmax [N,P,Q,C]: in the forward y was x at argmax, so dy goes back there.
const maxPoolBwd: WasmKernel<Pool2dBwdAttrs> = (ctx) => {
  const g = geometry('max_pool2d_bwd_x', ctx.attrs.xShape, ctx.attrs);
  if (g.N * g.C === 0) return;
  const [dy, arg] = ctx.inputs;
  if (g.kh <= g.sh && g.kw <= g.sw) {
    // Windows do not overlap: a gather, one pass over dx (the seed CNN's [64,26,26,32] pool 2: 0.9 -> 0.5 ms CPU time).
    const args = [dy!.ptr, arg!.ptr, ctx.out.ptr, ...words(g)];
    ctx.parallel('max_pool2d_bwd_window', args, tasksFor(g.N * g.H, g.W * g.C));
    return;
  }
  const units = g.N * Math.ceil(g.C / 32);
  const args = [dy!.ptr, arg!.ptr, ctx.out.ptr, g.N, g.H, g.W, g.C, g.P, g.Q];
  ctx.parallel('max_pool2d_bwd_x', args, tasksFor(units, Math.min(g.C, 32) * (g.H * g.W + g.P * g.Q)));
};

// dx [N,H,W,C] from dy [N,P,Q,C]: in the forward y was the window's mean, so each element gets dy / count back.
const avgPoolBwd: WasmKernel<AvgPool2dBwdAttrs> = (ctx) => {
  const g = geometry('avg_pool2d_bwd_x', ctx.attrs.xShape, ctx.attrs);
  if (g.N * g.C === 0) return;
  const args = [ctx.inputs[0]!.ptr, ctx.out.ptr, ...words(g), +ctx.attrs.countIncludePad];
  ctx.parallel('avg_pool2d_bwd_x', args, tasksFor(g.N * g.H, g.W * g.C * g.kh * g.kw));
};

/** The wasm kernels of src/ops/pool.ts. */
export const poolKernels = {
  max_pool2d: maxPool,
  max_pool2d_bwd_x: maxPoolBwd,
  avg_pool2d: avgPool,
  avg_pool2d_bwd_x: avgPoolBwd,
} satisfies Partial<Record<OpName, WasmKernel<never>>>;
