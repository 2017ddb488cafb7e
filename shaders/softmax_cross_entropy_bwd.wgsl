// Fused softmax + cross-entropy backward (src/ops/loss.ts). logits: [rows, n], labels: [rows, n] probabilities
// (dense) or [rows] class indices (SPARSE), dy: [rows], dx: [rows, n] = dy[row] (softmax(x)[c] Σt - t[c]).
// A workgroup is X rows by Y threads per row (rowTile in src/ops/reduce.ts); the row max, the sum of exp and Σt
// are recomputed (reductions over the row's Y threads) rather than saved.
// @include _math
// @include _rows

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

@compute @workgroup_size(X * Y)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let ty = lid % Y;
  let row = (wid.x + wid.y * nwg.x) * X + lid / Y;
  // A thread past the last row still takes part in the barriers, with no elements.
  let n = select(0u, p.n, row < p.rows);
  let base = row * p.n;
  var m = 0.0;
  if (n > 0u) {
    m = xs[base];
  }
  for (var i = ty; i < n; i += Y) {
    m = max_nan_f32(m, xs[base + i]);
  }
  m = row_max(lid, ty, m);
  // acc = (Σ exp(x − m), Σt). Σt scales the softmax term: the loss is −Σ t log softmax(x) and dense labels need
  // not sum to 1.
  var acc = vec2f(0.0, 1.0);
  if (!SPARSE) {
    acc.y = 0.0;
  }
  for (var i = ty; i < n; i += Y) {
    acc.x += exp(xs[base + i] - m);
    if (!SPARSE) {
      acc.y += bitcast<f32>(ts[base + i]);
    }
  }
  if (SPARSE) {
    acc.x = row_sum(lid, ty, vec4f(acc, 0.0, 0.0)).x;
  } else {
    acc = row_sum(lid, ty, vec4f(acc, 0.0, 0.0)).xy;
  }
  if (n == 0u) {
    return;
  }
  var l = -1;
  var bad = false;
  if (SPARSE) {
    l = bitcast<i32>(ts[row]);
    // NOTE: a sparse label outside [0, n) gives a NaN row, as the forward gives a NaN loss.
    bad = l < 0 || u32(l) >= n;
  }
  let g = dy[row];
  let scale = acc.y / acc.x;
  for (var i = ty; i < n; i += Y) {
    var t: f32;
    if (SPARSE) {
      t = select(0.0, 1.0, i32(i) == l);
    } else {
      t = bitcast<f32>(ts[base + i]);
    }
    dx[base + i] = select(g * (exp(xs[base + i] - m) * scale - t), nonfinite_f32(0x400000u), bad);
  }
}
