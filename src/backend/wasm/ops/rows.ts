// Row ops on the WASM backend (assembly/rows.ts): softmax and log_softmax over the last axis, softmax
// cross-entropy forward and backward, count_correct, layer_norm forward and backward, and the reductions. Tasks take whole rows (outputs), by size alone.
import type { CrossEntropyAttrs } from '../../../ops/loss.js';
import type { CountCorrectAttrs } from '../../../ops/metrics.js';
import type { ArgmaxAttrs, ReduceAttrs } from '../../../ops/reduce.js';
import type { SoftmaxAttrs } from '../../../ops/softmax.js';
import { normAxes, sizeOf, stridesOf, type Shape } from '../../../shape.js';
import type { WasmCtx, WasmKernel } from '../kernel.js';
import { CHUNK, rowTasks } from './common.js';

/** Rows and row length of a tensor over its last axis. */
const rowsOf = (shape: Shape): { rows: number; n: number } => {
  const n = shape[shape.length - 1] ?? 1;
  return { rows: n === 0 ? 0 : sizeOf(shape) / n, n };
};

const softmax =
  (log: 0 | 1): WasmKernel<SoftmaxAttrs> =>
  ({ inputs: [x], out, parallel }) => {
    const { rows, n } = rowsOf(x!.shape);
    if (rows > 0) parallel('softmax_rows', [out.ptr, x!.ptr, rows, n, log], rowTasks(rows, n));
  };

// loss [rows] from logits x [rows, n] and labels t ([rows] int32 sparse, or [rows, n])
const ceFwd: WasmKernel<CrossEntropyAttrs> = ({ inputs: [x, t], out, attrs, parallel }) => {
  const { rows, n } = rowsOf(x!.shape);
  if (rows > 0) parallel('ce_fwd', [out.ptr, x!.ptr, t!.ptr, rows, n, attrs.sparse ? 1 : 0], rowTasks(rows, n));
};

// dx [rows, n] from x, t and dy [rows]
const ceBwd: WasmKernel<CrossEntropyAttrs> = ({ inputs: [x, t, dy], out, attrs, parallel }) => {
  const { rows, n } = rowsOf(x!.shape);
  if (rows > 0) {
    parallel('ce_bwd', [out.ptr, x!.ptr, t!.ptr, dy!.ptr, rows, n, attrs.sparse ? 1 : 0], rowTasks(rows, n));
  }
};

// count [1] of rows whose prediction's argmax is the label (pred [..., C], or [B] with the threshold rule)
const countCorrect: WasmKernel<CountCorrectAttrs> = ({ inputs: [pred, target], out, attrs, parallel }) => {
  const s = pred!.shape;
  const { rows, c } = s.length > 1 ? { rows: sizeOf(s.slice(0, -1)), c: s[s.length - 1]! } : { rows: s[0] ?? 1, c: 1 };
  const intTarget = target!.dtype === 'int32' ? 1 : 0;
  parallel('count_correct', [out.ptr, pred!.ptr, target!.ptr, rows, c, intTarget, attrs.threshold], 1);
};

// layer_norm: x [..., n], γ [n], β [n] -> y [..., n], stats [..., 2] (aux)
const layerNorm: WasmKernel<{ eps: number }> = ({ inputs: [x, g, b], out, aux, attrs, parallel }) => {
  const { rows, n } = rowsOf(x!.shape);
  if (rows > 0) {
    parallel('layer_norm', [out.ptr, aux!.ptr, x!.ptr, g!.ptr, b!.ptr, rows, n, attrs.eps], rowTasks(rows, n));
  }
};

// dx [..., n] from dy, x, γ and the stats
const layerNormBwdX: WasmKernel<object> = ({ inputs: [dy, x, g, st], out, parallel }) => {
  const { rows, n } = rowsOf(x!.shape);
  if (rows > 0) parallel('layer_norm_bwd_x', [out.ptr, dy!.ptr, x!.ptr, g!.ptr, st!.ptr, rows, n], rowTasks(rows, n));
};

