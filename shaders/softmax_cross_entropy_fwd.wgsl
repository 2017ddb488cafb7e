// Fused softmax + cross-entropy forward (src/ops/loss.ts). logits: [rows, n], labels: [rows, n] probabilities
// (dense) or [rows] class indices (SPARSE), loss: [rows]. A workgroup is X rows by Y threads per row (rowTile in
// src/ops/reduce.ts; rows past the per-dimension limit fold into a 2-D grid); the row max and the sums are
// reductions over the row's Y threads, so nothing overflows.
// @include _math

// Rows per workgroup and threads per row, powers of two.
override X: u32 = 1;
override Y: u32 = 256;
// Labels are int32 class indices, one per row, instead of a probability row.
override SPARSE: bool;

struct Params {
  rows: u32,
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> loss: array<f32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
// Raw words: f32 probabilities (dense) or i32 class indices (SPARSE), bitcast on read.
@group(0) @binding(2) var<storage, read> ts: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

// One array per reduction: the sums' writes cannot race the max's last reads, so neither needs a trailing barrier.
var<workgroup> red_max: array<f32, X * Y>;
var<workgroup> red_sum: array<vec4f, X * Y>;

// v folded over the Y threads of row tx (lid = tx * Y + ty), max (NaN-propagating) or componentwise sum; all Y
// threads get it. A tree halves the partials down to 8, then every thread folds those 8 itself (one barrier for
// Y <= 8, none for 1).
fn row_max(lid: u32, ty: u32, v: f32) -> f32 {
  if (Y == 1u) {
    return v;
  }
  red_max[lid] = v;
  for (var s = Y / 2u; s >= 8u; s /= 2u) {
    workgroupBarrier();
    if (ty < s) {
      red_max[lid] = max_nan_f32(red_max[lid], red_max[lid + s]);
    }
  }
  workgroupBarrier();
  let b = lid - ty;
  var r = red_max[b];
  for (var k = 1u; k < min(Y, 8u); k++) {
    r = max_nan_f32(r, red_max[b + k]);
  }
  return r;
}

fn row_sum(lid: u32, ty: u32, v: vec4f) -> vec4f {
  if (Y == 1u) {
    return v;
  }
  red_sum[lid] = v;
  for (var s = Y / 2u; s >= 8u; s /= 2u) {
    workgroupBarrier();
    if (ty < s) {
      red_sum[lid] += red_sum[lid + s];
    }
  }
  workgroupBarrier();
  let b = lid - ty;
  var r = red_sum[b];
  for (var k = 1u; k < min(Y, 8u); k++) {
    r += red_sum[b + k];
  }
  return r;
}

@compute @workgroup_size(X * Y)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let ty = lid % Y;
  let row = (wid.x + wid.y * nwg.x) * X + lid / Y;
  // A thread past the last row still takes part in the barriers, with no elements.
  let n = select(0u, p.n, row < p.rows);
  let base = row * p.n;
  // Every thread starts from its row's element 0 (n >= 1), so threads with no elements leave the max unchanged.
  var m = 0.0;
  if (n > 0u) {
    m = xs[base];
  }
  for (var i = ty; i < n; i += Y) {
    m = max_nan_f32(m, xs[base + i]);
  }
  m = row_max(lid, ty, m);
  // acc = (Σ exp(x − m), Σ t (x − m), Σ t); the last two only for dense labels.
  var acc = vec4f(0.0);
  for (var i = ty; i < n; i += Y) {
    let x = xs[base + i];
    acc.x += exp(x - m);
    if (!SPARSE) {
      let t = bitcast<f32>(ts[base + i]);
      acc.y += t * (x - m);
      acc.z += t;
    }
  }
  acc = row_sum(lid, ty, acc);
  if (ty != 0u || n == 0u) {
    return;
  }
  // loss = −Σ t log softmax(x) = Σ t (log s − (x − m)) = log(s) Σt − Σ t (x − m): a one-hot label at the max
  // costs log(s) exactly rather than the difference of two numbers of the logits' size.
  if (SPARSE) {
    let l = bitcast<i32>(ts[row]);
    // NOTE: a label outside [0, n) gives NaN for its row.
    if (l < 0 || u32(l) >= p.n) {
      loss[row] = nonfinite_f32(0x400000u);
    } else {
      loss[row] = log(acc.x) - (xs[base + u32(l)] - m);
    }
  } else {
    loss[row] = log(acc.x) * acc.z - acc.y;
  }
}
