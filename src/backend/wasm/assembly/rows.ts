// Row kernels: softmax / log_softmax over the last axis, softmax cross-entropy forward and backward, and the
// reductions (sum, mean, max, argmax over any axes). float64 accumulation in the reference's order, so a row's
// result is the same whatever thread runs it; tasks take whole rows (outputs).
import { spanRows } from './span';

function f(p: usize, i: i32): f64 {
  return <f64>load<f32>(p + ((<usize>i) << 2));
}

/** The row's max (NaN if any is NaN, as Math.max) and Σ exp(x − max), in float64. */
function rowStats(x: usize, n: i32): f64 {
  let m = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = f(x, i);
    m = isNaN(v) || isNaN(m) ? NaN : max(m, v);
  }
  return m;
}

function rowSumExp(x: usize, n: i32, m: f64): f64 {
  let s: f64 = 0;
  for (let i = 0; i < n; i++) s += Math.exp(f(x, i) - m);
  return s;
}

/** y [rows, n] = softmax(x) or log_softmax(x) over the last axis (log: 1). */
export function softmax_rows(y: usize, x: usize, rows: i32, n: i32, log: i32, task: i32, tasks: i32): void {
  const r1 = spanRows(rows, task + 1, tasks);
  for (let r = spanRows(rows, task, tasks); r < r1; r++) {
    const off = (<usize>r * <usize>n) << 2;
    const m = rowStats(x + off, n);
    const s = rowSumExp(x + off, n, m);
    const ls = Math.log(s);
    for (let i = 0; i < n; i++) {
      const v = f(x + off, i);
      store<f32>(y + off + ((<usize>i) << 2), <f32>(log ? v - m - ls : Math.exp(v - m) / s));
    }
  }
}

/** loss [rows] = logsumexp(x) − x[label] (sparse: t int32 [rows]) or Σ t (lse − x) (dense: t [rows, n]). */
export function ce_fwd(loss: usize, x: usize, t: usize, rows: i32, n: i32, sparse: i32, task: i32, tasks: i32): void {
  const r1 = spanRows(rows, task + 1, tasks);
  for (let r = spanRows(rows, task, tasks); r < r1; r++) {
    const off = (<usize>r * <usize>n) << 2;
    const m = rowStats(x + off, n);
    const lse = m + Math.log(rowSumExp(x + off, n, m));
    let l: f64;
    if (sparse) {
      const k = load<i32>(t + ((<usize>r) << 2));
      l = k >= 0 && k < n ? lse - f(x + off, k) : NaN;
    } else {
      l = 0;
      for (let i = 0; i < n; i++) l += f(t + off, i) * (lse - f(x + off, i));
    }
    store<f32>(loss + ((<usize>r) << 2), <f32>l);
  }
}

/** dx [rows, n] = dy (softmax(x) Σt − t), t one-hot of the label when sparse (a label out of range: a NaN row). */
export function ce_bwd(
  dx: usize,
  x: usize,
  t: usize,
  dy: usize,
  rows: i32,
  n: i32,
  sparse: i32,
  task: i32,
  tasks: i32,
): void {
  const r1 = spanRows(rows, task + 1, tasks);
  for (let r = spanRows(rows, task, tasks); r < r1; r++) {
    const off = (<usize>r * <usize>n) << 2;
    const m = rowStats(x + off, n);
    const s = rowSumExp(x + off, n, m);
    const k = sparse ? load<i32>(t + ((<usize>r) << 2)) : -1;
    const bad = sparse && !(k >= 0 && k < n);
    let sumT: f64 = 1;
    if (!sparse) {
      sumT = 0;
      for (let i = 0; i < n; i++) sumT += f(t + off, i);
    }
    const g = f(dy, r);
    for (let i = 0; i < n; i++) {
      const ti: f64 = sparse ? (i == k ? 1 : 0) : f(t + off, i);
      const v = bad ? NaN : g * ((Math.exp(f(x + off, i) - m) / s) * sumT - ti);
      store<f32>(dx + off + ((<usize>i) << 2), <f32>v);
    }
  }
}

const SUM = 0;
const MEAN = 1;
const MAX = 2;
// argmax: 3

/**
 * y [nOut] = reduce(x) over the reduced dims. desc: i32 [nk, keptSize..., keptStride..., nr, redSize...,
 * redStride...] (outermost first; element strides into x). Each output folds its nRed inputs in row-major order
 * of the reduced dims, as the reference: float64 sums; max and argmax keep the first maximum, NaN wins.
 */
