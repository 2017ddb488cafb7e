// The unary and binary elementwise families and dropout on the WASM backend (assembly/elementwise.ts): one kernel each, the op
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
