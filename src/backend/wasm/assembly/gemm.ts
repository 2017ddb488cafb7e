// The f32 GEMM core the matmul and convolution kernels share: packing into panels, the 4x8 SIMD micro-kernel, the
// bias + activation epilogue. C [M,N] = A [M,Kr] @ B [Kr,N]; A is packed per block by each caller (strided for
// matmul, gathered im2col-style for the convolutions), B once per op into NR-column panels.

/** Rows of the register tile (and of a packed A panel). */
export const MR: i32 = 4;
/** Columns of the register tile (and of a packed B panel): two f32x4. */
export const NR: i32 = 8;

// NOTE: the 4x8 tile keeps 8 f32x4 accumulators, two B vectors, one broadcast A value and a product live. Measured in
// L1 (V8 11.3, x64, CPU time): 4x8 and 2x16 run 41-42 GFLOP/s, 3x8 39, 6x8 and 4x12 24-29, 5x8 24, 3x12 22: past about
// 12 live vectors V8 spills (it keeps some of the 16 xmm registers for itself). There is no fused multiply-add
// without relaxed SIMD (not enabled in Node 20), so each term is a mul then an add, and C's k-sum runs in order
// k = 0..Kr-1 from 0 (or from C's partial when a block continues a sum): every element's operations are the same
// whatever the tiling, blocking or thread.

/**
 * One MR x NR register tile over kc terms: pa [kc, MR] (a packed A panel), pb [kc, NR] (a packed B sliver).
 * Adds to the tile at c (row stride ldc bytes) when `acc`, else overwrites it.
 */
// prettier-ignore
@inline function micro(pa: usize, pb: usize, kc: i32, c: usize, ldc: usize, acc: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  if (acc) {
    c00 = v128.load(c); c01 = v128.load(c, 16);
    c10 = v128.load(c + ldc); c11 = v128.load(c + ldc, 16);
    c20 = v128.load(c + 2 * ldc); c21 = v128.load(c + 2 * ldc, 16);
    c30 = v128.load(c + 3 * ldc); c31 = v128.load(c + 3 * ldc, 16);
  }
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = f32x4.add(c00, f32x4.mul(a, b0)); c01 = f32x4.add(c01, f32x4.mul(a, b1));
    a = v128.load32_splat(pa, 4);
    c10 = f32x4.add(c10, f32x4.mul(a, b0)); c11 = f32x4.add(c11, f32x4.mul(a, b1));
    a = v128.load32_splat(pa, 8);
    c20 = f32x4.add(c20, f32x4.mul(a, b0)); c21 = f32x4.add(c21, f32x4.mul(a, b1));
    a = v128.load32_splat(pa, 12);
    c30 = f32x4.add(c30, f32x4.mul(a, b0)); c31 = f32x4.add(c31, f32x4.mul(a, b1));
    pa += 16;
    pb += 32;
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c + ldc, c10); v128.store(c + ldc, c11, 16);
  v128.store(c + 2 * ldc, c20); v128.store(c + 2 * ldc, c21, 16);
  v128.store(c + 3 * ldc, c30); v128.store(c + 3 * ldc, c31, 16);
}

/**
 * C[m0.., n0..] (+)= A block @ B slice for a tile of mc rows and nc columns, terms k0..k0+kc-1:
 * pa: the packed A block (ceil(mc/MR) panels of [kc, MR]); pb: packed B (panels of [Kr, NR], panel j at j·Kr·NR);
 * c [rows, ldc/4] row-major; `rows`, `cols`: C's extent (edge tiles go through `tmp`, MR·NR floats).
 * Adds to C when `acc` (a continued sum), else overwrites.
 */
export function gemmBlock(
  pa: usize, pb: usize, Kr: i32, k0: i32, kc: i32,
  m0: i32, mc: i32, n0: i32, nc: i32,
  c: usize, ldc: i32, rows: i32, cols: i32, tmp: usize, acc: bool,
): void {
  const ldcB = <usize>ldc << 2;
  for (let j = n0; j < n0 + nc; j += NR) {
    const bj = pb + ((<usize>(j / NR) * <usize>Kr + <usize>k0) * <usize>NR << 2);
    const nn = min(NR, cols - j);
    for (let i = 0; i < mc; i += MR) {
      const ai = pa + (<usize>(i * kc) << 2);
      const m = m0 + i;
      const mm = min(MR, rows - m);
      const cij = c + (<usize>m * <usize>ldc + <usize>j << 2);
      if (mm == MR && nn == NR) {
        micro(ai, bj, kc, cij, ldcB, acc);
        continue;
      }
      // An edge tile: through tmp [MR, NR], C's part copied in (when continuing) and out.
      for (let r = 0; r < MR; r++) {
        for (let q = 0; q < NR; q++) {
          store<f32>(tmp + (<usize>(r * NR + q) << 2), acc && r < mm && q < nn ? load<f32>(cij + (<usize>r * ldcB) + (<usize>q << 2)) : 0);
        }
      }
      micro(ai, bj, kc, tmp, NR * 4, acc);
      for (let r = 0; r < mm; r++) {
        for (let q = 0; q < nn; q++) {
          store<f32>(cij + <usize>r * ldcB + (<usize>q << 2), load<f32>(tmp + (<usize>(r * NR + q) << 2)));
        }
      }
    }
  }
}

