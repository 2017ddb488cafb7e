// Softmax or log-softmax over the last axis (src/ops/softmax.ts). x, y: [rows, n]. A workgroup is X rows by Y
// threads per row (rowTile in src/ops/reduce.ts; rows past the per-dimension limit fold into a 2-D grid); the row
// max and the sum of exp(x - max) are reductions over the row's Y threads, so y = exp(x - max) / sum, or
// y = x - max - log(sum), never overflows.
// @include _math
// @include _rows

// Write log-softmax instead of softmax.
override LOG: bool;

struct Params {
  rows: u32,
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

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
  // NOTE: a row that is all -Inf gives -Inf - -Inf = NaN everywhere, as PyTorch; a NaN anywhere makes the row NaN.
  var s = 0.0;
  for (var i = ty; i < n; i += Y) {
    s += exp(xs[base + i] - m);
  }
  s = row_sum(lid, ty, vec4f(s, 0.0, 0.0, 0.0)).x;
  if (LOG) {
    let ls = log(s);
    for (var i = ty; i < n; i += Y) {
      y[base + i] = xs[base + i] - m - ls;
    }
  } else {
    let inv = 1.0 / s;
    for (var i = ty; i < n; i += Y) {
      y[base + i] = exp(xs[base + i] - m) * inv;
    }
  }
}
