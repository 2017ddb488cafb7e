// Softmax or log-softmax over the last axis (src/ops/softmax.ts). x, y: [rows, n]. One workgroup per row (rows past
// the per-dimension limit fold into a 2-D grid); the row max and the sum of exp(x - max) are workgroup tree
// reductions, so y = exp(x - max) / sum, or y = x - max - log(sum), never overflows.
// @include _math

// Threads per row, a power of two.
override WG: u32 = 256;
// Write log-softmax instead of softmax.
override LOG: bool;

struct Params {
  rows: u32,
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> red: array<f32, WG>;

// Each thread's v folded over the workgroup (max, NaN-propagating, or sum); every thread gets the result.
fn reduce_wg(lid: u32, v: f32, take_max: bool) -> f32 {
  red[lid] = v;
  for (var s = WG / 2u; s > 0u; s /= 2u) {
    workgroupBarrier();
    if (lid < s) {
      if (take_max) {
        red[lid] = max_nan_f32(red[lid], red[lid + s]);
      } else {
        red[lid] += red[lid + s];
      }
    }
  }
  workgroupBarrier();
  let r = red[0];
  // Everyone has read red[0] before the next reduction overwrites it.
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  // Uniform across the workgroup: a whole group leaves, or none of it.
  if (row >= p.rows) {
    return;
  }
  let base = row * p.n;
  // Every thread starts from element 0 (n >= 1 here), so threads with no elements leave the max unchanged.
  var m = xs[base];
  for (var i = lid; i < p.n; i += WG) {
    m = max_nan_f32(m, xs[base + i]);
  }
  m = reduce_wg(lid, m, true);
  // NOTE: a row that is all -Inf gives -Inf - -Inf = NaN everywhere, as PyTorch; a NaN anywhere makes the row NaN.
  var s = 0.0;
  for (var i = lid; i < p.n; i += WG) {
    s += exp(xs[base + i] - m);
  }
  s = reduce_wg(lid, s, false);
  for (var i = lid; i < p.n; i += WG) {
    let d = xs[base + i] - m;
    y[base + i] = select(exp(d) / s, d - log(s), LOG);
  }
}
