// Strided copy of raw 32-bit words (any dtype): for every index i over the iteration shape [d0..d(rank-1)],
// y[out_offset + sum_k i_k*out_strides_k] = x[in_offset + sum_k i_k*in_strides_k]. Serves transpose, slice, concat.
// The host coalesces dims first, so rank <= 8; shape and strides are padded to 8 entries (two vec4 each).

override WG: u32 = 64;
// Consecutive indices per invocation: the unravel (a division and a remainder per dim) is done once per run, then
// the innermost dim is stepped. NOTE: 1 on a GPU; a software adapter takes 8 (lavapipe divides lane by lane, and the
// divisions cost more than the copy).
override RUN: u32 = 1;

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

// Where index i lies in x and in y, and its innermost coordinate: a row-major unravel, innermost dim first.
fn unravel(i: u32) -> vec3u {
  var rem = i;
  var at = vec3u(p.in_offset, p.out_offset, 0u);
  for (var k = p.rank; k > 0u; k--) {
    let j = k - 1u;
    let d = p.shape[j / 4u][j % 4u];
    let c = rem % d;
    rem = rem / d;
    at += vec3u(c * p.in_strides[j / 4u][j % 4u], c * p.out_strides[j / 4u][j % 4u], 0u);
    if (k == p.rank) {
      at.z = c;
    }
  }
  return at;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let first = (gid.x + gid.y * nwg.x * WG) * RUN;
  if (first >= p.n) {
    return;
  }
  let last = max(p.rank, 1u) - 1u; // rank 0 (one element) reads the padding: d0 = 1
  let d0 = p.shape[last / 4u][last % 4u];
  let step = vec2u(p.in_strides[last / 4u][last % 4u], p.out_strides[last / 4u][last % 4u]);
  var at = unravel(first);
  for (var k = 0u; k < RUN && first + k < p.n; k++) {
    if (at.z == d0) {
      at = unravel(first + k);
    }
    y[at.y] = x[at.x];
    at += vec3u(step, 1u);
  }
}
