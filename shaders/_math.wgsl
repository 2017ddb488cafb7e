// Shared helpers for elementwise expressions (included by kernels that splice op-table expressions).

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), enough for f32.
fn erf_f32(x: f32) -> f32 {
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(x) * (1.0 - poly * exp(-a * a));
}

fn is_nan_f32(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// Sigmoid that neither overflows nor loses precision for large |x|.
fn sigmoid_f32(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

// tanh through exp(-2|x|) for large |x| (some drivers' tanh returns NaN past |x| ~ 45); the builtin near 0,
// where 1 - e would cancel.
fn tanh_f32(x: f32) -> f32 {
  let e = exp(-2.0 * abs(x));
  return select(sign(x) * (1.0 - e) / (1.0 + e), tanh(x), abs(x) < 0.5);
}

// d/dx of gelu's tanh form (src/ops/unary.ts): 0.5 (1 + t) + 0.5 x (1 - t²) c (1 + 3k x²), t = tanh(c (x + k x³)).
fn gelu_tanh_grad_f32(x: f32) -> f32 {
  let t = tanh_f32(0.7978845608028654 * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
}

// NOTE: maximum/minimum propagate NaN (PyTorch): the NaN operand itself is returned, found by its bits since WGSL
// max()/min() may return either operand and compilers may fold x != x away.
fn max_nan_f32(a: f32, b: f32) -> f32 {
  return select(select(max(a, b), b, is_nan_f32(b)), a, is_nan_f32(a));
}

fn min_nan_f32(a: f32, b: f32) -> f32 {
  return select(select(min(a, b), b, is_nan_f32(b)), a, is_nan_f32(a));
}

// +Inf (low = 0) or a quiet NaN (low = 0x400000), made at run time: WGSL rejects non-finite constants.
fn nonfinite_f32(low: u32) -> f32 {
  return bitcast<f32>(0x7f800000u | low);
}

// a^b as C99 pow / torch.pow, from exp2(b·log2|a|) (WGSL's pow is undefined for a < 0) plus the special cases.
// NOTE: pow(a, ±0) = 1 and pow(1, b) = 1 even for NaN, pow(-1, ±Inf) = 1 (C99, PyTorch; JavaScript says NaN);
// a finite negative base needs an integer exponent (odd gives a negative result), else NaN; zero, Inf and
// out-of-range bases and results are handled by hand rather than trusting log2(0) or exp2 overflow.
fn pow_f32(a: f32, b: f32) -> f32 {
  let ua = bitcast<u32>(a);
  let mag_a = ua & 0x7fffffffu;
  let mag_b = bitcast<u32>(b) & 0x7fffffffu;
  if (mag_b == 0u || ua == 0x3f800000u) {
    return 1.0;
  }
  if (is_nan_f32(a)) {
    return a;
  }
  if (is_nan_f32(b)) {
    return b;
  }
  let b_inf = mag_b == 0x7f800000u;
  let b_int = !b_inf && fract(b) == 0.0;
  let a_neg = ua != mag_a;
  if (a_neg && mag_a != 0x7f800000u && mag_a != 0u && !b_inf && !b_int) {
    return nonfinite_f32(0x400000u);
  }
  let abs_a = bitcast<f32>(mag_a);
  var m: f32;
  if (mag_a == 0u) {
    m = select(0.0, nonfinite_f32(0u), b < 0.0);
  } else if (mag_a == 0x7f800000u) {
    m = select(0.0, nonfinite_f32(0u), b > 0.0);
  } else if (b_inf) {
    m = select(select(0.0, nonfinite_f32(0u), (abs_a > 1.0) == (b > 0.0)), 1.0, abs_a == 1.0);
  } else {
    let t = b * log2(abs_a);
    m = select(select(exp2(t), 0.0, t < -150.0), nonfinite_f32(0u), t >= 128.0);
  }
  let odd = b_int && fract(0.5 * b) == 0.5;
  return bitcast<f32>(bitcast<u32>(m) | select(0u, 0x80000000u, a_neg && odd));
}
