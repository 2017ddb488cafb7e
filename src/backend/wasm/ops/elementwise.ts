// The unary and binary elementwise families, dropout and gather on the WASM backend (assembly/elementwise.ts): one kernel each, the op
// passed as a code in the order of the op table's rows, binary broadcasting as rows of an innermost dim.
import { BINARY, type BinaryName } from '../../../ops/binary.js';
import type { DropoutAttrs } from '../../../ops/random.js';
import { UNARY, type UnaryName } from '../../../ops/unary.js';
import type { UnaryAttrs } from '../../../ops/unary.js';
import { broadcastStrides, sizeOf } from '../../../shape.js';
import type { WasmCtx, WasmKernel } from '../kernel.js';
import { coalesce, rowTasks, tasksFor } from './common.js';

const UNARY_CODE = Object.fromEntries(Object.keys(UNARY).map((n, i) => [n, i])) as Record<UnaryName, number>;
const BINARY_CODE = Object.fromEntries(Object.keys(BINARY).map((n, i) => [n, i])) as Record<BinaryName, number>;

// y [n] = f(x [n])
const unaryFwd =
  (name: UnaryName): WasmKernel<UnaryAttrs> =>
  ({ inputs: [x], out, attrs, parallel }) => {
    const n = sizeOf(out.shape);
    parallel('unary_fwd', [UNARY_CODE[name], out.ptr, x!.ptr, n, attrs.alpha], tasksFor(n));
  };

// dx [n] = g(s [n], dy [n]), s the saved x or y
const unaryBwd =
  (name: UnaryName): WasmKernel<UnaryAttrs> =>
  ({ inputs: [s, dy], out, attrs, parallel }) => {
    const n = sizeOf(out.shape);
    parallel('unary_bwd', [UNARY_CODE[name], out.ptr, s!.ptr, dy!.ptr, n, attrs.alpha], tasksFor(n));
  };

export const unaryKernels = Object.fromEntries(
  (Object.keys(UNARY) as UnaryName[]).flatMap((n) => [
    [n, unaryFwd(n)],
    [`${n}_bwd_x`, unaryBwd(n)],
  ]),
) as { [K in UnaryName | `${UnaryName}_bwd_x`]: WasmKernel<UnaryAttrs> };

// y = a op b, broadcast: the output's coalesced dims; the innermost is a row, the outer ones in a descriptor.
const binary =
  (name: BinaryName): WasmKernel<object> =>
  ({ inputs: [a, b], out, parallel, ints }: WasmCtx<object>) => {
    const sp = coalesce(out.shape, [broadcastStrides(a!.shape, out.shape), broadcastStrides(b!.shape, out.shape)]);
    const inner = sp.dims.pop() ?? 1;
    const [sa = [], sb = []] = sp.strides;
    const ia = sa.pop() ?? 0;
    const ib = sb.pop() ?? 0;
    const rows = sizeOf(sp.dims);
    const desc = ints([sp.dims.length, ...sp.dims, ...sa, ...sb]);
    if (sizeOf(out.shape) === 0) return;
    parallel('binary', [BINARY_CODE[name], out.ptr, a!.ptr, b!.ptr, rows, inner, ia, ib, desc], rowTasks(rows, inner));
  };

export const binaryKernels = Object.fromEntries((Object.keys(BINARY) as BinaryName[]).map((n) => [n, binary(n)])) as {
  [K in BinaryName]: WasmKernel<object>;
};

// y [n] = x [n] · mask(seed, i) / (1 − rate): the mask a pure function of (seed, index), as the reference's
export const dropoutKernel: WasmKernel<DropoutAttrs> = ({ inputs: [x], out, attrs, parallel }) => {
  const n = sizeOf(out.shape);
  const seed = (typeof attrs.seed === 'number' ? attrs.seed : attrs.seed.value) >>> 0;
  parallel('dropout', [out.ptr, x!.ptr, n, seed, attrs.rate, 1 / (1 - attrs.rate)], tasksFor(n));
};

// y [..., D] = table [V, D] rows at idx [...] (int32): a NaN row for an index outside [0, V)
export const gatherKernel: WasmKernel<object> = ({ inputs: [table, idx], out, parallel }) => {
  const [v, d] = table!.shape as [number, number];
  const n = sizeOf(idx!.shape);
  if (n > 0 && d > 0) parallel('gather', [out.ptr, table!.ptr, idx!.ptr, n, v, d], rowTasks(n, d));
};

// dtable [V, D] = scatter-add of dy [..., D] rows at idx [...]: tasks over table rows, f64 partial sums in scratch
export const gatherBwdKernel: WasmKernel<{ rows: number }> = ({ inputs: [idx, dy], out, parallel, scratch }) => {
  const [v, d] = out.shape as [number, number];
  const n = sizeOf(idx!.shape);
  if (v * d === 0) return;
  const acc = scratch(8 * v * d);
  parallel('gather_bwd', [out.ptr, acc, idx!.ptr, dy!.ptr, n, v, d], rowTasks(v, d + n));
};
