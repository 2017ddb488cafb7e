// Fused RMSprop step in place (torch.optim.RMSprop, src/optim/rmsprop.ts). param, square_avg v, momentum buffer b,
// grad_avg a: [n] flat (b, a [1] placeholders when MOMENTUM / CENTERED are off); grad: [n]; scale: [1], the clip
// factor (the grad itself, unread, when HAS_SCALE is off); flag: [1] int32, lowered to u.seq where a new parameter
// value is NaN or ±Inf (CHECK; a placeholder otherwise).
//   g = grad·scale + λ·p;  v = α·v + (1 − α)·g²;  centered: a = lerp(a, g, 1 − α), d = √(v − a²) + eps, else
//   d = √v + eps;  momentum: b = μ·b + g/d, p = p − lr·b;  else p = p − lr·g/d

override WG: u32 = 256;
override MOMENTUM: bool = false;
override CENTERED: bool = false;
override HAS_SCALE: bool = false;

struct Params {
  n: u32,
  seq: i32,
  lr: f32,
  weight_decay: f32,
  alpha: f32,
  one_minus_alpha: f32,
  eps: f32,
  momentum: f32,
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read_write> square_avg: array<f32>;
@group(0) @binding(2) var<storage, read_write> momentum_buf: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_avg: array<f32>;
@group(0) @binding(4) var<storage, read_write> flag: array<atomic<i32>>;
@group(0) @binding(5) var<storage, read> grad: array<f32>;
@group(0) @binding(6) var<storage, read> scale: array<f32>;
@group(0) @binding(7) var<uniform> u: Params;

// @include _update

fn update(i: u32) -> f32 {
  let p = param[i];
  var g = grad[i];
  if (HAS_SCALE) {
    g = g * scale[0];
  }
  if (u.weight_decay != 0.0) {
    g = g + u.weight_decay * p;
  }
  let v = u.alpha * square_avg[i] + u.one_minus_alpha * g * g;
  square_avg[i] = v;
  var avg = v;
  if (CENTERED) {
    let a0 = grad_avg[i];
    let a = a0 + u.one_minus_alpha * (g - a0);
    grad_avg[i] = a;
    avg = v - a * a;
  }
  let d = sqrt(avg) + u.eps;
  var x: f32;
  if (MOMENTUM) {
    let b = u.momentum * momentum_buf[i] + g / d;
    momentum_buf[i] = b;
    x = p - u.lr * b;
  } else {
    x = p - u.lr * g / d;
  }
  param[i] = x;
  return x;
}
