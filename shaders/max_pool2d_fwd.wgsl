// Max pooling forward (src/ops/pool.ts). x [N,H,W,C] -> y [N,P,Q,C] and argmax [N,P,Q,C] (i32: h·W + w of the
// winning element within its image). One thread per output, channels fastest (neighbouring threads read
// neighbouring channels); the window is clipped to the input, so padded positions are never candidates.
// @include _math

override WG: u32 = 256;

struct Params {
  total: u32, // N·P·Q·C
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

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read_write> argmax: array<i32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<uniform> prm: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= prm.total) {
    return;
  }
  let c = i % prm.c;
  let q = (i / prm.c) % prm.q;
  let p = (i / (prm.c * prm.q)) % prm.p;
  let n = i / (prm.c * prm.q * prm.p);
  let hs = i32(p * prm.sh) - i32(prm.pt);
  let ws = i32(q * prm.sw) - i32(prm.pl);
  let h0 = u32(max(hs, 0));
  let h1 = u32(min(hs + i32(prm.kh), i32(prm.h)));
  let w0 = u32(max(ws, 0));
  let w1 = u32(min(ws + i32(prm.kw), i32(prm.w)));
  // Every window holds a real element (the host checks padding < pool size), so best_at is always set.
  var best = 0.0;
  var best_at = -1;
  for (var hh = h0; hh < h1; hh++) {
    for (var ww = w0; ww < w1; ww++) {
      let v = xs[((n * prm.h + hh) * prm.w + ww) * prm.c + c];
      // NOTE: only a strictly greater value replaces (first maximum in row-major order wins); NaN beats any
      // number and, once taken, is kept (the first NaN wins). NaN is tested by its bits, never by comparison.
      if (best_at < 0 || (!is_nan_f32(best) && (v > best || is_nan_f32(v)))) {
        best = v;
        best_at = i32(hh * prm.w + ww);
      }
    }
  }
  y[i] = best;
  argmax[i] = best_at;
}
