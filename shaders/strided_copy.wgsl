// Strided copy of raw 32-bit words (any dtype): for every index i over the iteration shape [d0..d(rank-1)],
// y[out_offset + sum_k i_k*out_strides_k] = x[in_offset + sum_k i_k*in_strides_k]. Serves transpose, slice, concat.
// The host coalesces dims first, so rank <= 8; shape and strides are padded to 8 entries (two vec4 each).

override WG: u32 = 64;

struct Params {
  n: u32,
  rank: u32,
  in_offset: u32,
  out_offset: u32,
  // Uniform arrays need a 16-byte element stride, hence vec4s: entry k is [k / 4][k % 4].
  shape: array<vec4<u32>, 2>,
  in_strides: array<vec4<u32>, 2>,
  out_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read_write> y: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) {
    return;
  }
  // Row-major unravel of i over the shape, innermost dim first.
  var rem = i;
  var src = p.in_offset;
  var dst = p.out_offset;
  for (var k = p.rank; k > 0u; k--) {
    let j = k - 1u;
    let d = p.shape[j / 4u][j % 4u];
    let c = rem % d;
    rem = rem / d;
    src += c * p.in_strides[j / 4u][j % 4u];
    dst += c * p.out_strides[j / 4u][j % 4u];
  }
  y[dst] = x[src];
}
