// Elementwise y = f(a, b) with NumPy broadcasting, f spliced in from the op table (src/ops/binary.ts).
// y: [n] flat over the output shape; a, b read through per-dim strides (0 on broadcast dims), or in step when SAME.
// @include _math

override WG: u32 = 256;
// Both inputs hold n elements laid out as the output: element i of each, no index math.
override SAME: bool = false;

// Output dims after merging contiguous ones, innermost first, with each input's stride in elements. Arrays in the
// uniform address space need a 16-byte element stride, hence 8 dims packed as 2 x vec4.
struct Params {
  n: u32,
  rank: u32,
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

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) {
    return;
  }
  if (SAME) {
    y[i] = f(in_a[i], in_b[i]);
    return;
  }
  var rest = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = 0u; d < p.rank; d++) {
    let size = p.dims[d / 4u][d % 4u];
    let c = rest % size;
    rest /= size;
    ia += c * p.stride_a[d / 4u][d % 4u];
    ib += c * p.stride_b[d / 4u][d % 4u];
  }
  y[i] = f(in_a[ia], in_b[ib]);
}