/**
 * Packs panels p0..p1-1 of B [Kr, N] (element (k, n) at src + 4·(k·rs + n·cs)) into NR-column panels
 * [Kr, NR] at dst (panel j at j·Kr·NR floats), zero past column N.
 */
export function packB(src: usize, rs: i32, cs: i32, Kr: i32, N: i32, dst: usize, p0: i32, p1: i32): void {
  for (let p = p0; p < p1; p++) {
    let d = dst + (<usize>p * <usize>Kr * <usize>NR << 2);
    const n0 = p * NR;
    const nn = min(NR, N - n0);
    if (cs == 1 && nn == NR) {
      for (let k = 0; k < Kr; k++) {
        const s = src + (<usize>(k * rs + n0) << 2);
        v128.store(d, v128.load(s));
        v128.store(d, v128.load(s, 16), 16);
        d += 32;
      }
      continue;
    }
    let k = 0;
    if (rs == 1 && nn == NR) {
      // B stored transposed ([N, Kr]): 4 k of 4 columns are 4 f32x4 rows of b, transposed in registers.
      for (; k + 4 <= Kr; k += 4) {
        for (let half = 0; half < 2; half++) {
          const s = src + (<usize>((n0 + half * 4) * cs + k) << 2);
          const step = <usize>cs << 2;
          const r0 = v128.load(s);
          const r1 = v128.load(s + step);
          const r2 = v128.load(s + 2 * step);
          const r3 = v128.load(s + 3 * step);
          const lo01 = i32x4.shuffle(r0, r1, 0, 4, 1, 5);
          const lo23 = i32x4.shuffle(r2, r3, 0, 4, 1, 5);
          const hi01 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
          const hi23 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
          const o = d + (<usize>half << 4);
          v128.store(o, i32x4.shuffle(lo01, lo23, 0, 1, 4, 5));
          v128.store(o, i32x4.shuffle(lo01, lo23, 2, 3, 6, 7), 32);
          v128.store(o, i32x4.shuffle(hi01, hi23, 0, 1, 4, 5), 64);
          v128.store(o, i32x4.shuffle(hi01, hi23, 2, 3, 6, 7), 96);
        }
        d += 128;
      }
    }
    for (; k < Kr; k++) {
      for (let q = 0; q < NR; q++) {
        store<f32>(d + (<usize>q << 2), q < nn ? load<f32>(src + (<usize>(k * rs + (n0 + q) * cs) << 2)) : 0);
      }
      d += 32;
    }
  }
}

/**
 * Packs rows m0..m0+mc-1, columns k0..k0+kc-1 of A [M, Kr] (element (m, k) at src + 4·(m·rs + k·cs)) into MR-row
 * panels [kc, MR] at dst, zero past row M.
 */
export function packA(src: usize, rs: i32, cs: i32, M: i32, m0: i32, mc: i32, k0: i32, kc: i32, dst: usize): void {
  for (let i = 0; i < mc; i += MR) {
    const d = dst + (<usize>(i * kc) << 2);
    if (rs == 1 && m0 + i + MR <= M) {
      // A stored transposed ([Kr, M]): a panel's MR rows at one k are one f32x4.
      let s = src + (<usize>(m0 + i + k0 * cs) << 2);
      const step = <usize>cs << 2;
      for (let k = 0; k < kc; k++, s += step) v128.store(d + (<usize>k << 4), v128.load(s));
      continue;
    }
    if (cs == 1 && m0 + i + MR <= M) {
      // A row-major: 4 k of the panel's 4 rows are 4 f32x4, transposed in registers; the last kc % 4 one by one.
      const step = <usize>rs << 2;
      let s = src + (<usize>((m0 + i) * rs + k0) << 2);
      let k = 0;
      for (; k + 4 <= kc; k += 4, s += 16) {
        const r0 = v128.load(s);
        const r1 = v128.load(s + step);
        const r2 = v128.load(s + 2 * step);
        const r3 = v128.load(s + 3 * step);
        const lo01 = i32x4.shuffle(r0, r1, 0, 4, 1, 5);
        const lo23 = i32x4.shuffle(r2, r3, 0, 4, 1, 5);
        const hi01 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
        const hi23 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
        const o = d + (<usize>k << 4);
        v128.store(o, i32x4.shuffle(lo01, lo23, 0, 1, 4, 5));
        v128.store(o, i32x4.shuffle(lo01, lo23, 2, 3, 6, 7), 16);
        v128.store(o, i32x4.shuffle(hi01, hi23, 0, 1, 4, 5), 32);
        v128.store(o, i32x4.shuffle(hi01, hi23, 2, 3, 6, 7), 48);
      }
      for (; k < kc; k++, s += 4) {
        for (let r = 0; r < MR; r++) store<f32>(d + (<usize>(k * MR + r) << 2), load<f32>(s + <usize>r * step));
      }
      continue;
    }
    for (let r = 0; r < MR; r++) {
      const m = m0 + i + r;
      if (m >= M) {
        for (let k = 0; k < kc; k++) store<f32>(d + (<usize>(k * MR + r) << 2), 0);
        continue;
      }
      let s = src + (<usize>(m * rs + k0 * cs) << 2);
      const step = <usize>cs << 2;
      for (let k = 0; k < kc; k++) {
        store<f32>(d + (<usize>(k * MR + r) << 2), load<f32>(s));
        s += step;
      }
    }
  }
}

