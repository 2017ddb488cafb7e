// Elementwise y = f(x), f spliced in from the op table (src/ops/unary.ts). x, y: [n], flat.
// Each thread writes 4 consecutive elements (as binary_fwd.wgsl): fewer threads cost less where threads are lanes of
// a CPU's vector unit (lavapipe).
// @include _math

override WG: u32 = 256;

struct Params {
  n: u32,
  alpha: f32,
}

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn f(x: f32) -> f32 {
  return /*@EXPR*/;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i0 = (gid.x + gid.y * nwg.x * WG) * 4u;
  // One loop, not a full block of 4 then a tail: f inlined once, not five times (less compilation on lavapipe).
  for (var i = i0; i < min(i0 + 4u, p.n); i++) {
    y[i] = f(xs[i]);
  }
}
