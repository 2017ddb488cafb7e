// Pooling kernels over NHWC images: max_pool2d (with its argmax), avg_pool2d, and their input gradients, channels in
// f32x4 quads with a scalar tail. x [N,H,W,C], y [N,P,Q,C]; window kh x kw, strides sh, sw, top/left padding pt, pl
// (padding is never a candidate of a max and adds nothing to a sum).

/** Where task `task` of `tasks` starts in `count` units (it ends where task + 1 starts). */
@inline function start(count: i32, task: i32, tasks: i32): i32 {
  return <i32>(<i64>count * task / tasks);
}

/**
 * max_pool2d over rows (n, p) of the output: y = the window's max, arg = h·W + w of the winner.
 * NOTE: as the CPU reference: the first maximum in row-major window order wins ties; a NaN beats any number and the
 * first NaN stays (once best is NaN nothing replaces it).
 */
export function max_pool2d(
  x: usize, y: usize, arg: usize,
  N: i32, H: i32, W: i32, C: i32, P: i32, Q: i32, kh: i32, kw: i32, sh: i32, sw: i32, pt: i32, pl: i32,
  task: i32, tasks: i32,
): void {
  const end = start(N * P, task + 1, tasks);
  const C4 = C & ~3;
  for (let row = start(N * P, task, tasks); row < end; row++) {
    const n = row / P;
    const p = row % P;
    const hs = p * sh - pt;
    const h0 = max(hs, 0);
    const h1 = min(hs + kh, H);
    for (let q = 0; q < Q; q++) {
      const ws = q * sw - pl;
      const w0 = max(ws, 0);
      const w1 = min(ws + kw, W);
      const o = <usize>((row * Q + q) * C) << 2;
      const first = <usize>(((n * H + h0) * W + w0) * C) << 2;
      for (let c = 0; c < C4; c += 4) {
        const cb = <usize>c << 2;
        let best = v128.load(x + first + cb);
        let at = i32x4.splat(h0 * W + w0);
        for (let h = h0; h < h1; h++) {
          for (let w = w0; w < w1; w++) {
            const v = v128.load(x + (<usize>(((n * H + h) * W + w) * C) << 2) + cb);
            const take = v128.andnot(v128.or(f32x4.gt(v, best), f32x4.ne(v, v)), f32x4.ne(best, best));
            best = v128.bitselect(v, best, take);
            at = v128.bitselect(i32x4.splat(h * W + w), at, take);
          }
        }
        v128.store(y + o + cb, best);
        v128.store(arg + o + cb, at);
      }
      for (let c = C4; c < C; c++) {
        const cb = <usize>c << 2;
        let best = load<f32>(x + first + cb);
        let at = h0 * W + w0;
        for (let h = h0; h < h1; h++) {
          for (let w = w0; w < w1; w++) {
            const v = load<f32>(x + (<usize>(((n * H + h) * W + w) * C) << 2) + cb);
            if (!isNaN(best) && (v > best || isNaN(v))) {
              best = v;
              at = h * W + w;
            }
          }
        }
        store<f32>(y + o + cb, best);
        store<i32>(arg + o + cb, at);
      }
    }
  }
}

/** Elements the average of the window starting at (hs, ws) divides by. */
@inline function countOf(hs: i32, ws: i32, H: i32, W: i32, kh: i32, kw: i32, includePad: bool): i32 {
  if (includePad) return kh * kw;
  return (min(hs + kh, H) - max(hs, 0)) * (min(ws + kw, W) - max(ws, 0));
}

/** avg_pool2d over rows (n, p): y = (the window's sum over its input elements, row-major) / count. */
export function avg_pool2d(
  x: usize, y: usize,
  N: i32, H: i32, W: i32, C: i32, P: i32, Q: i32, kh: i32, kw: i32, sh: i32, sw: i32, pt: i32, pl: i32,
  includePad: bool, task: i32, tasks: i32,
): void {
  const end = start(N * P, task + 1, tasks);
  const C4 = C & ~3;
  for (let row = start(N * P, task, tasks); row < end; row++) {
    const n = row / P;
    const hs = (row % P) * sh - pt;
    const h0 = max(hs, 0);
    const h1 = min(hs + kh, H);
    for (let q = 0; q < Q; q++) {
      const ws = q * sw - pl;
      const w0 = max(ws, 0);
      const w1 = min(ws + kw, W);
      const count = <f32>countOf(hs, ws, H, W, kh, kw, includePad);
      const o = y + (<usize>((row * Q + q) * C) << 2);
      for (let c = 0; c < C4; c += 4) {
        const cb = <usize>c << 2;
        let s = f32x4.splat(0);
        for (let h = h0; h < h1; h++) {
          for (let w = w0; w < w1; w++) s = f32x4.add(s, v128.load(x + (<usize>(((n * H + h) * W + w) * C) << 2) + cb));
        }
        v128.store(o + cb, f32x4.div(s, f32x4.splat(count)));
      }
      for (let c = C4; c < C; c++) {
        const cb = <usize>c << 2;
        let s: f32 = 0;
        for (let h = h0; h < h1; h++) {
          for (let w = w0; w < w1; w++) s += load<f32>(x + (<usize>(((n * H + h) * W + w) * C) << 2) + cb);
        }
        store<f32>(o + cb, s / count);
      }
    }
  }
}

/** Channels per unit of max_pool2d_bwd_x. */
const CB = 32;

/**
 * max_pool2d_bwd_x: dx[n, arg, c] += dy[n,p,q,c] for every output, over units (n, block of CB channels): each unit
 * owns its part of dx (zeroes it, then adds its windows' dy in p, q order), so no two tasks write one element.
 */