// Activation codes: 0 none, then the unary table's order (src/backend/wasm/ops/matmul.ts ACTIVATION_CODES).
const RELU = 1;
const LEAKY_RELU = 2;
const SIGMOID = 3;
const TANH = 4;
const GELU = 5;
const GELU_TANH = 6;
const EXP = 7;
const LOG = 8;
const NEG = 9;
const SQRT = 10;
const SQUARE = 11;
const ABS = 12;

/** erf to 1.5e-7 (Abramowitz & Stegun 7.1.26), in f64; erf(NaN) = NaN. */
function erf(x: f64): f64 {
  const a = Math.abs(x);
  const t = 1.0 / (1.0 + 0.3275911 * a);
  const y = 1.0 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return x < 0 ? -y : y;
}

/** The unary table's formula `code` at x (NaN in, NaN out, as the CPU reference; transcendental ones in f64). */
export function activate(x: f32, code: i32, alpha: f32): f32 {
  const d = <f64>x;
  switch (code) {
    case RELU: return x > 0 || isNaN(x) ? x : 0;
    case LEAKY_RELU: return x > 0 ? x : alpha * x;
    case SIGMOID: return <f32>(1.0 / (1.0 + Math.exp(-d)));
    case TANH: return <f32>Math.tanh(d);
    case GELU: return <f32>(0.5 * d * (1.0 + erf(d * 0.7071067811865476)));
    case GELU_TANH: return <f32>(0.5 * d * (1.0 + Math.tanh(0.7978845608028654 * (d + 0.044715 * d * d * d))));
    case EXP: return <f32>Math.exp(d);
    case LOG: return <f32>Math.log(d);
    case NEG: return -x;
    case SQRT: return Mathf.sqrt(x);
    case SQUARE: return x * x;
    case ABS: return Mathf.abs(x);
    default: return x;
  }
}

/** C[m0..m0+mc, n0..n0+nc] = act(C + bias[n]) (no bias unless hasBias), the tile clipped to rows x cols. */
export function epilogue(
  c: usize, ldc: i32, rows: i32, cols: i32, m0: i32, mc: i32, n0: i32, nc: i32,
  bias: usize, hasBias: bool, act: i32, alpha: f32,
): void {
  if (!hasBias && act == 0) return;
  const m1 = min(rows, m0 + mc);
  const n1 = min(cols, n0 + nc);
  // none, relu and leaky_relu in f32x4s (the same adds, compares and products as `activate`, lane by lane).
  const n4 = act <= LEAKY_RELU ? n0 + ((n1 - n0) & ~3) : n0;
  const zero = f32x4.splat(0);
  const slope = f32x4.splat(alpha);
  for (let m = m0; m < m1; m++) {
    const row = c + (<usize>m * <usize>ldc << 2);
    for (let n = n0; n < n4; n += 4) {
      const p = row + (<usize>n << 2);
      let v = v128.load(p);
      if (hasBias) v = f32x4.add(v, v128.load(bias + (<usize>n << 2)));
      if (act == RELU) v = v128.bitselect(v, zero, v128.or(f32x4.gt(v, zero), f32x4.ne(v, v)));
      else if (act == LEAKY_RELU) v = v128.bitselect(v, f32x4.mul(slope, v), f32x4.gt(v, zero));
      v128.store(p, v);
    }
    for (let n = n4; n < n1; n++) {
      const p = row + (<usize>n << 2);
      let v = load<f32>(p);
      if (hasBias) v += load<f32>(bias + (<usize>n << 2));
      store<f32>(p, activate(v, act, alpha));
    }
  }
}