export function reduce(op: i32, y: usize, x: usize, nOut: i32, nRed: i32, desc: usize, task: i32, tasks: i32): void {
  const nk = load<i32>(desc);
  const rd = desc + ((<usize>(1 + 2 * nk)) << 2);
  const nr = load<i32>(rd);
  const innerSize = nr > 0 ? load<i32>(rd + ((<usize>nr) << 2)) : 1;
  const innerStride = nr > 0 ? load<i32>(rd + ((<usize>(2 * nr)) << 2)) : 0;
  const r1 = spanRows(nOut, task + 1, tasks);
  for (let o = spanRows(nOut, task, tasks); o < r1; o++) {
    let base = 0;
    let rem = o;
    for (let d = nk - 1; d >= 0; d--) {
      const size = load<i32>(desc + ((<usize>(1 + d)) << 2));
      base += (rem % size) * load<i32>(desc + ((<usize>(1 + nk + d)) << 2));
      rem /= size;
    }
    let acc: f64 = 0;
    let arg = -1;
    let best: f64 = 0;
    // The reduced dims but the innermost as rows; the innermost one as a strided run.
    const outerRows = innerSize > 0 ? nRed / innerSize : 0;
    for (let q = 0; q < outerRows; q++) {
      let off = base;
      let rq = q;
      for (let d = nr - 2; d >= 0; d--) {
        const size = load<i32>(rd + ((<usize>(1 + d)) << 2));
        off += (rq % size) * load<i32>(rd + ((<usize>(1 + nr + d)) << 2));
        rq /= size;
      }
      const p = x + ((<usize>off) << 2);
      if (op == SUM || op == MEAN) {
        for (let i = 0; i < innerSize; i++) acc += f(p, i * innerStride);
      } else {
        for (let i = 0; i < innerSize; i++) {
          const v = f(p, i * innerStride);
          // NOTE: strictly greater, or the first NaN over a number: the first maximum wins and NaN propagates.
          if (arg == -1 || (!isNaN(best) && (v > best || isNaN(v)))) {
            best = v;
            arg = q * innerSize + i;
          }
        }
      }
    }
    const out = y + ((<usize>o) << 2);
    if (op == SUM) store<f32>(out, <f32>acc);
    else if (op == MEAN) store<f32>(out, <f32>(acc / <f64>nRed));
    else if (op == MAX) store<f32>(out, <f32>best);
    else store<i32>(out, arg);
  }
}

/** First index of the row's maximum (strictly greater wins, as the reference). */
function rowArgmax(p: usize, c: i32): i32 {
  let best = 0;
  for (let j = 1; j < c; j++) if (load<f32>(p + ((<usize>j) << 2)) > load<f32>(p + ((<usize>best) << 2))) best = j;
  return best;
}

/**
 * out [1] = Σ_rows [argmax(pred row) = label] for pred [rows, c] and labels int32 [rows] (intTarget) or one-hot
 * [rows, c]; one unit (c = 1): [pred > threshold] = round(target). One task: a count over all rows.
 */
export function count_correct(
  out: usize,
  pred: usize,
  target: usize,
  rows: i32,
  c: i32,
  intTarget: i32,
  threshold: f64,
  task: i32,
  tasks: i32,
): void {
  if (task != 0 || tasks != 1) unreachable();
  let n = 0;
  for (let r = 0; r < rows; r++) {
    const row = <usize>r * <usize>c;
    if (c == 1) {
      const p: i32 = <f64>load<f32>(pred + ((<usize>r) << 2)) > threshold ? 1 : 0;
      n += <f64>p == Math.floor(<f64>load<f32>(target + ((<usize>r) << 2)) + 0.5) ? 1 : 0;
    } else if (intTarget) n += rowArgmax(pred + (row << 2), c) == load<i32>(target + ((<usize>r) << 2)) ? 1 : 0;
    else n += rowArgmax(pred + (row << 2), c) == rowArgmax(target + (row << 2), c) ? 1 : 0;
  }
  store<f32>(out, <f32>n);
}

/**
 * y [rows, n] = (x − mean)·rstd·γ + β per row, stats [rows, 2] = (mean, rstd), rstd = 1/√(var + eps); float64
 * within the row as the reference (the stats stored as f32, as the reference's are).
 */
export function layer_norm(
  y: usize,
  st: usize,
  x: usize,
  g: usize,
  b: usize,
  rows: i32,
  n: i32,
  eps: f64,
  task: i32,
  tasks: i32,
): void {
  const r1 = spanRows(rows, task + 1, tasks);
  for (let r = spanRows(rows, task, tasks); r < r1; r++) {
    const p = x + ((<usize>r * <usize>n) << 2);
    let mean: f64 = 0;
    for (let i = 0; i < n; i++) mean += f(p, i);
    mean /= <f64>n;
    let v: f64 = 0;
    for (let i = 0; i < n; i++) {
      const d = f(p, i) - mean;
      v += d * d;
    }
    const rstd = 1 / Math.sqrt(v / <f64>n + eps);
    const q = y + ((<usize>r * <usize>n) << 2);
    for (let i = 0; i < n; i++) store<f32>(q + ((<usize>i) << 2), <f32>((f(p, i) - mean) * rstd * f(g, i) + f(b, i)));
    store<f32>(st + ((<usize>r) << 3), <f32>mean);
    store<f32>(st + ((<usize>r) << 3) + 4, <f32>rstd);
  }
}

