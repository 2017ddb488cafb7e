// Average pooling backward where windows do not overlap (pool <= stride on both axes, as Keras's default pool) and
// C is a multiple of 4 (src/ops/pool.ts). dy [N,P,Q,C] -> dx [N,H,W,C], as vec4s. As in max_pool2d_bwd_window,
// the rows of dx are cut into P bands (band p from window p's first row, 0 for p = 0, to window p + 1's first row,
// H for the last) and the columns into Q bands; band (p, q) holds all of window (p, q) inside the image and nothing
// of any other window, and the bands tile dx. So one thread per (n, p, q, channel quad) writes its whole band:
// dy / count inside the window, 0 elsewhere (where no window reaches), and each dx element is written once.
// @include _pool

override WX: u32 = 64;
override WY: u32 = 1;

@group(0) @binding(0) var<storage, read_write> dx: array<vec4f>;
@group(0) @binding(1) var<storage, read> dy: array<vec4f>;
@group(0) @binding(2) var<uniform> prm: Params;

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
  let p = r - n * prm.p;
  let win = clip_window(prm, p, q);
  let g = dy[r * prm.q * prm.c + x] / pool_count(prm, win);
  let hb = band(p, prm.p, prm.sh, prm.pt, prm.h);
  let wb = band(q, prm.q, prm.sw, prm.pl, prm.w);
  for (var hh = hb.x; hh < hb.y; hh++) {
    let row = (n * prm.h + hh) * prm.w;
    let in_rows = hh >= win.x && hh < win.y;
    for (var ww = wb.x; ww < wb.y; ww++) {
      dx[(row + ww) * prm.c + c] = select(vec4f(0.0), g, in_rows && ww >= win.z && ww < win.w);
    }
  }
}
