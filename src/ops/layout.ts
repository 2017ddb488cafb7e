// Layout ops: reshape (a view), transpose, slice and concat. Dtype-agnostic: they move raw 32-bit words, so float32
// and int32 tensors keep their dtype. On the GPU all copies go through one kernel, shaders/strided_copy.wgsl.
import type { CpuArgs, TensorSpec, TypedArray } from '../backend/backend.js';
import { grid1d, u32, type GpuContext, type GpuTensor } from '../backend/kernel.js';
import { DTypeError, ShapeError, fmtShape } from '../errors.js';
import { broadcastStrides, sizeOf, stridesOf, type Shape } from '../shape.js';
import { full, tidy, type Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { sumTo } from './binary.js';
import { defineOp, type BadCase, type OpDef, type Sample, type SampleInput } from './op.js';

export interface ReshapeAttrs {
  /** Target shape; one entry may be -1 (inferred from the others). */
  shape: readonly number[];
}
/** Options of `transpose`. */
export interface TransposeAttrs {
  /** Output axis k is input axis perm[k]; null reverses the axes. */
  perm: readonly number[] | null;
}
/** Options of `slice`. */
export interface SliceAttrs {
  /** Start per dim; negative counts from the end. Missing trailing entries are 0. */
  begin: readonly number[];
  /** Length per dim; -1 runs to the end. Missing trailing entries are -1. */
  size: readonly number[];
}
/** Options of `concat`. */
export interface ConcatAttrs {
  /** Axis to join along; negative counts from the end. */
  axis: number;
}

const WG = 64;
/** Most dims strided_copy takes in one dispatch (its uniform holds two vec4s per list). */
const MAX_RANK = 8;
/** Indices per invocation of strided_copy on a software adapter (see its RUN). */
const SOFTWARE_RUN = 8;

/** A CPU output like the input's kind: Int32Array for int32, the backend's float array (f32 or f64) for float32. */
const newOutput = (out: TensorSpec, alloc: CpuArgs<unknown>['alloc']): TypedArray => {
  const n = sizeOf(out.shape);
  return out.dtype === 'int32' ? new Int32Array(n) : alloc(n);
};

// ---- shape rules (shared by infer, cpu and gpu, which get the raw attributes) ----

/** The target shape with its -1 resolved; throws ShapeError when the sizes differ. */
function reshapeTarget(x: Shape, shape: readonly number[]): number[] {
  const n = sizeOf(x);
  const what = `cannot reshape ${fmtShape(x)} (${n} elements) into ${fmtShape(shape)}`;
  if (shape.some((d) => !Number.isInteger(d) || d < -1)) {
    throw new ShapeError(`reshape: ${what}; expected non-negative integer dims or one -1`);
  }
  const holes = shape.filter((d) => d === -1).length;
  if (holes > 1) throw new ShapeError(`reshape: ${what}: more than one -1; expected at most one inferred dim`);
  const known = shape.reduce((a, d) => (d === -1 ? a : a * d), 1);
  if (holes === 0) {
    if (known !== n) throw new ShapeError(`reshape: ${what} (${known} elements); expected the same number of elements`);
    return [...shape];
  }
  // NOTE: -1 next to a 0 dim could be anything, so it is an error (as torch.reshape), not a guess.
  if (known === 0 || n % known !== 0) {
    throw new ShapeError(
      `reshape: ${what}: no size for -1 gives ${n} elements; expected the other dims to divide ${n}`,
    );
  }
  return shape.map((d) => (d === -1 ? n / known : d));
}

/** The permutation with negative axes resolved (default: reversed axes); throws ShapeError if it is not one. */
export function permOf(x: Shape, perm: readonly number[] | null): number[] {
  const r = x.length;
  // NOTE: negative entries count from the end, as torch.permute.
  const p = perm ? perm.map((a) => (Number.isInteger(a) && a < 0 ? a + r : a)) : [...Array(r).keys()].reverse();
  const expected = `expected a permutation of 0..${r - 1} for rank ${r}`;
  if (p.length !== r)
    throw new ShapeError(`transpose: perm [${perm}] has ${p.length} entries for shape ${fmtShape(x)}; ${expected}`);
  if (p.some((a) => !Number.isInteger(a) || a < 0 || a >= r) || new Set(p).size !== r) {
    throw new ShapeError(
      `transpose: perm [${perm}] is not a permutation of the axes of ${fmtShape(x)} (out of range or repeated); ${expected}`,
    );
  }
  return p;
}

/** Begin and size per dim with negatives and -1 resolved; throws ShapeError when out of range. */
export function sliceRange(x: Shape, a: SliceAttrs): { begin: number[]; size: number[] } {
  const r = x.length;
  const what = `begin [${a.begin}] size [${a.size}] for shape ${fmtShape(x)}`;
  if (a.begin.length > r || a.size.length > r) {
    throw new ShapeError(`slice: ${what} has more entries than rank ${r}; expected at most ${r} each`);
  }
  const begin: number[] = [];
  const size: number[] = [];
  for (let k = 0; k < r; k++) {
    const d = x[k]!;
    const b0 = a.begin[k] ?? 0;
    const b = b0 < 0 ? b0 + d : b0;
    const s0 = a.size[k] ?? -1;
    const s = s0 === -1 ? d - b : s0;
    if (!Number.isInteger(b) || !Number.isInteger(s) || b < 0 || s < 0 || b + s > d) {
      throw new ShapeError(
        `slice: ${what} is out of range in dim ${k} (begin ${b0}, size ${s0}, dim ${d}); expected 0 <= begin <= begin + size <= ${d}`,
      );
    }
    begin.push(b);
    size.push(s);
  }
  return { begin, size };
}

/** The concat axis (non-negative) and the output shape; throws ShapeError/DTypeError naming all the shapes. */
export function concatShape(xs: readonly TensorSpec[], axis: number): { axis: number; shape: number[] } {
  const shapes = xs.map((t) => fmtShape(t.shape)).join(', ');
  if (xs.length === 0) throw new ShapeError('concat: no input tensors; expected at least one');
  const x0 = xs[0]!;
  const r = x0.shape.length;
  const odd = xs.find((t) => t.shape.length !== r);
  if (odd)
    throw new ShapeError(
      `concat: shapes ${shapes} have different ranks (${r} vs ${odd.shape.length}); expected one rank`,
    );
  const oddType = xs.find((t) => t.dtype !== x0.dtype);
  if (oddType) {
    throw new DTypeError(`concat: inputs ${shapes} mix dtypes (${x0.dtype} and ${oddType.dtype}); expected one dtype`);
  }
  if (r === 0) throw new ShapeError(`concat: shapes ${shapes} are rank 0; expected rank >= 1 to join along an axis`);
  if (!Number.isInteger(axis) || axis < -r || axis >= r) {
    throw new ShapeError(
      `concat: axis ${axis} is out of range for shapes ${shapes} (rank ${r}); expected -${r} <= axis < ${r}`,
    );
  }
  const ax = axis < 0 ? axis + r : axis;
  const shape = [...x0.shape];
  shape[ax] = 0;
  for (const t of xs) {
    const k = t.shape.findIndex((d, i) => i !== ax && d !== x0.shape[i]);
    if (k >= 0) {
      throw new ShapeError(
        `concat: shapes ${shapes} do not fit along axis ${ax}: dim ${k} differs (${x0.shape[k]} vs ${t.shape[k]}); expected equal dims except on the axis`,
      );
    }
    shape[ax] += t.shape[ax]!;
  }
  return { axis: ax, shape };
}

// ---- CPU reference helpers ----

/** Calls f with every index of `shape` in row-major order (an odometer; nothing for empty shapes). */
function eachIndex(shape: Shape, f: (idx: readonly number[], flat: number) => void): void {
  const n = sizeOf(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < n; flat++) {
    f(idx, flat);
    for (let k = shape.length - 1; k >= 0; k--) {
      if (++idx[k]! < shape[k]!) break;
      idx[k] = 0;
    }
  }
}

// ---- GPU: one strided copy, coalesced ----

interface StridedCopy {
  /** Iteration shape and, per dim, the element strides into the input and the output. */
  shape: readonly number[];
  inStrides: readonly number[];
  outStrides: readonly number[];
  inOffset: number;
  outOffset: number;
}

/** Drops size-1 dims and merges neighbours that are contiguous in both input and output. */
function coalesce(c: StridedCopy): StridedCopy {
  const shape: number[] = [];
  const inStrides: number[] = [];
  const outStrides: number[] = [];
  c.shape.forEach((d, k) => {
    if (d === 1) return;
    const a = c.inStrides[k]!;
    const b = c.outStrides[k]!;
    const last = shape.length - 1;
    if (last >= 0 && inStrides[last] === a * d && outStrides[last] === b * d) {
      shape[last]! *= d;
      inStrides[last] = a;
      outStrides[last] = b;
    } else {
      shape.push(d);
      inStrides.push(a);
      outStrides.push(b);
    }
  });
  return { ...c, shape, inStrides, outStrides };
}

/** Encodes y[outOffset + Σ i·outStrides] = x[inOffset + Σ i·inStrides] over every index i of the shape. */
function stridedCopy(ctx: GpuContext, y: GpuTensor, x: GpuTensor, copy: StridedCopy): void {
  const n = sizeOf(copy.shape);
  if (n === 0) return;
  const c = coalesce(copy);
  const r = c.shape.length;
  if (r > MAX_RANK) {
    // Past 8 dims that do not coalesce (rare), the leading dim is looped on the host: one dispatch per index.
    for (let i = 0; i < c.shape[0]!; i++) {
      stridedCopy(ctx, y, x, {
        shape: c.shape.slice(1),
        inStrides: c.inStrides.slice(1),
        outStrides: c.outStrides.slice(1),
        inOffset: c.inOffset + i * c.inStrides[0]!,
        outOffset: c.outOffset + i * c.outStrides[0]!,
      });
    }
    return;
  }
  const pad = (v: readonly number[], fill: number) => [...v, ...Array<number>(MAX_RANK - r).fill(fill)].map(u32);
  const run = ctx.software ? SOFTWARE_RUN : 1;
  ctx.dispatch({
    shader: 'strided_copy',
    overrides: { WG, RUN: run },
    workgroups: grid1d(Math.ceil(n / run), WG, ctx.limits.maxComputeWorkgroupsPerDimension),
    outputs: [y],
    inputs: [x],
    uniforms: [
      u32(n),
      u32(r),
      u32(c.inOffset),
      u32(c.outOffset),
      ...pad(c.shape, 1),
      ...pad(c.inStrides, 0),
      ...pad(c.outStrides, 0),
    ],
  });
}

/** A plain contiguous copy of all of x into y. */
const copyAll = (ctx: GpuContext, y: GpuTensor, x: GpuTensor): void =>
  stridedCopy(ctx, y, x, { shape: [sizeOf(x.shape)], inStrides: [1], outStrides: [1], inOffset: 0, outOffset: 0 });

// ---- samples ----

const INT_RANGE: [number, number] = [-1000, 1000];
const f32In = (shape: number[]) => ({ shape });
const i32In = (shape: number[]) => ({ shape, dtype: 'int32' as const, range: INT_RANGE });
const bad = <A>(
  name: string,
  inputs: SampleInput[],
  attrs: Partial<A>,
  message: RegExp,
  error: BadCase<A>['error'] = ShapeError,
): BadCase<A> => ({ name, inputs, attrs, error, message });

// ---- the ops ----

export const reshapeOp: OpDef<ReshapeAttrs> = defineOp<ReshapeAttrs>({
  name: 'reshape',
  arity: 1,
  // NOTE: the default target [-1] flattens.
  attrs: { shape: [-1] },
  infer: ([x], a) => ({ shape: reshapeTarget(x!.shape, a.shape), dtype: x!.dtype }),
  alias: true,
  // reshape is a view (`alias`): apply() shares x's storage and runs no kernel. OpDef still needs both
  // implementations, so they are plain copies. x [n] -> y [n], same row-major order.
  cpu: ({ inputs: [x] }) => x!.data.slice(),
  gpu: ({ inputs: [x], out, ctx }) => copyAll(ctx, out, x!),
  samples: function* () {
    const s = (shape: number[], to: number[], int = false): Sample<ReshapeAttrs> => ({
      name: `[${shape}] -> [${to}]${int ? ' int32' : ''}`,
      inputs: [int ? i32In(shape) : f32In(shape)],
      attrs: { shape: to },
    });
    yield s([2, 3], [3, -1]);
    yield s([7, 33], [-1]);
    yield s([1], []);
    yield s([], [1, 1]);
    yield s([], [-1]);
    yield s([2, 0, 3], [0, 5]);
    yield s([4, 6], [2, -1, 3], true);
    yield s([129], [3, 43]);
    yield s([65, 1], [1, 65, 1]);
    yield s([5, 7, 33], [35, -1]);
  },
  bad: [
    bad('size mismatch', [f32In([2, 3])], { shape: [4] }, /reshape: cannot reshape \[2,3\] \(6 elements\) into \[4\]/),
    bad(
      'two -1s',
      [f32In([2, 3])],
      { shape: [-1, -1] },
      /reshape: cannot reshape \[2,3\] .*into \[-1,-1\].*more than one -1/,
    ),
    bad(
      '-1 does not divide',
      [f32In([2, 3])],
      { shape: [4, -1] },
      /reshape: cannot reshape \[2,3\] \(6 elements\) into \[4,-1\]/,
    ),
    bad(
      '-1 with a 0 dim',
      [f32In([2, 0])],
      { shape: [0, -1] },
      /reshape: cannot reshape \[2,0\] \(0 elements\) into \[0,-1\]/,
    ),
  ],
  tol: { atol: 0, rtol: 0 },
  // d reshape: dy reshaped back to x's shape (a view).
  grad: {
    saves: {},
    rule: ({ shapes, needs }, dy) => [needs[0] ? apply(reshapeOp, [dy], { shape: shapes[0]! }) : null],
  },
});

export const transposeOp: OpDef<TransposeAttrs> = defineOp<TransposeAttrs>({
  name: 'transpose',
  arity: 1,
  attrs: { perm: null },
  infer: ([x], a) => ({ shape: permOf(x!.shape, a.perm).map((p) => x!.shape[p]!), dtype: x!.dtype }),
  // x [d0..d(r-1)] -> y [d_perm0..d_perm(r-1)]: y[i] = x[j] with j[perm[k]] = i[k].
  cpu: ({ inputs: [x], out, attrs, alloc }) => {
    const perm = permOf(x!.shape, attrs.perm);
    const xs = stridesOf(x!.shape);
    const y = newOutput(out, alloc);
    eachIndex(out.shape, (i, flat) => {
      let src = 0;
      for (let k = 0; k < i.length; k++) src += i[k]! * xs[perm[k]!]!;
      y[flat] = x!.data[src]!;
    });
    return y;
  },
  // Iterate over y; the input strides are x's, permuted.
  gpu: ({ inputs: [x], out, attrs, ctx }) => {
    const xs = stridesOf(x!.shape);
    stridedCopy(ctx, out, x!, {
      shape: out.shape,
      inStrides: permOf(x!.shape, attrs.perm).map((p) => xs[p]!),
      outStrides: stridesOf(out.shape),
      inOffset: 0,
      outOffset: 0,
    });
  },
  samples: function* () {
    const s = (shape: number[], perm: number[] | null, int = false): Sample<TransposeAttrs> => ({
      name: `[${shape}] perm ${perm ? `[${perm}]` : 'default'}${int ? ' int32' : ''}`,
      inputs: [int ? i32In(shape) : f32In(shape)],
      attrs: { perm },
    });
    yield s([7, 33], null);
    yield s([1, 65, 1], [2, 0, 1]);
    yield s([2, 3, 4, 5], [0, 2, 3, 1]); // NCHW -> NHWC
    yield s([2, 3, 4, 5], [3, 1, 2, 0]);
    yield s([129, 65], [1, 0]);
    yield s([7, 5, 33], [2, 0, 1], true);
    yield s([2, 0, 3], null);
    yield s([], []);
    yield s([4, 5, 6], [-1, 0, 1]);
    // 10 dims that never coalesce: past MAX_RANK, so the host loops over the leading dims.
    yield s(Array<number>(10).fill(2), null);
    // 4,300,800 elements > 65535 * WG (64): the grid folds into 2-D.
    yield s([2048, 2100], null);
  },
  bad: [
    bad(
      'perm wrong length',
      [f32In([2, 3, 4])],
      { perm: [1, 0] },
      /transpose: perm \[1,0\] has 2 entries for shape \[2,3,4\]/,
    ),
    bad(
      'repeated axis',
      [f32In([2, 3, 4])],
      { perm: [0, 0, 1] },
      /transpose: perm \[0,0,1\] is not a permutation of the axes of \[2,3,4\]/,
    ),
    bad(
      'axis out of range',
      [f32In([2, 3])],
      { perm: [0, 2] },
      /transpose: perm \[0,2\] is not a permutation of the axes of \[2,3\]/,
    ),
  ],
  tol: { atol: 0, rtol: 0 },
  // d transpose: dy transposed by the inverse permutation.
  grad: {
    saves: {},
    rule: ({ shapes, attrs, needs }, dy) => {
      if (!needs[0]) return [null];
      const inverse: number[] = [];
      permOf(shapes[0]!, attrs.perm).forEach((p, k) => (inverse[p] = k));
      return [apply(transposeOp, [dy], { perm: inverse })];
    },
  },
});

export const sliceOp: OpDef<SliceAttrs> = defineOp<SliceAttrs>({
  name: 'slice',
  arity: 1,
  attrs: { begin: [], size: [] },
  infer: ([x], a) => ({ shape: sliceRange(x!.shape, a).size, dtype: x!.dtype }),
  // x [d0..d(r-1)] -> y [size0..size(r-1)]: y[i] = x[begin + i].
  cpu: ({ inputs: [x], out, attrs, alloc }) => {
    const { begin } = sliceRange(x!.shape, attrs);
    const xs = stridesOf(x!.shape);
    const y = newOutput(out, alloc);
    eachIndex(out.shape, (i, flat) => {
      let src = 0;
      for (let k = 0; k < i.length; k++) src += (begin[k]! + i[k]!) * xs[k]!;
      y[flat] = x!.data[src]!;
    });
    return y;
  },
  // Iterate over y with x's strides, starting at the offset of `begin`.
  gpu: ({ inputs: [x], out, attrs, ctx }) => {
    const { begin } = sliceRange(x!.shape, attrs);
    const xs = stridesOf(x!.shape);
    stridedCopy(ctx, out, x!, {
      shape: out.shape,
      inStrides: xs,
      outStrides: stridesOf(out.shape),
      inOffset: begin.reduce((o, b, k) => o + b * xs[k]!, 0),
      outOffset: 0,
    });
  },
  samples: function* () {
    const s = (shape: number[], begin: number[], size?: number[], int = false): Sample<SliceAttrs> => ({
      name: `[${shape}] begin [${begin}]${size ? ` size [${size}]` : ''}${int ? ' int32' : ''}`,
      inputs: [int ? i32In(shape) : f32In(shape)],
      attrs: size ? { begin, size } : { begin },
    });
    yield s([7, 33, 5], [1, 2, 3], [3, 30, 1]);
    yield s([2, 3, 4, 5], [1, 1, 1, 1], [1, 2, 3, 4]);
    yield s([65, 129], [1, 64], [-1, 65]);
    yield s([33, 7], [-5, -7], [3, -1]);
    yield s([], [], []);
    yield s([5, 7], [0, 2], [5, 0]);
    yield s([5, 0], [1, 0], [3, -1]);
    yield s([129], [64], [65], true);
    yield s([9, 8], [3]);
    yield s([1], [0], [1]);
  },
  bad: [
    bad(
      'past the end',
      [f32In([3, 4])],
      { begin: [1, 2], size: [3, 1] },
      /slice: begin \[1,2\] size \[3,1\] for shape \[3,4\] is out of range in dim 0/,
    ),
    bad(
      'begin beyond dim',
      [f32In([3, 4])],
      { begin: [0, -5] },
      /slice: begin \[0,-5\] size \[\] for shape \[3,4\] is out of range in dim 1/,
    ),
    bad(
      'too many entries',
      [f32In([3, 4])],
      { begin: [0, 0, 0] },
      /slice: begin \[0,0,0\] size \[\] for shape \[3,4\] has more entries than rank 2/,
    ),
  ],
  tol: { atol: 0, rtol: 0 },
  // d slice: dy zero-padded back to x's shape, one concat with zeros per dim that was cut.
  grad: {
    saves: {},
    rule: ({ shapes, attrs, needs }, dy) => {
      if (!needs[0]) return [null];
      const x = shapes[0]!;
      const { begin, size } = sliceRange(x, attrs);
      const dx = tidy(() => {
        let g = dy;
        x.forEach((d, k) => {
          const zeros = (n: number) =>
            n > 0
              ? [
                  full(
                    g.shape.map((e, i) => (i === k ? n : e)),
                    0,
                    { backend: dy.backend },
                  ),
                ]
              : [];
          const before = zeros(begin[k]!);
          const after = zeros(d - begin[k]! - size[k]!);
          if (before.length + after.length > 0) g = apply(concatOp, [...before, g, ...after], { axis: k });
        });
        // The tape disposes dy after this rule: hand back a view of it when nothing was cut.
        return g === dy ? apply(reshapeOp, [dy], { shape: x }) : g;
      });
      return [dx];
    },
  },
});

export const concatOp: OpDef<ConcatAttrs> = defineOp<ConcatAttrs>({
  name: 'concat',
  arity: 'variadic',
  attrs: { axis: 0 },
  infer: (xs, a) => ({ shape: concatShape(xs, a.axis).shape, dtype: xs[0]!.dtype }),
  // x_t [..., d_t, ...] -> y [..., Σ d_t, ...] along the axis: for each index before the axis, the inputs'
  // chunks of d_t * (elements after the axis) follow each other.
  cpu: ({ inputs, out, attrs, alloc }) => {
    const { axis } = concatShape(inputs, attrs.axis);
    const outer = sizeOf(out.shape.slice(0, axis));
    const inner = sizeOf(out.shape.slice(axis + 1));
    const y = newOutput(out, alloc);
    let o = 0;
    for (let i = 0; i < outer; i++) {
      for (const t of inputs) {
        const len = t.shape[axis]! * inner;
        for (let j = 0; j < len; j++) y[o++] = t.data[i * len + j]!;
      }
    }
    return y;
  },
  // One strided copy per non-empty input into its region of y (offset along the axis).
  gpu: ({ inputs, out, attrs, ctx }) => {
    const { axis } = concatShape(inputs, attrs.axis);
    const ys = stridesOf(out.shape);
    let at = 0;
    for (const x of inputs) {
      stridedCopy(ctx, out, x, {
        shape: x.shape,
        inStrides: stridesOf(x.shape),
        outStrides: ys,
        inOffset: 0,
        outOffset: at * ys[axis]!,
      });
      at += x.shape[axis]!;
    }
  },
  samples: function* () {
    const s = (shapes: number[][], axis: number, int = false): Sample<ConcatAttrs> => ({
      name: `${shapes.map((x) => `[${x}]`).join(' ')} axis ${axis}${int ? ' int32' : ''}`,
      inputs: shapes.map((x) => (int ? i32In(x) : f32In(x))),
      attrs: { axis },
    });
    yield s([[7, 33]], 0);
    yield s(
      [
        [7, 33],
        [1, 33],
      ],
      0,
    );
    yield s(
      [
        [5, 7],
        [5, 33],
      ],
      1,
    );
    yield s(
      [
        [2, 3, 7],
        [2, 3, 0],
        [2, 3, 65],
      ],
      -1,
    );
    yield s(
      [
        [0, 5],
        [1, 5],
        [7, 5],
      ],
      0,
    );
    yield s(
      [
        [4, 1, 3],
        [4, 7, 3],
        [4, 0, 3],
      ],
      1,
    );
    yield s(
      [
        [1, 4, 5, 2],
        [1, 4, 5, 3],
        [1, 4, 5, 1],
      ],
      -1,
    ); // NHWC channel concat
    yield s([[129], [65]], 0, true);
    yield s(
      [
        [3, 33, 2],
        [3, 33, 2],
      ],
      -2,
      true,
    );
    yield s(
      [
        [2, 0],
        [3, 0],
      ],
      0,
    );
  },
  bad: [
    bad(
      'rank mismatch',
      [f32In([2, 3]), f32In([2, 3, 1])],
      {},
      /concat: shapes \[2,3\], \[2,3,1\] have different ranks/,
    ),
    bad(
      'dim mismatch off the axis',
      [f32In([2, 3]), f32In([3, 4]), f32In([1, 3])],
      {},
      /concat: shapes \[2,3\], \[3,4\], \[1,3\] do not fit along axis 0: dim 1 differs \(3 vs 4\)/,
    ),
    bad(
      'dtype mismatch',
      [f32In([2, 3]), i32In([2, 3])],
      {},
      /concat: inputs \[2,3\], \[2,3\] mix dtypes \(float32 and int32\)/,
      DTypeError,
    ),
    bad(
      'axis out of range',
      [f32In([2, 3]), f32In([2, 3])],
      { axis: 2 },
      /concat: axis 2 is out of range for shapes \[2,3\], \[2,3\] \(rank 2\)/,
    ),
    bad('rank 0', [f32In([]), f32In([])], {}, /concat: shapes \[\], \[\] are rank 0; expected rank >= 1/),
  ],
  tol: { atol: 0, rtol: 0 },
  // d concat: each input's gradient is its block of dy along the axis.
  grad: {
    saves: {},
    rule: ({ shapes, attrs, needs }, dy) => {
      const axis = attrs.axis < 0 ? attrs.axis + dy.rank : attrs.axis;
      let at = 0;
      return shapes.map((s, i) => {
        const begin = s.map((_, k) => (k === axis ? at : 0));
        at += s[axis]!;
        return needs[i] ? apply(sliceOp, [dy], { begin, size: s }) : null;
      });
    },
  },
});

export interface BroadcastToAttrs {
  /** Target shape; x must broadcast to it (NumPy rules). */
  shape: readonly number[];
}

/** The target shape after checking that x broadcasts to it exactly. */
function broadcastTarget(x: Shape, shape: readonly number[]): readonly number[] {
  const ok = shape.length >= x.length && x.every((d, i) => d === 1 || d === shape[shape.length - x.length + i]);
  if (!ok || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ShapeError(
      `broadcast_to: ${fmtShape(x)} does not broadcast to ${fmtShape(shape)}; expected each dim equal or 1 (NumPy rules)`,
    );
  }
  return shape;
}

export const broadcastToOp: OpDef<BroadcastToAttrs> = defineOp<BroadcastToAttrs>({
  name: 'broadcast_to',
  arity: 1,
  attrs: { shape: [] },
  infer: ([x], a) => ({ shape: broadcastTarget(x!.shape, a.shape), dtype: x!.dtype }),
  // x [.. broadcastable ..] -> y [shape]: y[i] = x[i with broadcast dims at 0].
  cpu: ({ inputs: [x], out, alloc }) => {
    const st = broadcastStrides(x!.shape, out.shape);
    const y = newOutput(out, alloc);
    eachIndex(out.shape, (i, flat) => {
      let src = 0;
      for (let k = 0; k < i.length; k++) src += i[k]! * st[k]!;
      y[flat] = x!.data[src]!;
    });
    return y;
  },
  // Iterate over y, reading x through zero strides on the broadcast dims.
  gpu: ({ inputs: [x], out, ctx }) =>
    stridedCopy(ctx, out, x!, {
      shape: out.shape,
      inStrides: broadcastStrides(x!.shape, out.shape),
      outStrides: stridesOf(out.shape),
      inOffset: 0,
      outOffset: 0,
    }),
  samples: function* () {
    const s = (from: number[], to: number[], int = false): Sample<BroadcastToAttrs> => ({
      name: `[${from}] -> [${to}]${int ? ' int32' : ''}`,
      inputs: [int ? i32In(from) : f32In(from)],
      attrs: { shape: to },
    });
    yield s([1], [7]);
    yield s([], [33, 65]);
    yield s([33, 1], [33, 129]);
    yield s([1, 65], [7, 65]);
    yield s([3, 1, 5], [2, 3, 4, 5]);
    yield s([4, 6], [4, 6]);
    yield s([1, 3], [0, 3]);
    yield s([5], [2, 5], true);
    yield s([2100], [2048, 2100]);
  },
  bad: [
    bad('[2,3] to [3,3]', [f32In([2, 3])], { shape: [3, 3] }, /broadcast_to: \[2,3\] does not broadcast to \[3,3\]/),
    bad('to a lower rank', [f32In([2, 3])], { shape: [3] }, /broadcast_to: \[2,3\] does not broadcast to \[3\]/),
  ],
  tol: { atol: 0, rtol: 0 },
  gradTol: { atol: 5e-4, rtol: 1e-4 }, // the gradient is an f32 sum over up to 2048 terms
  // d broadcast_to: dy summed back over the broadcast dims.
  grad: { saves: {}, rule: ({ shapes, needs }, dy) => [needs[0] ? sumTo(dy, shapes[0]!) : null] },
});

export const layoutOps = {
  reshape: reshapeOp,
  transpose: transposeOp,
  slice: sliceOp,
  concat: concatOp,
  broadcast_to: broadcastToOp,
};

/** x repeated along its size-1 (and missing leading) dims to `shape`, as torch.broadcast_to / tf.broadcastTo. */
export const broadcastTo = (x: Tensor, shape: readonly number[]): Tensor => apply(broadcastToOp, [x], { shape });

/** Reshapes `x` to `shape` (one entry may be -1, inferred): a view sharing x's storage, no copy. */
export const reshape = (x: Tensor, shape: readonly number[]): Tensor => apply(reshapeOp, [x], { shape });

/** Permutes the axes of `x`: output axis k is input axis perm[k] (default: reversed axes, as tf.transpose). */
export const transpose = (x: Tensor, perm?: readonly number[]): Tensor =>
  apply(transposeOp, [x], { perm: perm ?? null });

/**
 * The block of `x` starting at `begin` with `size` elements per dim, as tf.slice: a negative begin counts from the
 * end, a size of -1 (or a missing entry) runs to the end of its dim.
 */
export const slice = (x: Tensor, begin: readonly number[], size: readonly number[] = []): Tensor =>
  apply(sliceOp, [x], { begin, size });

/** Joins tensors of one rank and dtype along `axis` (negative counts from the end); other dims must match. */
export const concat = (tensors: readonly Tensor[], axis = 0): Tensor => apply(concatOp, tensors, { axis });
