// Embedding lookup backward w.r.t. the table (src/ops/gather.ts): indices [N] (int32), dy [N, D], dtable [V, D]
// with dtable[v, d] = Σ dy[n, d] over the n with idx[n] == v, summed in index order.
// One thread per dtable element scans all N indices: no atomics, so the sum and its rounding are the same on every
// run (bitwise-reproducible training). An index outside [0, V) matches no row and is dropped.
// NOTE: O(N·V·D) work in all; fine at embedding sizes of char-level models, a sort/segment pass would cut it to
// O(N·D + sort).

override WG: u32 = 64;

struct Params {
  total: u32, // V * D
  d: u32,
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> dtable: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.total) {
    return;
  }
  let row = i32(i / p.d);
  let col = i % p.d;
  var acc = 0.0;
  for (var n = 0u; n < p.n; n++) {
    if (idx[n] == row) {
      acc += dy[n * p.d + col];
    }
  }
  dtable[i] = acc;
}
