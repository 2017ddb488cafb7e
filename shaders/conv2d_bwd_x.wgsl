// conv2d input gradient as an implicit GEMM, NHWC: dx [N,H,W,C] = Σ_{r,s,k} dy [N,P,Q,K] · w [R,S,C,K] over the taps
// whose output pixel p = (h + pad_top − r·dh) / sh is whole and in [0, P) (likewise q); other taps are zeros.
// GEMM rows = N·H·W input pixels, cols = C, reduction = R·S·K. A is gathered from dy, B[(r,s,k), c] = w[r,s,c,k].
// Tiles and 8x8 per-thread blocks as matmul.wgsl.
// @include _conv_tiles

// The strides are overrides so that the divisibility test and the division per gathered element are by constants.
override STRIDE_H: u32 = 1;
override STRIDE_W: u32 = 1;

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

// Row gm, input pixel (n, h, w): (h + pad_top, w + pad_left, n·P).
fn row_coords(gm: u32) -> vec4i {
  let nhw = unravel3(gm, p.H, p.W);
  return vec4i(nhw.y + p.pad_top, nhw.z + p.pad_left, nhw.x * i32(p.P), 0);
}

// Reduction index gk, tap (r, s, k): (−r·dh, −s·dw, k, offset of w[r,s,0,k]). Added to a row, .x and .y give
// (p·sh, q·sw) of the output pixel that saw this input pixel through this tap.
fn tap_coords(gk: u32) -> vec4i {
  let rsk = unravel3(gk, p.S, p.K);
  return vec4i(-rsk.x * p.dil_h, -rsk.y * p.dil_w, rsk.z, (i32(gk) - rsk.z) * i32(p.C) + rsk.z);
}

@compute @workgroup_size(TILE_N / TN, TILE_M / TM)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let threads = (TILE_N / TN) * (TILE_M / TM);
  let row0 = (wid.y + wid.z * nwg.y) * TILE_M;
  if (row0 >= p.M) {
    return;
  }
  let col0 = wid.x * TILE_N;

  fill_rows(row0, p.M, li, threads);
  fill_taps(0u, 0u, p.RSK, li, threads);
  workgroupBarrier();

  var acc: array<array<vec4f, TN / 4>, TM>;
  var slot = 0u;
  for (var k0 = 0u; k0 < p.RSK; k0 += TILE_K) {
    fill_taps(slot ^ 1u, k0 + TILE_K, p.RSK, li, threads);
    // A: consecutive threads take consecutive taps, i.e. consecutive channels k of one dy pixel.
    for (var i = li; i < TILE_M * TILE_K; i += threads) {
      let m = i / TILE_K;
      let k = i % TILE_K;
      let r = rows[m];
      let t = tap(slot, k);
      let ph = r.x + t.x; // p·sh when this tap of pixel h saw output row p
      let pw = r.y + t.y;
      var v = 0.0;
      if (ph >= 0 && pw >= 0) {
        let oh = u32(ph) / STRIDE_H;
        let ow = u32(pw) / STRIDE_W;
        if (oh * STRIDE_H == u32(ph) && ow * STRIDE_W == u32(pw) && oh < p.P && ow < p.Q) {
          v = dy[((u32(r.z) + oh) * p.Q + ow) * p.K + u32(t.z)];
        }
      }
      store_a(m, k, v);
    }
    // B: consecutive threads take consecutive taps too, i.e. consecutive k of w[r,s,c,:].
    for (var i = li; i < TILE_K * TILE_N; i += threads) {
      let n = i / TILE_K;
      let k = i % TILE_K;
      let gn = col0 + n;
      var v = 0.0;
      if (k0 + k < p.RSK && gn < p.C) {
        v = ws[u32(tap(slot, k).w) + gn * p.K];
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
      if (row < p.M && col < p.C) {
        dx[row * p.C + col] = acc[i][j / 4][j % 4];
      }
    }
  }
}
