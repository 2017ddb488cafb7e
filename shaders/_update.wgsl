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
  if (i0 + 4u <= u.n) {
    for (var k = 0u; k < 4u; k++) {
      let x = update(i0 + k);
      bad = bad || non_finite(x);
    }
  } else {
    for (var i = i0; i < u.n; i++) {
      let x = update(i);
      bad = bad || non_finite(x);
    }
  }
  if (CHECK && bad) {
    atomicMin(&flag[0], u.seq);
  }
}
