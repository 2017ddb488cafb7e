// conv2d filter gradient for few input channels (C <= 4, K % 4 == 0; src/ops/conv.ts picks it), NHWC, split over the
// output pixels as conv2d_bwd_w: thread (tap t = (r, s, c), vec4 kv of output channels) of split z sums
//   part[z, t, kv] = Σ_{pixels (n,p,q) of [z·span, (z+1)·span)} x[n, p·sh − pad_top + r·dh, q·sw − pad_left + s·dw, c]
//                    · dy[n, p, q, kv]
// in pixel order; conv2d_bwd_w_reduce adds the splits in order. No tile staging: with R·S·C = 9 GEMM rows (the seed
// CNN's first layer) conv2d_bwd_w's 8x8-per-thread tiles were mostly padding and took lavapipe ~0.6 s to compile.

override WG: u32 = 64;

struct Params {
  n_out: u32, // R·S·C · K/4 threads per split
  KV: u32,    // K / 4
  NPQ: u32,
  span: u32,  // pixels per split
  H: u32,
  W: u32,
  C: u32,
  S: u32,
  P: u32,
  Q: u32,
  stride_h: i32,
  stride_w: i32,
  dil_h: i32,
  dil_w: i32,
  pad_top: i32,
  pad_left: i32,
}

@group(0) @binding(0) var<storage, read_write> part: array<vec4f>; // [splits, R·S·C, K/4] (dw itself when one split)
@group(0) @binding(1) var<storage, read> xs: array<f32>;           // [N,H,W,C]
@group(0) @binding(2) var<storage, read> dy: array<vec4f>;         // [N·P·Q, K/4]
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let o = gid.x;
  if (o >= p.n_out) {
    return;
  }
  let t = o / p.KV;
  let kv = o - t * p.KV;
  let rs = t / p.C;
  let c = t - rs * p.C;
  let r = rs / p.S;
  let s = rs - r * p.S;
  // The tap's offset from a pixel's receptive-field corner.
  let dh = i32(r) * p.dil_h - p.pad_top;
  let dw = i32(s) * p.dil_w - p.pad_left;
  let begin = gid.z * p.span;
  let end = min(begin + p.span, p.NPQ);
  // The first pixel as (n, op, oq), then stepped: no divisions in the loop (a CPU divides lane by lane).
  let pq_size = p.P * p.Q;
  var n = begin / pq_size;
  let rest = begin - n * pq_size;
  var op = rest / p.Q;
  var oq = rest - op * p.Q;
  var acc = vec4f(0.0);
  for (var g = begin; g < end; g++) {
    let h = i32(op) * p.stride_h + dh;
    let w = i32(oq) * p.stride_w + dw;
    if (h >= 0 && h < i32(p.H) && w >= 0 && w < i32(p.W)) {
      acc = fma(vec4f(xs[((n * p.H + u32(h)) * p.W + u32(w)) * p.C + c]), dy[g * p.KV + kv], acc);
    }
    oq++;
    if (oq == p.Q) {
      oq = 0u;
      op++;
      if (op == p.P) {
        op = 0u;
        n++;
      }
    }
  }
  part[gid.z * p.n_out + o] = acc;
}
