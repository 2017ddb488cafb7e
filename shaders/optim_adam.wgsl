// Fused Adam / AdamW step in place (torch.optim.Adam, torch.optim.AdamW; src/optim/adam.ts). param, exp_avg m,
// exp_avg_sq v: [n] flat; grad: [n]; scale: [1], the clip factor (the grad itself, unread, when HAS_SCALE is off);
// flag: [1] int32, lowered to u.seq where a new parameter value is NaN or ±Inf (CHECK; a placeholder otherwise).
//   g = grad·scale + λ₂·p;  p = p·decay;  m = lerp(m, g, 1 − β1);  v = β2·v + (1 − β2)·g²;
//   p = p − step_size·m / (√v / √(1 − β2^t) + eps),  step_size = lr / (1 − β1^t)
// Adam sets λ₂ = weight decay, decay = 1; AdamW λ₂ = 0, decay = 1 − lr·weight decay (host-side, per step).
// NOTE: 1 − β1 and 1 − β2 come from the host, computed in float64 as PyTorch does: 1 − f32(0.999) in float32 is off
// by 1.3e-5 relative, an error every step of v (and so of every update) that put the weights 10x further from a
// float64 run than PyTorch float32's after 50 steps.

override WG: u32 = 256;
override HAS_SCALE: bool = false;

struct Params {
  n: u32,
  seq: i32,
  l2: f32,
  decay: f32,
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,
  step_size: f32,
  bc2_sqrt: f32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(2) var<storage, read_write> exp_avg_sq: array<f32>;
@group(0) @binding(3) var<storage, read_write> flag: array<atomic<i32>>;
@group(0) @binding(4) var<storage, read> grad: array<f32>;
@group(0) @binding(5) var<storage, read> scale: array<f32>;
@group(0) @binding(6) var<uniform> u: Params;

// @include _update

fn update(i: u32) -> f32 {
  var p = param[i];
  var g = grad[i];
  if (HAS_SCALE) {
    g = g * scale[0];
  }
  if (u.l2 != 0.0) {
    g = g + u.l2 * p;
  }
  p = p * u.decay;
  let m0 = exp_avg[i];
  let m = m0 + u.one_minus_beta1 * (g - m0);
  let v = u.beta2 * exp_avg_sq[i] + u.one_minus_beta2 * g * g;
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
  let x = p - u.step_size * m / (sqrt(v) / u.bc2_sqrt + u.eps);
  param[i] = x;
  return x;
}
