// Embedding lookup (src/ops/gather.ts): table [V, D], indices [N] (int32), y [N, D] with y[n, d] = table[idx[n], d].
// One thread per output element (grid1d: past the per-dimension limit the grid folds into 2-D). An index outside
// [0, V) reads nothing and writes a NaN row (the GPU cannot throw; the CPU reference raises an ArgumentError).
// @include _math

override WG: u32 = 64;

struct Params {
  total: u32, // N * D
  d: u32,
  v: u32,
}

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.total) {
    return;
  }
  let row = idx[i / p.d];
  if (row < 0 || u32(row) >= p.v) {
    y[i] = nonfinite_f32(0x400000u);
    return;
  }
  y[i] = table[u32(row) * p.d + i % p.d];
}
