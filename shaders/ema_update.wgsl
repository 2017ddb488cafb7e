// Exponential moving average in place: avg[i] = m · avg[i] + (1 − m) · x[i] (batch norm's running statistics).
override WG: u32 = 64;

struct Params {
  n: u32,
  momentum: f32,
  // 1 − m, computed in float64 on the host (1 − f32(m) in float32 loses digits when m is near 1)
  one_minus_momentum: f32,
}

@group(0) @binding(0) var<storage, read_write> avg: array<f32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// A flat grid, folded into 2D past 65,535 workgroups (grid1d).
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n) {
    avg[i] = p.momentum * avg[i] + p.one_minus_momentum * xs[i];
  }
}
