// What matmul.wgsl and matmul_vec4.wgsl share: the uniforms, the epilogue's activation, the batch offsets, and
// (_tile_mma) the per-thread block and the multiply of one K slice of workgroup tiles. Included textually: it uses
// the including kernel's `p`.
// @include _math
// @include _tile_mma

// Columns of y per thread: 8 on a GPU, 16 on a CPU implementation of WebGPU (ops/matmul.ts says why).
const TN: u32 = /*@TN*/;

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
  // The first workgroup of this dispatch in the whole grid (x, y, z): a grid past the per-dimension workgroup limit
  // runs as several dispatches. w: matmul.wgsl's flags (1: a transposed, 2: b transposed, 4: a bias, 8: relu), 0 for vec4.
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
