// Max pooling backward as a gather, for any windows (src/ops/pool.ts): the overlapping ones (pool > stride), and
// any channel count. dy [N,P,Q,C], argmax [N,P,Q,C] (h·W + w) -> dx [N,H,W,C]. One thread per input pixel and
// quad of channels: it visits the windows that contain the pixel in row-major (p, q) order and adds dy where the
// window's argmax points at it. No atomics, and the order of each sum is fixed.
// The grid is rows × quads (y: the N·H image rows, x: a row's W·ceil(C/4) quads) so that a thread splits its
// index with two divisions; integer division is slow on CPU implementations (lavapipe). The quads sit in vec4
// registers but are read and written as scalars, since C need not be a multiple of 4. On lavapipe this is 3.8x
// faster than one thread per element splitting its index four ways (ResNet stem [2,112,112,64] pool 3 s2: 11 vs 42 ms).
// @include _pool

override WX: u32 = 64;
override WY: u32 = 1;

@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> argmax: array<i32>;
@group(0) @binding(3) var<uniform> prm: Params;

@compute @workgroup_size(WX, WY)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let quads = (prm.c + 3u) / 4u;
  let x = gid.x; // ww·quads + quad
  let r = gid.y + gid.z * nwg.y * WY; // n·H + hh
  if (x >= prm.w * quads || r >= prm.rows) {
    return;
  }
  let ww = x / quads;
  let c = (x - ww * quads) * 4u;
  let n = r / prm.h;
  let hh = r - n * prm.h;
  let me = vec4i(i32(hh * prm.w + ww));
  let pr = windows_at(hh + prm.pt, prm.kh, prm.sh, prm.p);
  let qr = windows_at(ww + prm.pl, prm.kw, prm.sw, prm.q);
  var g = vec4f(0.0);
  for (var p = pr.x; p < pr.y; p++) {
    for (var q = qr.x; q < qr.y; q++) {
      // NOTE: past the last channel these read the next pixel's channels (or, at the very end, whatever WGSL's
      // bounds rule returns: an in-buffer value or 0); those lanes are never written.
      let o = ((n * prm.p + p) * prm.q + q) * prm.c + c;
      let a = vec4i(argmax[o], argmax[o + 1u], argmax[o + 2u], argmax[o + 3u]);
      let d = vec4f(dy[o], dy[o + 1u], dy[o + 2u], dy[o + 3u]);
      g += select(vec4f(0.0), d, a == me);
    }
  }
  let o = (r * prm.w + ww) * prm.c + c;
  dx[o] = g.x;
  if (c + 1u < prm.c) {
    dx[o + 1u] = g.y;
  }
  if (c + 2u < prm.c) {
    dx[o + 2u] = g.z;
  }
  if (c + 3u < prm.c) {
    dx[o + 3u] = g.w;
  }
}
