// Fused attention forward, flash-attention style (src/ops/attention.ts). q [bh, tq, DK], k [bh, tk, DK],
// v [bh, tk, DV] -> o [bh, tq, DV] and lse [bh, tq] (rows where the uniforms' layouts say: split heads, or the packed
// projection of attention_qkv), each row's log Σ exp(scores) for the backward. One workgroup per
// (batch·head, tile of BR queries); tiles of BC keys and values pass through workgroup memory, and an online softmax
// (running max m and sum l per row, the output rescaled when m grows) means no row of scores is ever whole. Causal
// key tiles past the query tile's last visible key are never loaded.
// @include _attention

@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@group(0) @binding(1) var<storage, read_write> lse: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

var<workgroup> q_tile: array<vec4f, BR * KROW>;
var<workgroup> k_tile: array<vec4f, BC * KROW>;
var<workgroup> v_tile: array<vec4f, BC * VROW>;
// Probabilities of the tile [BR][BC + 1]; per-thread partial row maxima, then sums [BR][TX].
var<workgroup> p_tile: array<f32, BR * (BC + 1u)>;
var<workgroup> red: array<f32, BR * TX>;

@compute @workgroup_size(TX, TY)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.tiles * p.bh) {
    return;
  }
  let bh = flat / p.tiles;
  let i0 = (flat % p.tiles) * BR;
  let qb = head_at(p.lq, bh);
  let kb = head_at(p.lk, bh);
  let vb = head_at(p.lv, bh);
  let ob = head_at(p.lo, bh);
  let sb = head_at(p.ls, bh);
  let tx = lid.x;
  let ty = lid.y;
  for (var x = li; x < BR * DK4; x += TX * TY) {
    q_tile[(x / DK4) * KROW + x % DK4] = load_q(qb, i0 + x / DK4, x % DK4);
  }
  // Keys past the tile's last row's last visible one are masked for every row: stop before them.
  var kend = p.tk;
  if (p.causal != 0u) {
    kend = min(p.tk, i0 + BR + p.tk - p.tq);
  }
  var m: array<f32, R_MAX>;
  var l: array<f32, R_MAX>;
  var acc: array<array<vec4f, Q_MAX>, R_MAX>;
  for (var r = 0u; r < RQ; r++) {
    m[r] = NEG_BIG;
  }
  for (var j0 = 0u; j0 < kend; j0 += BC) {
    // The previous tile's reads are done (and, the first time, q_tile is written).
    workgroupBarrier();
    for (var x = li; x < BC * DK4; x += TX * TY) {
      k_tile[(x / DK4) * KROW + x % DK4] = load_k(kb, j0 + x / DK4, x % DK4);
    }
    for (var x = li; x < BC * DV4; x += TX * TY) {
      v_tile[(x / DV4) * VROW + x % DV4] = load_v(vb, j0 + x / DV4, x % DV4);
    }
    workgroupBarrier();
    // s = q kᵀ for the thread's RQ x CK block.
    // NOTE: zeroed by hand: a declaration in a loop is not re-zeroed each iteration on every driver (lavapipe).
    var s: array<array<f32, C_MAX>, R_MAX>;
    for (var r = 0u; r < RQ; r++) {
      for (var c = 0u; c < CK; c++) {
        s[r][c] = 0.0;
      }
    }
    for (var e = 0u; e < DK4; e++) {
      var a: array<vec4f, R_MAX>;
      for (var r = 0u; r < RQ; r++) {
        a[r] = q_tile[(ty + r * TY) * KROW + e];
      }
      for (var c = 0u; c < CK; c++) {
        let b = k_tile[(tx + c * TX) * KROW + e];
        for (var r = 0u; r < RQ; r++) {
          s[r][c] += dot(a[r], b);
        }
      }
    }
    for (var r = 0u; r < RQ; r++) {
      var mx = NEG_BIG;
      for (var c = 0u; c < CK; c++) {
        s[r][c] = select(-nonfinite_f32(0u), s[r][c] * p.scale, visible(i0 + ty + r * TY, j0 + tx + c * TX));
        mx = max(mx, s[r][c]);
      }
      red[(ty + r * TY) * TX + tx] = mx;
    }
    workgroupBarrier();
    // The row's new max over the TX partials (the same in each of its TX threads); rescale what came before.
    for (var r = 0u; r < RQ; r++) {
      let row = ty + r * TY;
      var mn = m[r];
      for (var t = 0u; t < TX; t++) {
        mn = max(mn, red[row * TX + t]);
      }
      let alpha = exp(m[r] - mn);
      m[r] = mn;
      var sum = 0.0;
      for (var c = 0u; c < CK; c++) {
        let pr = exp(s[r][c] - mn);
        sum += pr;
        p_tile[row * (BC + 1u) + tx + c * TX] = pr;
      }
      // A thread's share of the row's Σ exp: the shares are added at the end, in a fixed order.
      l[r] = l[r] * alpha + sum;
      for (var d = 0u; d < QV; d++) {
        acc[r][d] *= alpha;
      }
    }
    workgroupBarrier();
    // o += p v for the thread's rows and quads of DV.
    let jn = min(BC, kend - j0);
    for (var j = 0u; j < jn; j++) {
      var b: array<vec4f, Q_MAX>;
      for (var d = 0u; d < QV; d++) {
        if (tx + d * TX < DV4) {
          b[d] = v_tile[j * VROW + tx + d * TX];
        }
      }
      for (var r = 0u; r < RQ; r++) {
        let a = vec4f(p_tile[(ty + r * TY) * (BC + 1u) + j]);
        for (var d = 0u; d < QV; d++) {
          acc[r][d] = fma(a, b[d], acc[r][d]);
        }
      }
    }
  }
  workgroupBarrier();
  for (var r = 0u; r < RQ; r++) {
    red[(ty + r * TY) * TX + tx] = l[r];
  }
  workgroupBarrier();
  for (var r = 0u; r < RQ; r++) {
    let row = ty + r * TY;
    let i = i0 + row;
    if (i >= p.tq) {
      continue;
    }
    var sum = 0.0;
    for (var t = 0u; t < TX; t++) {
      sum += red[row * TX + t];
    }
    let inv = 1.0 / sum;
    for (var d = 0u; d < QV; d++) {
      let e4 = tx + d * TX;
      for (var c = 0u; c < 4u && e4 * 4u + c < DV; c++) {
        o[ob + i * p.lo.w + e4 * 4u + c] = acc[r][d][c] * inv;
      }
    }
    if (tx == 0u) {
      lse[sb + i * p.ls.w] = m[r] + log(sum);
    }
  }
}
