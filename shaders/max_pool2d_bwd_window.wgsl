// Max pooling backward where windows do not overlap (pool <= stride on both axes, as Keras's default pool) and C
// is a multiple of 4 (src/ops/pool.ts). dy [N,P,Q,C], argmax [N,P,Q,C] (h·W + w) -> dx [N,H,W,C], as vec4s.
// The rows of dx are cut into P bands, band p running from window p's first row (0 for p = 0) to window p + 1's
// first row (H for the last), and the columns likewise into Q bands. Band (p, q) holds all of window (p, q) that
// lies inside the image and nothing of any other window, and the bands tile dx. So one thread per (n, p, q,
// channel quad) writes its whole band: dy where argmax points, 0 elsewhere (also where no window reaches: the
// last row of H = 27 under pool 2, the gaps between windows of pool 2 stride 3), and each dx element is written once.
// @include _pool

override WX: u32 = 64;
override WY: u32 = 1;

@group(0) @binding(0) var<storage, read_write> dx: array<vec4f>;
@group(0) @binding(1) var<storage, read> dy: array<vec4f>;
@group(0) @binding(2) var<storage, read> argmax: array<vec4i>;
@group(0) @binding(3) var<uniform> prm: Params;

@compute @workgroup_size(WX, WY)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let x = gid.x; // q·C/4 + quad
  let r = gid.y + gid.z * nwg.y * WY; // n·P + p
  if (x >= prm.q * prm.c || r >= prm.rows) {
    return;
  }
  let i = r * prm.q * prm.c + x;
  let q = x / prm.c;
  let c = x - q * prm.c;
  let n = r / prm.p;
  let p = r - n * prm.p;
  let g = dy[i];
  let a = argmax[i];
  let hb = band(p, prm.p, prm.sh, prm.pt, prm.h);
  let wb = band(q, prm.q, prm.sw, prm.pl, prm.w);
  for (var hh = hb.x; hh < hb.y; hh++) {
    let row = (n * prm.h + hh) * prm.w;
    for (var ww = wb.x; ww < wb.y; ww++) {
      dx[(row + ww) * prm.c + c] = select(vec4f(0.0), g, a == vec4i(i32(hh * prm.w + ww)));
    }
  }
}
