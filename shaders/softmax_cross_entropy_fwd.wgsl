// Fused softmax + cross-entropy forward (src/ops/loss.ts). logits: [rows, n], labels: [rows, n] probabilities
// (dense) or [rows] class indices (SPARSE), loss: [rows]. A workgroup is X rows by Y threads per row (rowTile in
// src/ops/reduce.ts; rows past the per-dimension limit fold into a 2-D grid); the row max and the sums are
// reductions over the row's Y threads, so nothing overflows.
// @include _math
// @include _rows

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
