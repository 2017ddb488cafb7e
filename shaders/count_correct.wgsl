// Correct predictions in a batch, on the GPU (src/ops/metrics.ts): pred [B, C] against int32 labels [B] (SPARSE), the
// arg-max of one-hot rows [B, C], or, when C = 1, a threshold against 0/1 targets [B, 1]. One workgroup; each thread
// scores rows i, i + WG, ... and a tree reduction sums the hits, so the count is exact and deterministic.

override WG: u32 = 256;
override SPARSE: bool;

struct Params {
  rows: u32,
  c: u32,
  threshold: f32,
}

@group(0) @binding(0) var<storage, read_write> count: array<f32>;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
// Raw words: i32 labels (SPARSE) or f32 targets.
@group(0) @binding(2) var<storage, read> truth: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> hits: array<u32, WG>;

// NOTE: the first maximum wins ties, as argmax.
fn argmax_row(base: u32, n: u32, from_target: bool) -> u32 {
  var best = 0u;
  var bv = select(pred[base], bitcast<f32>(truth[base]), from_target);
  for (var j = 1u; j < n; j++) {
    let v = select(pred[base + j], bitcast<f32>(truth[base + j]), from_target);
    if (v > bv) {
      bv = v;
      best = j;
    }
  }
  return best;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var n = 0u;
  for (var r = lid; r < p.rows; r += WG) {
    if (p.c == 1u) {
      let y = select(0.0, 1.0, pred[r] > p.threshold);
      n += select(0u, 1u, y == round(bitcast<f32>(truth[r])));
    } else if (SPARSE) {
      n += select(0u, 1u, i32(argmax_row(r * p.c, p.c, false)) == bitcast<i32>(truth[r]));
    } else {
      n += select(0u, 1u, argmax_row(r * p.c, p.c, false) == argmax_row(r * p.c, p.c, true));
    }
  }
  hits[lid] = n;
  for (var s = WG / 2u; s > 0u; s /= 2u) {
    workgroupBarrier();
    if (lid < s) {
      hits[lid] += hits[lid + s];
    }
  }
  if (lid == 0u) {
    count[0] = f32(hits[0]);
  }
}
