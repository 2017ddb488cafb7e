// Layer norm backward for γ and β (src/ops/norm.ts). dy, x: [rows, n], stats: [rows, 2] (mean, rstd from the
// forward), out: [2, n] = (dγ = Σ_rows dy·x̂, dβ = Σ_rows dy). A workgroup is X columns by Y threads per column
// (lid = tx·Y + ty, as _rows expects); thread ty sums rows ty, ty + Y, ... in order, then the Y partials fold in
// _rows' fixed tree: no atomics, the same sums in the same order at every run.
// @include _math
// @include _rows

struct Params {
  rows: u32,
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(X * Y)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let ty = lid % Y;
  let col = (wid.x + wid.y * nwg.x) * X + lid / Y;
  // A thread past the last column still takes part in the barriers, with no rows.
  let rows = select(0u, p.rows, col < p.n);
  var acc = vec2f(0.0);
  for (var r = ty; r < rows; r += Y) {
    let g = dy[r * p.n + col];
    acc += vec2f(g * (xs[r * p.n + col] - stats[2u * r]) * stats[2u * r + 1u], g);
  }
  acc = row_sum(lid, ty, vec4f(acc, 0.0, 0.0)).xy;
  if (ty == 0u && col < p.n) {
    out[col] = acc.x;
    out[p.n + col] = acc.y;
  }
}
