// Max pooling forward, any channel count (src/ops/pool.ts). x [N,H,W,C] -> y [N,P,Q,C] and argmax [N,P,Q,C] (i32:
// h·W + w of the winning element within its image). One thread per output on a rows × Q·C grid, channels fastest
// (neighbouring threads read neighbouring channels); the window is clipped to the input, so padded positions are
// never candidates. max_pool2d_fwd_vec4 is the same for C % 4 == 0.
// @include _pool
// @include _math

override WX: u32 = 64;
override WY: u32 = 1;

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read_write> argmax: array<i32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<uniform> prm: Params;

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
  // Every window holds a real element (the host checks padding < pool size), so best_at is always set.
  var best = 0.0;
  var best_at = -1;
  for (var hh = win.x; hh < win.y; hh++) {
    for (var ww = win.z; ww < win.w; ww++) {
      let v = xs[((n * prm.h + hh) * prm.w + ww) * prm.c + c];
      // NOTE: only a strictly greater value replaces (first maximum in row-major order wins); NaN beats any
      // number and, once taken, is kept (the first NaN wins). NaN is tested by its bits, never by comparison.
      if (best_at < 0 || (!is_nan_f32(best) && (v > best || is_nan_f32(v)))) {
        best = v;
        best_at = i32(hh * prm.w + ww);
      }
    }
  }
  let i = r * prm.q * prm.c + x;
  y[i] = best;
  argmax[i] = best_at;
}
