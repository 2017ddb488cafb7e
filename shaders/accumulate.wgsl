// acc[i] += x[i] in place: a captured step's running sums of its loss and metrics, read back every few steps.
override WG: u32 = 64;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> acc: array<f32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// A flat grid, folded into 2D past 65,535 workgroups (grid1d).
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n) {
    acc[i] += xs[i];
  }
}
