// Elementwise dx = g(s, dy) for a unary op, g spliced in from the op table (src/ops/unary.ts), where s is the
// forward's saved input x or output y. s, dy, dx: [n], flat. Each thread writes 4 consecutive elements.
// @include _math

override WG: u32 = 256;

struct Params {
  n: u32,
  alpha: f32,
}

@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> ss: array<f32>;
@group(0) @binding(2) var<storage, read> dys: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn g(s: f32, dy: f32) -> f32 {
  return /*@EXPR*/;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i0 = (gid.x + gid.y * nwg.x * WG) * 4u;
  // One loop, not a full block of 4 then a tail: g inlined once, not five times (less compilation on lavapipe).
  for (var i = i0; i < min(i0 + 4u, p.n); i++) {
    dx[i] = g(ss[i], dys[i]);
  }
}
