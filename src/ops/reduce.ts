// Reductions over axes: sum, mean, max (any set of axes) and argmax (one axis, or the flattened tensor), with
// keepdims, as PyTorch. One kernel (shaders/reduce.wgsl) serves all four; the host picks its tile from the shape.
import type { CpuArgs, FloatArray, TensorSpec } from '../backend/backend.js';
import { grid1d, u32, type GpuArgs, type UniformWord } from '../backend/kernel.js';
import { DTypeError, LimitError, ShapeError, fmtShape } from '../errors.js';
import { normAxes, sizeOf, stridesOf, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { div, eqMask, mul } from './binary.js';
import { broadcastTo, reshape } from './layout.js';
import { defineOp, type BadCase, type OpDef, type Sample } from './op.js';
import { requireFloat } from './util.js';

/** Options of `sum`, `mean` and `max`. */
export interface ReduceAttrs {
  /** Axes to reduce (negative counts from the end); undefined reduces over all of them. */
  axes?: number | readonly number[] | undefined;
  /** Keep reduced axes as size 1. */
  keepdims: boolean;
}

/** Options of `argmax`. */
export interface ArgmaxAttrs {
  /** The axis to search; undefined searches the flattened tensor (as torch.argmax). */
  axis?: number | undefined;
  keepdims: boolean;
}

type ReduceName = 'sum' | 'mean' | 'max' | 'argmax';
const OP_CODE: Record<ReduceName, number> = { sum: 0, mean: 1, max: 2, argmax: 3 };
/** Dims of each kind (kept, reduced) the kernel's uniform struct holds. */
const MAX_RUNS = 8;
/** Most threads per workgroup. */
const WG = 256;
/** Threads enough to occupy the device: fewer outputs than this get more threads each (rowTile). */
const FILL = 1 << 12;
/** Threads per workgroup of a row tile with up to 64 threads per row. */
const ROW_WG = 64;
/**
 * Column sums of at most this many elements (a dense layer's bias gradient at batch 64) take the tile that large
 * ones take (32 outputs by 8 threads): at that size the tile hardly changes the run time, while each other tile is
 * one more pipeline to compile at start-up (lavapipe: ~0.1 s each; the seed CNN's step had three column tiles).
 */
const SMALL = 1 << 16;

function reducedAxes(name: string, axes: ReduceAttrs['axes'], shape: Shape): number[] {
  const norm = normAxes(name, axes, shape);
  // NOTE: normAxes accepts axis 0 or -1 of a rank-0 tensor (as PyTorch); it has no dims, so nothing is reduced.
  return shape.length === 0 ? [] : norm;
}

/** Shape rule shared by the four ops; max and argmax have no identity, so an empty reduced axis is an error. */
function reduceShape(name: ReduceName, x: TensorSpec, axes: readonly number[], keepdims: boolean): number[] {
  if (name === 'max' || name === 'argmax') {
    const empty = axes.find((a) => x.shape[a] === 0);
    if (empty !== undefined) {
      throw new ShapeError(
        `${name}: cannot reduce over axis ${empty} of shape ${fmtShape(x.shape)}, which is empty; expected a non-empty axis (${name} has no identity)`,
      );
    }
  }
  return keepdims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
}

// CPU reference. x: any shape; y: the kept dims in order (keepdims only adds 1s, so the flat order is the same).
// Each input element is visited in row-major order and folded into its output in float64; r counts positions
// within the reduced dims in row-major order, which is argmax's answer.
function reduceRef(
  name: ReduceName,
  x: FloatArray,
  shape: Shape,
  axes: readonly number[],
  alloc: CpuArgs<unknown>['alloc'],
): FloatArray | Int32Array {
  const keptShape = shape.filter((_, i) => !axes.includes(i));
  const redShape = axes.map((a) => shape[a]!);
  const outStride = stridesOf(keptShape);
  const redStride = stridesOf(redShape);
  const nOut = sizeOf(keptShape);
  const nRed = sizeOf(redShape);
  const acc = new Float64Array(nOut);
  const arg = new Int32Array(nOut).fill(-1);
  const coord = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < x.length; i++) {
    let o = 0;
    let r = 0;
    let k = 0;
    let j = 0;
    for (let d = 0; d < shape.length; d++) {
      if (axes.includes(d)) r += coord[d]! * redStride[j++]!;
      else o += coord[d]! * outStride[k++]!;
    }
    const v = x[i]!;
    if (name === 'sum' || name === 'mean') acc[o]! += v;
    // NOTE: strictly greater, or the first NaN over a number: the first maximum wins and NaN propagates.
    else if (arg[o] === -1 || (!Number.isNaN(acc[o]!) && (v > acc[o]! || Number.isNaN(v)))) {
      acc[o] = v;
      arg[o] = r;
    }
    for (let d = shape.length - 1; d >= 0 && ++coord[d]! === shape[d]; d--) coord[d] = 0;
  }
  if (name === 'argmax') return arg;
  // NOTE: mean over an empty range is 0/0 = NaN, as PyTorch.
  const y = alloc(nOut);
  for (let o = 0; o < nOut; o++) y[o] = name === 'mean' ? acc[o]! / nRed : acc[o]!;
  return y;
}

