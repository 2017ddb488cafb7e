// What the fused attention kernels share (src/ops/attention.ts): the uniforms, the tile shape and the causal rule.
// A workgroup is WG threads over a tile of BR rows (queries in attention_fwd and attention_bwd_q, keys in
// attention_bwd_kv): every loop over the tile's rows and over a head dim is the same for all threads, so those
// operands are broadcast reads (one address per workgroup), and each thread owns one column: a key (or query) of
// the score tile, or a column of a head dim. Per-thread rows live in arrays of R_MAX, head-dim rows in D_MAX.
// @include _math

struct Params {
  bh: u32,     // B·H
  tq: u32,
  tk: u32,
  scale: f32,
  causal: u32,
  tiles: u32,  // row tiles per (batch, head): the grid is tiles·bh workgroups, folded into 2-D past the limit
}

// Threads, and the width of a score tile (a multiple of 32 >= both head dims: every head-dim column has a thread).
override WG: u32 = 64u;
// Rows per tile (<= R_MAX; the op picks it to fit workgroup memory).
override BR: u32 = 32u;
// Head dims of q and k (DK) and of v (DV), <= D_MAX.
override DK: u32 = 64u;
override DV: u32 = 64u;
// Register arrays are sized by consts (WGSL): rows of a tile, and a head-dim row or a tile's width.
const R_MAX: u32 = 32u;
const D_MAX: u32 = 128u;

const NEG_BIG: f32 = -3.0e38;

// NOTE: bottom-right causal alignment: query i sees keys j <= i + tk − tq (written so that nothing goes negative).
fn visible(i: u32, j: u32) -> bool {
  return i < p.tq && j < p.tk && (p.causal == 0u || j + p.tq <= i + p.tk);
}
