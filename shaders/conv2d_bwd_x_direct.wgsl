// conv2d input gradient for few input channels (C <= 8; src/ops/conv.ts picks it), NHWC: one thread per input pixel
// (n, h, w) computes dx[n,h,w,0..C) = Σ_{r,s} Σ_k dy[n,p,q,k] · w[r,s,c,k] over the taps whose output pixel
// p = (h + pad_top − r·dh) / sh is whole and in [0, P) (likewise q), in a fixed order: r, then s, then k.
// K is read as V: vec4f where K % 4 == 0 (KV = K / 4; each lane sums every fourth k, the lanes added at the end), else f32.

override WG: u32 = 64;
// The number of input channels C, 1..8: the channel loops unroll.
override CH: u32 = 1;

alias V = /*@V*/;

struct Params {
  pixels: u32, // N·H·W
  H: u32,
  W: u32,
  P: u32,
  Q: u32,
  R: u32,
  S: u32,
  KV: u32, // K, or K / 4 as vec4s
  sh: i32,
  sw: i32,
  dil_h: i32,
  dil_w: i32,
  pad_top: i32,
  pad_left: i32,
}

@group(0) @binding(0) var<storage, read_write> dx: array<f32>; // [N,H,W,C]
@group(0) @binding(1) var<storage, read> dy: array<V>;          // [N,P,Q,K]
@group(0) @binding(2) var<storage, read> ws: array<V>;          // [R,S,C,K]
@group(0) @binding(3) var<uniform> p: Params;

fn total(a: V) -> f32 {
  return /*@TOTAL*/;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.pixels) {
    return;
  }
  let hw_size = p.H * p.W;
  let n = i / hw_size;
  let hw = i - n * hw_size;
  let h = hw / p.W;
  let w = hw - h * p.W;
  let ph0 = i32(h) + p.pad_top; // p·sh + r·dh for every tap r that saw this pixel
  let pw0 = i32(w) + p.pad_left;

  var acc: array<V, 8>;
  for (var r = 0u; r < p.R; r++) {
    let ph = ph0 - i32(r) * p.dil_h;
    if (ph < 0) {
      break; // and so for every later r
    }
    let oh = ph / p.sh;
    if (oh * p.sh != ph || u32(oh) >= p.P) {
      continue;
    }
    for (var s = 0u; s < p.S; s++) {
      let pw = pw0 - i32(s) * p.dil_w;
      if (pw < 0) {
        break;
      }
      let ow = pw / p.sw;
      if (ow * p.sw != pw || u32(ow) >= p.Q) {
        continue;
      }
      let dyo = ((n * p.P + u32(oh)) * p.Q + u32(ow)) * p.KV;
      let wo = (r * p.S + s) * CH * p.KV; // w[r,s,0,0]
      for (var k = 0u; k < p.KV; k++) {
        let d = dy[dyo + k];
        for (var c = 0u; c < CH; c++) {
          acc[c] = fma(d, ws[wo + c * p.KV + k], acc[c]);
        }
      }
    }
  }
  for (var c = 0u; c < CH; c++) {
    dx[i * CH + c] = total(acc[c]);
  }
}
