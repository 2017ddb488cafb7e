// What the implicit-GEMM conv kernels (conv2d_fwd, conv2d_bwd_x, conv2d_bwd_w) share to load their workgroup tiles.
// A GEMM row and a reduction index each stand for a few image coordinates, found by integer divisions (slow on CPU
// implementations such as lavapipe), so each kernel decomposes them once per tile row and once per k-slice into the
// tables `rows` and `taps`, and gathering an element is then additions and a bounds test. Included textually: it calls
// the including kernel's row_coords(gm) and tap_coords(gk) -> vec4i and reads its `p` (p.W, p.C).
// Table entries: a row's and a tap's .x and .y add up to an image coordinate (row, column); .z and .w are the
// kernel's, .w left at 0 and unread where three components suffice (gathers read only the components they use).
// @include _tile_mma

// NOTE: 8 on every adapter: 16 on a CPU one, as matmul's (ops/matmul.ts), left the seed CNN's step even on lavapipe.
const TN: u32 = 8u;

override TILE_M: u32 = 64;
override TILE_N: u32 = 64;
override TILE_K: u32 = 16;

// One vec4 of padding per k-row of a tile, against bank conflicts (as matmul.wgsl).
const PAD: u32 = 1u;
// An entry for rows past the GEMM's and reduction indices past the slice's end: added to any row or tap, its .x and
// .y land far below zero, so the element loads as a zero with no separate test.
const OUT: i32 = -0x20000000;
const OUTSIDE = vec4i(OUT, OUT, 0, 0);

// Tiles stored k-major as vec4s, as _tile_mma reads them: a_tile[k][m / 4] holds rows m..m+3 (b_tile[k][n / 4]
// columns n..n+3) of the slice's k-th reduction index.
var<workgroup> a_tile: array<vec4f, TILE_K * (TILE_M / 4 + PAD)>;
var<workgroup> b_tile: array<vec4f, TILE_K * (TILE_N / 4 + PAD)>;
// Per tile row m: row_coords(row0 + m).
var<workgroup> rows: array<vec4i, TILE_M>;
// Per reduction index k of a k-slice: tap_coords(k0 + k). Two slots: the next slice's is filled while the current
// one is read, so the decomposition costs no extra barrier and is done once per slice.
var<workgroup> taps: array<vec4i, 2 * TILE_K>;

// Index i of an array [_, mid, inner] as its coordinates (i / (mid·inner), i / inner % mid, i % inner), with two
// divisions.
fn unravel3(i: u32, mid: u32, inner: u32) -> vec3i {
  let j = i / inner;
  let outer = j / mid;
  return vec3i(vec3u(outer, j - outer * mid, i - j * inner));
}

// Fills rows for the tile from GEMM row row0 (OUTSIDE from row m_size on).
fn fill_rows(row0: u32, m_size: u32, li: u32, threads: u32) {
  for (var m = li; m < TILE_M; m += threads) {
    let gm = row0 + m;
    var r = OUTSIDE;
    if (gm < m_size) {
      r = row_coords(gm);
    }
    rows[m] = r;
  }
}

// Fills slot `slot` of taps for the k-slice from reduction index k0 (OUTSIDE from k_end on).
fn fill_taps(slot: u32, k0: u32, k_end: u32, li: u32, threads: u32) {
  for (var k = li; k < TILE_K; k += threads) {
    let gk = k0 + k;
    var t = OUTSIDE;
    if (gk < k_end) {
      t = tap_coords(gk);
    }
    taps[slot * TILE_K + k] = t;
  }
}

// Entry k of slot `slot` of taps.
fn tap(slot: u32, k: u32) -> vec4i {
  return taps[slot * TILE_K + k];
}

// Whether image coordinate (h, w) lies inside the H x W image rather than in its padding.
fn in_image(h: i32, w: i32, H: i32, W: i32) -> bool {
  return h >= 0 && h < H && w >= 0 && w < W;
}

// The offset in x [N,H,W,C] of (n, h, w, c), inside the image, from n·H.
fn x_offset(n_h: i32, h: i32, w: i32, c: i32) -> u32 {
  return (u32(n_h + h) * p.W + u32(w)) * p.C + u32(c);
}

// A[m, k] and B[k, n] of the k-slice.
fn store_a(m: u32, k: u32, v: f32) {
  a_tile[k * (TILE_M / 4 + PAD) + m / 4][m % 4] = v;
}

fn store_b(k: u32, n: u32, v: f32) {
  b_tile[k * (TILE_N / 4 + PAD) + n / 4][n % 4] = v;
}

// acc += the k-slice in the tiles.
fn multiply_tiles(acc: ptr<function, array<array<vec4f, TN / 4>, TM>>, lid: vec3u) {
  multiply_slice(acc, TILE_K, 0u, TILE_M / 4 + PAD, 0u, TILE_N / 4 + PAD, lid);
}
