// In-place kernels: the fused optimizer updates (the same f32 arithmetic as shaders/optim_*.wgsl, four lanes at a
// time for SGD and Adam), the running sums and averages, and anomaly mode's finiteness check. Parameters split into
// fixed chunks per task; a task that writes a non-finite parameter lowers the flag to `seq` (an integer minimum,
// the same whatever order tasks run in).
import { spanEnd, spanStart } from './span';

/** flag = min(flag, seq), atomically (tasks on other threads may lower it too). */
function lowerFlag(flag: usize, seq: i32): void {
  let old = atomic.load<i32>(flag);
  while (seq < old) {
    const seen = atomic.cmpxchg<i32>(flag, old, seq);
    if (seen == old) return;
    old = seen;
  }
}

/** Lanes of v that are NaN or ±Inf (all exponent bits set), as a mask. */
function nonFinite(v: v128): v128 {
  const e = i32x4.splat(0x7f800000);
  return i32x4.eq(v128.and(v, e), e);
}

function isNonFinite(x: f32): bool {
  return (reinterpret<u32>(x) & 0x7f800000) == 0x7f800000;
}

/**
 * Adam / AdamW: m = m + (1−β1)(g − m); v = β2 v + (1−β2) g²; p = p·decay − step·m / (√v / √bc2 + eps), with
 * g = grad·scale + l2·p. scale: pointer to the clip scale [1], or 0. check: lower the flag on a non-finite p.
 */
export function optim_adam(
  p: usize,
  m: usize,
  v: usize,
  flag: usize,
  grad: usize,
  scale: usize,
  n: i32,
  check: i32,
  seq: i32,
  l2: f32,
  decay: f32,
  oneMinusBeta1: f32,
  beta2: f32,
  oneMinusBeta2: f32,
  stepSize: f32,
  bc2Sqrt: f32,
  eps: f32,
  task: i32,
  tasks: i32,
): void {
  const start = spanStart(n, task, tasks);
  const end = spanEnd(n, task, tasks);
  const s = scale ? load<f32>(scale) : 1;
  let bad = i32x4.splat(0);
  let badScalar = false;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const o = (<usize>i) << 2;
    let x = v128.load(p + o);
    let g = v128.load(grad + o);
    if (scale) g = f32x4.mul(g, f32x4.splat(s));
    if (l2 != 0) g = f32x4.add(g, f32x4.mul(f32x4.splat(l2), x));
    x = f32x4.mul(x, f32x4.splat(decay));
    const m0 = v128.load(m + o);
    const m1 = f32x4.add(m0, f32x4.mul(f32x4.splat(oneMinusBeta1), f32x4.sub(g, m0)));
    const v1 = f32x4.add(
      f32x4.mul(f32x4.splat(beta2), v128.load(v + o)),
      f32x4.mul(f32x4.mul(f32x4.splat(oneMinusBeta2), g), g),
    );
    v128.store(m + o, m1);
    v128.store(v + o, v1);
    const d = f32x4.add(f32x4.div(f32x4.sqrt(v1), f32x4.splat(bc2Sqrt)), f32x4.splat(eps));
    const y = f32x4.sub(x, f32x4.div(f32x4.mul(f32x4.splat(stepSize), m1), d));
    v128.store(p + o, y);
    bad = v128.or(bad, nonFinite(y));
  }
  for (; i < end; i++) {
    const o = (<usize>i) << 2;
    let x = load<f32>(p + o);
    let g = load<f32>(grad + o);
    if (scale) g = g * s;
    if (l2 != 0) g = g + l2 * x;
    x = x * decay;
    const m0 = load<f32>(m + o);
    const m1 = m0 + oneMinusBeta1 * (g - m0);
    const v1 = beta2 * load<f32>(v + o) + oneMinusBeta2 * g * g;
    store<f32>(m + o, m1);
    store<f32>(v + o, v1);
    const y = x - (stepSize * m1) / (Mathf.sqrt(v1) / bc2Sqrt + eps);
    store<f32>(p + o, y);
    badScalar = badScalar || isNonFinite(y);
  }
  if (check && (v128.any_true(bad) || badScalar)) lowerFlag(flag, seq);
}

/** SGD: g = grad·scale + wd·p; with momentum b = first ? g : μ b + (1−dampening) g, g = nesterov ? g + μ b : b. */
export function optim_sgd(
  p: usize,
  buf: usize,
  flag: usize,
  grad: usize,
  scale: usize,
  n: i32,
  check: i32,
  seq: i32,
  lr: f32,
  wd: f32,
  momentum: f32,
  damp: f32,
  first: i32,
  useMomentum: i32,
  nesterov: i32,
  task: i32,
  tasks: i32,
): void {
  const start = spanStart(n, task, tasks);
  const end = spanEnd(n, task, tasks);
  const s = scale ? load<f32>(scale) : 1;
  let bad = i32x4.splat(0);
  let badScalar = false;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const o = (<usize>i) << 2;
    const x = v128.load(p + o);
    let g = v128.load(grad + o);
    if (scale) g = f32x4.mul(g, f32x4.splat(s));
    if (wd != 0) g = f32x4.add(g, f32x4.mul(f32x4.splat(wd), x));
    if (useMomentum) {
      const b = first
        ? g
        : f32x4.add(f32x4.mul(f32x4.splat(momentum), v128.load(buf + o)), f32x4.mul(f32x4.splat(damp), g));
      v128.store(buf + o, b);
      g = nesterov ? f32x4.add(g, f32x4.mul(f32x4.splat(momentum), b)) : b;
    }
    const y = f32x4.sub(x, f32x4.mul(f32x4.splat(lr), g));
    v128.store(p + o, y);
    bad = v128.or(bad, nonFinite(y));
  }
  for (; i < end; i++) {
    const o = (<usize>i) << 2;
    const x = load<f32>(p + o);
    let g = load<f32>(grad + o);
    if (scale) g = g * s;
    if (wd != 0) g = g + wd * x;
    if (useMomentum) {
      const b = first ? g : momentum * load<f32>(buf + o) + damp * g;
      store<f32>(buf + o, b);
      g = nesterov ? g + momentum * b : b;
    }
    const y = x - lr * g;
    store<f32>(p + o, y);
    badScalar = badScalar || isNonFinite(y);
  }
  if (check && (v128.any_true(bad) || badScalar)) lowerFlag(flag, seq);
}

