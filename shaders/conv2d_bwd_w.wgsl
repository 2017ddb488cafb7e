// conv2d filter gradient as an implicit GEMM with a split reduction, NHWC:
//   dw [R,S,C,K] = Σ_{n,p,q} x [n, p·sh − pad_top + r·dh, q·sw − pad_left + s·dw, c] · dy [N,P,Q,K]
// GEMM rows = R·S·C taps, cols = K, reduction = N·P·Q output pixels (long). Workgroup z sums the pixels
// [z·span, (z+1)·span) and writes its partial [R·S·C, K] to part[z]; conv2d_bwd_w_reduce adds them up.
// Tiles and 8x8 per-thread blocks as matmul.wgsl.
// @include _tile_mma

override TILE_M: u32 = 64;
override TILE_N: u32 = 64;
override TILE_K: u32 = 16;

const PAD: u32 = 1u;
// An input coordinate offset that lands outside x whatever is added to it: marks rows past R·S·C and pixels
// past the span, so their elements load as zeros with no separate test.
const OUT: i32 = -0x20000000;

struct Params {
  M: u32, // R·S·C
  K: u32,
  NPQ: u32,
  span: u32, // pixels per split, a multiple of TILE_K
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

@group(0) @binding(0) var<storage, read_write> part: array<f32>; // [splits, R·S·C, K] (dw itself when one split)
@group(0) @binding(1) var<storage, read> xs: array<f32>;         // [N,H,W,C]
@group(0) @binding(2) var<storage, read> dy: array<f32>;         // [N·P·Q, K]
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> a_tile: array<vec4f, TILE_K * (TILE_M / 4 + PAD)>;
var<workgroup> b_tile: array<vec4f, TILE_K * (TILE_N / 4 + PAD)>;
// Per tile row m, tap (r, s, c): (c, r·dh − pad_top, s·dw − pad_left).
var<workgroup> rows: array<vec3i, TILE_M>;
// Per reduction index, output pixel (n, p, q) of a k-slice: (n·H, p·sh, q·sw); two slots, as conv2d_fwd.wgsl.
var<workgroup> taps: array<vec3i, 2 * TILE_K>;

fn fill_taps(slot: u32, k0: u32, k_end: u32, li: u32, threads: u32) {
  let pq_size = p.P * p.Q;
  for (var k = li; k < TILE_K; k += threads) {
    let gk = k0 + k;
    var t = vec3i(0, OUT, OUT);
    if (gk < k_end) {
      let pq = gk % pq_size;
      t = vec3i(i32((gk / pq_size) * p.H), i32(pq / p.Q) * p.stride_h, i32(pq % p.Q) * p.stride_w);
    }
    taps[slot * TILE_K + k] = t;
  }
}

@compute @workgroup_size(TILE_N / TN, TILE_M / TM)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let threads = (TILE_N / TN) * (TILE_M / TM);
  let a_row = TILE_M / 4 + PAD;
  let b_row = TILE_N / 4 + PAD;
  let row0 = wid.y * TILE_M;
  let col0 = wid.x * TILE_N;
  let k_begin = wid.z * p.span;
  let k_end = min(k_begin + p.span, p.NPQ);
  let H = i32(p.H);
  let W = i32(p.W);

  let sc_size = p.S * p.C;
  for (var m = li; m < TILE_M; m += threads) {
    let gm = row0 + m;
    var r = vec3i(0, OUT, OUT);
    if (gm < p.M) {
      let sc = gm % sc_size;
      r = vec3i(i32(sc % p.C), i32(gm / sc_size) * p.dil_h - p.pad_top, i32(sc / p.C) * p.dil_w - p.pad_left);
    }
    rows[m] = r;
  }
  fill_taps(0u, k_begin, k_end, li, threads);
  workgroupBarrier();

  var acc: array<array<vec4f, TN / 4>, TM>;
  var slot = 0u;
  for (var k0 = k_begin; k0 < k_end; k0 += TILE_K) {
    fill_taps(slot ^ 1u, k0 + TILE_K, k_end, li, threads);
    // A (x, transposed): consecutive threads take consecutive rows, i.e. consecutive channels of one pixel.
    for (var i = li; i < TILE_K * TILE_M; i += threads) {
      let k = i / TILE_M;
      let m = i % TILE_M;
      let r = rows[m];
      let t = taps[slot * TILE_K + k];
      let h = t.y + r.y;
      let wc = t.z + r.z;
      var v = 0.0;
      if (h >= 0 && h < H && wc >= 0 && wc < W) {
        v = xs[(u32(t.x + h) * p.W + u32(wc)) * p.C + u32(r.x)];
      }
      a_tile[k * a_row + m / 4][m % 4] = v;
    }
    for (var i = li; i < TILE_K * TILE_N; i += threads) {
      let k = i / TILE_N;
      let n = i % TILE_N;
      let gk = k0 + k;
      let gn = col0 + n;
      var v = 0.0;
      if (gk < k_end && gn < p.K) {
        v = dy[gk * p.K + gn];
      }
      b_tile[k * b_row + n / 4][n % 4] = v;
    }
    workgroupBarrier();
    multiply_slice(&acc, TILE_K, 0u, a_row, 0u, b_row, lid);
    workgroupBarrier();
    slot ^= 1u;
  }

  let out = wid.z * p.M * p.K;
  for (var i = 0u; i < TM; i++) {
    let row = acc_row(row0, i, lid);
    for (var j = 0u; j < TN; j++) {
      let col = col0 + (lid.x + (j / 4) * (TILE_N / TN)) * 4 + j % 4;
      if (row < p.M && col < p.K) {
        part[out + row * p.K + col] = acc[i][j / 4][j % 4];
      }
    }
  }
}
