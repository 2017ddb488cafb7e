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
