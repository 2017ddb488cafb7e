// Convolution kernels, NHWC, as implicit GEMMs over gemm.ts's micro-kernel: each task packs its block of the
// virtual im2col matrix straight from the image (no im2col buffer), the other operand packed once by the wrapper
// (matmul_pack_b, conv2d_bwd_x_pack_w or _pack_w_phases). x [N,H,W,C], w [R,S,C,K], y [N,P,Q,K]; window: strides
// sh, sw, dilations dh, dw, top/left padding pt, pl.
import { MR, NR, epilogue, gemmBlock } from './gemm';

/** Zeroes column r of a packed A panel [kc, MR] at d. */
@inline function zeroRow(d: usize, r: i32, kc: i32): void {
  for (let k = 0; k < kc; k++) store<f32>(d + (<usize>(k * MR + r) << 2), 0);
}

/**
 * Forward A block: rows m0.. (output pixels m = (n·P + p)·Q + q), columns k0..k0+kc-1 (taps (r·S + s)·C + c) of
 * im2col(x) [N·P·Q, R·S·C] into MR-row panels at dst; padding taps and rows past M are 0.
 */
function packIm2col(
  x: usize, H: i32, W: i32, C: i32, S: i32, P: i32, Q: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  M: i32, m0: i32, mc: i32, k0: i32, kc: i32, dst: usize,
): void {
  const SC = S * C;
  const step = <usize>MR << 2;
  for (let i = 0; i < mc; i += MR) {
    const d = dst + (<usize>(i * kc) << 2);
    if (C == 1 && sw == 1 && packPanelC1(x, H, W, S, P, Q, sh, dh, dw, pt, pl, M, m0 + i, k0, kc, d)) continue;
    for (let r = 0; r < MR; r++) {
      const m = m0 + i + r;
      if (m >= M) {
        zeroRow(d, r, kc);
        continue;
      }
      const q = m % Q;
      const p = (m / Q) % P;
      const n = m / (P * Q);
      const hb = p * sh - pt;
      const wb = q * sw - pl;
      let rr = k0 / SC;
      let ss = (k0 - rr * SC) / C;
      let cc = k0 - rr * SC - ss * C;
      let o = d + (<usize>r << 2);
      for (let k = 0; k < kc; ) {
        const run = min(C - cc, kc - k);
        const h = hb + rr * dh;
        const w = wb + ss * dw;
        if (h >= 0 && h < H && w >= 0 && w < W) {
          let s = x + (<usize>(((n * H + h) * W + w) * C + cc) << 2);
          for (let t = 0; t < run; t++, s += 4, o += step) store<f32>(o, load<f32>(s));
        } else {
          for (let t = 0; t < run; t++, o += step) store<f32>(o, 0);
        }
        k += run;
        cc = 0;
        if (++ss == S) {
          ss = 0;
          rr++;
        }
      }
    }
  }
}

/**
 * packIm2col's panel of MR (= 4) output pixels m.. for one channel and stride 1 across, where they lie on one output
 * row and all their taps inside the image: a tap's 4 values are neighbours in x, one f32x4. False where it does not
 * apply (the caller packs the panel element by element).
 */
function packPanelC1(
  x: usize, H: i32, W: i32, S: i32, P: i32, Q: i32, sh: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  M: i32, m: i32, k0: i32, kc: i32, d: usize,
): bool {
  const q = m % Q;
  if (m + MR > M || q + MR > Q) return false;
  const p = (m / Q) % P;
  const n = m / (P * Q);
  const hb = p * sh - pt;
  const wb = q - pl;
  const R = (k0 + kc + S - 1) / S; // taps k0..k0+kc-1 use rows < R
  if (hb < 0 || hb + (R - 1) * dh >= H || wb < 0 || wb + MR - 1 + (S - 1) * dw >= W) return false;
  let rr = k0 / S;
  let ss = k0 - rr * S;
  for (let k = 0; k < kc; k++) {
    v128.store(d + (<usize>k << 4), v128.load(x + (<usize>((n * H + hb + rr * dh) * W + wb + ss * dw) << 2)));
    if (++ss == S) {
      ss = 0;
      rr++;
    }
  }
  return true;
}

