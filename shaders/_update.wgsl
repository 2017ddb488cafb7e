// The entry point of the fused optimizer updates (src/optim/kernel.ts): each thread updates 4 consecutive parameter
// elements through the including kernel's `fn update(i: u32)`, over u.n elements. Fewer threads cost less where
// threads are lanes of a CPU's vector unit (lavapipe).
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i0 = (gid.x + gid.y * nwg.x * WG) * 4u;
  if (i0 + 4u <= u.n) {
    for (var k = 0u; k < 4u; k++) {
      update(i0 + k);
    }
  } else {
    for (var i = i0; i < u.n; i++) {
      update(i);
    }
  }
}