interface Run {
  size: number;
  stride: number;
}

/**
 * The input's dims as runs that are all kept or all reduced, innermost first: size-1 dims dropped, neighbours of
 * the same kind merged (row-major strides make them one contiguous run). Each list gets a dummy run if empty.
 */
function coalesce(shape: Shape, axes: readonly number[]): { kept: Run[]; red: Run[]; innerReduced: boolean } {
  const kept: Run[] = [];
  const red: Run[] = [];
  let last: { run: Run; reduced: boolean } | undefined;
  let innerReduced = false;
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    const reduced = axes.includes(d);
    if (n !== 1) {
      if (last?.reduced === reduced) last.run.size *= n;
      else {
        if (!last) innerReduced = reduced;
        last = { run: { size: n, stride }, reduced };
        (reduced ? red : kept).push(last.run);
      }
    }
    stride *= n;
  }
  if (!kept.length) kept.push({ size: 1, stride: 0 });
  if (!red.length) red.push({ size: 1, stride: 0 });
  return { kept, red, innerReduced };
}

const pow2Ceil = (n: number): number => {
  let p = 1;
  while (p < n) p *= 2;
  return p;
};

/**
 * Work split for `rows` contiguous rows of n elements each folded to one value (a row reduction, softmax, cross-
 * entropy): X rows per workgroup by Y threads per row, both powers of two. One thread per row (no workgroup memory,
 * no barrier) unless the rows are too few to occupy FILL threads; then Y doubles, up to 256, while each thread keeps
 * 32 elements or more. NOTE: a GPU would take more threads per row (its 32-wide warps and deep memory queues want
 * 10^5 threads in flight), but barriers are what a CPU implementation of WebGPU pays for most (lavapipe runs a
 * workgroup's threads as coroutines that switch at every barrier): on lavapipe, sum over rows of [4096,1024] takes
 * ~3 ms with one thread per row and ~7 ms with 8.
 */
export function rowTile(rows: number, n: number): { X: number; Y: number } {
  let Y = 1;
  while (Y < WG && rows * Y < FILL && Y * 64 <= n) Y *= 2;
  return { X: Math.max(1, Math.min(ROW_WG / Y, pow2Ceil(rows))), Y };
}

