// Max pooling forward for C % 4 == 0 (src/ops/pool.ts): max_pool2d_fwd with each thread taking a quad of
// channels as vec4 loads and stores. x [N,H,W,C] -> y [N,P,Q,C], argmax [N,P,Q,C] (i32: h·W + w), on a rows ×
// Q·C/4 grid. The same rule per lane: first maximum in row-major order, padding never a candidate, first NaN wins.
// @include _pool

override WX: u32 = 64;
override WY: u32 = 1;

@group(0) @binding(0) var<storage, read_write> y: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> argmax: array<vec4i>;
@group(0) @binding(2) var<storage, read> xs: array<vec4f>;
@group(0) @binding(3) var<uniform> prm: Params;

fn is_nan4(v: vec4f) -> vec4<bool> {
  return (bitcast<vec4u>(v) & vec4u(0x7fffffffu)) > vec4u(0x7f800000u);
}

@compute @workgroup_size(WX, WY)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let x = gid.x; // q·C/4 + quad
  let r = gid.y + gid.z * nwg.y * WY; // n·P + p
  if (x >= prm.q * prm.c || r >= prm.rows) {
    return;
  }
  let q = x / prm.c;
  let c = x - q * prm.c;
  let n = r / prm.p;
  let win = clip_window(prm, r - n * prm.p, q);
  // The window's first element starts every lane (the host checks each window holds one), the rest compete.
  var best = xs[((n * prm.h + win.x) * prm.w + win.z) * prm.c + c];
  var best_at = vec4i(i32(win.x * prm.w + win.z));
  for (var hh = win.x; hh < win.y; hh++) {
    for (var ww = win.z; ww < win.w; ww++) {
      let v = xs[((n * prm.h + hh) * prm.w + ww) * prm.c + c];
      // NOTE: as max_pool2d_fwd: strictly greater replaces, NaN beats any number and the first NaN stays (the
      // first element competing with itself never replaces itself: v > v is false, and a NaN best is kept).
      let take = !is_nan4(best) & ((v > best) | is_nan4(v));
      best = select(best, v, take);
      best_at = select(best_at, vec4i(i32(hh * prm.w + ww)), take);
    }
  }
  let i = r * prm.q * prm.c + x;
  y[i] = best;
  argmax[i] = best_at;
}