/** RMSProp (centered and momentum optional), as shaders/optim_rmsprop.wgsl. */
export function optim_rmsprop(
  p: usize,
  sq: usize,
  buf: usize,
  gavg: usize,
  flag: usize,
  grad: usize,
  scale: usize,
  n: i32,
  check: i32,
  seq: i32,
  lr: f32,
  wd: f32,
  alpha: f32,
  oneMinusAlpha: f32,
  eps: f32,
  momentum: f32,
  centered: i32,
  useMomentum: i32,
  task: i32,
  tasks: i32,
): void {
  const end = spanEnd(n, task, tasks);
  const s = scale ? load<f32>(scale) : 1;
  let bad = false;
  for (let i = spanStart(n, task, tasks); i < end; i++) {
    const o = (<usize>i) << 2;
    const x = load<f32>(p + o);
    let g = load<f32>(grad + o);
    if (scale) g = g * s;
    if (wd != 0) g = g + wd * x;
    const v = alpha * load<f32>(sq + o) + oneMinusAlpha * g * g;
    store<f32>(sq + o, v);
    let avg = v;
    if (centered) {
      const a0 = load<f32>(gavg + o);
      const a = a0 + oneMinusAlpha * (g - a0);
      store<f32>(gavg + o, a);
      avg = v - a * a;
    }
    const d = Mathf.sqrt(avg) + eps;
    let y: f32;
    if (useMomentum) {
      const b = momentum * load<f32>(buf + o) + g / d;
      store<f32>(buf + o, b);
      y = x - lr * b;
    } else y = x - (lr * g) / d;
    store<f32>(p + o, y);
    bad = bad || isNonFinite(y);
  }
  if (check && bad) lowerFlag(flag, seq);
}

/** Adagrad: s = s + g²; p = p − clr·g / (√s + eps), as shaders/optim_adagrad.wgsl. */
export function optim_adagrad(
  p: usize,
  sum: usize,
  flag: usize,
  grad: usize,
  scale: usize,
  n: i32,
  check: i32,
  seq: i32,
  clr: f32,
  wd: f32,
  eps: f32,
  task: i32,
  tasks: i32,
): void {
  const end = spanEnd(n, task, tasks);
  const s = scale ? load<f32>(scale) : 1;
  let bad = false;
  for (let i = spanStart(n, task, tasks); i < end; i++) {
    const o = (<usize>i) << 2;
    const x = load<f32>(p + o);
    let g = load<f32>(grad + o);
    if (scale) g = g * s;
    if (wd != 0) g = g + wd * x;
    const t = load<f32>(sum + o) + g * g;
    store<f32>(sum + o, t);
    const y = x - (clr * g) / (Mathf.sqrt(t) + eps);
    store<f32>(p + o, y);
    bad = bad || isNonFinite(y);
  }
  if (check && bad) lowerFlag(flag, seq);
}

/** acc [n] += x [n] (one f32 addition: the reference's float64 sum rounds to the same value). */
export function accumulate(acc: usize, x: usize, n: i32, task: i32, tasks: i32): void {
  const end = spanEnd(n, task, tasks);
  let i = spanStart(n, task, tasks);
  for (; i + 4 <= end; i += 4) {
    const o = (<usize>i) << 2;
    v128.store(acc + o, f32x4.add(v128.load(acc + o), v128.load(x + o)));
  }
  for (; i < end; i++) {
    const o = (<usize>i) << 2;
    store<f32>(acc + o, load<f32>(acc + o) + load<f32>(x + o));
  }
}

/** avg [n] = momentum·avg + (1 − momentum)·x [n], in float64 as the reference. */
export function ema_update(avg: usize, x: usize, n: i32, momentum: f64, task: i32, tasks: i32): void {
  const end = spanEnd(n, task, tasks);
  for (let i = spanStart(n, task, tasks); i < end; i++) {
    const o = (<usize>i) << 2;
    store<f32>(avg + o, <f32>(momentum * <f64>load<f32>(avg + o) + (1 - momentum) * <f64>load<f32>(x + o)));
  }
}

/** flag = min(flag, seq) if x [n] holds a NaN or an Inf. */
export function anomaly_check(flag: usize, x: usize, n: i32, seq: i32, task: i32, tasks: i32): void {
  const end = spanEnd(n, task, tasks);
  let i = spanStart(n, task, tasks);
  let bad = i32x4.splat(0);
  for (; i + 4 <= end; i += 4) bad = v128.or(bad, nonFinite(v128.load(x + ((<usize>i) << 2))));
  let b = v128.any_true(bad);
  for (; i < end; i++) b = b || isNonFinite(load<f32>(x + ((<usize>i) << 2)));
  if (b) lowerFlag(flag, seq);
}
