// What the fused attention kernels share (src/ops/attention.ts): the uniforms, the tile shape, the causal rule and
// quad loads from global memory. A workgroup is TX x TY threads over a score tile of BR rows by BC columns (queries
// by keys in attention_fwd and attention_bwd_q, keys by queries in attention_bwd_kv); a thread owns rows
// ty + r·TY (r < RQ) and columns tx + c·TX (c < CK), and head-dim quads tx + d·TX, so neighbouring threads read
// neighbouring vec4s. Head-dim tiles are [rows][D4 + 1] vec4s: the pad vec4 spreads rows over memory banks.
// @include _math

// Where each tensor's rows lie (a layout l): row t of head bh = b·heads + h starts at element
// l.x + b·l.y + h·l.z + t·l.w, its head-dim elements contiguous. [B·H, T, D] tensors take heads 1, l = (0, T·D, 0, D);
// the packed projection [B, T, 3, H, D] has q, k and v at l.x = 0, H·D, 2·H·D with l = (·, T·3HD, D, 3HD), so the
// kernels read heads out of it, and write o [B, T, H·D] and dq, dk, dv into one [B, T, 3HD], with no transposes.
struct Params {
  bh: u32,     // B·H
  tq: u32,
  tk: u32,
  scale: f32,
  causal: u32,
  tiles: u32,  // row tiles per (batch, head): the grid is tiles·bh workgroups, folded into 2-D past the limit
  heads: u32,
  pad: u32,
  lq: vec4u,   // q and dq
  lk: vec4u,
  lv: vec4u,
  lo: vec4u,   // o and dy
  ls: vec4u,   // lse and delta (one element per row)
  ldk: vec4u,
  ldv: vec4u,
}

// Threads per workgroup, TX x TY: 8 x 8 on a GPU, 4 x 4 on a CPU implementation (the op picks; see its tiles).
override TX: u32 = 8u;
override TY: u32 = 8u;
// Register arrays are sized by consts: at most 8 rows and 8 columns of a score tile per thread, and 8 quads of a
// head dim (8 quads x 4 lanes x TX = 128, the largest head dim the fused kernels take, at TX = 4).
const R_MAX: u32 = 8u;
const C_MAX: u32 = 8u;
const Q_MAX: u32 = 8u;
// Rows and columns per thread (tile sizes BR = RQ·TY, BC = CK·TX; the op picks them to fit workgroup memory).
override RQ: u32 = 4u;
override CK: u32 = 4u;
// Head dims of q and k (DK) and of v (DV).
override DK: u32 = 64u;
override DV: u32 = 64u;
override BR: u32 = RQ * TY;
override BC: u32 = CK * TX;
override DK4: u32 = (DK + 3u) / 4u;
override DV4: u32 = (DV + 3u) / 4u;
override KROW: u32 = DK4 + 1u;
override VROW: u32 = DV4 + 1u;
// Head-dim quads per thread.
override QK: u32 = (DK4 + TX - 1u) / TX;
override QV: u32 = (DV4 + TX - 1u) / TX;

const NEG_BIG: f32 = -3.0e38;

// NOTE: bottom-right causal alignment: query i sees keys j <= i + tk − tq (written so that nothing goes negative).
fn visible(i: u32, j: u32) -> bool {
  return i < p.tq && j < p.tk && (p.causal == 0u || j + p.tq <= i + p.tk);
}

// Where head bh's row 0 lies in a tensor of layout l.
fn head_at(l: vec4u, bh: u32) -> u32 {
  return l.x + (bh / p.heads) * l.y + (bh % p.heads) * l.z;
}

// Quad e4 of row `row` of q, k or v (from base, head_at of the head), zeros past the rows and the head dim: any T
// and any d take the same tiles, with no read out of bounds.
fn load_q(base: u32, row: u32, e4: u32) -> vec4f {
  var r = vec4f(0.0);
  if (row < p.tq) {
    let at = base + row * p.lq.w + e4 * 4u;
    if (e4 * 4u + 4u <= DK) {
      return vec4f(q[at], q[at + 1u], q[at + 2u], q[at + 3u]);
    }
    for (var c = 0u; e4 * 4u + c < DK; c++) {
      r[c] = q[at + c];
    }
  }
  return r;
}

fn load_k(base: u32, row: u32, e4: u32) -> vec4f {
  var r = vec4f(0.0);
  if (row < p.tk) {
    let at = base + row * p.lk.w + e4 * 4u;
    if (e4 * 4u + 4u <= DK) {
      return vec4f(k[at], k[at + 1u], k[at + 2u], k[at + 3u]);
    }
    for (var c = 0u; e4 * 4u + c < DK; c++) {
      r[c] = k[at + c];
    }
  }
  return r;
}

fn load_v(base: u32, row: u32, e4: u32) -> vec4f {
  var r = vec4f(0.0);
  if (row < p.tk) {
    let at = base + row * p.lv.w + e4 * 4u;
    if (e4 * 4u + 4u <= DV) {
      return vec4f(v[at], v[at + 1u], v[at + 2u], v[at + 3u]);
    }
    for (var c = 0u; e4 * 4u + c < DV; c++) {
      r[c] = v[at + c];
    }
  }
  return r;
}
