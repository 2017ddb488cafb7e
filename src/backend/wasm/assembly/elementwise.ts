// Elementwise kernels: the unary family forward and backward (one kernel each, the op a code), the broadcast
// binary family over a coalesced index space, and a strided copy that serves transpose, slice, concat and
// broadcast_to. Pointers are byte offsets into the shared memory; each task takes a fixed chunk (span.ts).
import { spanEnd, spanRows, spanStart } from './span';

// Unary op codes, in the order of src/ops/unary.ts's UNARY (ops/unary.ts keeps the list).
const RELU = 0;
const LEAKY_RELU = 1;
const SIGMOID = 2;
const TANH = 3;
const GELU = 4;
const GELU_TANH = 5;
const EXP = 6;
const LOG = 7;
const NEG = 8;
const SQRT = 9;
const SQUARE = 10;
const ABS = 11;

const PHI = 0.3989422804014327; // 1/√(2π)
const GELU_C = 0.7978845608028654; // √(2/π)
const GELU_K = 0.044715;

/** erf in float64 as the CPU reference's (src/ops/util.ts): Taylor series near 0, continued fraction beyond. */
function erf(x: f64): f64 {
  const a = Math.abs(x);
  if (isNaN(x)) return NaN;
  if (a < 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 80; n++) {
      term *= (-x * x) / <f64>n;
      sum += term / <f64>(2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = a;
  for (let k = 120; k >= 1; k--) f = a + <f64>k / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

/** y = f(x) in float64, rounded once (as the CPU reference). */
function unaryScalar(op: i32, x: f64, alpha: f64): f64 {
  switch (op) {
    case RELU:
      return x > 0 || isNaN(x) ? x : 0;
    case LEAKY_RELU:
      return x > 0 ? x : alpha * x;
    case SIGMOID:
      return 1 / (1 + Math.exp(-x));
    case TANH:
      return Math.tanh(x);
    case GELU:
      return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case GELU_TANH:
      return 0.5 * x * (1 + Math.tanh(GELU_C * (x + GELU_K * x * x * x)));
    case EXP:
      return Math.exp(x);
    case LOG:
      return Math.log(x);
    case NEG:
      return -x;
    case SQRT:
      return Math.sqrt(x);
    case SQUARE:
      return x * x;
    default:
      return Math.abs(x);
  }
}

/** dx = g(s, dy): s is the saved x or y, as each op's row in src/ops/unary.ts says. */
function unaryGradScalar(op: i32, s: f64, dy: f64, alpha: f64): f64 {
  switch (op) {
    case RELU:
      return s > 0 || isNaN(s) ? dy : 0;
    case LEAKY_RELU:
      return s > 0 ? dy : alpha * dy;
    case SIGMOID:
      return dy * s * (1 - s);
    case TANH:
      return dy * (1 - s * s);
    case GELU:
      return dy * (0.5 * (1 + erf(s / Math.SQRT2)) + s * PHI * Math.exp(-0.5 * s * s));
    case GELU_TANH: {
      const t = Math.tanh(GELU_C * (s + GELU_K * s * s * s));
      return dy * (0.5 * (1 + t) + 0.5 * s * (1 - t * t) * GELU_C * (1 + 3 * GELU_K * s * s));
    }
    case EXP:
      return dy * s;
    case LOG:
      return dy / s;
    case NEG:
      return -dy;
    case SQRT:
      return (0.5 * dy) / s;
    case SQUARE:
      return 2 * s * dy;
    default:
      return dy * (s > 0 ? 1 : s < 0 ? -1 : 0);
  }
}

/** y [n] = f(x [n]). relu, leaky_relu, neg, square, sqrt and abs in f32x4 (one f32 rounding = the f64 one). */
export function unary_fwd(op: i32, y: usize, x: usize, n: i32, alpha: f32, task: i32, tasks: i32): void {
  const start = spanStart(n, task, tasks);
  const end = spanEnd(n, task, tasks);
  let i = start;
  const zero = f32x4.splat(0);
  const va = f32x4.splat(alpha);
  if (op == RELU || op == LEAKY_RELU || op == NEG || op == SQUARE || op == SQRT || op == ABS) {
    for (; i + 4 <= end; i += 4) {
      const p = (<usize>i) << 2;
      const v = v128.load(x + p);
      let r: v128;
      // NOTE: relu keeps NaN (x <= 0 is false for NaN) and maps -0 to +0, as the reference.
      if (op == RELU) r = v128.bitselect(zero, v, f32x4.le(v, zero));
      else if (op == LEAKY_RELU) r = v128.bitselect(v, f32x4.mul(v, va), f32x4.gt(v, zero));
      else if (op == NEG) r = f32x4.neg(v);
      else if (op == SQUARE) r = f32x4.mul(v, v);
      else if (op == SQRT) r = f32x4.sqrt(v);
      else r = f32x4.abs(v);
      v128.store(y + p, r);
    }
  }
  for (; i < end; i++) {
    const p = (<usize>i) << 2;
    store<f32>(y + p, <f32>unaryScalar(op, <f64>load<f32>(x + p), <f64>alpha));
  }
}

/** dx [n] = g(s [n], dy [n]). */
export function unary_bwd(op: i32, dx: usize, s: usize, dy: usize, n: i32, alpha: f32, task: i32, tasks: i32): void {
  const start = spanStart(n, task, tasks);
  const end = spanEnd(n, task, tasks);
  let i = start;
  const zero = f32x4.splat(0);
  if (op == RELU || op == NEG) {
    for (; i + 4 <= end; i += 4) {
      const p = (<usize>i) << 2;
      const g = v128.load(dy + p);
      const r = op == NEG ? f32x4.neg(g) : v128.bitselect(zero, g, f32x4.le(v128.load(s + p), zero));
      v128.store(dx + p, r);
    }
  }
  for (; i < end; i++) {
    const p = (<usize>i) << 2;
    store<f32>(dx + p, <f32>unaryGradScalar(op, <f64>load<f32>(s + p), <f64>load<f32>(dy + p), <f64>alpha));
  }
}

// Binary op codes, in the order of src/ops/binary.ts's BINARY.
const ADD = 0;
const SUB = 1;
const MUL = 2;
const DIV = 3;
const MAXIMUM = 4;
const MINIMUM = 5;
const POW = 6;
const POW_GRAD_BASE = 7;
const POW_GRAD_EXPONENT = 8;
const BCE_LOGITS = 9;
const STEP_MASK = 10;
const EQ_MASK = 11;
const MASK_KEEP = 12;
const MASK_DROP = 13;

// NOTE: pow follows C99 / torch.pow where the base is ±1 (pow(1, NaN) = 1, pow(-1, ±Inf) = 1).
function powRef(a: f64, b: f64): f64 {
  return a == 1 || (a == -1 && Math.abs(b) == Infinity) ? 1 : Math.pow(a, b);
}

/** One output of the binary family in float64, rounded once; the pow gradients round their f32 intermediates. */
function binaryScalar(op: i32, a: f64, b: f64): f64 {
  switch (op) {
    case ADD:
      return a + b;
    case SUB:
      return a - b;
    case MUL:
      return a * b;
    case DIV:
      return a / b;
    case MAXIMUM:
      return max(a, b);
    case MINIMUM:
      return min(a, b);
    case POW:
      return powRef(a, b);
    case POW_GRAD_BASE:
      return b == 0 ? 0 : b * <f64>(<f32>powRef(a, <f64>(<f32>(b - 1))));
    case POW_GRAD_EXPONENT:
      return a == 0 && b >= 0 ? 0 : <f64>(<f32>powRef(a, b)) * Math.log(a);
    case BCE_LOGITS:
      return max(a, 0) - a * b + Math.log1p(Math.exp(-Math.abs(a)));
    case STEP_MASK:
      return a < b ? 0 : a == b ? 0.5 : 1;
    case EQ_MASK:
      return a == b ? 1 : 0;
    case MASK_KEEP:
      return b != 0 ? a : 0;
    default:
      return b != 0 ? 0 : a;
  }
}

/** The ops whose f32x4 form rounds as the reference: one IEEE operation (or a select) per element. */
function binarySimd(op: i32): bool {
  return op <= MINIMUM;
}

function binaryVec(op: i32, a: v128, b: v128): v128 {
  if (op == ADD) return f32x4.add(a, b);
  if (op == SUB) return f32x4.sub(a, b);
  if (op == MUL) return f32x4.mul(a, b);
  if (op == DIV) return f32x4.div(a, b);
  // NOTE: wasm's f32x4.max/min propagate NaN and order -0 < +0, as Math.max/min.
  if (op == MAXIMUM) return f32x4.max(a, b);
  return f32x4.min(a, b);
}

/** One row: y[i] = a[i·sa] op b[i·sb], sa and sb 0 (broadcast) or 1. */
function binaryRow(op: i32, y: usize, a: usize, sa: i32, b: usize, sb: i32, n: i32): void {
  let i = 0;
  if (binarySimd(op)) {
    const ka = f32x4.splat(load<f32>(a));
    const kb = f32x4.splat(load<f32>(b));
    for (; i + 4 <= n; i += 4) {
      const p = (<usize>i) << 2;
      const va = sa ? v128.load(a + p) : ka;
      const vb = sb ? v128.load(b + p) : kb;
      v128.store(y + p, binaryVec(op, va, vb));
    }
  }
  for (; i < n; i++) {
    const va = <f64>load<f32>(a + ((<usize>(i * sa)) << 2));
    const vb = <f64>load<f32>(b + ((<usize>(i * sb)) << 2));
    store<f32>(y + ((<usize>i) << 2), <f32>binaryScalar(op, va, vb));
  }
}

/**
 * y = a op b with broadcasting. The index space is `rows` rows of `inner` elements (the innermost coalesced dim,
 * where a and b step by sa, sb in {0, 1}); `desc` holds the outer dims as i32 [nd, size..., strideA..., strideB...]
 * (outermost first) for finding each row's start. Tasks take whole rows.
 */
export function binary(
  op: i32,
  y: usize,
  a: usize,
  b: usize,
  rows: i32,
  inner: i32,
  sa: i32,
  sb: i32,
  desc: usize,
  task: i32,
  tasks: i32,
): void {
  const r0 = spanRows(rows, task, tasks);
  const r1 = spanRows(rows, task + 1, tasks);
  const nd = load<i32>(desc);
  for (let r = r0; r < r1; r++) {
    let oa = 0;
    let ob = 0;
    let rem = r;
    for (let d = nd - 1; d >= 0; d--) {
      const size = load<i32>(desc + ((<usize>(1 + d)) << 2));
      const c = rem % size;
      rem /= size;
      oa += c * load<i32>(desc + ((<usize>(1 + nd + d)) << 2));
      ob += c * load<i32>(desc + ((<usize>(1 + 2 * nd + d)) << 2));
    }
    binaryRow(op, y + ((<usize>r * <usize>inner) << 2), a + ((<usize>oa) << 2), sa, b + ((<usize>ob) << 2), sb, inner);
  }
}

/**
 * dst[o] = src[Σ c_d · stride_d] for o over `n` outputs in row-major order of `desc`'s dims, i32 [nd, size...,
 * srcStride...] (4-byte elements, f32 or i32 alike); dst rows are `inner` long and the innermost source stride
 * `si`. dstStride: elements between dst rows (concat writes into a wider output). Tasks take whole rows.
 */
export function copy_strided(
  dst: usize,
  src: usize,
  rows: i32,
  inner: i32,
  si: i32,
  dstStride: i32,
  desc: usize,
  task: i32,
  tasks: i32,
): void {
  const r0 = spanRows(rows, task, tasks);
  const r1 = spanRows(rows, task + 1, tasks);
  const nd = load<i32>(desc);
  for (let r = r0; r < r1; r++) {
    let off = 0;
    let rem = r;
    for (let d = nd - 1; d >= 0; d--) {
      const size = load<i32>(desc + ((<usize>(1 + d)) << 2));
      off += (rem % size) * load<i32>(desc + ((<usize>(1 + nd + d)) << 2));
      rem /= size;
    }
    const out = dst + ((<usize>r * <usize>dstStride) << 2);
    const from = src + ((<usize>off) << 2);
    if (si == 1) memory.copy(out, from, (<usize>inner) << 2);
    else if (si == 0) {
      const v = load<u32>(from);
      for (let i = 0; i < inner; i++) store<u32>(out + ((<usize>i) << 2), v);
    } else
      for (let i = 0; i < inner; i++) store<u32>(out + ((<usize>i) << 2), load<u32>(from + ((<usize>(i * si)) << 2)));
  }
}

/** The PCG output permutation of src/ops/random.ts (and shaders/dropout_fwd.wgsl), in u32 arithmetic. */
function pcg(v: u32): u32 {
  const state = v * 747796405 + 2891336453;
  const word = ((state >> ((state >> 28) + 4)) ^ state) * 277803737;
  return (word >> 22) ^ word;
}

/** y [n] = x [n] · [u(seed, i) ≥ rate] · scale, u(seed, i) = (pcg(i ^ pcg(seed)) >> 8) / 2^24; x·scale in f64. */
export function dropout(y: usize, x: usize, n: i32, seed: u32, rate: f64, scale: f64, task: i32, tasks: i32): void {
  const end = spanEnd(n, task, tasks);
  const ps = pcg(seed);
  for (let i = spanStart(n, task, tasks); i < end; i++) {
    const u = <f64>(pcg((<u32>i) ^ ps) >> 8) / 16777216;
    const p = (<usize>i) << 2;
    store<f32>(y + p, u >= rate ? <f32>(<f64>load<f32>(x + p) * scale) : 0);
  }
}

/**
 * y [N, D] = table [V, D] rows at idx [N] (int32). An index outside [0, V) gives a NaN row (a kernel cannot throw;
 * the CPU reference raises an ArgumentError), as the WebGPU kernel. Tasks take whole rows of y.
 */
export function gather(y: usize, table: usize, idx: usize, n: i32, v: i32, d: i32, task: i32, tasks: i32): void {
  const r1 = spanRows(n, task + 1, tasks);
  const row = (<usize>d) << 2;
  for (let r = spanRows(n, task, tasks); r < r1; r++) {
    const k = load<i32>(idx + ((<usize>r) << 2));
    const out = y + <usize>r * row;
    if (k >= 0 && k < v) memory.copy(out, table + <usize>k * row, row);
    else for (let j = 0; j < d; j++) store<f32>(out + ((<usize>j) << 2), NaN);
  }
}

/**
 * dtable [V, D] = Σ_n [idx[n] = v] dy [n, :], in index order and float64 (acc: f64 scratch [V, D]), as the
 * reference; indices outside [0, V) add nothing. Tasks take table rows, each scanning every index: no two tasks
 * write one row.
 */
export function gather_bwd(
  dt: usize,
  acc: usize,
  idx: usize,
  dy: usize,
  n: i32,
  v: i32,
  d: i32,
  task: i32,
  tasks: i32,
): void {
  const v0 = spanRows(v, task, tasks);
  const v1 = spanRows(v, task + 1, tasks);
  const a0 = acc + ((<usize>v0 * <usize>d) << 3);
  memory.fill(a0, 0, (<usize>(v1 - v0) * <usize>d) << 3);
  for (let r = 0; r < n; r++) {
    const k = load<i32>(idx + ((<usize>r) << 2));
    if (k < v0 || k >= v1) continue;
    const a = acc + ((<usize>k * <usize>d) << 3);
    const g = dy + ((<usize>r * <usize>d) << 2);
    for (let j = 0; j < d; j++) {
      const p = a + ((<usize>j) << 3);
      store<f64>(p, load<f64>(p) + <f64>load<f32>(g + ((<usize>j) << 2)));
    }
  }
  for (let i = v0 * d; i < v1 * d; i++) store<f32>(dt + ((<usize>i) << 2), <f32>load<f64>(acc + ((<usize>i) << 3)));
}
