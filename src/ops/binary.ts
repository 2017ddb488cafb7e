// Binary elementwise ops with NumPy broadcasting: each a row with two independent implementations side by side,
// the WGSL expression over `a` and `b` (spliced into shaders/binary_fwd.wgsl) and the CPU reference.
import { grid1d, u32, type UniformWord } from '../backend/kernel.js';
import { DTypeError, ShapeError, fmtShape } from '../errors.js';
import { broadcastShapes, broadcastStrides, sameShape, sizeOf, type Shape } from '../shape.js';
import { tensor, tidy, zeros, type Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { reshape } from './layout.js';
import { defineOp, type Grad, type NoAttrs, type OpDef, type Sample, type SampleInput, type Tol } from './op.js';
import { sum } from './reduce.js';
import { neg, sigmoid } from './unary.js';
import { requireFloat } from './util.js';

interface BinaryRow {
  wgsl: string;
  ref: (a: number, b: number) => number;
  tol: Tol;
  /** Input ranges of a and b for random samples (special values are tested separately). */
  range?: [[number, number], [number, number]];
  /** The backward rule, composed from ops: (a, b, y, dy) -> (da, db) at the output's shape (reduced later). */
  grad: BinaryGrad | { none: string };
}

interface BinaryGrad {
  saves: { inputs?: number[]; output?: boolean };
  rule: (
    a: Tensor | undefined,
    b: Tensor | undefined,
    y: Tensor | undefined,
    dy: Tensor,
    needs: readonly boolean[],
  ) => [Tensor | null, Tensor | null];
}

// NOTE: pow follows C99 / torch.pow, which differs from Math.pow only where the base is ±1: pow(1, NaN) = 1 and
// pow(±1, ±Inf) = 1, where JavaScript says NaN.
const powRef = (a: number, b: number): number =>
  a === 1 || (a === -1 && Math.abs(b) === Infinity) ? 1 : Math.pow(a, b);
// pow's partial derivatives as torch 1.13 (FunctionsManual.cpp pow_backward_self, pow_backward_exponent), with its
// f32 intermediates: ∂/∂a = 0 where b = 0, else b·a^(b−1); ∂/∂b = 0 where a = 0 and b >= 0, else a^b·ln a (NaN for
// a < 0). The naive formulas give NaN at a = 0: 0·0^−1 and 0^b·ln 0 = 0·−Inf.
const f32 = Math.fround;
const powGradBaseRef = (a: number, b: number): number => (b === 0 ? 0 : b * f32(powRef(a, f32(b - 1))));
const powGradExponentRef = (a: number, b: number): number => (a === 0 && b >= 0 ? 0 : f32(powRef(a, b)) * Math.log(a));

// NOTE: division by zero gives ±Inf (0/0 NaN) as IEEE; maximum/minimum propagate NaN, as PyTorch (Math.max does).
export const BINARY = {
  add: {
    wgsl: 'a + b',
    ref: (a, b) => a + b,
    tol: { atol: 1e-6, rtol: 1e-6 },
    grad: { saves: {}, rule: (_a, _b, _y, dy) => [dy, dy] },
  },
  sub: {
    wgsl: 'a - b',
    ref: (a, b) => a - b,
    tol: { atol: 1e-6, rtol: 1e-6 },
    grad: { saves: {}, rule: (_a, _b, _y, dy, needs) => [dy, needs[1] ? neg(dy) : null] },
  },
  mul: {
    wgsl: 'a * b',
    ref: (a, b) => a * b,
    tol: { atol: 1e-6, rtol: 1e-6 },
    // d(ab) = b da + a db
    grad: {
      saves: { inputs: [0, 1] },
      rule: (a, b, _y, dy, needs) => [needs[0] ? mul(dy, b!) : null, needs[1] ? mul(dy, a!) : null],
    },
  },
  div: {
    wgsl: 'a / b',
    ref: (a, b) => a / b,
    tol: { atol: 1e-6, rtol: 2e-6 },
    // d(a/b) = da / b − (a/b²) db
    grad: {
      saves: { inputs: [1], output: true },
      rule: (_a, b, y, dy, needs) => {
        const da = div(dy, b!);
        return [da, needs[1] ? neg(mul(da, y!)) : null];
      },
    },
  },
  // NOTE: at a tie, maximum and minimum split the gradient equally between a and b, as PyTorch.
  maximum: {
    wgsl: 'max_nan_f32(a, b)',
    ref: (a, b) => Math.max(a, b),
    tol: { atol: 1e-6, rtol: 1e-6 },
    grad: {
      saves: { inputs: [0, 1] },
      rule: (a, b, _y, dy, needs) => [needs[0] ? masked(dy, a!, b!) : null, needs[1] ? masked(dy, b!, a!) : null],
    },
  },
  minimum: {
    wgsl: 'min_nan_f32(a, b)',
    ref: (a, b) => Math.min(a, b),
    tol: { atol: 1e-6, rtol: 1e-6 },
    grad: {
      saves: { inputs: [0, 1] },
      rule: (a, b, _y, dy, needs) => [needs[0] ? masked(dy, b!, a!) : null, needs[1] ? masked(dy, a!, b!) : null],
    },
  },
  // Positive bases in random samples (negative ones with integer exponents have their own sample), |b·log2 a| <= 6.
  pow: {
    wgsl: 'pow_f32(a, b)',
    ref: powRef,
    tol: { atol: 1e-5, rtol: 1e-5 },
    range: [
      [0.25, 4],
      [-3, 3],
    ],
    // d(a^b) = b a^(b−1) da + a^b ln(a) db, each factor a row below (0 at a = 0 as PyTorch, NaN for db where a < 0).
    // NOTE: torch's da is where(b == 0, 0, dy·b·a^(b−1)); here dy·0, which differs only for a non-finite dy.
    grad: {
      saves: { inputs: [0, 1] },
      rule: (a, b, _y, dy, needs) => [
        needs[0] ? mul(dy, powGradBase(a!, b!)) : null,
        needs[1] ? mul(dy, powGradExponent(a!, b!)) : null,
      ],
    },
  },
  // ∂(a^b)/∂a and ∂(a^b)/∂b as PyTorch (see powGradBaseRef): zero and NaN tested by their bits, never by comparison.
  pow_grad_base: {
    wgsl: 'select(b * pow_f32(a, b - 1.0), 0.0, (bitcast<u32>(b) & 0x7fffffffu) == 0u)',
    ref: powGradBaseRef,
    tol: { atol: 1e-5, rtol: 1e-5 },
    range: [
      [0.25, 4],
      [-3, 3],
    ],
    grad: { none: "a factor of pow's backward rule: second-order gradients are not supported" },
  },
  pow_grad_exponent: {
    wgsl: 'select(pow_f32(a, b) * log(a), 0.0, (bitcast<u32>(a) & 0x7fffffffu) == 0u && !is_nan_f32(b) && b >= 0.0)',
    ref: powGradExponentRef,
    tol: { atol: 1e-5, rtol: 1e-5 },
    range: [
      [0.25, 4],
      [-3, 3],
    ],
    grad: { none: "a factor of pow's backward rule: second-order gradients are not supported" },
  },
  // Binary cross-entropy from logits a against targets b, per element, stably:
  // −[b log σ(a) + (1−b) log(1−σ(a))] = max(a, 0) − a·b + log(1 + e^−|a|).
  binary_cross_entropy_with_logits: {
    wgsl: 'max(a, 0.0) - a * b + log(1.0 + exp(-abs(a)))',
    ref: (a, b) => Math.max(a, 0) - a * b + Math.log1p(Math.exp(-Math.abs(a))),
    tol: { atol: 1e-6, rtol: 1e-5 },
    range: [
      [-8, 8],
      [0, 1],
    ],
    // d/da = σ(a) − b;  d/db = −a
    grad: {
      saves: { inputs: [0, 1] },
      rule: (a, b, _y, dy, needs) => [
        needs[0] ? mul(dy, sub(sigmoid(a!), b!)) : null,
        needs[1] ? mul(dy, neg(a!)) : null,
      ],
    },
  },
  // 0 where a < b, ½ where a = b, else 1 (a > b, or either NaN): maximum's and minimum's gradient mask. At NaN both
  // sides get the whole gradient, as torch's where(a == b, dy/2, dy).masked_fill_(a < b, 0).
  step_mask: {
    wgsl: 'select(select(select(0.0, 0.5, a == b), 1.0, a > b), 1.0, is_nan_f32(a) || is_nan_f32(b))',
    ref: (a, b) => (a < b ? 0 : a === b ? 0.5 : 1),
    tol: { atol: 0, rtol: 0 },
    grad: { none: 'piecewise constant: its derivative is zero wherever it exists' },
  },
  // 1 where a = b, else 0: max's gradient mask (the elements that equal the maximum).
  eq_mask: {
    wgsl: 'select(0.0, 1.0, a == b)',
    ref: (a, b) => (a === b ? 1 : 0),
    tol: { atol: 0, rtol: 0 },
    grad: { none: 'piecewise constant: its derivative is zero wherever it exists' },
  },
  // where's halves (see `where` below): a where the condition b is nonzero (NaN included), else 0; and the converse.
  // NOTE: b is tested by its bits, so -0 is false and NaN true, on both backends (a compiler may fold NaN != 0).
  // d/da is dy masked the same way; the condition's gradient is 0 (piecewise constant), made so the tape has one.
  mask_keep: {
    wgsl: 'select(0.0, a, (bitcast<u32>(b) & 0x7fffffffu) != 0u)',
    ref: (a, b) => (b !== 0 ? a : 0),
    tol: { atol: 0, rtol: 0 },
    grad: {
      saves: { inputs: [1] },
      rule: (_a, b, _y, dy, needs) => [needs[0] ? maskKeep(dy, b!) : null, needs[1] ? zerosLike(dy) : null],
    },
  },
  mask_drop: {
    wgsl: 'select(a, 0.0, (bitcast<u32>(b) & 0x7fffffffu) != 0u)',
    ref: (a, b) => (b !== 0 ? 0 : a),
    tol: { atol: 0, rtol: 0 },
    grad: {
      saves: { inputs: [1] },
      rule: (_a, b, _y, dy, needs) => [needs[0] ? maskDrop(dy, b!) : null, needs[1] ? zerosLike(dy) : null],
    },
  },
} satisfies Record<string, BinaryRow>;

export type BinaryName = keyof typeof BINARY;

const WG = 64;
/** Consecutive output elements per thread (the kernel's 4). */
const PER_THREAD = 4;
/** Dims the kernel's index math handles (its uniform struct holds 8 sizes and 8 strides per input). */
const MAX_DIMS = 8;

/** Every special value against every other (the first as a column, the second as a row). */
const SPECIAL: Record<BinaryName, number[]> = {
  add: [0, -0, 1, -2.5, 3e38, -3e38, Infinity, -Infinity, NaN],
  sub: [0, -0, 1, -2.5, 3e38, -3e38, Infinity, -Infinity, NaN],
  mul: [0, -0, 1, -2.5, 1e30, -1e30, Infinity, -Infinity, NaN],
  div: [0, -0, 1, -2.5, 1e-30, 1e30, Infinity, -Infinity, NaN],
  maximum: [0, 1, -2.5, 7, Infinity, -Infinity, NaN],
  minimum: [0, 1, -2.5, 7, Infinity, -Infinity, NaN],
  pow: [0, -0, 1, -1, 2, -2, 0.5, -0.5, 3, -3, 1e30, Infinity, -Infinity, NaN],
  pow_grad_base: [0, -0, 1, -1, 2, -2, 0.5, -0.5, 3, -3, 1e30, Infinity, -Infinity, NaN],
  pow_grad_exponent: [0, -0, 1, -1, 2, -2, 0.5, -0.5, 3, -3, 1e30, Infinity, -Infinity, NaN],
  step_mask: [0, -0, 1, -2.5, 7, Infinity, -Infinity, NaN],
  eq_mask: [0, -0, 1, -2.5, 7, Infinity, -Infinity],
  mask_keep: [0, -0, 1, -2.5, 3e38, Infinity, -Infinity, NaN],
  mask_drop: [0, -0, 1, -2.5, 3e38, Infinity, -Infinity, NaN],
  binary_cross_entropy_with_logits: [0, -0, 1, -2.5, 0.5, 30, -30, 90, -90, NaN],
};

interface Loop {
  /** Output dims after dropping 1s and merging contiguous runs, outermost first. */
  dims: number[];
  strideA: number[];
  strideB: number[];
}

/**
 * The output's index space as few dims as possible: size-1 dims dropped, and a dim merged into the one outside it
 * wherever both inputs step through the pair as one (outer stride = inner stride · inner size; 0 with 0 for a
 * broadcast run). Throws ShapeError past MAX_DIMS, on every backend so the op means the same everywhere.
 */
function loopOf(op: string, a: Shape, b: Shape, out: Shape): Loop {
  const sa = broadcastStrides(a, out);
  const sb = broadcastStrides(b, out);
  const loop: Loop = { dims: [], strideA: [], strideB: [] };
  out.forEach((size, d) => {
    if (size === 1) return;
    const last = loop.dims.length - 1;
    if (last >= 0 && loop.strideA[last] === sa[d]! * size && loop.strideB[last] === sb[d]! * size) {
      loop.dims[last]! *= size;
      loop.strideA[last] = sa[d]!;
      loop.strideB[last] = sb[d]!;
    } else {
      loop.dims.push(size);
      loop.strideA.push(sa[d]!);
      loop.strideB.push(sb[d]!);
    }
  });
  if (loop.dims.length > MAX_DIMS) {
    throw new ShapeError(
      `${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} broadcast to ${fmtShape(out)}, which is still ${loop.dims.length} dims ` +
        `after merging contiguous ones; expected at most ${MAX_DIMS}`,
    );
  }
  return loop;
}

/**
 * Constants that turn i / d into a multiply and shifts for every 32-bit i (Granlund and Montgomery, "Division by
 * invariant integers using multiplication", 1994): magic = floor(2^32 (2^l − d) / d) + 1 and shift = l − 1, with
 * l = ceil(log2 d); the kernel computes t = mulhi(i, magic), i / d = (t + (i − t) / 2) >> shift. d from 2 up: an
 * innermost dim of 1 is never kept (size-1 dims merge away).
 */
function divisionMagic(d: number): [number, number] {
  let l = 1;
  while (2 ** l < d) l++;
  const magic = (2n ** 32n * (2n ** BigInt(l) - BigInt(d))) / BigInt(d) + 1n;
  return [Number(magic), l - 1];
}

/** Eight words, innermost dim first, zero-padded: one `array<vec4u, 2>` of the kernel's uniform struct. */
const pack8 = (v: number[]): UniformWord[] => Array.from({ length: MAX_DIMS }, (_, i) => u32(v[v.length - 1 - i] ?? 0));

function binaryOp(name: BinaryName): OpDef<NoAttrs> {
  const row: BinaryRow = BINARY[name];
  const [rangeA, rangeB] = row.range ?? [undefined, undefined];
  return defineOp<NoAttrs>({
    name,
    arity: 2,
    attrs: {},
    infer: ([a, b]) => {
      requireFloat(name, [a!, b!]);
      const shape = broadcastShapes(name, a!.shape, b!.shape);
      loopOf(name, a!.shape, b!.shape, shape);
      return { shape, dtype: 'float32' };
    },
    // y [out] = f(a, b) with a, b [shapes broadcasting to out], read through broadcast strides; float64 per
    // element before rounding to f32.
    cpu: ({ inputs: [a, b], out, alloc }) => {
      const shape = out.shape;
      const sa = broadcastStrides(a!.shape, shape);
      const sb = broadcastStrides(b!.shape, shape);
      const y = alloc(sizeOf(shape));
      for (let i = 0; i < y.length; i++) {
        let rest = i;
        let ia = 0;
        let ib = 0;
        for (let d = shape.length - 1; d >= 0; d--) {
          const c = rest % shape[d]!;
          rest = (rest - c) / shape[d]!;
          ia += c * sa[d]!;
          ib += c * sb[d]!;
        }
        y[i] = row.ref(a!.data[ia]!, b!.data[ib]!);
      }
      return y;
    },
    gpu: ({ inputs: [a, b], out, ctx }) => {
      const n = sizeOf(out.shape);
      if (n === 0) return; // empty output: nothing to write
      const loop = loopOf(name, a!.shape, b!.shape, out.shape);
      ctx.dispatch({
        shader: 'binary_fwd',
        defines: { EXPR: row.wgsl },
        // Inputs as large as the output can only differ from it by size-1 dims: they line up element by element.
        overrides: { WG, SAME: sizeOf(a!.shape) === n && sizeOf(b!.shape) === n },
        workgroups: grid1d(Math.ceil(n / PER_THREAD), WG, ctx.limits.maxComputeWorkgroupsPerDimension),
        outputs: [out],
        inputs: [a!, b!],
        // n, rank, the innermost dim's division constants (any for an output of one element: SAME), then dims and
        // both inputs' strides.
        uniforms: [
          ...[n, loop.dims.length, ...divisionMagic(loop.dims[loop.dims.length - 1] ?? 2)].map(u32),
          ...pack8(loop.dims),
          ...pack8(loop.strideA),
          ...pack8(loop.strideB),
        ],
      });
    },
    samples: function* () {
      const inp = (shape: number[], range: [number, number] | undefined): SampleInput =>
        range ? { shape, range } : { shape };
      const s = (sa: number[], sb: number[]): Sample<NoAttrs> => ({
        name: `${fmtShape(sa)} with ${fmtShape(sb)}`,
        inputs: [inp(sa, rangeA), inp(sb, rangeB)],
      });
      for (const n of [1, 7, 33, 65, 129]) yield s([n], [n]);
      yield s([4, 1, 5], [3, 1]);
      yield s([], [3, 4]);
      yield s([1], [129, 65]);
      yield s([2, 0, 3], [3]);
      yield s([2, 3, 4, 5, 6], [3, 1, 5, 1]);
      // Rank 10, merged to [2, 384, 3] with b's strides [3, 0, 1].
      yield s([2, 3, 2, 2, 2, 2, 2, 2, 2, 3], [2, 1, 1, 1, 1, 1, 1, 1, 1, 3]);
      // NOTE: where the finite special values are smooth points (binary_cross_entropy_with_logits), they pair among
      // themselves too, so the gradient check (finite samples only) covers them.
      const sp = SPECIAL[name];
      const finite = sp.filter(Number.isFinite);
      for (const v of name === 'binary_cross_entropy_with_logits' ? [sp, finite] : [sp]) {
        yield {
          name: `special [${v.join(',')}] pairs`,
          inputs: [
            { shape: [v.length, 1], values: v },
            { shape: [v.length], values: v },
          ],
        };
      }
      if (name.startsWith('mask_')) {
        // Conditions 0 and nonzero mixed, finite so the gradient check covers them ((0 ± eps) stays nonzero).
        yield {
          name: '[5,7] with condition [7] of 0, 1, -2',
          inputs: [{ shape: [5, 7] }, { shape: [7], values: [0, 1, 0, -2, 0, 0, 1] }],
        };
      }
      if (name.startsWith('pow')) {
        yield {
          name: 'negative bases, integer exponents',
          inputs: [
            { shape: [5, 7], range: [-3, 3] },
            { shape: [7], values: [-3, -2, -1, 0, 1, 2, 3] },
          ],
        };
      }
      // Past 65535 workgroups of WG threads, 4 elements each: the 2-D grid. An outer product keeps the inputs small.
      if (name === 'add') yield s([65537, 1], [1, 257]);
    },
    bad: [
      {
        name: '[2,3] with [4]',
        inputs: [{ shape: [2, 3] }, { shape: [4] }],
        error: ShapeError,
        message: new RegExp(`${name}: shapes \\[2,3\\] and \\[4\\] do not broadcast`),
      },
      {
        name: 'int32 input',
        inputs: [{ shape: [2, 3], dtype: 'int32' }, { shape: [2, 3] }],
        error: DTypeError,
        message: new RegExp(`${name}: input 0 \\[2,3\\] is int32`),
      },
      {
        name: 'rank 9 that does not merge',
        inputs: [{ shape: [2, 1, 2, 1, 2, 1, 2, 1, 2] }, { shape: [1, 2, 1, 2, 1, 2, 1, 2, 1] }],
        error: ShapeError,
        message: new RegExp(
          `${name}: shapes \\[2,1,2,1,2,1,2,1,2\\] and \\[1,2,1,2,1,2,1,2,1\\] ` +
            `broadcast to \\[2,2,2,2,2,2,2,2,2\\], which is still 9 dims after merging contiguous ones; expected at most 8`,
        ),
      },
    ],
    tol: row.tol,
    // Broadcast gradients are sums over up to 65537 terms in f32 (see sum's tolerance).
    gradTol: { atol: 5e-4, rtol: 1e-4 },
    grad: 'none' in row.grad ? row.grad : broadcastGrad(row.grad),
  });
}

/** Wraps a rule computed at the output's shape so each gradient is summed back to its input's shape. */
function broadcastGrad(g: BinaryGrad): Grad<NoAttrs> {
  return {
    saves: g.saves,
    rule: (ctx, dy) => {
      const grads = g.rule(ctx.inputs[0], ctx.inputs[1], ctx.output, dy, ctx.needs);
      return grads.map((d, i) => (d && ctx.needs[i] ? sumTo(d, ctx.shapes[i]!) : null));
    },
  };
}

/** Sums a gradient over the axes its input was broadcast along, back to `shape` (NumPy broadcasting in reverse). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  return reshape(sum(g, axes, true), shape);
}

// dy where `a` wins against `b` (½ at ties).
const masked = (dy: Tensor, a: Tensor, b: Tensor): Tensor => mul(dy, stepMask(a, b));

export const binaryOps = Object.fromEntries((Object.keys(BINARY) as BinaryName[]).map((n) => [n, binaryOp(n)])) as {
  [K in BinaryName]: OpDef<NoAttrs>;
};

/** A tensor, or a plain number that becomes a scalar on the other operand's backend. */
export type Operand = Tensor | number;

const binary =
  (op: OpDef<NoAttrs>) =>
  (a: Operand, b: Operand): Tensor => {
    const t = typeof a === 'number' ? (typeof b === 'number' ? undefined : b) : a;
    const backend = t?.live(op.name).backend;
    const made: Tensor[] = [];
    const asTensor = (v: Operand): Tensor => {
      if (typeof v !== 'number') return v;
      const s = tensor([v], [], backend ? { backend } : {});
      made.push(s);
      return s;
    };
    try {
      return apply(op, [asTensor(a), asTensor(b)]);
    } finally {
      for (const s of made) s.dispose();
    }
  };

/** 0 where a < b, ½ at ties, else 1 (NaN included), broadcast: the gradient mask of maximum/minimum. */
export const stepMask = binary(binaryOps.step_mask);
/** ∂(a^b)/∂a, broadcast, 0 where b = 0 (as torch): a factor of pow's gradient. */
const powGradBase = binary(binaryOps.pow_grad_base);
/** ∂(a^b)/∂b, broadcast, 0 where a = 0 and b >= 0 (as torch): a factor of pow's gradient. */
const powGradExponent = binary(binaryOps.pow_grad_exponent);
/**
 * Binary cross-entropy of `logits` against `targets` in [0, 1], per element (no reduction), computed stably from
 * logits as torch.nn.functional.binary_cross_entropy_with_logits(reduction='none').
 */
export const binaryCrossEntropyWithLogits = binary(binaryOps.binary_cross_entropy_with_logits);
/** 1 where a = b, else 0, broadcast: the gradient mask of max. */
export const eqMask = binary(binaryOps.eq_mask);
/** a + b, broadcast (NumPy rules). Either side may be a number. */
export const add = binary(binaryOps.add);
/** a − b, broadcast (NumPy rules). Either side may be a number. */
export const sub = binary(binaryOps.sub);
/** a · b, broadcast (NumPy rules). Either side may be a number. */
export const mul = binary(binaryOps.mul);
/** a / b, broadcast (NumPy rules); x/0 is ±Inf and 0/0 NaN. Either side may be a number. */
export const div = binary(binaryOps.div);
/** Elementwise larger of a and b, broadcast; NaN if either is NaN (as torch.maximum). Either side may be a number. */
export const maximum = binary(binaryOps.maximum);
/** Elementwise smaller of a and b, broadcast; NaN if either is NaN (as torch.minimum). Either side may be a number. */
export const minimum = binary(binaryOps.minimum);
/**
 * a to the power b, broadcast, as torch.pow: a negative base needs an integer exponent (else NaN), pow(x, 0) = 1.
 * Either side may be a number.
 */
export const pow = binary(binaryOps.pow);

const maskKeep = binary(binaryOps.mask_keep);
const maskDrop = binary(binaryOps.mask_drop);
const zerosLike = (t: Tensor): Tensor => zeros(t.shape, { backend: t.backend });

/**
 * `a` where `cond` is true, else `b`, broadcast (NumPy rules) as torch.where. `cond` is float32: nonzero (NaN
 * included) is true, 0 and -0 false. Either of a and b may be a number; gradients flow to a and b, masked.
 * NOTE: computed as keep(a) + drop(b), so a chosen -0 comes out as +0; Inf and NaN on the unchosen side never leak.
 */
export function where(cond: Operand, a: Operand, b: Operand): Tensor {
  return tidy(() => add(maskKeep(a, cond), maskDrop(b, cond)));
}

/** `x` with `value` where `mask` is true (nonzero, float32), broadcast, as torch's masked_fill. */
export const maskedFill = (x: Tensor, mask: Operand, value: number): Tensor => where(mask, value, x);
