// acc[i] += x[i] in place: a captured step's running sums of its loss and metrics, read back every few steps.
override WG: u32 = 64;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> acc: array<f32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x < p.n) {
    acc[gid.x] += xs[gid.x];
  }
}
