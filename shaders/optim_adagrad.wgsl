// Fused Adagrad step in place (torch.optim.Adagrad, src/optim/adagrad.ts). param, state_sum s: [n] flat; grad: [n];
// scale: [1], the clip factor (the grad itself, unread, when HAS_SCALE is off);
// flag: [1] int32, lowered to u.seq where a new parameter value is NaN or ±Inf (CHECK; a placeholder otherwise).
//   g = grad·scale + λ·p;  s = s + g²;  p = p − clr·g / (√s + eps),  clr = lr / (1 + (t − 1)·lr_decay) (host-side)

override WG: u32 = 256;
override HAS_SCALE: bool = false;

struct Params {
  n: u32,
  seq: i32,
  clr: f32,
  weight_decay: f32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read_write> state_sum: array<f32>;
@group(0) @binding(2) var<storage, read_write> flag: array<atomic<i32>>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read> scale: array<f32>;
@group(0) @binding(5) var<uniform> u: Params;

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
  let s = state_sum[i] + g * g;
  state_sum[i] = s;
  let x = p - u.clr * g / (sqrt(s) + u.eps);
  param[i] = x;
  return x;
}
