// Elementwise y = f(a, b) with NumPy broadcasting, f spliced in from the op table (src/ops/binary.ts).
// y: [n] flat over the output shape; a, b read through per-dim strides (0 on broadcast dims), or in step when SAME.
// Each thread writes 4 consecutive elements: the index math is done once for them, and fewer threads cost less
// where threads are lanes of a CPU's vector unit (lavapipe).
// @include _math

override WG: u32 = 256;
// Both inputs hold n elements laid out as the output: element i of each, no index math.
override SAME: bool = false;

// Output dims after merging contiguous ones, innermost first, with each input's stride in elements (at least one dim
// unless SAME: an output of one element has inputs of one element).
// Arrays in the uniform address space need a 16-byte element stride, hence 8 dims packed as 2 x vec4.
struct Params {
  n: u32,
  rank: u32,
  // i / dims[0] as a multiply: t = mul_hi(i, magic), i / dims[0] = (t + (i - t) / 2) >> shift (Granlund and
  // Montgomery, for divisors from 2 to 2^32 - 1): a CPU divides a vector of integers one lane at a time.
  magic: u32,
  shift: u32,
  dims: array<vec4u, 2>,
  stride_a: array<vec4u, 2>,
  stride_b: array<vec4u, 2>,
}

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> in_a: array<f32>;
@group(0) @binding(2) var<storage, read> in_b: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn f(a: f32, b: f32) -> f32 {
  return /*@EXPR*/;
}

// The high 32 bits of the 64-bit product a * b, from 16-bit halves (WGSL has no such builtin).
fn mul_hi(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let mid = ((a0 * b0) >> 16u) + ((a1 * b0) & 0xffffu) + a0 * b1; // < 2^32: no carry is lost
  return a1 * b1 + ((a1 * b0) >> 16u) + (mid >> 16u);
}

// Offsets into a and b of the start of row j, a row being the innermost dim: j times the next stride for rank 2
// (the bias [N,C] + [C] and scale [N,C] · [N,1] cases, no division), else a walk over the outer dims.
fn row_offset(j0: u32) -> vec2u {
  if (p.rank <= 2u) {
    return j0 * vec2u(p.stride_a[0].y, p.stride_b[0].y);
  }
  var j = j0;
  var off = vec2u(0u);
  for (var d = 1u; d < p.rank; d++) {
    let size = p.dims[d / 4u][d % 4u];
    off += (j % size) * vec2u(p.stride_a[d / 4u][d % 4u], p.stride_b[d / 4u][d % 4u]);
    j /= size;
  }
  return off;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i0 = (gid.x + gid.y * nwg.x * WG) * 4u;
  if (i0 >= p.n) {
    return;
  }
  // Whole groups of 4 take a loop of constant length (unrolled); only the last thread may have fewer.
  let full = i0 + 4u <= p.n;
  if (SAME) {
    // One loop, not a full block of 4 then a tail: f inlined once, not five times (less compilation on lavapipe).
    for (var i = i0; i < min(i0 + 4u, p.n); i++) {
      y[i] = f(in_a[i], in_b[i]);
    }
    return;
  }
  // Element i is column c of row j; stepping to the next column is a stride, to the next row a new row offset.
  let d0 = p.dims[0].x;
  let s0 = vec2u(p.stride_a[0].x, p.stride_b[0].x);
  let t = mul_hi(i0, p.magic);
  var j = (t + ((i0 - t) >> 1u)) >> p.shift;
  var c = i0 - j * d0;
  var off = row_offset(j) + c * s0;
  if (full && c + 4u <= d0) {
    if (s0.y == 0u) {
      // b constant along the row (x · scale [N,1], x + scalar): one read for the 4.
      let b = in_b[off.y];
      for (var k = 0u; k < 4u; k++) {
        y[i0 + k] = f(in_a[off.x + k * s0.x], b);
      }
    } else {
      for (var k = 0u; k < 4u; k++) {
        y[i0 + k] = f(in_a[off.x + k * s0.x], in_b[off.y + k * s0.y]);
      }
    }
    return;
  }
  for (var i = i0; i < min(i0 + 4u, p.n); i++) {
    y[i] = f(in_a[off.x], in_b[off.y]);
    c++;
    if (c == d0) {
      c = 0u;
      j++;
      off = row_offset(j);
    } else {
      off += s0;
    }
  }
}
