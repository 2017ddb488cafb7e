// Layout ops on the WASM backend: reshape (an alias), transpose, slice and broadcast_to are one strided copy (assembly/elementwise.ts
// copy_strided) over the output's coalesced dims; concat is one copy per input into its columns of the output.
// 4-byte elements, so int32 tensors go through the same kernel.
import { concatShape, permOf, sliceRange } from '../../../ops/layout.js';
import type { BroadcastToAttrs, ConcatAttrs, SliceAttrs, TransposeAttrs } from '../../../ops/layout.js';
import { broadcastStrides, sizeOf, stridesOf, type Shape } from '../../../shape.js';
import type { WasmCtx, WasmKernel } from '../kernel.js';
import { coalesce, rowTasks } from './common.js';

/** y [out.shape] = x read from element `offset` with `strides` per output dim. */
function stridedCopy(ctx: WasmCtx<unknown>, src: number, offset: number, strides: readonly number[]): void {
  const { out } = ctx;
  if (sizeOf(out.shape) === 0) return;
  const sp = coalesce(out.shape, [strides, stridesOf(out.shape)]);
  const inner = sp.dims.pop() ?? 1;
  const s = sp.strides[0]!;
  const si = s.pop() ?? 0;
  const rows = sizeOf(sp.dims);
  const desc = ctx.ints([sp.dims.length, ...sp.dims, ...s]);
  ctx.parallel('copy_strided', [out.ptr, src + 4 * offset, rows, inner, si, inner, desc], rowTasks(rows, inner));
}

const permuted = (x: Shape, perm: readonly number[]) => perm.map((p) => stridesOf(x)[p]!);

export const layoutKernels = {
  // reshape is an alias (apply makes a view and runs nothing); were it run, its copy is the flat one.
  reshape: ((ctx) => stridedCopy(ctx, ctx.inputs[0]!.ptr, 0, stridesOf(ctx.out.shape))) as WasmKernel<object>,
  transpose: ((ctx) => {
    const x = ctx.inputs[0]!;
    stridedCopy(ctx, x.ptr, 0, permuted(x.shape, permOf(x.shape, ctx.attrs.perm)));
  }) as WasmKernel<TransposeAttrs>,
  slice: ((ctx) => {
    const x = ctx.inputs[0]!;
    const { begin } = sliceRange(x.shape, ctx.attrs);
    const st = stridesOf(x.shape);
    stridedCopy(
      ctx,
      x.ptr,
      begin.reduce((o, b, k) => o + b * st[k]!, 0),
      st,
    );
  }) as WasmKernel<SliceAttrs>,
  broadcast_to: ((ctx) => {
    const x = ctx.inputs[0]!;
    stridedCopy(ctx, x.ptr, 0, broadcastStrides(x.shape, ctx.out.shape));
  }) as WasmKernel<BroadcastToAttrs>,
  // y [outer, Σ len_k] where input k [outer, len_k] lands at its column offset.
  concat: (({ inputs, out, attrs, parallel, ints }) => {
    const { axis } = concatShape(inputs, attrs.axis);
    const outer = sizeOf(out.shape.slice(0, axis));
    const inner = sizeOf(out.shape.slice(axis + 1));
    const total = out.shape[axis]! * inner;
    let col = 0;
    for (const t of inputs) {
      const len = t.shape[axis]! * inner;
      if (len > 0 && outer > 0) {
        const desc = ints([1, outer, len]);
        parallel('copy_strided', [out.ptr + 4 * col, t.ptr, outer, len, 1, total, desc], rowTasks(outer, len));
      }
      col += len;
    }
  }) as WasmKernel<ConcatAttrs>,
};
