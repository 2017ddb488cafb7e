// What the lane-row attention kernels share (attention_*_lanes, src/ops/attention.ts picks them on a software adapter
// whose subgroups are 8 consecutive invocations): a workgroup is one subgroup of 8 lanes; lane s owns RQ rows of the
// tile, s + 8·r, whole (no reduction across lanes), in registers. The rows on the other side of each product pass by
// one at a time: lane s reads quads s, s + 8, ... of the row and 8 broadcasts hand every lane the whole row.
// NOTE: why: lavapipe runs a subgroup as one SIMD loop and reads workgroup or storage memory lane by lane (~7
// instructions per lane per element), while a broadcast from a constant lane is one shuffle. Here each lane reads
// 1/8 of a row per step and every multiply-add takes its operands from registers; with no workgroup memory and no
// barriers, forward + backward ran 2.2-5.5x faster than the tiled kernels with subgroup reads (lavapipe, T 512, head
// dims 16-128, the three kernels: 76 -> 27 ms at 16, 104 -> 47 at 32, 225 -> 99 at 64, 1240 -> 227 at 128).
// @include _attention

const LANES: u32 = 8u;
// A head dim in quads, at most 32 (128 elements), and the quads one lane reads of it.
const E_MAX: u32 = 32u;
const U_MAX: u32 = 4u;
// Rows of the other side per step of the row loop (written out by the unrolled loops: KC <= 8).
override KC: u32 = 4u;
const KC_MAX: u32 = 8u;
// Rows per workgroup.
override BL: u32 = RQ * LANES;

// Every lane's x: element s is lane s's.
fn rows4(x: vec4f) -> array<vec4f, LANES> {
  return array<vec4f, LANES>(subgroupBroadcast(x, 0u), subgroupBroadcast(x, 1u), subgroupBroadcast(x, 2u),
                             subgroupBroadcast(x, 3u), subgroupBroadcast(x, 4u), subgroupBroadcast(x, 5u),
                             subgroupBroadcast(x, 6u), subgroupBroadcast(x, 7u));
}

fn rows1(x: f32) -> array<f32, LANES> {
  return array<f32, LANES>(subgroupBroadcast(x, 0u), subgroupBroadcast(x, 1u), subgroupBroadcast(x, 2u),
                           subgroupBroadcast(x, 3u), subgroupBroadcast(x, 4u), subgroupBroadcast(x, 5u),
                           subgroupBroadcast(x, 6u), subgroupBroadcast(x, 7u));
}

// A row of n4 quads whole in every lane, into out, from each lane's quads (lane s holding quads s + 8·u in x[u]).
// NOTE: arrays pass by pointer: a by-value array of E_MAX quads is copied whole wherever the compiler cannot tell it
// apart into registers.
fn spread(out: ptr<function, array<vec4f, E_MAX>>, x: ptr<function, array<vec4f, U_MAX>>, n4: u32) {
  for (var u = 0u; u < U_MAX; u++) {
    if (u * LANES < n4) {
      let b = rows4((*x)[u]);
      for (var s = 0u; s < LANES; s++) {
        (*out)[u * LANES + s] = b[s];
      }
    }
  }
}

// Σ a[e]·b[e] over n4 quads.
// NOTE: summed in four lanes of a vec4 (one fma per quad), added up at the end: a running scalar sum of dot()s costs
// a multiply and four adds per quad, as the compiler may not reorder float sums.
fn dot_row(a: ptr<function, array<vec4f, E_MAX>>, b: ptr<function, array<vec4f, E_MAX>>, n4: u32) -> f32 {
  var t = vec4f(0.0);
  for (var e = 0u; e < n4; e++) {
    t = fma((*a)[e], (*b)[e], t);
  }
  return (t.x + t.y) + (t.z + t.w);
}
