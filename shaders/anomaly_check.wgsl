// Anomaly mode's check of one op's output: flag[0] = min(flag[0], seq) when any of x's n values is NaN or ±Inf,
// so the flag ends up holding the smallest sequence number, the first op in queue order that went non-finite.
// x is read as raw bits: an all-ones exponent is Inf or NaN. (A float test such as `x != x` may be folded away,
// since WGSL lets compilers assume floats are finite.)
override WG: u32 = 256;

struct Params {
  n: u32,
  seq: i32,
}

@group(0) @binding(0) var<storage, read_write> flag: array<atomic<i32>>;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

// A grid-stride loop over a 1-D grid of at most a few hundred workgroups: any n, no folding into 2-D.
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  for (var i = gid.x; i < p.n; i += nwg.x * WG) {
    if ((x[i] & 0x7f800000u) == 0x7f800000u) {
      atomicMin(&flag[0], p.seq);
      return;
    }
  }
}