/**
 * conv2d / conv2d_bias: y [N·P·Q, K] = act(im2col(x) @ w [R·S·C, K] + bias) in tiles of mc x nc, `tasks`
 * contiguous runs of them; pb: w packed by matmul_pack_b. Scratch per task as matmul_tiles.
 */
export function conv2d_tiles(
  x: usize, pb: usize, y: usize, bias: usize, hasBias: bool, act: i32, alpha: f32,
  N: i32, H: i32, W: i32, C: i32, R: i32, S: i32, K: i32, P: i32, Q: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  mc: i32, nc: i32, kcb: i32, scratch: usize, taskBytes: i32,
  task: i32, tasks: i32,
): void {
  const M = N * P * Q;
  const Kr = R * S * C;
  const mt = (M + mc - 1) / mc;
  const nt = (K + nc - 1) / nc;
  const t0 = <i32>(<i64>(mt * nt) * task / tasks);
  const t1 = <i32>(<i64>(mt * nt) * (task + 1) / tasks);
  const pa = scratch + <usize>task * <usize>taskBytes;
  const tmp = pa + (<usize>(mc * kcb) << 2);
  for (let t = t0; t < t1; t++) {
    const m0 = t / nt * mc;
    const n0 = t % nt * nc;
    const mcc = min(mc, M - m0);
    const ncc = min(nc, K - n0);
    let k0 = 0;
    do {
      const kc = min(kcb, Kr - k0);
      packIm2col(x, H, W, C, S, P, Q, sh, sw, dh, dw, pt, pl, M, m0, mcc, k0, kc, pa);
      gemmBlock(pa, pb, Kr, k0, kc, m0, mcc, n0, ncc, y, K, M, K, tmp, k0 > 0);
      k0 += kc;
    } while (k0 < Kr);
    epilogue(y, K, M, K, m0, mcc, n0, ncc, bias, hasBias, act, alpha);
  }
}

/**
 * The input gradient's B operand: B [(r·S + s)·K + k, c] = w[r,s,c,k], packed into NR-column panels p0..p1-1 of
 * [R·S·K, NR] at pb (panel j at j·R·S·K·NR floats), zero past C.
 */
export function conv2d_bwd_x_pack_w(w: usize, pb: usize, RS: i32, C: i32, K: i32, task: i32, tasks: i32): void {
  const panels = (C + NR - 1) / NR;
  const p0 = <i32>(<i64>panels * task / tasks);
  const p1 = <i32>(<i64>panels * (task + 1) / tasks);
  for (let p = p0; p < p1; p++) {
    let d = pb + (<usize>p * <usize>(RS * K) * <usize>NR << 2);
    const c0 = p * NR;
    const cn = min(NR, C - c0);
    for (let rs = 0; rs < RS; rs++) {
      for (let k = 0; k < K; k++) {
        for (let q = 0; q < NR; q++) {
          store<f32>(d + (<usize>q << 2), q < cn ? load<f32>(w + (<usize>((rs * C + c0 + q) * K + k) << 2)) : 0);
        }
        d += NR * 4;
      }
    }
  }
}

/**
 * Input-gradient A block: rows m0.. (input pixels m = (n·H + h)·W + w), columns k0..k0+kc-1 ((r·S + s)·K + k) of
 * the matrix whose entry is dy[n, p, q, k] where the forward's tap (r, s) of output pixel (p, q) read (h, w), i.e.
 * p = (h + pt − r·dh) / sh exactly and 0 <= p < P (likewise q), else 0.
 */
