// Row reductions shared by the softmax and softmax-cross-entropy kernels. A workgroup is X rows by Y threads per row
// (rowTile in src/ops/reduce.ts; lid = tx * Y + ty); v is folded over the Y threads of its row, max (NaN-propagating)
// or componentwise sum (up to four sums at once), and all Y threads get the result. A tree halves the partials down
// to 8, then every thread folds those 8 itself (one barrier for Y <= 8, none for 1). Needs _math.

// Rows per workgroup and threads per row, powers of two.
override X: u32 = 1;
override Y: u32 = 256;

// One array per reduction: the sum's writes cannot race the max's last reads, so neither needs a trailing barrier.
var<workgroup> red_max: array<f32, X * Y>;
var<workgroup> red_sum: array<vec4f, X * Y>;

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