export function max_pool2d_bwd_x(
  dy: usize, arg: usize, dx: usize, N: i32, H: i32, W: i32, C: i32, P: i32, Q: i32, task: i32, tasks: i32,
): void {
  const blocks = (C + CB - 1) / CB;
  const end = start(N * blocks, task + 1, tasks);
  for (let u = start(N * blocks, task, tasks); u < end; u++) {
    const n = u / blocks;
    const c0 = (u % blocks) * CB;
    const c1 = min(c0 + CB, C);
    const img = dx + (<usize>(n * H * W * C) << 2);
    for (let hw = 0; hw < H * W; hw++) {
      for (let c = c0; c < c1; c++) store<f32>(img + (<usize>(hw * C + c) << 2), 0);
    }
    for (let pq = 0; pq < P * Q; pq++) {
      const o = <usize>((n * P * Q + pq) * C) << 2;
      for (let c = c0; c < c1; c++) {
        const cb = <usize>c << 2;
        const d = img + (<usize>(load<i32>(arg + o + cb) * C) << 2) + cb;
        store<f32>(d, load<f32>(d) + load<f32>(dy + o + cb));
      }
    }
  }
}

/**
 * max_pool2d_bwd_x where windows cannot overlap (kh <= sh, kw <= sw), over rows (n, h) of dx: each element lies in
 * at most one window (p, q) and gets that window's dy where it was the argmax, else 0 (0 + dy, as the scatter's sum).
 */
export function max_pool2d_bwd_window(
  dy: usize, arg: usize, dx: usize,
  N: i32, H: i32, W: i32, C: i32, P: i32, Q: i32, kh: i32, kw: i32, sh: i32, sw: i32, pt: i32, pl: i32,
  task: i32, tasks: i32,
): void {
  const end = start(N * H, task + 1, tasks);
  const C4 = C & ~3;
  const zero = f32x4.splat(0);
  for (let row = start(N * H, task, tasks); row < end; row++) {
    const n = row / H;
    const h = row % H;
    const p = (h + pt) / sh;
    const inRow = h + pt - p * sh < kh && p < P;
    for (let w = 0; w < W; w++) {
      const o = dx + (<usize>((row * W + w) * C) << 2);
      const q = (w + pl) / sw;
      if (!inRow || w + pl - q * sw >= kw || q >= Q) {
        for (let c = 0; c < C; c++) store<f32>(o + (<usize>c << 2), 0);
        continue;
      }
      const at = h * W + w;
      const src = <usize>(((n * P + p) * Q + q) * C) << 2;
      const mine = i32x4.splat(at);
      for (let c = 0; c < C4; c += 4) {
        const cb = <usize>c << 2;
        const hit = i32x4.eq(v128.load(arg + src + cb), mine);
        v128.store(o + cb, f32x4.add(zero, v128.and(v128.load(dy + src + cb), hit)));
      }
      for (let c = C4; c < C; c++) {
        const cb = <usize>c << 2;
        store<f32>(o + cb, load<i32>(arg + src + cb) == at ? 0 + load<f32>(dy + src + cb) : 0);
      }
    }
  }
}

/**
 * avg_pool2d_bwd_x over rows (n, h) of dx: each dx element gathers dy / count of the windows that contain it, in
 * p, q order: p from ceil((h + pt − kh + 1) / sh) to floor((h + pt) / sh) within [0, P), likewise q.
 */
export function avg_pool2d_bwd_x(
  dy: usize, dx: usize,
  N: i32, H: i32, W: i32, C: i32, P: i32, Q: i32, kh: i32, kw: i32, sh: i32, sw: i32, pt: i32, pl: i32,
  includePad: bool, task: i32, tasks: i32,
): void {
  const end = start(N * H, task + 1, tasks);
  const C4 = C & ~3;
  for (let row = start(N * H, task, tasks); row < end; row++) {
    const n = row / H;
    const h = row % H;
    const lo = h + pt - kh + 1;
    const p0 = lo <= 0 ? 0 : (lo + sh - 1) / sh;
    const p1 = min(P - 1, (h + pt) / sh);
    for (let w = 0; w < W; w++) {
      const lw = w + pl - kw + 1;
      const q0 = lw <= 0 ? 0 : (lw + sw - 1) / sw;
      const q1 = min(Q - 1, (w + pl) / sw);
      const o = dx + (<usize>((row * W + w) * C) << 2);
      for (let c = 0; c < C4; c += 4) {
        const cb = <usize>c << 2;
        let s = f32x4.splat(0);
        for (let p = p0; p <= p1; p++) {
          for (let q = q0; q <= q1; q++) {
            const count = <f32>countOf(p * sh - pt, q * sw - pl, H, W, kh, kw, includePad);
            const v = v128.load(dy + (<usize>(((n * P + p) * Q + q) * C) << 2) + cb);
            s = f32x4.add(s, f32x4.div(v, f32x4.splat(count)));
          }
        }
        v128.store(o + cb, s);
      }
      for (let c = C4; c < C; c++) {
        const cb = <usize>c << 2;
        let s: f32 = 0;
        for (let p = p0; p <= p1; p++) {
          for (let q = q0; q <= q1; q++) {
            const count = <f32>countOf(p * sh - pt, q * sw - pl, H, W, kh, kw, includePad);
            s += load<f32>(dy + (<usize>(((n * P + p) * Q + q) * C) << 2) + cb) / count;
          }
        }
        store<f32>(o + cb, s);
      }
    }
  }
}
