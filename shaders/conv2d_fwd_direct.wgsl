// conv2d forward for few input channels (C <= 4; src/ops/conv.ts picks it), NHWC: one thread per output pixel
// (n, p, q) and block of KB output channels computes y[n,p,q,k] = act(Σ_{r,s} Σ_c x[n,h,w,c] · w[r,s,c,k] + bias[k])
// over the taps inside x, in a fixed order: r, then s, then c. K is read as V: vec4f where K % 4 == 0 (KV = K / 4),
// else f32. With a reduction of R·S·C = 9 the GEMM's tile staging costs more than its arithmetic; here there is none.
// @include _math

override WG: u32 = 64;
// The number of input channels C, 1..4: the channel loop unrolls.
override CH: u32 = 1;
// V accumulators per thread (a const, not an override: it sizes a function-scope array).
const KB: u32 = /*@KB*/u;
override HAS_BIAS: bool = false;

alias V = /*@V*/;

struct Params {
  threads: u32, // N·P·Q · groups
  groups: u32,  // ceil(KV / KB): blocks of output channels per pixel
  H: u32,
  W: u32,
  P: u32,
  Q: u32,
  R: u32,
  S: u32,
  KV: u32, // K, or K / 4 as vec4s
  alpha: f32,
  sh: i32,
  sw: i32,
  dil_h: i32,
  dil_w: i32,
  pad_top: i32,
  pad_left: i32,
}

@group(0) @binding(0) var<storage, read_write> y: array<V>; // [N,P,Q,K]
@group(0) @binding(1) var<storage, read> xs: array<f32>;    // [N,H,W,C]
@group(0) @binding(2) var<storage, read> ws: array<V>;      // [R,S,C,K]
@group(0) @binding(3) var<storage, read> bias: array<V>;    // [K]; a placeholder when !HAS_BIAS
@group(0) @binding(4) var<uniform> p: Params;

fn act(x: f32) -> f32 {
  return /*@ACT*/;
}

// act on every lane of a V.
fn act_v(a: V) -> V {
  return /*@ACT_V*/;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.threads) {
    return;
  }
  let pix = i / p.groups;
  let k0 = (i - pix * p.groups) * KB;
  let pq_size = p.P * p.Q;
  let n = pix / pq_size;
  let pq = pix - n * pq_size;
  let op = pq / p.Q;
  let oq = pq - op * p.Q;
  let h0 = i32(op) * p.sh - p.pad_top; // this pixel's receptive field's corner
  let w0 = i32(oq) * p.sw - p.pad_left;

  var acc: array<V, KB>;
  for (var r = 0u; r < p.R; r++) {
    let h = h0 + i32(r) * p.dil_h;
    if (h < 0 || u32(h) >= p.H) {
      continue;
    }
    for (var s = 0u; s < p.S; s++) {
      let w = w0 + i32(s) * p.dil_w;
      if (w < 0 || u32(w) >= p.W) {
        continue;
      }
      let xo = ((n * p.H + u32(h)) * p.W + u32(w)) * CH;
      let wo = (r * p.S + s) * CH * p.KV + k0; // w[r,s,0,k0]
      for (var c = 0u; c < CH; c++) {
        let xv = V(xs[xo + c]);
        // NOTE: the bound test stays even where KB divides KV: dropping it (with KB a divisor) made C = 3 and
        // C = 8 slower on lavapipe (KB = 8: 33 -> 38 ms, 27 -> 64 ms), presumably LLVM unrolling into register spills.
        for (var j = 0u; j < KB; j++) {
          if (k0 + j < p.KV) {
            acc[j] = fma(xv, ws[wo + c * p.KV + j], acc[j]);
          }
        }
      }
    }
  }
  // The GEMM's epilogue: act(sum + bias).
  for (var j = 0u; j < KB; j++) {
    let k = k0 + j;
    if (k < p.KV) {
      var v = acc[j];
      if (HAS_BIAS) {
        v += bias[k];
      }
      y[pix * p.KV + k] = act_v(v);
    }
  }
}
