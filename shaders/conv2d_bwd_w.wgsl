// conv2d filter gradient as an implicit GEMM with a split reduction, NHWC:
//   dw [R,S,C,K] = Σ_{n,p,q} x [n, p·sh − pad_top + r·dh, q·sw − pad_left + s·dw, c] · dy [N,P,Q,K]
// GEMM rows = R·S·C taps, cols = K, reduction = N·P·Q output pixels (long). Workgroup z sums the pixels
// [z·span, (z+1)·span) and writes its partial [R·S·C, K] to part[z]; conv2d_bwd_w_reduce adds them up.
// Tiles and 8x8 per-thread blocks as matmul.wgsl.
// @include _conv_tiles

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

// Row gm, tap (r, s, c): (r·dh − pad_top, s·dw − pad_left, c).
fn row_coords(gm: u32) -> vec4i {
  let rsc = unravel3(gm, p.S, p.C);
  return vec4i(rsc.x * p.dil_h - p.pad_top, rsc.y * p.dil_w - p.pad_left, rsc.z, 0);
}

// Reduction index gk, output pixel (n, p, q): (p·sh, q·sw, n·H).
fn tap_coords(gk: u32) -> vec4i {
  let npq = unravel3(gk, p.P, p.Q);
  return vec4i(npq.y * p.stride_h, npq.z * p.stride_w, npq.x * i32(p.H), 0);
}

@compute @workgroup_size(TILE_N / TN, TILE_M / TM)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let threads = (TILE_N / TN) * (TILE_M / TM);
  let row0 = wid.y * TILE_M;
  let col0 = wid.x * TILE_N;
  let k_begin = wid.z * p.span;
  let k_end = min(k_begin + p.span, p.NPQ);
  let H = i32(p.H);
  let W = i32(p.W);

  fill_rows(row0, p.M, li, threads);
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
      let t = tap(slot, k);
      let h = t.x + r.x;
      let wc = t.y + r.y;
      var v = 0.0;
      if (in_image(h, wc, H, W)) {
        v = xs[x_offset(t.z, h, wc, r.z)];
      }
      store_a(m, k, v);
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
      store_b(k, n, v);
    }
    workgroupBarrier();
    multiply_tiles(&acc, lid);
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