/** Encodes the reduction of x over `axes` into `out` (n_out elements in output order). */
function reduceGpu(name: ReduceName, { inputs: [x], out, ctx }: GpuArgs<unknown>, axes: readonly number[]): void {
  const nOut = sizeOf(out.shape);
  if (nOut === 0) return;
  const { kept, red, innerReduced } = coalesce(x!.shape, axes);
  if (kept.length > MAX_RUNS || red.length > MAX_RUNS) {
    throw new LimitError(
      `${name}: shape ${fmtShape(x!.shape)} reduced over [${axes.join(',')}] splits into ${kept.length} kept and ${red.length} reduced runs of dims; the kernel takes at most ${MAX_RUNS} of each`,
    );
  }
  const nRed = red.reduce((a, r) => a * r.size, 1);
  // Tile of X outputs by Y threads each (powers of two). Reducing the innermost dim: rowTile. Keeping it: up to 32
  // adjacent outputs side by side (their reads coalesce), each split over Y <= 256 / X threads as rowTile splits a
  // row (the bias-gradient case, sum over axis 0).
  let X: number;
  let Y: number;
  if (innerReduced) ({ X, Y } = rowTile(nOut, nRed));
  else if (nOut * nRed <= SMALL) [X, Y] = [32, 8];
  else {
    X = Math.min(32, pow2Ceil(kept[0]!.size));
    Y = 1;
    while (X * Y < WG && nOut * Y < FILL && Y * 64 <= nRed) Y *= 2;
  }
  const words = (runs: Run[], key: keyof Run, pad: number): UniformWord[] =>
    Array.from({ length: MAX_RUNS }, (_, i) => u32(runs[i]?.[key] ?? pad));
  ctx.dispatch({
    shader: 'reduce',
    overrides: { OP: OP_CODE[name], X, Y, RED_FAST: innerReduced },
    workgroups: grid1d(nOut, X, ctx.limits.maxComputeWorkgroupsPerDimension),
    outputs: [out],
    inputs: [x!],
    uniforms: [
      u32(nOut),
      u32(nRed),
      u32(kept.length),
      u32(red.length),
      ...words(kept, 'size', 1),
      ...words(kept, 'stride', 0),
      ...words(red, 'size', 1),
      ...words(red, 'stride', 0),
    ],
  });
}

// Special values: NaN, ±Inf, ties, -0. Rows of 5 so that axis 1 of [4,5] meets each pattern in one row.
const SPECIAL = [
  [1, 3, 3, 2, 0], // tie: the first 3 wins
  [NaN, 1, NaN, 5, 2], // NaN propagates; argmax: the first NaN
  [-Infinity, -Infinity, -Infinity, -Infinity, -Infinity],
  [2, Infinity, -Infinity, Infinity, -0], // sum: NaN (Inf - Inf)
].flat();

/** Sample values: rows of n values, each repeated `reps` times along its row (special cases over longer rows). */
export const wideRows = (values: number[], n: number, reps: number): number[] =>
  Array.from({ length: values.length / n }, (_, r) =>
    Array<number[]>(reps)
      .fill(values.slice(r * n, (r + 1) * n))
      .flat(),
  ).flat();

function reduceSamples(name: 'sum' | 'mean' | 'max'): Sample<ReduceAttrs>[] {
  const s = (shape: number[], axes: ReduceAttrs['axes'], keepdims = false, values?: number[]): Sample<ReduceAttrs> => ({
    name: `[${shape}] axes ${JSON.stringify(axes) ?? 'all'}${keepdims ? ' keepdims' : ''}${values ? ' special' : ''}`,
    inputs: [{ shape, ...(values ? { values } : {}) }],
    attrs: { axes, keepdims },
  });
  const out = [
    s([1], undefined),
    s([7], undefined),
    s([], undefined),
    s([33, 65], [1]),
    s([33, 65], 0),
    s([129, 7], [0, 1]),
    s([2, 3, 4, 5], [1, 3], true),
    s([3, 5, 7], [0, -1]),
    s([7, 5, 3], [1]),
    s([1000, 2], [0]),
    s([4096, 64], [0]),
    s([3, 70000], [1]),
    s([70000, 3], [1]),
    s([70000, 33], [-1]), // many short rows: one thread each
    s([9, 300], [1]), // few rows: 8 threads each, one barrier
    s([5, 1500], [1]), // 32 threads per row, a tree down to 8 partials
    s([4, 5], [1], false, SPECIAL),
    s([4, 5], [0], false, SPECIAL),
    s([4, 640], [1], false, wideRows(SPECIAL, 5, 128)), // the same rows split over 16 threads each
    s([512, 5], [0], false, SPECIAL), // the same columns, 128 times as tall: 16 threads each
    s([0, 3], [1]),
  ];
  if (name !== 'max') out.push(s([2, 0, 3], [1]), s([0], undefined, true));
  // 32 adjacent outputs per workgroup: more than 65535 workgroups fold into a 2-D grid (one op covers the kernel's
  // index math; a sample of 2M elements costs seconds in each op's finite-difference check).
  if (name === 'sum') out.push(s([1, 2097153], [0]));
  return out;
}

