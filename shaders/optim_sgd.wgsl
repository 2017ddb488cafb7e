// Fused SGD step in place (torch.optim.SGD, src/optim/sgd.ts). param, buf: [n] flat (buf a [1] placeholder
// without momentum); grad: [n]; scale: [1], the clip factor (the grad itself, unread, when HAS_SCALE is off);
// flag: [1] int32, lowered to u.seq where a new parameter value is NaN or ±Inf (CHECK; a placeholder otherwise).
//   g = grad·scale + λ·p;  buf = g on the parameter's first step, else μ·buf + (1 − dampening)·g;
//   p = p − lr·(nesterov ? g + μ·buf : buf)   (without momentum: p = p − lr·g)

override WG: u32 = 256;
override MOMENTUM: bool = false;
override NESTEROV: bool = false;
override HAS_SCALE: bool = false;

struct Params {
  n: u32,
  seq: i32,
  lr: f32,
  weight_decay: f32,
  momentum: f32,
  // 1 − dampening
  damp: f32,
  // 1 on the parameter's first step (the buffer starts as a copy of g), else 0
  first: u32,
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read_write> buf: array<f32>;
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
  if (MOMENTUM) {
    var b = g;
    if (u.first == 0u) {
      b = u.momentum * buf[i] + u.damp * g;
    }
    buf[i] = b;
    g = select(b, g + u.momentum * b, NESTEROV);
  }
  let x = p - u.lr * g;
  param[i] = x;
  return x;
}
