// Reductions sum / mean / max / argmax (src/ops/reduce.ts). x: any shape, read as x[out_offset(o) + red_offset(r)];
// y: [n_out], f32 bits, or i32 indices for argmax. A workgroup is a tile of X outputs by Y threads each (Y a power
// of two): every thread folds blocks of 4 consecutive reduce indices, 4·Y apart, then the Y partials of an output
// are combined in workgroup memory (none of that when Y = 1).
// @include _math

// 0 sum, 1 mean, 2 max, 3 argmax.
override OP: u32;
// Outputs per workgroup and threads per output.
override X: u32 = 1;
override Y: u32 = 256;
// Adjacent threads take adjacent reduce indices (the reduced dim is innermost in memory, so their reads coalesce);
// otherwise adjacent threads take adjacent outputs (the kept dim is innermost).
override RED_FAST: bool;

struct Params {
  n_out: u32,
  n_red: u32,
  out_rank: u32,
  red_rank: u32,
  // Sizes and input strides of the kept and of the reduced dims, innermost first (8 each, 4 per vec4).
  out_shape: array<vec4<u32>, 2>,
  out_stride: array<vec4<u32>, 2>,
  red_shape: array<vec4<u32>, 2>,
  red_stride: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read_write> y: array<u32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> vals: array<f32, X * Y>;
var<workgroup> idxs: array<u32, X * Y>;

// A partial result: the running value and, for max/argmax, the reduce index it came from (NONE: no element yet).
struct Acc {
  v: f32,
  i: u32,
}

const NONE = 0xffffffffu;

// Row-major index -> input offset over the kept (or reduced) dims, innermost first; the outermost coordinate needs
// no modulo. The sizes and strides are read from the uniform in place: an array argument would be a copy per call.
fn out_offset(i0: u32) -> u32 {
  var i = i0;
  var off = 0u;
  for (var d = 0u; d + 1u < p.out_rank; d++) {
    let n = p.out_shape[d / 4u][d % 4u];
    off += (i % n) * p.out_stride[d / 4u][d % 4u];
    i /= n;
  }
  let last = p.out_rank - 1u;
  return off + i * p.out_stride[last / 4u][last % 4u];
}

fn red_offset(i0: u32) -> u32 {
  var i = i0;
  var off = 0u;
  for (var d = 0u; d + 1u < p.red_rank; d++) {
    let n = p.red_shape[d / 4u][d % 4u];
    off += (i % n) * p.red_stride[d / 4u][d % 4u];
    i /= n;
  }
  let last = p.red_rank - 1u;
  return off + i * p.red_stride[last / 4u][last % 4u];
}

// Does b beat a for max/argmax? NOTE: NaN beats every number (max propagates NaN, argmax points at a NaN, as
// PyTorch); among equals the smaller reduce index wins, so argmax is the first maximum whatever the fold order.
fn beats(b: Acc, a: Acc) -> bool {
  if (a.i == NONE || b.i == NONE) {
    return a.i == NONE && b.i != NONE;
  }
  let bn = is_nan_f32(b.v);
  if (bn != is_nan_f32(a.v)) {
    return bn;
  }
  if (!bn && b.v != a.v) {
    return b.v > a.v;
  }
  return b.i < a.i;
}

fn combine(a: Acc, b: Acc) -> Acc {
  if (OP <= 1u) {
    return Acc(a.v + b.v, 0u);
  }
  if (beats(b, a)) {
    return b;
  }
  return a;
}

// A thread's next element v at reduce index r, past every index already in a: for max/argmax it wins when a has
// none yet, when strictly greater (the first maximum stays), or as a NaN over a number.
fn fold(a: Acc, v: f32, r: u32) -> Acc {
  if (OP <= 1u) {
    return Acc(a.v + v, 0u);
  }
  let take = a.i == NONE || v > a.v || (is_nan_f32(v) && !is_nan_f32(a.v));
  return Acc(select(a.v, v, take), select(a.i, r, take));
}

// Four consecutive reduce indices r..r+3 at once: independent loads, and for sums a shorter chain of adds.
fn fold4(a: Acc, v: vec4f, r: u32) -> Acc {
  if (OP <= 1u) {
    return Acc(a.v + ((v.x + v.y) + (v.z + v.w)), 0u);
  }
  return fold(fold(fold(fold(a, v.x, r), v.y, r + 1u), v.z, r + 2u), v.w, r + 3u);
}

@compute @workgroup_size(X * Y)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tx = select(lid % X, lid / Y, RED_FAST);
  let ty = select(lid / X, lid % Y, RED_FAST);
  let o = (wid.x + wid.y * nwg.x) * X + tx;
  var acc = Acc(0.0, NONE);
  if (o < p.n_out) {
    let base = out_offset(o);
    // Each thread takes blocks of 4 consecutive reduce indices, 4 * Y apart; only the last block can be short.
    if (p.red_rank == 1u) {
      // One reduced run (after merging, the usual case): a stride, no index math per element.
      let s = p.red_stride[0].x;
      for (var b = ty * 4u; b < p.n_red; b += 4u * Y) {
        if (b + 4u <= p.n_red) {
          let i = base + b * s;
          acc = fold4(acc, vec4f(xs[i], xs[i + s], xs[i + 2u * s], xs[i + 3u * s]), b);
        } else {
          for (var r = b; r < p.n_red; r++) {
            acc = fold(acc, xs[base + r * s], r);
          }
        }
      }
    } else {
      for (var b = ty * 4u; b < p.n_red; b += 4u * Y) {
        for (var r = b; r < min(b + 4u, p.n_red); r++) {
          acc = fold(acc, xs[base + red_offset(r)], r);
        }
      }
    }
  }
  if (Y > 1u) {
    // Threads of one output that are k apart in ty are k * step apart in lid. Halve the partials down to 8 in a
    // tree, then the first thread folds those 8 itself: one barrier instead of three at the end, and barriers are
    // what a CPU implementation of WebGPU (lavapipe) pays for most.
    let step = select(X, 1u, RED_FAST);
    vals[lid] = acc.v;
    idxs[lid] = acc.i;
    for (var s = Y / 2u; s >= 8u; s /= 2u) {
      workgroupBarrier();
      if (ty < s) {
        acc = combine(acc, Acc(vals[lid + s * step], idxs[lid + s * step]));
        vals[lid] = acc.v;
        idxs[lid] = acc.i;
      }
    }
    workgroupBarrier();
    if (ty == 0u) {
      for (var k = 1u; k < min(Y, 8u); k++) {
        acc = combine(acc, Acc(vals[lid + k * step], idxs[lid + k * step]));
      }
    }
  }
  if (ty != 0u || o >= p.n_out) {
    return;
  }
  switch (OP) {
    case 0u, 2u: {
      y[o] = bitcast<u32>(acc.v);
    }
    case 1u: {
      // NOTE: the mean over an empty range is NaN (0/0), as PyTorch.
      y[o] = select(bitcast<u32>(acc.v / f32(p.n_red)), 0x7fc00000u, p.n_red == 0u);
    }
    default: {
      y[o] = acc.i;
    }
  }
}
