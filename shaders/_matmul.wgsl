// What matmul.wgsl and matmul_vec4.wgsl share: the per-thread block, the uniforms, the epilogue's activation, the
// batch offsets and the multiply of one K slice of workgroup tiles. Included textually: it uses the including
// kernel's `p`, `a_tile`, `b_tile` and TILE_M / TILE_N overrides.
// @include _math

// Per-thread block of y: TM rows x TN columns (multiples of 4: they are held and read as vec4s). Consts, not
// overrides, because WGSL sizes function-scope (register) arrays with const-expressions only. 8x8 does 64 FMAs
// per 4 vec4 reads of workgroup memory, twice 4x4's ratio (on lavapipe 1.7x the speed of 4x4).
// The workgroup is (TILE_N / TN) x (TILE_M / TM) threads.
const TM: u32 = 8u;
const TN: u32 = 8u;

struct Params {
  M: u32,
  N: u32,
  K: u32,
  alpha: f32,
  // Batch dims of y after merging (outermost first, padded with 1s) and each operand's element stride per dim
  // (0 where that operand is broadcast).
  batch_dims: vec4u,
  a_strides: vec4u,
  b_strides: vec4u,
  // The first workgroup of this dispatch in the whole grid (x, y, z; w unused): a grid past the per-dimension
  // workgroup limit runs as several dispatches.
  base: vec4u,
}

fn act(x: f32) -> f32 {
  return /*@ACT*/;
}

// Element offsets of a's and b's matrices for batch entry z of y.
fn batch_offsets(z: u32) -> vec2u {
  var rest = z;
  var off = vec2u(0u);
  for (var d = 3i; d >= 0i; d--) {
    let i = rest % p.batch_dims[d];
    rest /= p.batch_dims[d];
    off += i * vec2u(p.a_strides[d], p.b_strides[d]);
  }
  return off;
}

// acc += one K slice of the tiles: `depth` k-rows from vec4 offsets a_base / b_base, rows a_row / b_row vec4s apart.
// A thread owns row quads lid.y + q * (TILE_M / TM) and column quads lid.x + q * (TILE_N / TN): interleaved
// rather than adjacent, so neighbouring threads read neighbouring vec4s of the tiles.
// acc[i][j / 4][j % 4] = y[row(i), col(j)] with row(i) = row0 + (lid.y + (i / 4) * (TILE_M / TM)) * 4 + i % 4.
fn multiply_slice(acc: ptr<function, array<array<vec4f, TN / 4>, TM>>, depth: u32, a_base: u32, a_row: u32, b_base: u32,
                  b_row: u32, lid: vec3u) {
  for (var k = 0u; k < depth; k++) {
    var av: array<vec4f, TM / 4>;
    var bv: array<vec4f, TN / 4>;
    for (var q = 0u; q < TM / 4; q++) {
      av[q] = a_tile[a_base + k * a_row + lid.y + q * (TILE_M / TM)];
    }
    for (var q = 0u; q < TN / 4; q++) {
      bv[q] = b_tile[b_base + k * b_row + lid.x + q * (TILE_N / TN)];
    }
    for (var i = 0u; i < TM; i++) {
      let ai = vec4f(av[i / 4][i % 4]);
      for (var q = 0u; q < TN / 4; q++) {
        (*acc)[i][q] = fma(ai, bv[q], (*acc)[i][q]);
      }
    }
  }
}

// The row of y that acc[i] holds, for a workgroup whose tile starts at row0.
fn acc_row(row0: u32, i: u32, lid: vec3u) -> u32 {
  return row0 + (lid.y + (i / 4) * (TILE_M / TM)) * 4 + i % 4;
}
