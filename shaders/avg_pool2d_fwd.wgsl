// Average pooling forward, any channel count (src/ops/pool.ts). x [N,H,W,C] -> y [N,P,Q,C]: the sum over the
// window's real elements (padding adds 0) divided by their count, or by kh·kw when include_pad. One thread per
// output on a rows × Q·C grid, channels fastest. avg_pool2d_fwd_vec4 is the same for C % 4 == 0.
// @include _pool

override WX: u32 = 64;
override WY: u32 = 1;

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<uniform> prm: Params;

@compute @workgroup_size(WX, WY)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let x = gid.x; // q·C + c
  let r = gid.y + gid.z * nwg.y * WY; // n·P + p
  if (x >= prm.q * prm.c || r >= prm.rows) {
    return;
  }
  let q = x / prm.c;
  let c = x - q * prm.c;
  let n = r / prm.p;
  let win = clip_window(prm, r - n * prm.p, q);
  var s = 0.0;
  for (var hh = win.x; hh < win.y; hh++) {
    for (var ww = win.z; ww < win.w; ww++) {
      s += xs[((n * prm.h + hh) * prm.w + ww) * prm.c + c];
    }
  }
  y[r * prm.q * prm.c + x] = s / pool_count(prm, win);
}
