// Batched matmul with a fused epilogue, y = act(a @ b + bias), for shapes whose rows are whole vec4s: the large-shape
// kernel. Same tiling and thread layout as matmul.wgsl (TILE_M x TILE_N block of y per workgroup, 8x8 per thread),
// plus: a and b are read and y written as vec4s, and workgroup memory is double-buffered, so the next K slice is
// fetched from global memory into registers while the current one is multiplied, with one barrier per slice.
// Taken only where each operand's contiguous dim is a multiple of 4 (ops/matmul.ts checks): K for a (M when
// TRANS_A), N for b (K when TRANS_B) and N for y, so every vec4 is wholly inside or outside the matrix.
// @include _matmul

override TILE_M: u32 = 128;
override TILE_N: u32 = 128;
override TILE_K: u32 = 8;
override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;

// vec4 loads per thread per K slice for a and b: TILE_M * TILE_K / 4 / threads (and TILE_N * ...), set by the op.
// Consts, as register arrays are sized by const-expressions only.
const A_LOADS: u32 = /*@A_LOADS*/;
const B_LOADS: u32 = /*@B_LOADS*/;

@group(0) @binding(0) var<storage, read_write> y: array<vec4f>; // [batch, M, N / 4]
@group(0) @binding(1) var<storage, read> a: array<vec4f>;       // [.., M, K / 4], or [.., K, M / 4] when TRANS_A
@group(0) @binding(2) var<storage, read> b: array<vec4f>;       // [.., K, N / 4], or [.., N, K / 4] when TRANS_B
@group(0) @binding(3) var<storage, read> bias: array<f32>;      // [N]; a 1-word placeholder when !HAS_BIAS
@group(0) @binding(4) var<uniform> p: Params;

// Two K slices of each tile, k-major as in matmul.wgsl: tile[buf][k][m / 4] holds rows m..m+3. Each k-row may be
// padded by a vec4 against bank conflicts of the scattered writes (a without TRANS_A, b with TRANS_B); the
// 128x128x16 tiles go without, to fit the 32 KiB of workgroup memory most adapters give.
override PAD: u32 = 1u;
override A_ROW: u32 = TILE_M / 4 + PAD;
override B_ROW: u32 = TILE_N / 4 + PAD;
var<workgroup> a_tile: array<vec4f, 2 * TILE_K * A_ROW>;
var<workgroup> b_tile: array<vec4f, 2 * TILE_K * B_ROW>;

// The i-th vec4 of a's K slice starting at k0: its (m, k) in the tile and its value (zeros outside the matrix).
// Without TRANS_A a vec4 runs along k (k is a multiple of 4), with it along m.
fn load_a(i: u32, k0: u32, row0: u32, a_off: u32) -> vec4f {
  if (TRANS_A) {
    let k = i / (TILE_M / 4);
    let gm = row0 + (i % (TILE_M / 4)) * 4;
    let gk = k0 + k;
    if (gm < p.M && gk < p.K) {
      return a[(a_off + gk * p.M + gm) / 4];
    }
  } else {
    let gm = row0 + i / (TILE_K / 4);
    let gk = k0 + (i % (TILE_K / 4)) * 4;
    if (gm < p.M && gk < p.K) {
      return a[(a_off + gm * p.K + gk) / 4];
    }
  }
  return vec4f(0.0);
}

fn store_a(i: u32, buf: u32, v: vec4f) {
  let base = buf * TILE_K * A_ROW;
  if (TRANS_A) {
    a_tile[base + (i / (TILE_M / 4)) * A_ROW + i % (TILE_M / 4)] = v;
  } else {
    let m = i / (TILE_K / 4);
    let k = (i % (TILE_K / 4)) * 4;
    for (var j = 0u; j < 4u; j++) {
      a_tile[base + (k + j) * A_ROW + m / 4][m % 4] = v[j];
    }
  }
}

