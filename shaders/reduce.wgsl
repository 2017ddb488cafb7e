// Reductions sum / mean / max / argmax (src/ops/reduce.ts). x: any shape, read as x[out_offset(o) + red_offset(r)];
// y: [n_out], f32 bits, or i32 indices for argmax. A workgroup is a tile of X outputs by Y threads each (Y a power
// of two): every thread folds a strided slice of its output's reduce range, then a tree in workgroup memory.
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

fn at(a: array<vec4<u32>, 2>, d: u32) -> u32 {
  return a[d / 4u][d % 4u];
}

// Row-major index -> input offset over `rank` dims (innermost first); the outermost coordinate needs no modulo.
fn offset(i0: u32, rank: u32, shape: array<vec4<u32>, 2>, stride: array<vec4<u32>, 2>) -> u32 {
  var i = i0;
  var off = 0u;
  for (var d = 0u; d + 1u < rank; d++) {
    let n = at(shape, d);
    off += (i % n) * at(stride, d);
    i /= n;
  }
  return off + i * at(stride, rank - 1u);
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

@compute @workgroup_size(X * Y)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tx = select(lid % X, lid / Y, RED_FAST);
  let ty = select(lid / X, lid % Y, RED_FAST);
  let o = (wid.x + wid.y * nwg.x) * X + tx;
  var acc = Acc(0.0, NONE);
  if (o < p.n_out) {
    let base = offset(o, p.out_rank, p.out_shape, p.out_stride);
    for (var r = ty; r < p.n_red; r += Y) {
      acc = combine(acc, Acc(xs[base + offset(r, p.red_rank, p.red_shape, p.red_stride)], r));
    }
  }
  vals[lid] = acc.v;
  idxs[lid] = acc.i;
  // Threads of one output that are s apart in ty are s * step apart in lid.
  let step = select(X, 1u, RED_FAST);
  for (var s = Y / 2u; s > 0u; s /= 2u) {
    workgroupBarrier();
    if (ty < s) {
      acc = combine(acc, Acc(vals[lid + s * step], idxs[lid + s * step]));
      vals[lid] = acc.v;
      idxs[lid] = acc.i;
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
