// gather: embedding lookup, rows of a table [V, D] picked by int32 indices of any shape, as
// torch.nn.functional.embedding and tf.gather on axis 0. Its backward w.r.t. the table is its own op, a
// deterministic scatter-add (shaders/gather_bwd.wgsl: one workgroup per table row, no float atomics).
import type { FloatArray, TensorSpec } from '../backend/backend.js';
import { grid1d, u32 } from '../backend/kernel.js';
import { ArgumentError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { sameShape, sizeOf, stridesOf, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { defineOp, type BadCase, type NoAttrs, type OpDef, type Sample, type SampleInput } from './op.js';

export interface GatherBwdAttrs {
  /** V, the table's row count (dy does not carry it). */
  rows: number;
}

function requireIndices(name: string, idx: TensorSpec): void {
  if (idx.dtype !== 'int32')
    throw new DTypeError(`${name}: indices ${fmtShape(idx.shape)} are ${idx.dtype}; expected int32 row indices`);
}

// Table [V, D] float32, indices [...] int32 of any rank (0-d and empty too) -> [..., D].
function inferGather([table, idx]: readonly TensorSpec[]): TensorSpec {
  if (table!.dtype !== 'float32')
    throw new DTypeError(`gather: table ${fmtShape(table!.shape)} is ${table!.dtype}; expected float32`);
  if (table!.shape.length !== 2)
    throw new ShapeError(
      `gather: table ${fmtShape(table!.shape)} has rank ${table!.shape.length}; expected 2 ([V, D])`,
    );
  requireIndices('gather', idx!);
  return { shape: [...idx!.shape, table!.shape[1]!], dtype: 'float32' };
}

// Indices [...] int32, dy [..., D] float32 -> dtable [rows, D].
function inferGatherBwd([idx, dy]: readonly TensorSpec[], a: GatherBwdAttrs): TensorSpec {
  const name = 'gather_bwd_table';
  requireIndices(name, idx!);
  if (dy!.dtype !== 'float32')
    throw new DTypeError(`${name}: dy ${fmtShape(dy!.shape)} is ${dy!.dtype}; expected float32`);
  if (dy!.shape.length !== idx!.shape.length + 1 || !sameShape(dy!.shape.slice(0, -1), idx!.shape)) {
    throw new ShapeError(
      `${name}: dy ${fmtShape(dy!.shape)} does not fit indices ${fmtShape(idx!.shape)}; expected [${[...idx!.shape, 'D'].join(',')}]`,
    );
  }
  if (!Number.isSafeInteger(a.rows) || a.rows < 0)
    throw new ArgumentError(`${name}: rows ${a.rows} is not a row count; expected an integer >= 0`);
  return { shape: [a.rows, dy!.shape[dy!.shape.length - 1]!], dtype: 'float32' };
}

// The row index at flat position p of indices, checked against V: an index outside [0, V) is an ArgumentError
// naming the index, its position (as a multi-index) and V.
function rowAt(name: string, idx: ArrayLike<number>, shape: Shape, p: number, v: number): number {
  const r = idx[p]!;
  if (r >= 0 && r < v) return r;
  const at = stridesOf(shape).map((s, k) => Math.floor(p / s) % shape[k]!);
  throw new ArgumentError(
    `${name}: index ${r} at position ${fmtShape(at)} of indices ${fmtShape(shape)} is outside [0, ${v}); expected a row of the table of ${v} rows`,
  );
}

// CPU reference. table [V, D], idx [N], y [N, D]: y[n, :] = table[idx[n], :], every index checked first.
function gatherRef(table: FloatArray, v: number, d: number, idx: ArrayLike<number>, shape: Shape, y: FloatArray) {
  for (let n = 0; n < idx.length; n++) rowAt('gather', idx, shape, n, v);
  for (let n = 0; n < idx.length; n++) {
    const src = idx[n]! * d;
    for (let j = 0; j < d; j++) y[n * d + j] = table[src + j]!;
  }
  return y;
}

// CPU reference. idx [N], dy [N, D], dt [V, D]: dt[idx[n], :] += dy[n, :] in index order, in float64.
function gatherBwdRef(
  idx: ArrayLike<number>,
  shape: Shape,
  dy: ArrayLike<number>,
  v: number,
  d: number,
  dt: FloatArray,
) {
  for (let n = 0; n < idx.length; n++) rowAt('gather_bwd_table', idx, shape, n, v);
  const acc = new Float64Array(v * d);
  for (let n = 0; n < idx.length; n++) {
    const dst = idx[n]! * d;
    for (let j = 0; j < d; j++) acc[dst + j]! += dy[n * d + j]!;
  }
  dt.set(acc);
  return dt;
}

// Sample cases: table [V, D], indices shape and values. V not a multiple of 4 (1, 7, 33, 65), D 1/16/33/80, repeats,
// indices 0 and V − 1, ranks 0-3, no indices; [65537] indices of D 80 give 5.2M outputs (the forward's grid folds
// into 2-D); a table of 65537 x 65 (4.3M gradient elements: the backward's grid folds).
interface GatherCase {
  v: number;
  d: number;
  idx: number[];
  values?: number[];
}
const CASES: readonly GatherCase[] = [
  { v: 7, d: 16, idx: [5], values: [0, 6, 3, 6, 0] },
  { v: 65, d: 33, idx: [], values: [64] },
  { v: 65, d: 1, idx: [4, 9] },
  { v: 7, d: 80, idx: [2, 3, 4], values: [6, 0, 0, 2, 6, 5, 1] },
  { v: 65, d: 80, idx: [0] },
  { v: 1, d: 1, idx: [3], values: [0] },
  { v: 33, d: 16, idx: [2, 0, 3] },
  { v: 33, d: 33, idx: [3, 40] },
  { v: 65, d: 80, idx: [65537] },
  { v: 5, d: 300, idx: [9], values: [4, 1, 4, 0, 4, 2, 3, 1, 4] },
  { v: 65537, d: 65, idx: [3], values: [65536, 0, 65536] },
];

const idxInput = (c: GatherCase): SampleInput => ({
  shape: c.idx,
  dtype: 'int32',
  ...(c.values ? { values: c.values } : { range: [0, c.v] }),
});
const caseName = (c: GatherCase) => `table [${c.v},${c.d}] indices [${c.idx}]${c.values ? ' repeats, 0 and V-1' : ''}`;

function* gatherSamples(): Iterable<Sample<NoAttrs>> {
  for (const c of CASES) yield { name: caseName(c), inputs: [{ shape: [c.v, c.d] }, idxInput(c)] };
}

function* gatherBwdSamples(): Iterable<Sample<GatherBwdAttrs>> {
  for (const c of CASES)
    yield { name: caseName(c), inputs: [idxInput(c), { shape: [...c.idx, c.d] }], attrs: { rows: c.v } };
}

const re = (s: string) => new RegExp(s.replace(/[[\]()]/g, '\\$&'));

const GATHER_BAD: BadCase<NoAttrs>[] = [
  {
    name: 'float32 indices',
    inputs: [{ shape: [7, 4] }, { shape: [3] }],
    error: DTypeError,
    message: re('gather: indices [3] are float32; expected int32'),
  },
  {
    name: 'int32 table',
    inputs: [
      { shape: [7, 4], dtype: 'int32' },
      { shape: [3], dtype: 'int32', range: [0, 7] },
    ],
    error: DTypeError,
    message: re('gather: table [7,4] is int32; expected float32'),
  },
  {
    name: 'rank-1 table',
    inputs: [{ shape: [7] }, { shape: [3], dtype: 'int32', range: [0, 7] }],
    error: ShapeError,
    message: re('gather: table [7] has rank 1; expected 2'),
  },
  {
    name: 'rank-3 table',
    inputs: [{ shape: [7, 2, 3] }, { shape: [3], dtype: 'int32', range: [0, 7] }],
    error: ShapeError,
    message: re('gather: table [7,2,3] has rank 3; expected 2'),
  },
];

const GATHER_BWD_BAD: BadCase<GatherBwdAttrs>[] = [
  {
    name: 'float32 indices',
    inputs: [{ shape: [3] }, { shape: [3, 4] }],
    attrs: { rows: 7 },
    error: DTypeError,
    message: re('gather_bwd_table: indices [3] are float32; expected int32'),
  },
  {
    name: 'dy of the wrong shape',
    inputs: [{ shape: [3], dtype: 'int32', range: [0, 7] }, { shape: [4, 4] }],
    attrs: { rows: 7 },
    error: ShapeError,
    message: re('gather_bwd_table: dy [4,4] does not fit indices [3]'),
  },
  {
    name: 'negative row count',
    inputs: [{ shape: [3], dtype: 'int32', range: [0, 7] }, { shape: [3, 4] }],
    attrs: { rows: -1 },
    error: ArgumentError,
    message: re('gather_bwd_table: rows -1 is not a row count'),
  },
];

// Up to ~1000 dy values in [-2, 2] per row: the kernel adds in float32, the reference in float64 (same order), so
// the error is up to ~1000 roundings of partial sums of ~30 and cancellation leaves small results: absolute 1e-4.
const BWD_TOL = { atol: 1e-4, rtol: 1e-5 };

// The kernel's columns per thread (CPT): each of its workgroup's threads (WG) scans every index once per WG·CPT
// columns. NOTE: every thread takes part in the scan (on lavapipe a masked-off add still costs its loads), so the
// workgroup is no wider than the row needs: D = 128 takes 32 threads.
const GATHER_BWD_COLS = 4;

export const gatherBwdOp: OpDef<GatherBwdAttrs> = defineOp<GatherBwdAttrs>({
  name: 'gather_bwd_table',
  arity: 2,
  attrs: { rows: 0 },
  infer: inferGatherBwd,
  cpu: ({ inputs: [idx, dy], out, alloc }) =>
    gatherBwdRef(idx!.data, idx!.shape, dy!.data, out.shape[0]!, out.shape[1]!, alloc(sizeOf(out.shape))),
  gpu: ({ inputs: [idx, dy], out, ctx }) => {
    if (sizeOf(out.shape) === 0) return;
    const [rows, d] = [out.shape[0]!, out.shape[1]!];
    ctx.dispatch({
      shader: 'gather_bwd',
      // One workgroup per table row, of threads enough for a pass over its columns (up to 64).
      workgroups: grid1d(rows, 1, ctx.limits.maxComputeWorkgroupsPerDimension),
      overrides: { WG: Math.min(64, 8 * Math.ceil(d / GATHER_BWD_COLS / 8)) },
      outputs: [out],
      inputs: [idx!, dy!],
      uniforms: [u32(rows), u32(d), u32(sizeOf(idx!.shape))],
    });
  },
  samples: gatherBwdSamples,
  bad: GATHER_BWD_BAD,
  tol: BWD_TOL,
  gradTol: BWD_TOL,
  grad: {
    saves: { inputs: [0] },
    // Linear in dy: d dy = gather(g, indices); the indices are integers and get none.
    rule: ({ inputs: [idx], needs }, g) => [null, needs[1] ? apply(gatherOp, [g, idx!], {}) : null],
  },
});

export const gatherOp: OpDef<NoAttrs> = defineOp<NoAttrs>({
  name: 'gather',
  arity: 2,
  attrs: {},
  infer: inferGather,
  cpu: ({ inputs: [table, idx], alloc }) =>
    gatherRef(
      table!.data as FloatArray,
      table!.shape[0]!,
      table!.shape[1]!,
      idx!.data,
      idx!.shape,
      alloc(idx!.data.length * table!.shape[1]!),
    ),
  gpu: ({ inputs: [table, idx], out, ctx }) => {
    const total = sizeOf(out.shape);
    if (total === 0) return;
    ctx.dispatch({
      shader: 'gather_fwd',
      workgroups: grid1d(total, 64, ctx.limits.maxComputeWorkgroupsPerDimension),
      outputs: [out],
      inputs: [table!, idx!],
      uniforms: [u32(total), u32(table!.shape[1]!), u32(table!.shape[0]!)],
    });
  },
  samples: gatherSamples,
  bad: GATHER_BAD,
  tol: { atol: 0, rtol: 0 }, // a copy
  gradTol: BWD_TOL,
  grad: {
    saves: { inputs: [1] },
    // d table = scatter-add of dy rows into the rows the indices name (gather_bwd_table); none for the indices.
    rule: ({ inputs: [, idx], shapes, needs }, dy) => [
      needs[0] ? apply(gatherBwdOp, [idx!, dy], { rows: shapes[0]![0]! }) : null,
      null,
    ],
  },
});

export const gatherOps = {
  gather: gatherOp,
  gather_bwd_table: gatherBwdOp,
};

/**
 * Embedding lookup: rows of `table` [V, D] (float32) at `indices` [...] (int32, any shape) -> [..., D], as
 * torch.nn.functional.embedding(indices, table) and tf.gather(table, indices) (axis 0). An index outside [0, V) is
 * an ArgumentError on the CPU backend; on WebGPU (which cannot throw) it reads nothing and gives a NaN row.
 * The table's gradient is a deterministic scatter-add (repeated indices sum their rows, in index order).
 */
export const gather = (table: Tensor, indices: Tensor): Tensor => apply(gatherOp, [table, indices], {});
