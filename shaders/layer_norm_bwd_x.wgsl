// Layer norm backward for x (src/ops/norm.ts). dy, x, dx: [rows, n], gamma: [n], stats: [rows, 2] (mean, rstd from
// the forward). With x̂ = (x − mean)·rstd and g = dy·γ: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)); the two means are
// one reduction over the row's Y threads (rowTile in src/ops/reduce.ts; rows fold into a 2-D grid as the forward).
// @include _math
// @include _rows

struct Params {
  rows: u32,
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(X * Y)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let ty = lid % Y;
  let row = (wid.x + wid.y * nwg.x) * X + lid / Y;
  // A thread past the last row still takes part in the barrier, with no elements.
  let n = select(0u, p.n, row < p.rows);
  let base = row * p.n;
  var mean = 0.0;
  var rstd = 0.0;
  if (n > 0u) {
    mean = stats[2u * row];
    rstd = stats[2u * row + 1u];
  }
  // acc = (Σ g, Σ g·x̂)
  var acc = vec2f(0.0);
  for (var i = ty; i < n; i += Y) {
    let g = dy[base + i] * gamma[i];
    acc += vec2f(g, g * (xs[base + i] - mean) * rstd);
  }
  acc = row_sum(lid, ty, vec4f(acc, 0.0, 0.0)).xy / f32(p.n);
  for (var i = ty; i < n; i += Y) {
    let g = dy[base + i] * gamma[i];
    dx[base + i] = rstd * (g - acc.x - (xs[base + i] - mean) * rstd * acc.y);
  }
}
