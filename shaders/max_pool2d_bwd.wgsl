// Max pooling backward as a gather (src/ops/pool.ts). dy [N,P,Q,C], argmax [N,P,Q,C] (h·W + w) -> dx [N,H,W,C].
// One thread per input element: it visits the windows that contain it in row-major (p, q) order and adds dy where
// the window's argmax points at it. No atomics, and the order of the sum is fixed.

override WG: u32 = 256;

struct Params {
  total: u32, // N·H·W·C
  h: u32,
  w: u32,
  c: u32,
  p: u32,
  q: u32,
  kh: u32,
  kw: u32,
  sh: u32,
  sw: u32,
  pt: u32,
  pl: u32,
}

@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> argmax: array<i32>;
@group(0) @binding(3) var<uniform> prm: Params;

// Windows along one axis that contain padded coordinate a (= input index + leading padding): [lo, hi).
fn windows(a: u32, k: u32, s: u32, count: u32) -> vec2u {
  let lo = select(0u, (a - k + s) / s, a >= k); // first start with start + k > a
  let hi = min(a / s + 1u, count); // one past the last start <= a
  return vec2u(lo, hi);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= prm.total) {
    return;
  }
  let c = i % prm.c;
  let ww = (i / prm.c) % prm.w;
  let hh = (i / (prm.c * prm.w)) % prm.h;
  let n = i / (prm.c * prm.w * prm.h);
  let me = i32(hh * prm.w + ww);
  let pr = windows(hh + prm.pt, prm.kh, prm.sh, prm.p);
  let qr = windows(ww + prm.pl, prm.kw, prm.sw, prm.q);
  var g = 0.0;
  for (var p = pr.x; p < pr.y; p++) {
    for (var q = qr.x; q < qr.y; q++) {
      let o = ((n * prm.p + p) * prm.q + q) * prm.c + c;
      if (argmax[o] == me) {
        g += dy[o];
      }
    }
  }
  dx[i] = g;
}