function packConvT(
  dy: usize, H: i32, W: i32, S: i32, K: i32, P: i32, Q: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  M: i32, m0: i32, mc: i32, k0: i32, kc: i32, dst: usize,
): void {
  const SK = S * K;
  const step = <usize>MR << 2;
  for (let i = 0; i < mc; i += MR) {
    const d = dst + (<usize>(i * kc) << 2);
    for (let r = 0; r < MR; r++) {
      const m = m0 + i + r;
      if (m >= M) {
        zeroRow(d, r, kc);
        continue;
      }
      const w = m % W;
      const h = (m / W) % H;
      const n = m / (H * W);
      let rr = k0 / SK;
      let ss = (k0 - rr * SK) / K;
      let kk = k0 - rr * SK - ss * K;
      let o = d + (<usize>r << 2);
      for (let k = 0; k < kc; ) {
        const run = min(K - kk, kc - k);
        const hp = h + pt - rr * dh;
        const wp = w + pl - ss * dw;
        const p = hp / sh;
        const q = wp / sw;
        if (hp >= 0 && wp >= 0 && p * sh == hp && q * sw == wp && p < P && q < Q) {
          let s = dy + (<usize>(((n * P + p) * Q + q) * K + kk) << 2);
          for (let t = 0; t < run; t++, s += 4, o += step) store<f32>(o, load<f32>(s));
        } else {
          for (let t = 0; t < run; t++, o += step) store<f32>(o, 0);
        }
        k += run;
        kk = 0;
        if (++ss == S) {
          ss = 0;
          rr++;
        }
      }
    }
  }
}

/**
 * conv2d_bwd_x: dx [N·H·W, C] = A [N·H·W, R·S·K] @ B [R·S·K, C] (packConvT, conv2d_bwd_x_pack_w): every dx element
 * gathers its own terms, no scatter. Tiles and scratch as conv2d_tiles.
 */
export function conv2d_bwd_x_tiles(
  dy: usize, pb: usize, dx: usize,
  N: i32, H: i32, W: i32, C: i32, R: i32, S: i32, K: i32, P: i32, Q: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  mc: i32, nc: i32, kcb: i32, scratch: usize, taskBytes: i32,
  task: i32, tasks: i32,
): void {
  const M = N * H * W;
  const Kr = R * S * K;
  const mt = (M + mc - 1) / mc;
  const nt = (C + nc - 1) / nc;
  const t0 = <i32>(<i64>(mt * nt) * task / tasks);
  const t1 = <i32>(<i64>(mt * nt) * (task + 1) / tasks);
  const pa = scratch + <usize>task * <usize>taskBytes;
  const tmp = pa + (<usize>(mc * kcb) << 2);
  for (let t = t0; t < t1; t++) {
    const m0 = t / nt * mc;
    const n0 = t % nt * nc;
    const mcc = min(mc, M - m0);
    const ncc = min(nc, C - n0);
    let k0 = 0;
    do {
      const kc = min(kcb, Kr - k0);
      packConvT(dy, H, W, S, K, P, Q, sh, sw, dh, dw, pt, pl, M, m0, mcc, k0, kc, pa);
      gemmBlock(pa, pb, Kr, k0, kc, m0, mcc, n0, ncc, dx, C, M, C, tmp, k0 > 0);
      k0 += kc;
    } while (k0 < Kr);
  }
}

// ---- conv2d_bwd_x with stride > 1 (dilation 1), by phases: dx pixels whose (h + pt) % sh = ph and
// (w + pl) % sw = pw are reached only by the taps r ≡ ph (mod sh), s ≡ pw (mod sw), so each phase is its own GEMM
// over its Rp·Sp·K terms (the plain gather would multiply sh·sw times as many zeros). Phases run ph-major, pw-minor.

/** Taps of phase `ph` along an axis of R taps and stride sh: r = ph, ph + sh, ... < R. */
@inline function phaseTaps(R: i32, sh: i32, ph: i32): i32 {
  return ph < R ? (R - ph + sh - 1) / sh : 0;
}

/** First pixel of phase `ph` along an axis (the least h >= 0 with (h + pt) % sh = ph) and the count below H. */
@inline function phaseStart(pt: i32, sh: i32, ph: i32): i32 {
  return (((ph - pt) % sh) + sh) % sh;
}

@inline function phasePixels(H: i32, pt: i32, sh: i32, ph: i32): i32 {
  const h0 = phaseStart(pt, sh, ph);
  return h0 < H ? (H - h0 + sh - 1) / sh : 0;
}

/**
 * Packs the phases' B operands: phase (ph, pw)'s B [(ri·Sp + si)·K + k, c] = w[ph + ri·sh, pw + si·sw, c, k] in
 * NR-column panels, phase after phase. Units: (phase, panel).
 */