// [2, n] = (dγ, dβ) from dy, x and the stats; tasks over columns, each summing its rows in order
const layerNormBwdParams: WasmKernel<object> = ({ inputs: [dy, x, st], out, parallel }) => {
  const { rows, n } = rowsOf(x!.shape);
  const args = [out.ptr, dy!.ptr, x!.ptr, st!.ptr, rows, n];
  parallel('layer_norm_bwd_params', args, Math.max(1, Math.min(n, Math.ceil((rows * n) / CHUNK))));
};

const REDUCE_CODE = { sum: 0, mean: 1, max: 2, argmax: 3 } as const;

/**
 * x's dims split into kept and reduced runs (outermost first), size-1 dims dropped and neighbours of one kind
 * merged; each run with its element stride in x.
 */
function runs(shape: Shape, axes: readonly number[]): { kept: number[][]; red: number[][] } {
  const st = stridesOf(shape);
  const kept: number[][] = [];
  const red: number[][] = [];
  let last: { run: number[]; reduced: boolean } | undefined;
  shape.forEach((size, d) => {
    if (size === 1) return;
    const reduced = axes.includes(d);
    if (last && last.reduced === reduced) {
      last.run[0]! *= size;
      last.run[1] = st[d]!;
    } else {
      last = { run: [size, st[d]!], reduced };
      (reduced ? red : kept).push(last.run);
    }
  });
  return { kept, red };
}

const reduce =
  (name: keyof typeof REDUCE_CODE) =>
  ({ inputs: [x], out, parallel, ints }: WasmCtx<unknown>, axesAttr: number | readonly number[] | undefined) => {
    // NOTE: a rank-0 tensor has no dims, so nothing is reduced (as the reference).
    const axes = x!.shape.length === 0 ? [] : normAxes(name, axesAttr, x!.shape);
    const { kept, red } = runs(x!.shape, axes);
    const nOut = sizeOf(out.shape);
    const nRed = sizeOf(axes.map((a) => x!.shape[a]!));
    // x [R, C] summed over R (a bias gradient): eight columns at a time, the same sums bit for bit.
    const [k0] = kept;
    const [r0] = red;
    if (
      (name === 'sum' || name === 'mean') &&
      kept.length === 1 &&
      red.length === 1 &&
      k0![1] === 1 &&
      r0![1] === k0![0]
    ) {
      parallel('sum_rows', [out.ptr, x!.ptr, r0![0]!, k0![0]!, name === 'mean' ? 1 : 0], rowTasks(k0![0]!, r0![0]!));
      return;
    }
    const desc = ints([
      kept.length,
      ...kept.map((r) => r[0]!),
      ...kept.map((r) => r[1]!),
      red.length,
      ...red.map((r) => r[0]!),
      ...red.map((r) => r[1]!),
    ]);
    if (nOut > 0) parallel('reduce', [REDUCE_CODE[name], out.ptr, x!.ptr, nOut, nRed, desc], rowTasks(nOut, nRed));
  };

export const rowKernels = {
  softmax: softmax(0),
  log_softmax: softmax(1),
  softmax_cross_entropy: ceFwd,
  softmax_cross_entropy_bwd_x: ceBwd,
  count_correct: countCorrect,
  layer_norm: layerNorm,
  layer_norm_bwd_x: layerNormBwdX,
  layer_norm_bwd_params: layerNormBwdParams,
  sum: ((ctx) => reduce('sum')(ctx, ctx.attrs.axes)) as WasmKernel<ReduceAttrs>,
  mean: ((ctx) => reduce('mean')(ctx, ctx.attrs.axes)) as WasmKernel<ReduceAttrs>,
  max: ((ctx) => reduce('max')(ctx, ctx.attrs.axes)) as WasmKernel<ReduceAttrs>,
  argmax: ((ctx) => reduce('argmax')(ctx, ctx.attrs.axis)) as WasmKernel<ArgmaxAttrs>,
};
