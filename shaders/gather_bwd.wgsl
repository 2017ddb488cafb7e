// Embedding lookup backward w.r.t. the table (src/ops/gather.ts): indices [N] (int32), dy [N, D], dtable [V, D]
// with dtable[v, d] = Σ dy[n, d] over the n with idx[n] == v, summed in index order.
// One workgroup per table row v, its threads over the row's columns: each scans all N indices and adds the dy rows
// that name v. No atomics, so the sum and its rounding are the same on every run (bitwise-reproducible training).
// The index test is the same for the whole workgroup (uniform), so a row skips every position that is not its own:
// O(V·N) index reads in all plus O(N·D) adds, not the O(V·N·D) of a thread per table element. An index outside
// [0, V) matches no row and is dropped.

override WG: u32 = 64;
// Columns per thread per pass over the indices: a row of D columns takes ceil(D / (WG·CPT)) passes.
const CPT: u32 = 4u;

struct Params {
  rows: u32, // V
  d: u32,
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> dtable: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) {
    return;
  }
  for (var d0 = 0u; d0 < p.d; d0 += WG * CPT) {
    // NOTE: zeroed by hand: a declaration in a loop is not re-zeroed each iteration on every driver (lavapipe).
    var acc: array<f32, CPT>;
    for (var c = 0u; c < CPT; c++) {
      acc[c] = 0.0;
    }
    for (var n = 0u; n < p.n; n++) {
      if (idx[n] == i32(row)) {
        for (var c = 0u; c < CPT; c++) {
          let col = d0 + li + c * WG;
          if (col < p.d) {
            acc[c] += dy[n * p.d + col];
          }
        }
      }
    }
    for (var c = 0u; c < CPT; c++) {
      let col = d0 + li + c * WG;
      if (col < p.d) {
        dtable[row * p.d + col] = acc[c];
      }
    }
  }
}