export function conv2d_bwd_x_pack_w_phases(
  w: usize, pb: usize, R: i32, S: i32, C: i32, K: i32, sh: i32, sw: i32, task: i32, tasks: i32,
): void {
  const panels = (C + NR - 1) / NR;
  const units = sh * sw * panels;
  const u1 = <i32>(<i64>units * (task + 1) / tasks);
  let base: usize = pb;
  let u = 0;
  for (let ph = 0; ph < sh; ph++) {
    const Rp = phaseTaps(R, sh, ph);
    for (let pw = 0; pw < sw; pw++) {
      const Sp = phaseTaps(S, sw, pw);
      const Kr = Rp * Sp * K;
      for (let j = 0; j < panels; j++, u++) {
        if (u >= u1) return;
        if (u < <i32>(<i64>units * task / tasks)) continue;
        let d = base + (<usize>(j * Kr * NR) << 2);
        const c0 = j * NR;
        const cn = min(NR, C - c0);
        for (let ri = 0; ri < Rp; ri++) {
          for (let si = 0; si < Sp; si++) {
            const tap = (ph + ri * sh) * S + pw + si * sw;
            for (let k = 0; k < K; k++, d += NR * 4) {
              for (let q = 0; q < NR; q++) {
                store<f32>(d + (<usize>q << 2), q < cn ? load<f32>(w + (<usize>((tap * C + c0 + q) * K + k) << 2)) : 0);
              }
            }
          }
        }
      }
      base += <usize>(panels * Kr * NR) << 2;
    }
  }
}

/**
 * A block of one phase's GEMM for the dx pixels wi = m0.. of line (n, hi): columns k0.. of (ri, si, k), the entry
 * dy[n, p, q, k] with p = pb_h + hi − ri, q = pb_w + wi − si (pb_h = (h0 + pt − ph) / sh for the phase's first row
 * h0), 0 outside dy.
 */
function packPhase(
  dy: usize, K: i32, P: i32, Q: i32, Sp: i32, n: i32, ph0: i32, pw0: i32,
  M: i32, m0: i32, mc: i32, k0: i32, kc: i32, dst: usize,
): void {
  if (kc == 0) return; // a phase no tap reaches (stride > kernel): gemmBlock writes its zeros
  const SK = Sp * K;
  const step = <usize>MR << 2;
  for (let i = 0; i < mc; i += MR) {
    const d = dst + (<usize>(i * kc) << 2);
    for (let r = 0; r < MR; r++) {
      const m = m0 + i + r;
      if (m >= M) {
        zeroRow(d, r, kc);
        continue;
      }
      let ri = k0 / SK;
      let si = (k0 - ri * SK) / K;
      let kk = k0 - ri * SK - si * K;
      let o = d + (<usize>r << 2);
      for (let k = 0; k < kc; ) {
        const run = min(K - kk, kc - k);
        const p = ph0 - ri;
        const q = pw0 + m - si;
        if (p >= 0 && p < P && q >= 0 && q < Q) {
          let s = dy + (<usize>(((n * P + p) * Q + q) * K + kk) << 2);
          for (let t = 0; t < run; t++, s += 4, o += step) store<f32>(o, load<f32>(s));
        } else {
          for (let t = 0; t < run; t++, o += step) store<f32>(o, 0);
        }
        k += run;
        kk = 0;
        if (++si == Sp) {
          si = 0;
          ri++;
        }
      }
    }
  }
}

/**
 * conv2d_bwd_x by phases (stride > 1, dilation 1): units (phase, n, line hi, row tile of mc pixels, column tile of nc
 * channels); a line's pixels are dx rows sw·C floats apart, which gemmBlock takes as its row stride.
 */
