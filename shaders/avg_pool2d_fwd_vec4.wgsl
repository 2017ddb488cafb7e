// Average pooling forward for C % 4 == 0 (src/ops/pool.ts): avg_pool2d_fwd with each thread summing a quad of
// channels as vec4 loads and stores, on a rows × Q·C/4 grid. x [N,H,W,C] -> y [N,P,Q,C]; the same row-major sum
// per lane, so the results equal avg_pool2d_fwd's.
// @include _pool

override WX: u32 = 64;
override WY: u32 = 1;

@group(0) @binding(0) var<storage, read_write> y: array<vec4f>;
@group(0) @binding(1) var<storage, read> xs: array<vec4f>;
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
  let win = clip_window(prm, r - n * prm.p, q);
  var s = vec4f(0.0);
  for (var hh = win.x; hh < win.y; hh++) {
    for (var ww = win.z; ww < win.w; ww++) {
      s += xs[((n * prm.h + hh) * prm.w + ww) * prm.c + c];
    }
  }
  y[r * prm.q * prm.c + x] = s / pool_count(prm, win);
}
