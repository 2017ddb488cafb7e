// Fused softmax + cross-entropy backward (src/ops/loss.ts). logits: [rows, n], labels: [rows, n] probabilities
// (dense) or [rows] class indices (SPARSE), dy: [rows], dx: [rows, n] = dy[row] (softmax(x)[c] Σt - t[c]).
// One workgroup per row; the row max and sum of exp are recomputed (two tree reductions) rather than saved.
// @include _math

// Threads per row, a power of two.
override WG: u32 = 256;
// Labels are int32 class indices, one per row (t = one-hot), instead of a probability row.
override SPARSE: bool;

struct Params {
  rows: u32,
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
// Raw words: f32 probabilities (dense) or i32 class indices (SPARSE), bitcast on read.
@group(0) @binding(2) var<storage, read> ts: array<u32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

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
  var m = xs[base];
  for (var i = lid; i < p.n; i += WG) {
    m = max_nan_f32(m, xs[base + i]);
  }
  m = reduce_wg(lid, m, true);
  var s = 0.0;
  for (var i = lid; i < p.n; i += WG) {
    s += exp(xs[base + i] - m);
  }
  s = reduce_wg(lid, s, false);
  // Σt scales the softmax term: the loss is −Σ t log softmax(x) and dense labels need not sum to 1.
  var sum_t = 1.0;
  if (!SPARSE) {
    var acc = 0.0;
    for (var i = lid; i < p.n; i += WG) {
      acc += bitcast<f32>(ts[base + i]);
    }
    sum_t = reduce_wg(lid, acc, false);
  }
  var l = -1;
  var bad = false;
  if (SPARSE) {
    l = bitcast<i32>(ts[row]);
    // NOTE: a sparse label outside [0, n) gives a NaN row, as the forward gives a NaN loss.
    bad = l < 0 || u32(l) >= p.n;
  }
  let g = dy[row];
  for (var i = lid; i < p.n; i += WG) {
    var t: f32;
    if (SPARSE) {
      t = select(0.0, 1.0, i32(i) == l);
    } else {
      t = bitcast<f32>(ts[base + i]);
    }
    dx[base + i] = select(g * (exp(xs[base + i] - m) / s * sum_t - t), nonfinite_f32(0x400000u), bad);
  }
}