const commonBad = (name: string): BadCase<ReduceAttrs & ArgmaxAttrs>[] => [
  {
    name: 'int32 input',
    inputs: [{ shape: [2, 3], dtype: 'int32' }],
    error: DTypeError,
    message: new RegExp(`${name}: input 0 \\[2,3\\] is int32`),
  },
];

function reduceOp(name: 'sum' | 'mean' | 'max'): OpDef<ReduceAttrs> {
  return defineOp<ReduceAttrs>({
    name,
    arity: 1,
    attrs: { axes: undefined, keepdims: false },
    infer: ([x], a) => {
      requireFloat(name, [x!]);
      return { shape: reduceShape(name, x!, reducedAxes(name, a.axes, x!.shape), a.keepdims), dtype: 'float32' };
    },
    cpu: ({ inputs: [x], attrs, alloc }: CpuArgs<ReduceAttrs>) =>
      reduceRef(name, x!.data as FloatArray, x!.shape, reducedAxes(name, attrs.axes, x!.shape), alloc),
    gpu: (args) => reduceGpu(name, args, reducedAxes(name, args.attrs.axes, args.inputs[0]!.shape)),
    samples: () => reduceSamples(name),
    bad: [
      {
        name: 'axis out of range',
        inputs: [{ shape: [2, 3] }],
        attrs: { axes: [3] },
        error: ShapeError,
        message: new RegExp(`${name}: axis 3 is out of range for shape \\[2,3\\]`),
      },
      {
        name: 'repeated axes',
        inputs: [{ shape: [2, 3] }],
        attrs: { axes: [1, -1] },
        error: ShapeError,
        message: new RegExp(`${name}: repeated axis in \\[1,-1\\] for shape \\[2,3\\]`),
      },
      ...commonBad(name),
      ...(name === 'max'
        ? [
            {
              name: 'empty axis',
              inputs: [{ shape: [2, 0, 3] }],
              attrs: { axes: [1] },
              error: ShapeError,
              message: /max: cannot reduce over axis 1 of shape \[2,0,3\], which is empty/,
            },
          ]
        : []),
    ],
    // f32 accumulation (sequential runs per thread, then a tree) against float64: measured |error| up to 1.2e-4 on
    // [3,70000] (sums ~300) and 8e-5 on [4096,64] axis 0 (runs of 512); atol 3e-4 leaves 2.5x. mean divides it by n.
    tol: name === 'sum' ? { atol: 3e-4, rtol: 1e-5 } : { atol: 1e-5, rtol: 1e-5 },
    grad: {
      saves: name === 'max' ? { inputs: [0], output: true } : {},
      rule: ({ inputs: [x], output, shapes: [xs], attrs, needs }, dy) => {
        if (!needs[0]) return [null];
        const axes = reducedAxes(name, attrs.axes, xs!);
        const kept = xs!.map((d, i) => (axes.includes(i) ? 1 : d)); // dy with the reduced axes as 1s
        const dyk = reshape(dy, kept);
        // d sum: dy broadcast back; d mean: the same over n.
        if (name === 'sum') return [broadcastTo(dyk, xs!)];
        if (name === 'mean')
          return [
            broadcastTo(
              div(
                dyk,
                axes.reduce((n, a) => n * xs![a]!, 1),
              ),
              xs!,
            ),
          ];
        // NOTE: d max (amax) splits the gradient evenly among the elements equal to the maximum, as torch.amax.
        const hit = eqMask(x!, reshape(output!, kept));
        return [mul(hit, div(dyk, sum(hit, axes, true)))];
      },
    },
  });
}

