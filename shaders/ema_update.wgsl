// Exponential moving average in place: avg[i] = m · avg[i] + (1 − m) · x[i] (batch norm's running statistics).
override WG: u32 = 64;

struct Params {
  n: u32,
  momentum: f32,
}

@group(0) @binding(0) var<storage, read_write> avg: array<f32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x < p.n) {
    avg[gid.x] = p.momentum * avg[gid.x] + (1.0 - p.momentum) * xs[gid.x];
  }
}
