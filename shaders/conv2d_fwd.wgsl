// conv2d forward as an implicit GEMM, NHWC: y [N,P,Q,K] = act(x [N,H,W,C] ⊛ w [R,S,C,K] + bias [K]).
// GEMM rows = N·P·Q output pixels, cols = K, reduction = R·S·C taps. The A tile is gathered straight from x (zeros
// in the padding; no im2col buffer), B is w viewed as [R·S·C, K]. Tiles and 8x8 per-thread blocks as matmul.wgsl.
// @include _math
// @include _tile_mma

override TILE_M: u32 = 64;
override TILE_N: u32 = 64;
override TILE_K: u32 = 16;
override HAS_BIAS: bool = false;

// One vec4 of padding per k-row of a tile, against bank conflicts (as matmul.wgsl).
const PAD: u32 = 1u;
// An input coordinate offset that lands outside x whatever is added to it: marks rows past N·P·Q and reduction
// indices past R·S·C, so their elements load as zeros with no separate test.
const OUT: i32 = -0x20000000;

struct Params {
  M: u32, // N·P·Q
  K: u32,
  RSC: u32,
  alpha: f32,
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

@group(0) @binding(0) var<storage, read_write> y: array<f32>; // [N·P·Q, K]
@group(0) @binding(1) var<storage, read> xs: array<f32>;      // [N,H,W,C]
@group(0) @binding(2) var<storage, read> ws: array<f32>;      // [R·S·C, K]
@group(0) @binding(3) var<storage, read> bias: array<f32>;    // [K]; a 1-word placeholder when !HAS_BIAS
@group(0) @binding(4) var<uniform> p: Params;

// Tiles stored k-major as vec4s: a_tile[k][m / 4] holds rows m..m+3 (b_tile[k][n / 4] columns n..n+3).
var<workgroup> a_tile: array<vec4f, TILE_K * (TILE_M / 4 + PAD)>;
var<workgroup> b_tile: array<vec4f, TILE_K * (TILE_N / 4 + PAD)>;
// Per tile row m, output pixel (n, p, q): (n·H, p·sh − pad_top, q·sw − pad_left), its receptive field's corner.
var<workgroup> rows: array<vec3i, TILE_M>;
// Per reduction index (r, s, c) of a k-slice: (r·dh, s·dw, c). Two slots: the next slice's is filled while the
// current one is read, so the decomposition (integer divisions) costs no extra barrier and is done once per slice.
var<workgroup> taps: array<vec3i, 2 * TILE_K>;

fn act(x: f32) -> f32 {
  return /*@ACT*/;
}

fn fill_taps(slot: u32, k0: u32, li: u32, threads: u32) {
  for (var k = li; k < TILE_K; k += threads) {
    let gk = k0 + k;
    var t = vec3i(OUT, OUT, 0);
    if (gk < p.RSC) {
      let rs = gk / p.C;
      t = vec3i(i32(rs / p.S) * p.dil_h, i32(rs % p.S) * p.dil_w, i32(gk % p.C));
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
  let row0 = (wid.y + wid.z * nwg.y) * TILE_M; // row tiles past the per-dimension limit continue in z
  if (row0 >= p.M) {
    return;
  }
  let col0 = wid.x * TILE_N;
  let H = i32(p.H);
  let W = i32(p.W);

  let pq_size = p.P * p.Q;
  for (var m = li; m < TILE_M; m += threads) {
    let gm = row0 + m;
    var r = vec3i(0, OUT, OUT);
    if (gm < p.M) {
      let pq = gm % pq_size;
      r = vec3i(i32((gm / pq_size) * p.H), i32(pq / p.Q) * p.stride_h - p.pad_top, i32(pq % p.Q) * p.stride_w - p.pad_left);
    }
    rows[m] = r;
  }
  fill_taps(0u, 0u, li, threads);
  workgroupBarrier();

  // acc[i][j / 4][j % 4] = y[row(i), col(j)], rows and columns interleaved across threads as in matmul.wgsl.
  var acc: array<array<vec4f, TN / 4>, TM>;
  var slot = 0u;
  for (var k0 = 0u; k0 < p.RSC; k0 += TILE_K) {
    fill_taps(slot ^ 1u, k0 + TILE_K, li, threads);
    // A: consecutive threads take consecutive taps, i.e. consecutive channels of one pixel in memory.
    for (var i = li; i < TILE_M * TILE_K; i += threads) {
      let m = i / TILE_K;
      let k = i % TILE_K;
      let r = rows[m];
      let t = taps[slot * TILE_K + k];
      let h = r.y + t.x;
      let wc = r.z + t.y;
      var v = 0.0;
      if (h >= 0 && h < H && wc >= 0 && wc < W) {
        v = xs[(u32(r.x + h) * p.W + u32(wc)) * p.C + u32(t.z)];
      }
      a_tile[k * a_row + m / 4][m % 4] = v;
    }
    for (var i = li; i < TILE_K * TILE_N; i += threads) {
      let k = i / TILE_N;
      let n = i % TILE_N;
      let gk = k0 + k;
      let gn = col0 + n;
      var v = 0.0;
      if (gk < p.RSC && gn < p.K) {
        v = ws[gk * p.K + gn];
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
      if (row < p.M && col < p.K) {
        var v = acc[i][j / 4][j % 4];
        if (HAS_BIAS) {
          v += bias[col];
        }
        y[row * p.K + col] = act(v);
      }
    }
  }
}
