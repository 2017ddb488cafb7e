// Second pass of conv2d_bwd_w: dw [n] = Σ_z part [z, n], the splits' partial sums added in split order by one
// thread per element, so the result is the same on every run (no float atomics).

override WG: u32 = 256;

struct Params {
  n: u32, // R·S·C·K
  splits: u32,
}

@group(0) @binding(0) var<storage, read_write> dw: array<f32>; // [R·S·C·K]
@group(0) @binding(1) var<storage, read> part: array<f32>;     // [splits, R·S·C·K]
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) {
    return;
  }
  var s = 0.0;
  for (var z = 0u; z < p.splits; z++) {
    s += part[z * p.n + i];
  }
  dw[i] = s;
}