fn load_b(i: u32, k0: u32, col0: u32, b_off: u32) -> vec4f {
  if (TRANS_B) {
    let gn = col0 + i / (TILE_K / 4);
    let gk = k0 + (i % (TILE_K / 4)) * 4;
    if (gn < p.N && gk < p.K) {
      return b[(b_off + gn * p.K + gk) / 4];
    }
  } else {
    let k = i / (TILE_N / 4);
    let gn = col0 + (i % (TILE_N / 4)) * 4;
    let gk = k0 + k;
    if (gn < p.N && gk < p.K) {
      return b[(b_off + gk * p.N + gn) / 4];
    }
  }
  return vec4f(0.0);
}

fn store_b(i: u32, buf: u32, v: vec4f) {
  let base = buf * TILE_K * B_ROW;
  if (TRANS_B) {
    let n = i / (TILE_K / 4);
    let k = (i % (TILE_K / 4)) * 4;
    for (var j = 0u; j < 4u; j++) {
      b_tile[base + (k + j) * B_ROW + n / 4][n % 4] = v[j];
    }
  } else {
    b_tile[base + (i / (TILE_N / 4)) * B_ROW + i % (TILE_N / 4)] = v;
  }
}

@compute @workgroup_size(TILE_N / TN, TILE_M / TM)
fn main(@builtin(workgroup_id) local_wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let wid = local_wid + p.base.xyz;
  let M = p.M;
  let N = p.N;
  let K = p.K;
  let threads = (TILE_N / TN) * (TILE_M / TM);

  let off = batch_offsets(wid.z);
  let a_off = off.x;
  let b_off = off.y;
  let row0 = wid.y * TILE_M;
  let col0 = wid.x * TILE_N;

  // The next slice, in flight in registers while the current one is multiplied.
  var a_next: array<vec4f, A_LOADS>;
  var b_next: array<vec4f, B_LOADS>;
  for (var q = 0u; q < A_LOADS; q++) {
    store_a(li + q * threads, 0u, load_a(li + q * threads, 0u, row0, a_off));
  }
  for (var q = 0u; q < B_LOADS; q++) {
    store_b(li + q * threads, 0u, load_b(li + q * threads, 0u, col0, b_off));
  }
  workgroupBarrier();

  var acc: array<array<vec4f, TN / 4>, TM>;
  var buf = 0u;
  for (var k0 = 0u; k0 < K; k0 += TILE_K) {
    let more = k0 + TILE_K < K;
    if (more) {
      for (var q = 0u; q < A_LOADS; q++) {
        a_next[q] = load_a(li + q * threads, k0 + TILE_K, row0, a_off);
      }
      for (var q = 0u; q < B_LOADS; q++) {
        b_next[q] = load_b(li + q * threads, k0 + TILE_K, col0, b_off);
      }
    }
    multiply_slice(&acc, TILE_K, buf * TILE_K * A_ROW, A_ROW, buf * TILE_K * B_ROW, B_ROW, lid);
    // The other buffer was last read in the previous slice, before the barrier that ended it: safe to fill now.
    if (more) {
      for (var q = 0u; q < A_LOADS; q++) {
        store_a(li + q * threads, 1u - buf, a_next[q]);
      }
      for (var q = 0u; q < B_LOADS; q++) {
        store_b(li + q * threads, 1u - buf, b_next[q]);
      }
    }
    workgroupBarrier();
    buf = 1u - buf;
  }

  // The bias of this thread's column quads, read once rather than once per row (which made lavapipe's compile 2x
  // slower).
  let y_off = wid.z * M * N;
  var bq: array<vec4f, TN / 4>;
  if (HAS_BIAS) {
    for (var q = 0u; q < TN / 4; q++) {
      let col = col0 + (lid.x + q * (TILE_N / TN)) * 4;
      if (col < N) {
        bq[q] = vec4f(bias[col], bias[col + 1], bias[col + 2], bias[col + 3]);
      }
    }
  }
  for (var i = 0u; i < TM; i++) {
    let row = acc_row(row0, i, lid);
    if (row >= M) {
      continue;
    }
    for (var q = 0u; q < TN / 4; q++) {
      let col = col0 + (lid.x + q * (TILE_N / TN)) * 4;
      if (col < N) {
        let v = acc[i][q] + bq[q];
        y[(y_off + row * N + col) / 4] = vec4f(act(v.x), act(v.y), act(v.z), act(v.w));
      }
    }
  }
}
