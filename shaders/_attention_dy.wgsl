// Quad e4 of row `row` of dy (the backward kernels' incoming gradient, laid out as o), zeros past the rows and DV.
fn load_dy(base: u32, row: u32, e4: u32) -> vec4f {
  var r = vec4f(0.0);
  if (row < p.tq) {
    let at = base + row * p.lo.w + e4 * 4u;
    if (e4 * 4u + 4u <= DV) {
      return vec4f(dy[at], dy[at + 1u], dy[at + 2u], dy[at + 3u]);
    }
    for (var c = 0u; e4 * 4u + c < DV; c++) {
      r[c] = dy[at + c];
    }
  }
  return r;
}
