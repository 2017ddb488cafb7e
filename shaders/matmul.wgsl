// Batched matmul with a fused epilogue: y = act(a @ b + bias), one batch entry per workgroup z.
// Tiled and register-blocked: each workgroup computes a TILE_M x TILE_N block of y from TILE_K-deep slices of a and b
// staged through workgroup memory; each thread keeps a TM x TN block of y in registers (8x8; 8x16 on a CPU adapter).
// @include _matmul

override TILE_M: u32 = 64;
override TILE_N: u32 = 64;
override TILE_K: u32 = 16;

@group(0) @binding(0) var<storage, read_write> y: array<f32>; // [batch, M, N]
@group(0) @binding(1) var<storage, read> a: array<f32>;       // [.., M, K], or [.., K, M] when trans_a
@group(0) @binding(2) var<storage, read> b: array<f32>;       // [.., K, N], or [.., N, K] when trans_b
@group(0) @binding(3) var<storage, read> bias: array<f32>;    // [N]; a 1-word placeholder without a bias
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
  // Uniforms, not overrides: one pipeline serves a layer's forward and both its gradients. A software adapter takes
  // seconds to compile each variant (lavapipe: ~2 s of CPU); the price is a uniform branch in the tile loads.
  let trans_a = (p.base.w & 1u) != 0u;
  let trans_b = (p.base.w & 2u) != 0u;
  let has_bias = (p.base.w & 4u) != 0u;
  // relu, the hidden layers' usual activation, likewise: the host then splices no activation (ACT is x).
  let relu = (p.base.w & 8u) != 0u;
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
      if (trans_a) {
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
        v = a[a_off + select(gm * K + gk, gk * M + gm, trans_a)];
      }
      a_tile[k * a_row + m / 4][m % 4] = v;
    }
    for (var i = li; i < TILE_K * TILE_N; i += threads) {
      var n: u32;
      var k: u32;
      if (trans_b) {
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
        v = b[b_off + select(gk * N + gn, gn * K + gk, trans_b)];
      }
      b_tile[k * b_row + n / 4][n % 4] = v;
    }
    workgroupBarrier();
    multiply_slice(&acc, TILE_K, 0u, a_row, 0u, b_row, lid);
    workgroupBarrier();
  }

  // By column quad: its bias read once, not once per row (a read per element made lavapipe's compile 2x slower).
  let y_off = wid.z * M * N;
  for (var q = 0u; q < TN / 4; q++) {
    let c4 = col0 + (lid.x + q * (TILE_N / TN)) * 4;
    var bq = vec4f(0.0);
    if (has_bias) {
      for (var e = 0u; e < 4u; e++) {
        if (c4 + e < N) {
          bq[e] = bias[c4 + e];
        }
      }
    }
    for (var i = 0u; i < TM; i++) {
      let row = acc_row(row0, i, lid);
      if (row < M) {
        var v = acc[i][q] + bq;
        if (relu) {
          // NOTE: NaN passes through, as relu's row of the unary table.
          v = select(max(v, vec4f(0.0)), v, (bitcast<vec4u>(v) & vec4u(0x7fffffffu)) > vec4u(0x7f800000u));
        }
        for (var e = 0u; e < 4u; e++) {
          if (c4 + e < N) {
            y[y_off + row * N + c4 + e] = act(v[e]);
          }
        }
      }
    }
  }
}
