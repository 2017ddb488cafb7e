// Layer norm forward over the last axis (src/ops/norm.ts). x, y: [rows, n], gamma, beta: [n], stats: [rows, 2]
// (mean, 1/sqrt(var + eps)) for the backward. A workgroup is X rows by Y threads per row (rowTile in
// src/ops/reduce.ts; rows past the per-dimension limit fold into a 2-D grid). The mean, then Σ (x − mean)², are
// reductions over the row's Y threads: two passes over the row, no cancellation of E[x²] − mean².
// @include _math
// @include _rows

struct Params {
  rows: u32,
  n: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(X * Y)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let ty = lid % Y;
  let row = (wid.x + wid.y * nwg.x) * X + lid / Y;
  // A thread past the last row still takes part in the barriers, with no elements.
  let n = select(0u, p.n, row < p.rows);
  let base = row * p.n;
  // Sums are taken about the row's first element k: x − k is exact for data near k, so a large mean (x ≈ 100 ± 1)
  // costs no precision in x − mean, which is formed as (x − k) − (mean − k).
  var k = 0.0;
  if (n > 0u) {
    k = xs[base];
  }
  var s = 0.0;
  for (var i = ty; i < n; i += Y) {
    s += xs[base + i] - k;
  }
  let mk = row_sum(lid, ty, vec4f(s, 0.0, 0.0, 0.0)).x / f32(p.n);
  // The first row_sum's last reads (its row's 8 partials, by every thread) must finish before the second writes.
  workgroupBarrier();
  var v = 0.0;
  for (var i = ty; i < n; i += Y) {
    let d = (xs[base + i] - k) - mk;
    v += d * d;
  }
  let rstd = inverseSqrt(row_sum(lid, ty, vec4f(v, 0.0, 0.0, 0.0)).x / f32(p.n) + p.eps);
  if (n == 0u) {
    return;
  }
  for (var i = ty; i < n; i += Y) {
    y[base + i] = ((xs[base + i] - k) - mk) * rstd * gamma[i] + beta[i];
  }
  if (ty == 0u) {
    stats[2u * row] = k + mk;
    stats[2u * row + 1u] = rstd;
  }
}
