// Losses. softmax_cross_entropy fuses log-softmax and the label term into one kernel per pass (dense probability
// labels or sparse int32 class indices), with a dedicated backward op; mseLoss is composed from existing ops.
import type { FloatArray, TensorSpec } from '../backend/backend.js';
import { grid1d, u32, type GpuArgs } from '../backend/kernel.js';
import { DTypeError, ShapeError, WgnnError, fmtShape } from '../errors.js';
import type { Rng } from '../rng.js';
import { sameShape, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { mul, sub } from './binary.js';
import { reshape } from './layout.js';
import { logSoftmax } from './softmax.js';
import { defineOp, type BadCase, type OpDef, type Sample, type SampleInput } from './op.js';
import { mean, rowTile, sum } from './reduce.js';
import { neg, square } from './unary.js';
import { requireFloat } from './util.js';

/** Options of `softmaxCrossEntropy`. */
export interface CrossEntropyAttrs {
  /** Labels are int32 class indices [...] (true) or float32 probability rows [..., C] (false). */
  sparse: boolean;
}

/** How a loss reduces its per-sample values: kept ('none'), averaged or summed. */
export type LossReduction = 'none' | 'mean' | 'sum';

type CeName = 'softmax_cross_entropy' | 'softmax_cross_entropy_bwd_x';

// Shape and dtype rule shared by the forward op (logits, labels) and the backward op (logits, labels, dy):
// logits [..., C] float32 with C >= 1; labels [..., C] float32 (dense) or [...] int32 (sparse); dy [...] float32.
function inferCe(name: CeName, inputs: readonly TensorSpec[], a: CrossEntropyAttrs): TensorSpec {
  const [x, t, dy] = inputs as [TensorSpec, TensorSpec, TensorSpec | undefined];
  requireFloat(name, [x]);
  const r = x.shape.length;
  if (r === 0) throw new ShapeError(`${name}: logits [] have rank 0; expected at least 1 dim (the classes)`);
  if (x.shape[r - 1] === 0)
    throw new ShapeError(`${name}: logits ${fmtShape(x.shape)} have 0 classes; expected at least 1`);
  const rows = x.shape.slice(0, -1);
  if (a.sparse) {
    if (t.dtype !== 'int32') {
      throw new DTypeError(
        `${name}: sparse labels ${fmtShape(t.shape)} are ${t.dtype}; expected int32 class indices (or sparse: false for probabilities)`,
      );
    }
    if (!sameShape(t.shape, rows)) {
      throw new ShapeError(
        `${name}: sparse labels ${fmtShape(t.shape)} do not fit logits ${fmtShape(x.shape)}; expected ${fmtShape(rows)} (the logits without the class dim)`,
      );
    }
  } else {
    if (t.dtype !== 'float32') {
      throw new DTypeError(
        `${name}: dense labels ${fmtShape(t.shape)} are ${t.dtype}; expected float32 probabilities (or sparse: true for class indices)`,
      );
    }
    if (!sameShape(t.shape, x.shape)) {
      throw new ShapeError(
        `${name}: dense labels ${fmtShape(t.shape)} do not match logits ${fmtShape(x.shape)}; expected equal shapes`,
      );
    }
  }
  if (!dy) return { shape: rows, dtype: 'float32' };
  if (dy.dtype !== 'float32')
    throw new DTypeError(`${name}: dy ${fmtShape(dy.shape)} is ${dy.dtype}; expected float32`);
  if (!sameShape(dy.shape, rows)) {
    throw new ShapeError(
      `${name}: dy ${fmtShape(dy.shape)} does not match the loss ${fmtShape(rows)} of logits ${fmtShape(x.shape)}; expected equal shapes`,
    );
  }
  return { shape: x.shape, dtype: 'float32' };
}

// CPU reference. x: [rows, n]; t: [rows, n] (dense) or [rows] (sparse); loss: [rows], in float64:
// loss = −Σ t log softmax(x) = Σ t (lse − x), lse = m + log Σ exp(x − m) with m the row max.
// NOTE: a sparse label outside [0, n) gives NaN for its row; dense labels are used as given (need not sum to 1:
// the loss is −Σ t log p, as torch.nn.functional.cross_entropy with probability targets).
function crossEntropyRef(
  x: FloatArray,
  t: ArrayLike<number>,
  n: number,
  sparse: boolean,
  loss: FloatArray,
): FloatArray {
  for (let r = 0; r < loss.length; r++) {
    const b = r * n;
    let m = -Infinity;
    for (let i = 0; i < n; i++) m = Math.max(m, x[b + i]!); // Math.max propagates NaN
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.exp(x[b + i]! - m);
    const lse = m + Math.log(s);
    if (sparse) {
      const l = t[r]!;
      loss[r] = l >= 0 && l < n ? lse - x[b + l]! : NaN;
    } else {
      let acc = 0;
      for (let i = 0; i < n; i++) acc += t[b + i]! * (lse - x[b + i]!);
      loss[r] = acc;
    }
  }
  return loss;
}

// CPU reference. x, dx: [rows, n]; t: [rows, n] (dense) or [rows] (sparse); dy: [rows]:
// dx = dy (softmax(x) Σt − t), t one-hot of the label when sparse (a label outside [0, n) gives a NaN row).
function crossEntropyBwdRef(
  x: FloatArray,
  t: ArrayLike<number>,
  dy: ArrayLike<number>,
  n: number,
  sparse: boolean,
  dx: FloatArray,
): FloatArray {
  for (let r = 0; r < dy.length; r++) {
    const b = r * n;
    let m = -Infinity;
    for (let i = 0; i < n; i++) m = Math.max(m, x[b + i]!);
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.exp(x[b + i]! - m);
    const l = sparse ? t[r]! : -1;
    const bad = sparse && !(l >= 0 && l < n);
    let sumT = 1;
    if (!sparse) {
      sumT = 0;
      for (let i = 0; i < n; i++) sumT += t[b + i]!;
    }
    for (let i = 0; i < n; i++) {
      const ti = sparse ? (i === l ? 1 : 0) : t[b + i]!;
      dx[b + i] = bad ? NaN : dy[r]! * ((Math.exp(x[b + i]! - m) / s) * sumT - ti);
    }
  }
  return dx;
}

// Logits [rows, n] as X rows per workgroup by Y threads per row (rowTile: one thread per row for few classes).
function dispatchRows(
  shader: 'softmax_cross_entropy_fwd' | 'softmax_cross_entropy_bwd',
  { inputs, out, attrs, ctx }: GpuArgs<CrossEntropyAttrs>,
): void {
  const x = inputs[0]!;
  const n = x.shape[x.shape.length - 1]!;
  const rows = sizeOf(x.shape) / n;
  if (rows === 0) return;
  const { X, Y } = rowTile(rows, n);
  ctx.dispatch({
    shader,
    overrides: { X, Y, SPARSE: attrs.sparse },
    workgroups: grid1d(rows, X, ctx.limits.maxComputeWorkgroupsPerDimension),
    outputs: [out],
    inputs,
    uniforms: [u32(rows), u32(n)],
  });
}

// Sample cases: logits shape, label kind, logits range. Awkward class counts (1, 7, 33, 129, 300, 1000, 2100), rows
// 1, 7, 64, 65, leading dims, logits of ±1000 (stability), 70000 short rows, no rows. Threads per row (rowTile): 1
// under 64 classes (and from 4096 rows), 4 for 7 rows of 129, 8 for 300, 16 for 1000, 64 for 2100.
type LabelKind = 'probs' | 'onehot' | 'index' | 'out of range';
interface CeCase {
  shape: number[];
  labels: LabelKind;
  range?: [number, number];
}
const CASES: readonly CeCase[] = [
  { shape: [5, 1], labels: 'probs' },
  { shape: [7], labels: 'onehot' },
  { shape: [64, 10], labels: 'probs' },
  { shape: [65, 33], labels: 'onehot' },
  { shape: [7, 129], labels: 'probs', range: [-8, 8] },
  { shape: [3, 1000], labels: 'probs' },
  { shape: [2, 3, 10], labels: 'onehot' },
  { shape: [4, 33], labels: 'onehot', range: [-1000, 1000] },
  { shape: [4, 33], labels: 'probs', range: [-1000, 1000] },
  { shape: [70000, 3], labels: 'probs' },
  { shape: [9, 300], labels: 'onehot' },
  { shape: [2, 2100], labels: 'probs' },
  { shape: [5, 1], labels: 'index' },
  { shape: [7], labels: 'index' },
  { shape: [64, 10], labels: 'index' },
  { shape: [65, 33], labels: 'index' },
  { shape: [7, 129], labels: 'index', range: [-8, 8] },
  { shape: [3, 1000], labels: 'index' },
  { shape: [2, 3, 10], labels: 'index' },
  { shape: [4, 33], labels: 'index', range: [-1000, 1000] },
  { shape: [70000, 3], labels: 'index' },
  { shape: [9, 300], labels: 'index' },
  { shape: [2, 2100], labels: 'index' },
  { shape: [6, 7], labels: 'out of range' },
  { shape: [0, 5], labels: 'index' },
];

// Labels for one case, logits [..., n]: random probability rows in [0, 1] (not normalised: the formula takes them
// as given), one-hot rows, or int32 class indices in [0, n).
// NOTE: the forward's out-of-range sample has every label out of range, because its finite-difference check sums
// over all rows and one NaN row would hide the others; the backward op (not checked by differences) mixes them.
function labelsFor(c: CeCase, rng: Rng, withDy: boolean): SampleInput {
  const n = c.shape[c.shape.length - 1]!;
  const rows = c.shape.slice(0, -1);
  switch (c.labels) {
    case 'probs':
      return { shape: c.shape, range: [0, 1] };
    case 'index':
      return { shape: rows, dtype: 'int32', range: [0, n] };
    case 'out of range':
      return { shape: rows, dtype: 'int32', values: withDy ? [0, n, -1, 3, n - 1, n + 5] : [n, -1, n + 5, -7] };
    case 'onehot': {
      const values = new Array<number>(sizeOf(c.shape)).fill(0);
      for (let r = 0; r < values.length / n; r++) values[r * n + rng.int(0, n)] = 1;
      return { shape: c.shape, values };
    }
  }
}

// Inputs (logits, labels) for the forward op, plus dy [...] in [-2, 2] for the backward op.
function* ceSamples(rng: Rng, withDy: boolean): Iterable<Sample<CrossEntropyAttrs>> {
  for (const c of CASES) {
    const sparse = c.labels === 'index' || c.labels === 'out of range';
    const inputs: SampleInput[] = [
      { shape: c.shape, ...(c.range ? { range: c.range } : {}) },
      labelsFor(c, rng, withDy),
    ];
    if (withDy) inputs.push({ shape: c.shape.slice(0, -1), range: [-2, 2] });
    const range = c.range ? ` in [${c.range}]` : '';
    yield { name: `[${c.shape}]${range} ${c.labels} ${sparse ? 'sparse' : 'dense'}`, inputs, attrs: { sparse } };
  }
}

function badCases(name: CeName, withDy: boolean): BadCase<CrossEntropyAttrs>[] {
  const dy = (shape: number[]): SampleInput[] => (withDy ? [{ shape }] : []);
  const re = (s: string) => new RegExp(`${name}: ${s.replace(/[[\]]/g, '\\$&')}`);
  const cases: BadCase<CrossEntropyAttrs>[] = [
    {
      name: 'dense shape mismatch',
      inputs: [{ shape: [2, 3] }, { shape: [2, 4] }, ...dy([2])],
      attrs: { sparse: false },
      error: ShapeError,
      message: re('dense labels [2,4] do not match logits [2,3]'),
    },
    {
      name: 'sparse labels of the wrong shape',
      inputs: [{ shape: [2, 3] }, { shape: [2, 3], dtype: 'int32' }, ...dy([2])],
      attrs: { sparse: true },
      error: ShapeError,
      message: re('sparse labels [2,3] do not fit logits [2,3]; expected [2]'),
    },
    {
      name: 'float labels with sparse: true',
      inputs: [{ shape: [2, 3] }, { shape: [2] }, ...dy([2])],
      attrs: { sparse: true },
      error: DTypeError,
      message: re('sparse labels [2] are float32; expected int32'),
    },
    {
      name: 'int32 labels with sparse: false',
      inputs: [{ shape: [2, 3] }, { shape: [2, 3], dtype: 'int32' }, ...dy([2])],
      attrs: { sparse: false },
      error: DTypeError,
      message: re('dense labels [2,3] are int32; expected float32'),
    },
    {
      name: 'int32 logits',
      inputs: [{ shape: [2, 3], dtype: 'int32' }, { shape: [2], dtype: 'int32' }, ...dy([2])],
      attrs: { sparse: true },
      error: DTypeError,
      message: re('input 0 [2,3] is int32; expected float32'),
    },
    {
      name: 'rank-0 logits',
      inputs: [{ shape: [] }, { shape: [] }, ...dy([])],
      attrs: { sparse: false },
      error: ShapeError,
      message: re('logits [] have rank 0'),
    },
    {
      name: 'zero classes',
      inputs: [{ shape: [2, 0] }, { shape: [2], dtype: 'int32' }, ...dy([2])],
      attrs: { sparse: true },
      error: ShapeError,
      message: re('logits [2,0] have 0 classes'),
    },
  ];
  if (withDy) {
    cases.push({
      name: 'dy of the wrong shape',
      inputs: [{ shape: [2, 3] }, { shape: [2], dtype: 'int32' }, { shape: [3] }],
      attrs: { sparse: true },
      error: ShapeError,
      message: re('dy [3] does not match the loss [2] of logits [2,3]'),
    });
  }
  return cases;
}

const BWD_TOL = { atol: 1e-6, rtol: 1e-5 };

export const softmaxCrossEntropyBwdOp: OpDef<CrossEntropyAttrs> = defineOp<CrossEntropyAttrs>({
  name: 'softmax_cross_entropy_bwd_x',
  arity: 3,
  attrs: { sparse: false },
  infer: (inputs, a) => inferCe('softmax_cross_entropy_bwd_x', inputs, a),
  cpu: ({ inputs: [x, t, dy], attrs, alloc }) =>
    crossEntropyBwdRef(
      x!.data as FloatArray,
      t!.data,
      dy!.data,
      x!.shape[x!.shape.length - 1]!,
      attrs.sparse,
      alloc(x!.data.length),
    ),
  gpu: (args) => dispatchRows('softmax_cross_entropy_bwd', args),
  samples: (rng) => ceSamples(rng, true),
  bad: badCases('softmax_cross_entropy_bwd_x', true),
  tol: BWD_TOL,
  grad: { none: 'second-order gradients are not supported' },
});

export const softmaxCrossEntropyOp: OpDef<CrossEntropyAttrs> = defineOp<CrossEntropyAttrs>({
  name: 'softmax_cross_entropy',
  arity: 2,
  attrs: { sparse: false },
  infer: (inputs, a) => inferCe('softmax_cross_entropy', inputs, a),
  cpu: ({ inputs: [x, t], attrs, alloc }) =>
    crossEntropyRef(
      x!.data as FloatArray,
      t!.data,
      x!.shape[x!.shape.length - 1]!,
      attrs.sparse,
      alloc(x!.data.length / x!.shape[x!.shape.length - 1]!),
    ),
  gpu: (args) => dispatchRows('softmax_cross_entropy_fwd', args),
  samples: (rng) => ceSamples(rng, false),
  bad: badCases('softmax_cross_entropy', false),
  tol: { atol: 1e-5, rtol: 1e-5 },
  gradTol: BWD_TOL, // d logits comes from the backward kernel; d labels is one product per element
  grad: {
    saves: { inputs: [0, 1] },
    // d logits = dy (softmax(x) Σt − t);  d labels (dense) = −dy log softmax(x).
    // NOTE: dense labels get their exact gradient (the loss is linear in them), as PyTorch and TF's
    // softmax_cross_entropy_with_logits_v2 give; sparse labels are integers and get none.
    rule: ({ inputs: [x, t], attrs, needs }, dy) => [
      needs[0] ? apply(softmaxCrossEntropyBwdOp, [x!, t!, dy], attrs) : null,
      needs[1] && !attrs.sparse ? neg(mul(logSoftmax(x!), reshape(dy, [...dy.shape, 1]))) : null,
    ],
  },
});

export const lossOps = {
  softmax_cross_entropy: softmaxCrossEntropyOp,
  softmax_cross_entropy_bwd_x: softmaxCrossEntropyBwdOp,
};

// 'mean' and 'sum' reduce the per-element losses, disposing them; 'none' returns them.
function reduce(loss: Tensor, reduction: LossReduction): Tensor {
  if (reduction === 'none') return loss;
  if (reduction !== 'mean' && reduction !== 'sum') {
    loss.dispose();
    throw new WgnnError(`loss: reduction '${String(reduction)}' is not one of 'none', 'mean', 'sum'`);
  }
  const r = reduction === 'mean' ? mean(loss) : sum(loss);
  loss.dispose();
  return r;
}

/**
 * Softmax cross-entropy on logits [..., C], computed stably in one fused kernel, as torch.nn.functional.cross_entropy
 * with class indices or probabilities. Labels are int32 class indices [...] (sparse, inferred from the dtype) or
 * float32 probability rows [..., C] (used as given: they need not sum to 1). A class index outside [0, C) gives NaN
 * for its row. `reduction`: 'none' gives the per-row losses [...], 'mean' (default) or 'sum' a scalar.
 */
export function softmaxCrossEntropy(
  logits: Tensor,
  labels: Tensor,
  { reduction = 'mean' }: { reduction?: LossReduction } = {},
): Tensor {
  return reduce(apply(softmaxCrossEntropyOp, [logits, labels], { sparse: labels.dtype === 'int32' }), reduction);
}

/**
 * Mean squared error (pred - target)², elementwise (broadcast as `sub`), as torch.nn.functional.mse_loss.
 * `reduction`: 'none' gives the elementwise losses, 'mean' (default) or 'sum' a scalar.
 */
export function mseLoss(
  pred: Tensor,
  target: Tensor,
  { reduction = 'mean' }: { reduction?: LossReduction } = {},
): Tensor {
  const d = sub(pred, target);
  const sq = square(d);
  d.dispose();
  return reduce(sq, reduction);
}
