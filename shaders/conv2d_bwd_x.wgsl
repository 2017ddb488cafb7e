// conv2d input gradient as an implicit GEMM, NHWC: dx [N,H,W,C] = Σ_{r,s,k} dy [N,P,Q,K] · w [R,S,C,K] over the taps
// whose output pixel p = (h + pad_top − r·dh) / sh is whole and in [0, P) (likewise q); other taps are zeros.
// GEMM rows = N·H·W input pixels, cols = C, reduction = R·S·K. A is gathered from dy, B[(r,s,k), c] = w[r,s,c,k].
// Tiles and 8x8 per-thread blocks as matmul.wgsl.
// @include _tile_mma

override TILE_M: u32 = 64;
override TILE_N: u32 = 64;
override TILE_K: u32 = 16;
// The strides are overrides so that the divisibility test and the division per gathered element are by constants.
override STRIDE_H: u32 = 1;
override STRIDE_W: u32 = 1;

const PAD: u32 = 1u;
// Pushes an output coordinate below zero whatever it is added to (rows past N·H·W) or subtracted from
// (reduction indices past R·S·K), so those elements load as zeros with no separate test.
const OUT: i32 = -0x20000000;

struct Params {
  M: u32, // N·H·W
  C: u32,
  RSK: u32,
  K: u32,
  H: u32,
  W: u32,
  P: u32,
  Q: u32,
  S: u32,
  dil_h: i32,
  dil_w: i32,
  pad_top: i32,
  pad_left: i32,
}

@group(0) @binding(0) var<storage, read_write> dx: array<f32>; // [N·H·W, C]
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // [N,P,Q,K]
@group(0) @binding(2) var<storage, read> ws: array<f32>;        // [R,S,C,K]
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> a_tile: array<vec4f, TILE_K * (TILE_M / 4 + PAD)>;
var<workgroup> b_tile: array<vec4f, TILE_K * (TILE_N / 4 + PAD)>;
// Per tile row m, input pixel (n, h, w): (n·P, h + pad_top, w + pad_left).
var<workgroup> rows: array<vec3i, TILE_M>;
// Per reduction index (r, s, k) of a k-slice: (r·dh, s·dw, k, offset of w[r,s,0,k]); two slots, as conv2d_fwd.wgsl.
var<workgroup> taps: array<vec4i, 2 * TILE_K>;

fn fill_taps(slot: u32, k0: u32, li: u32, threads: u32) {
  for (var k = li; k < TILE_K; k += threads) {
    let gk = k0 + k;
    var t = vec4i(-OUT, -OUT, 0, 0);
    if (gk < p.RSK) {
      let rs = gk / p.K;
      let kk = gk % p.K;
      t = vec4i(i32(rs / p.S) * p.dil_h, i32(rs % p.S) * p.dil_w, i32(kk), i32(rs * p.C * p.K + kk));
    }
    taps[slot * TILE_K + k] = t;
  }
}

@compute @workgroup_size(TILE_N / TN, TILE_M / TM)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let threads = (TILE_N / TN) * (TILE_M / TM);
  let a_row = TILE_M / 4 + PAD;
  let b_row = TILE_N / 4 + PAD;
  let row0 = (wid.y + wid.z * nwg.y) * TILE_M;
  if (row0 >= p.M) {
    return;
  }
  let col0 = wid.x * TILE_N;

  let hw_size = p.H * p.W;
  for (var m = li; m < TILE_M; m += threads) {
    let gm = row0 + m;
    var r = vec3i(0, OUT, OUT);
    if (gm < p.M) {
      let hw = gm % hw_size;
      r = vec3i(i32((gm / hw_size) * p.P), i32(hw / p.W) + p.pad_top, i32(hw % p.W) + p.pad_left);
    }
    rows[m] = r;
  }
  fill_taps(0u, 0u, li, threads);
  workgroupBarrier();

  var acc: array<array<vec4f, TN / 4>, TM>;
  var slot = 0u;
  for (var k0 = 0u; k0 < p.RSK; k0 += TILE_K) {
    fill_taps(slot ^ 1u, k0 + TILE_K, li, threads);
    // A: consecutive threads take consecutive taps, i.e. consecutive channels k of one dy pixel.
    for (var i = li; i < TILE_M * TILE_K; i += threads) {
      let m = i / TILE_K;
      let k = i % TILE_K;
      let r = rows[m];
      let t = taps[slot * TILE_K + k];
      let ph = r.y - t.x; // p·sh when this tap of pixel h saw output row p
      let pw = r.z - t.y;
      var v = 0.0;
      if (ph >= 0 && pw >= 0) {
        let oh = u32(ph) / STRIDE_H;
        let ow = u32(pw) / STRIDE_W;
        if (oh * STRIDE_H == u32(ph) && ow * STRIDE_W == u32(pw) && oh < p.P && ow < p.Q) {
          v = dy[((u32(r.x) + oh) * p.Q + ow) * p.K + u32(t.z)];
        }
      }
      a_tile[k * a_row + m / 4][m % 4] = v;
    }
    // B: consecutive threads take consecutive taps too, i.e. consecutive k of w[r,s,c,:].
    for (var i = li; i < TILE_K * TILE_N; i += threads) {
      let n = i / TILE_K;
      let k = i % TILE_K;
      let gn = col0 + n;
      var v = 0.0;
      if (k0 + k < p.RSK && gn < p.C) {
        v = ws[u32(taps[slot * TILE_K + k].w) + gn * p.K];
      }
      b_tile[k * b_row + n / 4][n % 4] = v;
    }
    workgroupBarrier();
    multiply_slice(&acc, TILE_K, 0u, a_row, 0u, b_row, lid);
    workgroupBarrier();
    slot ^= 1u;
  }

  for (var i = 0u; i < TM; i++) {
    let row = acc_row(row0, i, lid);
    for (var j = 0u; j < TN; j++) {
      let col = col0 + (lid.x + (j / 4) * (TILE_N / TN)) * 4 + j % 4;
      if (row < p.M && col < p.C) {
        dx[row * p.C + col] = acc[i][j / 4][j % 4];
      }
    }
  }
}
