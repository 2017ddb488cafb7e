// conv2d forward as an implicit GEMM, NHWC: y [N,P,Q,K] = act(x [N,H,W,C] ⊛ w [R,S,C,K] + bias [K]).
// GEMM rows = N·P·Q output pixels, cols = K, reduction = R·S·C taps. The A tile is gathered straight from x (zeros
// in the padding; no im2col buffer), B is w viewed as [R·S·C, K]. Tiles and 8x8 per-thread blocks as matmul.wgsl.
// @include _math
// @include _conv_tiles

override HAS_BIAS: bool = false;

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

fn act(x: f32) -> f32 {
  return /*@ACT*/;
}

// Row gm, output pixel (n, p, q): (p·sh − pad_top, q·sw − pad_left, n·H), its receptive field's corner in x.
fn row_coords(gm: u32) -> vec4i {
  let npq = unravel3(gm, p.P, p.Q);
  return vec4i(npq.y * p.stride_h - p.pad_top, npq.z * p.stride_w - p.pad_left, npq.x * i32(p.H), 0);
}

// Reduction index gk, tap (r, s, c): (r·dh, s·dw, c), its offset from the corner and channel.
fn tap_coords(gk: u32) -> vec4i {
  let rsc = unravel3(gk, p.S, p.C);
  return vec4i(rsc.x * p.dil_h, rsc.y * p.dil_w, rsc.z, 0);
}

@compute @workgroup_size(TILE_N / TN, TILE_M / TM)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let threads = (TILE_N / TN) * (TILE_M / TM);
  let row0 = (wid.y + wid.z * nwg.y) * TILE_M; // row tiles past the per-dimension limit continue in z
  if (row0 >= p.M) {
    return;
  }
  let col0 = wid.x * TILE_N;
  let H = i32(p.H);
  let W = i32(p.W);

  fill_rows(row0, p.M, li, threads);
  fill_taps(0u, 0u, p.RSC, li, threads);
  workgroupBarrier();

  // acc[i][j / 4][j % 4] = y[row(i), col(j)], rows and columns interleaved across threads as in matmul.wgsl.
  var acc: array<array<vec4f, TN / 4>, TM>;
  var slot = 0u;
  for (var k0 = 0u; k0 < p.RSC; k0 += TILE_K) {
    fill_taps(slot ^ 1u, k0 + TILE_K, p.RSC, li, threads);
    // A: consecutive threads take consecutive taps, i.e. consecutive channels of one pixel in memory.
    for (var i = li; i < TILE_M * TILE_K; i += threads) {
      let m = i / TILE_K;
      let k = i % TILE_K;
      let r = rows[m];
      let t = tap(slot, k);
      let h = r.x + t.x;
      let wc = r.y + t.y;
      var v = 0.0;
      if (in_image(h, wc, H, W)) {
        v = xs[x_offset(r.z, h, wc, t.z)];
      }
      store_a(m, k, v);
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
      store_b(k, n, v);
    }
    workgroupBarrier();
    multiply_tiles(&acc, lid);
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