export function conv2d_bwd_x_phases(
  dy: usize, pb: usize, dx: usize,
  N: i32, H: i32, W: i32, C: i32, R: i32, S: i32, K: i32, P: i32, Q: i32,
  sh: i32, sw: i32, pt: i32, pl: i32,
  mc: i32, nc: i32, kcb: i32, scratch: usize, taskBytes: i32,
  task: i32, tasks: i32,
): void {
  const nt = (C + nc - 1) / nc;
  const panels = (C + NR - 1) / NR;
  let units = 0;
  for (let ph = 0; ph < sh; ph++) {
    for (let pw = 0; pw < sw; pw++) {
      units += N * phasePixels(H, pt, sh, ph) * ((phasePixels(W, pl, sw, pw) + mc - 1) / mc) * nt;
    }
  }
  const u0 = <i32>(<i64>units * task / tasks);
  const u1 = <i32>(<i64>units * (task + 1) / tasks);
  const pa = scratch + <usize>task * <usize>taskBytes;
  const tmp = pa + (<usize>(mc * kcb) << 2);
  let base: usize = pb;
  let u = 0;
  for (let ph = 0; ph < sh; ph++) {
    const Rp = phaseTaps(R, sh, ph);
    const h0 = phaseStart(pt, sh, ph);
    const Hp = phasePixels(H, pt, sh, ph);
    for (let pw = 0; pw < sw; pw++) {
      const Sp = phaseTaps(S, sw, pw);
      const w0 = phaseStart(pl, sw, pw);
      const Wp = phasePixels(W, pl, sw, pw);
      const Kr = Rp * Sp * K;
      const mt = (Wp + mc - 1) / mc;
      const count = N * Hp * mt * nt;
      for (let v = max(u0 - u, 0); v < min(u1 - u, count); v++) {
        const line = v / (mt * nt);
        const n = line / Hp;
        const hi = line % Hp;
        const m0 = (v / nt) % mt * mc;
        const n0 = v % nt * nc;
        const mcc = min(mc, Wp - m0);
        const ncc = min(nc, C - n0);
        const c = dx + (<usize>(((n * H + h0 + hi * sh) * W + w0) * C) << 2);
        let k0 = 0;
        do {
          const kc = min(kcb, Kr - k0);
          packPhase(dy, K, P, Q, Sp, n, (h0 + pt - ph) / sh + hi, (w0 + pl - pw) / sw, Wp, m0, mcc, k0, kc, pa);
          gemmBlock(pa, base, Kr, k0, kc, m0, mcc, n0, ncc, c, sw * C, Wp, C, tmp, k0 > 0);
          k0 += kc;
        } while (k0 < Kr);
      }
      u += count;
      base += <usize>(panels * Kr * NR) << 2;
    }
  }
}

/**
 * Filter-gradient A block: rows m0.. (taps m = (r·S + s)·C + c), columns k0..k0+kc-1 (output pixels (n·P + p)·Q + q)
 * of im2col(x)ᵀ [R·S·C, N·P·Q]; padding 0. Where C % 4 = 0 a panel's 4 rows are 4 neighbouring channels of one
 * tap: one f32x4 of x per output pixel.
 */
function packIm2colT(
  x: usize, H: i32, W: i32, C: i32, S: i32, P: i32, Q: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  M: i32, m0: i32, mc: i32, k0: i32, kc: i32, dst: usize,
): void {
  for (let i = 0; i < mc; i += MR) {
    const d = dst + (<usize>(i * kc) << 2);
    if (C % MR == 0 && m0 + i + MR <= M) {
      const m = m0 + i;
      tapRow(x, H, W, C, P, Q, sh, sw, (m / (S * C)) * dh - pt, ((m / C) % S) * dw - pl, m % C, k0, kc, d, true);
      continue;
    }
    for (let r = 0; r < MR; r++) {
      const m = m0 + i + r;
      if (m >= M) {
        zeroRow(d, r, kc);
        continue;
      }
      const o = d + (<usize>r << 2);
      tapRow(x, H, W, C, P, Q, sh, sw, (m / (S * C)) * dh - pt, ((m / C) % S) * dw - pl, m % C, k0, kc, o, false);
    }
  }
}

/**
 * One row of packIm2colT (channel c of the tap at offset hoff, woff; or 4 channels from c when `wide`) over output
 * pixels k0..k0+kc-1, written every MR floats from o, in runs along an output row (n, p): one input row h each.
 */