const argmaxOp = defineOp<ArgmaxAttrs>({
  name: 'argmax',
  arity: 1,
  attrs: { axis: undefined, keepdims: false },
  infer: ([x], a) => {
    requireFloat('argmax', [x!]);
    return { shape: reduceShape('argmax', x!, reducedAxes('argmax', a.axis, x!.shape), a.keepdims), dtype: 'int32' };
  },
  cpu: ({ inputs: [x], attrs, alloc }) =>
    reduceRef('argmax', x!.data as FloatArray, x!.shape, reducedAxes('argmax', attrs.axis, x!.shape), alloc),
  gpu: (args) => reduceGpu('argmax', args, reducedAxes('argmax', args.attrs.axis, args.inputs[0]!.shape)),
  samples: function* () {
    const s = (
      shape: number[],
      axis: number | undefined,
      keepdims = false,
      values?: number[],
    ): Sample<ArgmaxAttrs> => ({
      name: `[${shape}] axis ${axis ?? 'flat'}${keepdims ? ' keepdims' : ''}${values ? ' special' : ''}`,
      inputs: [{ shape, ...(values ? { values } : {}) }],
      attrs: { axis, keepdims },
    });
    yield s([1], undefined);
    yield s([7], undefined);
    yield s([], undefined);
    yield s([33, 65], 1);
    yield s([33, 65], 0);
    yield s([129, 7], undefined);
    yield s([2, 3, 4, 5], 1, true);
    yield s([3, 5, 7], -2);
    yield s([4096, 64], 0);
    yield s([3, 70000], 1);
    yield s([70000, 3], 1);
    yield s([70000, 33], -1);
    yield s([9, 300], 1);
    yield s([5, 1500], 1);
    yield s([4, 5], 1, false, SPECIAL);
    yield s([4, 640], 1, false, wideRows(SPECIAL, 5, 128)); // ties and NaNs across threads: the first one wins
    yield s([4, 5], 0, false, SPECIAL);
    yield s([512, 5], 0, false, SPECIAL);
    yield s([4, 5], undefined, true, SPECIAL);
    yield s([0, 3], 1);
  },
  bad: [
    {
      name: 'axis out of range',
      inputs: [{ shape: [2, 3] }],
      attrs: { axis: -3 },
      error: ShapeError,
      message: /argmax: axis -3 is out of range for shape \[2,3\]/,
    },
    ...commonBad('argmax'),
    {
      name: 'empty axis',
      inputs: [{ shape: [2, 0, 3] }],
      attrs: { axis: 1 },
      error: ShapeError,
      message: /argmax: cannot reduce over axis 1 of shape \[2,0,3\], which is empty/,
    },
    {
      name: 'empty flattened',
      inputs: [{ shape: [0] }],
      error: ShapeError,
      message: /argmax: cannot reduce over axis 0 of shape \[0\], which is empty/,
    },
  ],
  tol: { atol: 0, rtol: 0 },
  grad: { none: 'piecewise constant: an index has no gradient' },
});

export const reduceOps = {
  sum: reduceOp('sum'),
  mean: reduceOp('mean'),
  max: reduceOp('max'),
  argmax: argmaxOp,
};

/** Sum over `axes` (all when omitted; negative axes count from the end), as torch.sum. Empty axes sum to 0. */
export const sum = (x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor =>
  apply(reduceOps.sum, [x], { axes, keepdims });

/** Mean over `axes` (all when omitted), as torch.mean. The mean over an empty axis is NaN. */
export const mean = (x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor =>
  apply(reduceOps.mean, [x], { axes, keepdims });

/** Maximum over `axes` (all when omitted), as torch.amax: NaN if any element is NaN; an empty axis throws ShapeError. */
export const max = (x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor =>
  apply(reduceOps.max, [x], { axes, keepdims });

/**
 * Index (int32) of the first maximum along `axis`, or into the flattened tensor when `axis` is omitted, as
 * torch.argmax; a NaN counts as the maximum.
 */
export const argmax = (x: Tensor, axis?: number, keepdims = false): Tensor =>
  apply(reduceOps.argmax, [x], { axis, keepdims });
