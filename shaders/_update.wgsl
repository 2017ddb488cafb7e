// The entry point of the fused optimizer updates (src/optim/kernel.ts): each thread updates 4 consecutive parameter
// elements through the including kernel's `fn update(i: u32) -> f32` (which writes param[i] and returns it), over
// u.n elements. Fewer threads cost less where threads are lanes of a CPU's vector unit (lavapipe).
// With CHECK on, a thread that wrote a NaN or ±Inf lowers flag[0] to u.seq (one atomicMin per thread): TrainStep's
// check of the weights (src/nn/train.ts), folded into the update that already holds every new value. The including
// kernel declares `flag` (array<atomic<i32>>) and `u.seq` (i32).
// NOTE: a value is non-finite when its exponent bits are all ones, tested on its bits: a float test (`x != x`) may
// be folded away, since WGSL lets compilers assume floats are finite.

override CHECK: bool = false;

fn non_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i0 = (gid.x + gid.y * nwg.x * WG) * 4u;
  var bad = false;
  // One loop, not a full block of 4 then a tail: update() inlined once, not 5 times (unrolled), compiles in a tenth
  // of the time on lavapipe (adam: ~0.04 s against ~0.4 s at the first step).
  for (var i = i0; i < min(i0 + 4u, u.n); i++) {
    let x = update(i);
    bad = bad || non_finite(x);
  }
  if (CHECK && bad) {
    atomicMin(&flag[0], u.seq);
  }
}