// prettier-ignore
@inline function tapRow(
  x: usize, H: i32, W: i32, C: i32, P: i32, Q: i32, sh: i32, sw: i32,
  hoff: i32, woff: i32, c: i32, k0: i32, kc: i32, o: usize, wide: bool,
): void {
  const step = <usize>MR << 2;
  let q = k0 % Q;
  let p = (k0 / Q) % P;
  let n = k0 / (P * Q);
  for (let k = 0; k < kc; ) {
    const run = min(Q - q, kc - k);
    const h = p * sh + hoff;
    if (h >= 0 && h < H) {
      const line = x + (<usize>((n * H + h) * W * C + c) << 2);
      let w = q * sw + woff;
      for (let t = 0; t < run; t++, o += step, w += sw) {
        const inside = w >= 0 && w < W;
        if (wide) v128.store(o, inside ? v128.load(line + (<usize>(w * C) << 2)) : f32x4.splat(0));
        else store<f32>(o, inside ? load<f32>(line + (<usize>(w * C) << 2)) : 0);
      }
    } else {
      for (let t = 0; t < run; t++, o += step) {
        if (wide) v128.store(o, f32x4.splat(0));
        else store<f32>(o, 0);
      }
    }
    k += run;
    q += run;
    if (q == Q) {
      q = 0;
      if (++p == P) {
        p = 0;
        n++;
      }
    }
  }
}

/**
 * conv2d_bwd_w: dw [R·S·C, K] = im2col(x)ᵀ @ dy [N·P·Q, K] (pb: dy packed by matmul_pack_b), the N·P·Q terms cut
 * into `splits` spans of `span` (from the shapes): work unit u = tile·splits + split writes its span's sum to
 * out + split·R·S·C·K floats (dw itself when splits = 1; conv2d_bwd_w_reduce adds the spans in order).
 */
export function conv2d_bwd_w_tiles(
  x: usize, pb: usize, out: usize,
  N: i32, H: i32, W: i32, C: i32, R: i32, S: i32, K: i32, P: i32, Q: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  span: i32, splits: i32,
  mc: i32, nc: i32, kcb: i32, scratch: usize, taskBytes: i32,
  task: i32, tasks: i32,
): void {
  const M = R * S * C;
  const Kr = N * P * Q;
  const mt = (M + mc - 1) / mc;
  const nt = (K + nc - 1) / nc;
  const units = mt * nt * splits;
  const t0 = <i32>(<i64>units * task / tasks);
  const t1 = <i32>(<i64>units * (task + 1) / tasks);
  const pa = scratch + <usize>task * <usize>taskBytes;
  const tmp = pa + (<usize>(mc * kcb) << 2);
  for (let u = t0; u < t1; u++) {
    const split = u % splits;
    const t = u / splits;
    const m0 = t / nt * mc;
    const n0 = t % nt * nc;
    const mcc = min(mc, M - m0);
    const ncc = min(nc, K - n0);
    const c = out + (<usize>split * <usize>(M * K) << 2);
    const kEnd = min(Kr, (split + 1) * span);
    let k0 = split * span;
    const kStart = k0;
    do {
      const kc = min(kcb, kEnd - k0);
      packIm2colT(x, H, W, C, S, P, Q, sh, sw, dh, dw, pt, pl, M, m0, mcc, k0, kc, pa);
      gemmBlock(pa, pb, Kr, k0, kc, m0, mcc, n0, ncc, c, K, M, K, tmp, k0 > kStart);
      k0 += kc;
    } while (k0 < kEnd);
  }
}

/** dw[i] = partial[0][i] + partial[1][i] + ... in split order, for i in this task's part of `count`. */
export function conv2d_bwd_w_reduce(partial: usize, dw: usize, count: i32, splits: i32, task: i32, tasks: i32): void {
  // Whole f32x4s per task (lane-wise adds are the scalar adds), the last task taking the scalar tail.
  const quads = count >> 2;
  const q0 = <i32>(<i64>quads * task / tasks);
  const q1 = <i32>(<i64>quads * (task + 1) / tasks);
  const stride = <usize>count << 2;
  for (let i = q0; i < q1; i++) {
    const o = <usize>i << 4;
    let s = v128.load(partial + o);
    for (let j = 1; j < splits; j++) s = f32x4.add(s, v128.load(partial + <usize>j * stride + o));
    v128.store(dw + o, s);
  }
  if (task != tasks - 1) return;
  for (let i = quads << 2; i < count; i++) {
    const o = <usize>i << 2;
    let s = load<f32>(partial + o);
    for (let j = 1; j < splits; j++) s += load<f32>(partial + <usize>j * stride + o);
    store<f32>(dw + o, s);
  }
}
