// Dropout: y = x · keep / (1 − rate), keep = [hash(seed, i) ≥ rate], from a counter-based hash (src/ops/random.ts
// holds the same function for the CPU reference). The backward pass runs this kernel on dy with the same seed,
// so it regenerates the mask instead of storing it. x, y: [n], flat.

override WG: u32 = 256;

struct Params {
  n: u32,
  seed: u32,
  rate: f32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// PCG-RXS-M-XS 32-bit output permutation of one LCG step.
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) {
    return;
  }
  // A uniform number in [0, 1) from the top 24 bits.
  let u = f32(pcg(i ^ pcg(p.seed)) >> 8u) / 16777216.0;
  y[i] = select(0.0, xs[i] * p.scale, u >= p.rate);
}
