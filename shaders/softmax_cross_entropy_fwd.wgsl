// Fused softmax + cross-entropy forward (src/ops/loss.ts). logits: [rows, n], labels: [rows, n] probabilities
// (dense) or [rows] class indices (SPARSE), loss: [rows]. One workgroup per row (rows past the per-dimension limit
// fold into a 2-D grid); the row max and the sums are workgroup tree reductions, so nothing overflows.
// @include _math

// Threads per row, a power of two.
override WG: u32 = 256;
// Labels are int32 class indices, one per row, instead of a probability row.
override SPARSE: bool;

struct Params {
  rows: u32,
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> loss: array<f32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
// Raw words: f32 probabilities (dense) or i32 class indices (SPARSE), bitcast on read.
@group(0) @binding(2) var<storage, read> ts: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> red: array<vec4f, WG>;

// Each thread's v folded over the workgroup (componentwise max, NaN-propagating, or sum); every thread gets it.
fn reduce_wg(lid: u32, v: vec4f, take_max: bool) -> vec4f {
  red[lid] = v;
  for (var s = WG / 2u; s > 0u; s /= 2u) {
    workgroupBarrier();
    if (lid < s) {
      if (take_max) {
        red[lid].x = max_nan_f32(red[lid].x, red[lid + s].x);
      } else {
        red[lid] += red[lid + s];
      }
    }
  }
  workgroupBarrier();
  let r = red[0];
  // Everyone has read red[0] before the next reduction overwrites it.
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  // Uniform across the workgroup: a whole group leaves, or none of it.
  if (row >= p.rows) {
    return;
  }
  let base = row * p.n;
  // Every thread starts from element 0 (n >= 1), so threads with no elements leave the max unchanged.
  var m = xs[base];
  for (var i = lid; i < p.n; i += WG) {
    m = max_nan_f32(m, xs[base + i]);
  }
  m = reduce_wg(lid, vec4f(m, 0.0, 0.0, 0.0), true).x;
  // acc = (Σ exp(x − m), Σ t (x − m), Σ t); the last two only for dense labels.
  var acc = vec4f(0.0);
  for (var i = lid; i < p.n; i += WG) {
    let x = xs[base + i];
    acc.x += exp(x - m);
    if (!SPARSE) {
      let t = bitcast<f32>(ts[base + i]);
      acc.y += t * (x - m);
      acc.z += t;
    }
  }
  acc = reduce_wg(lid, acc, false);
  if (lid != 0u) {
    return;
  }
  // loss = −Σ t log softmax(x) = Σ t (log s − (x − m)) = log(s) Σt − Σ t (x − m): a one-hot label at the max
  // costs log(s) exactly rather than the difference of two numbers of the logits' size.
  if (SPARSE) {
    let l = bitcast<i32>(ts[row]);
    // NOTE: a label outside [0, n) gives NaN for its row.
    if (l < 0 || u32(l) >= p.n) {
      loss[row] = nonfinite_f32(0x400000u);
    } else {
      loss[row] = log(acc.x) - (xs[base + u32(l)] - m);
    }
  } else {
    loss[row] = log(acc.x) * acc.z - acc.y;
  }
}