/** dx [rows, n] = rstd·(h − Σh/n − x̂·Σ(h·x̂)/n), h = dy·γ, x̂ = (x − mean)·rstd from the forward's stats. */
export function layer_norm_bwd_x(
  dx: usize,
  dy: usize,
  x: usize,
  g: usize,
  st: usize,
  rows: i32,
  n: i32,
  task: i32,
  tasks: i32,
): void {
  const r1 = spanRows(rows, task + 1, tasks);
  for (let r = spanRows(rows, task, tasks); r < r1; r++) {
    const off = (<usize>r * <usize>n) << 2;
    const mean = f(st, 2 * r);
    const rstd = f(st, 2 * r + 1);
    let sg: f64 = 0;
    let sgx: f64 = 0;
    for (let i = 0; i < n; i++) {
      const h = f(dy + off, i) * f(g, i);
      sg += h;
      sgx += h * (f(x + off, i) - mean) * rstd;
    }
    for (let i = 0; i < n; i++) {
      const h = f(dy + off, i) * f(g, i);
      const v = rstd * (h - sg / <f64>n - (f(x + off, i) - mean) * rstd * (sgx / <f64>n));
      store<f32>(dx + off + ((<usize>i) << 2), <f32>v);
    }
  }
}

/** out [2, n] = (dγ, dβ): Σ over rows of dy·x̂ and of dy, rows in order; tasks take columns. */
export function layer_norm_bwd_params(
  out: usize,
  dy: usize,
  x: usize,
  st: usize,
  rows: i32,
  n: i32,
  task: i32,
  tasks: i32,
): void {
  const c1 = spanRows(n, task + 1, tasks);
  for (let i = spanRows(n, task, tasks); i < c1; i++) {
    let dg: f64 = 0;
    let db: f64 = 0;
    for (let r = 0; r < rows; r++) {
      const k = r * n + i;
      const d = f(dy, k);
      dg += d * (f(x, k) - f(st, 2 * r)) * f(st, 2 * r + 1);
      db += d;
    }
    store<f32>(out + ((<usize>i) << 2), <f32>dg);
    store<f32>(out + ((<usize>(n + i)) << 2), <f32>db);
  }
}

/**
 * y [c] = Σ_r x [r, c] (mean: / rows), the reduce kernel's sum over a leading axis (bias gradients), eight columns
 * at a time in f64x2 lanes: each column still sums its rows in order, so the result is the reduce kernel's, bit for
 * bit. Tasks take column ranges (multiples of 8).
 */
export function sum_rows(y: usize, x: usize, rows: i32, c: i32, mean: i32, task: i32, tasks: i32): void {
  const per = (((c + tasks - 1) / tasks + 7) >> 3) << 3;
  const c0 = min(c, task * per);
  const c1 = min(c, c0 + per);
  const stride = (<usize>c) << 2;
  const div = <f64>rows;
  let j = c0;
  for (; j + 8 <= c1; j += 8) {
    let a0 = f64x2.splat(0);
    let a1 = f64x2.splat(0);
    let a2 = f64x2.splat(0);
    let a3 = f64x2.splat(0);
    let p = x + ((<usize>j) << 2);
    for (let r = 0; r < rows; r++, p += stride) {
      const lo = v128.load(p);
      const hi = v128.load(p, 16);
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(lo));
      a1 = f64x2.add(a1, f64x2.promote_low_f32x4(i32x4.shuffle(lo, lo, 2, 3, 0, 1)));
      a2 = f64x2.add(a2, f64x2.promote_low_f32x4(hi));
      a3 = f64x2.add(a3, f64x2.promote_low_f32x4(i32x4.shuffle(hi, hi, 2, 3, 0, 1)));
    }
    if (mean) {
      const d = f64x2.splat(div);
      a0 = f64x2.div(a0, d);
      a1 = f64x2.div(a1, d);
      a2 = f64x2.div(a2, d);
      a3 = f64x2.div(a3, d);
    }
    const q = y + ((<usize>j) << 2);
    v128.store(q, i32x4.shuffle(f32x4.demote_f64x2_zero(a0), f32x4.demote_f64x2_zero(a1), 0, 1, 4, 5));
    v128.store(q, i32x4.shuffle(f32x4.demote_f64x2_zero(a2), f32x4.demote_f64x2_zero(a3), 0, 1, 4, 5), 16);
  }
  for (; j < c1; j++) {
    let acc: f64 = 0;
    for (let r = 0; r < rows; r++) acc += f(x, r * c + j);
    store<f32>(y + ((<usize>j) << 2), <f32>(mean ? acc / div : acc));
  }
}
