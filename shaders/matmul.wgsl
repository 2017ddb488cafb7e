// Batched matmul with a fused epilogue: y = act(a @ b + bias), one batch entry per workgroup z.
// Tiled and register-blocked: each workgroup computes a TILE_M x TILE_N block of y from TILE_K-deep slices of a and b
// staged through workgroup memory; each thread keeps a TM x TN (8x8) block of y in registers.
// @include _matmul

override TILE_M: u32 = 64;
override TILE_N: u32 = 64;
override TILE_K: u32 = 16;
override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;

@group(0) @binding(0) var<storage, read_write> y: array<f32>; // [batch, M, N]
@group(0) @binding(1) var<storage, read> a: array<f32>;       // [.., M, K], or [.., K, M] when TRANS_A
@group(0) @binding(2) var<storage, read> b: array<f32>;       // [.., K, N], or [.., N, K] when TRANS_B
@group(0) @binding(3) var<storage, read> bias: array<f32>;    // [N]; a 1-word placeholder when !HAS_BIAS
@group(0) @binding(4) var<uniform> p: Params;

// Tiles stored k-major as vec4s: a_tile[k][m / 4] holds rows m..m+3 (b_tile[k][n / 4] columns n..n+3).
// Each k-row is padded by one vec4: the non-transposed a (and transposed b) loads write along k, and without
// the pad those writes would all land in one memory bank.
const PAD: u32 = 1u;
var<workgroup> a_tile: array<vec4f, TILE_K * (TILE_M / 4 + PAD)>;
var<workgroup> b_tile: array<vec4f, TILE_K * (TILE_N / 4 + PAD)>;

@compute @workgroup_size(TILE_N / TN, TILE_M / TM)
fn main(@builtin(workgroup_id) local_wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let wid = local_wid + p.base.xyz;
  let M = p.M;
  let N = p.N;
  let K = p.K;
  let threads = (TILE_N / TN) * (TILE_M / TM);
  let a_row = TILE_M / 4 + PAD; // vec4s per k-row of a_tile
  let b_row = TILE_N / 4 + PAD;

  let off = batch_offsets(wid.z);
  let a_off = off.x;
  let b_off = off.y;
  let row0 = wid.y * TILE_M;
  let col0 = wid.x * TILE_N;

  var acc: array<array<vec4f, TN / 4>, TM>;
  for (var k0 = 0u; k0 < K; k0 += TILE_K) {
    // Stage a[row0.., k0..] and b[k0.., col0..]; consecutive threads read consecutive addresses in memory.
    // Out-of-range elements are zeros, so the partial last tiles in M, N and K need no special case below.
    for (var i = li; i < TILE_M * TILE_K; i += threads) {
      var m: u32;
      var k: u32;
      if (TRANS_A) {
        k = i / TILE_M;
        m = i % TILE_M;
      } else {
        m = i / TILE_K;
        k = i % TILE_K;
      }
      let gm = row0 + m;
      let gk = k0 + k;
      var v = 0.0;
      if (gm < M && gk < K) {
        v = a[a_off + select(gm * K + gk, gk * M + gm, TRANS_A)];
      }
      a_tile[k * a_row + m / 4][m % 4] = v;
    }
    for (var i = li; i < TILE_K * TILE_N; i += threads) {
      var n: u32;
      var k: u32;
      if (TRANS_B) {
        n = i / TILE_K;
        k = i % TILE_K;
      } else {
        k = i / TILE_N;
        n = i % TILE_N;
      }
      let gn = col0 + n;
      let gk = k0 + k;
      var v = 0.0;
      if (gn < N && gk < K) {
        v = b[b_off + select(gk * N + gn, gn * K + gk, TRANS_B)];
      }
      b_tile[k * b_row + n / 4][n % 4] = v;
    }
    workgroupBarrier();
    multiply_slice(&acc, TILE_K, 0u, a_row, 0u, b_row, lid);
    workgroupBarrier();
  }

  let y_off = wid.z * M * N;
  for (var i = 0u; i < TM; i++) {
    let row = acc_row(row0, i, lid);
    for (var j = 0u; j < TN; j++) {
      let col = col0 + (lid.x + (j / 4) * (TILE_N / TN)) * 4 + j % 4;
      if (row < M && col < N) {
        var v = acc[i][j / 4][j % 4];
        if (HAS_BIAS) {
          v += bias[col];
        }
        y[y_off + row * N + col] = act(v);
      }
    }
  }
}
