// Fused attention forward, flash-attention style (src/ops/attention.ts). q [bh, tq, DK], k [bh, tk, DK],
// v [bh, tk, DV] -> o [bh, tq, DV] and lse [bh, tq], each row's log Σ exp(scores) for the backward. One workgroup per
// (batch·head, tile of BR queries) loops over tiles of WG keys (thread t: key j0 + t, then column t of o), with an
// online softmax: a running max m and sum l per row, and o rescaled when m grows, so no row of scores is ever whole.
// Causal key tiles past the query tile's last visible key are skipped.
// @include _attention

@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@group(0) @binding(1) var<storage, read_write> lse: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

var<workgroup> q_tile: array<f32, BR * DK>;
// Scores, then probabilities, of the tile [BR][WG + 1] (the pad spreads a row's reads by its own thread over banks).
var<workgroup> s_tile: array<f32, BR * (WG + 1u)>;
// Per row: the new max, the factor exp(m_old − m_new) that rescales what came before; at the end, Σ exp.
var<workgroup> m_tile: array<f32, BR>;
var<workgroup> a_tile: array<f32, BR>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.tiles * p.bh) {
    return;
  }
  let bh = flat / p.tiles;
  let i0 = (flat % p.tiles) * BR;
  for (var x = t; x < BR * DK; x += WG) {
    var val = 0.0;
    if (i0 + x / DK < p.tq) {
      val = q[(bh * p.tq + i0) * DK + x];
    }
    q_tile[x] = val;
  }
  // Keys past the tile's last row's last visible key are masked for every row: stop before them.
  var kend = p.tk;
  if (p.causal != 0u) {
    kend = min(p.tk, i0 + BR + p.tk - p.tq);
  }
  var acc: array<f32, R_MAX>; // o[i0 + r, t] before the division by l
  var m = NEG_BIG; // row t's running max and sum (threads t < BR)
  var l = 0.0;
  var kr: array<f32, D_MAX>; // k[j0 + t, :]
  var vc: array<f32, D_MAX>; // v[j0 .. j0 + WG, t]
  for (var j0 = 0u; j0 < kend; j0 += WG) {
    let j = j0 + t;
    for (var e = 0u; e < DK; e++) {
      kr[e] = 0.0;
      if (j < p.tk) {
        kr[e] = k[(bh * p.tk + j) * DK + e];
      }
    }
    // q_tile is written (first tile); the previous tile's reads of s_tile and a_tile are done.
    workgroupBarrier();
    var s: array<f32, R_MAX>;
    for (var r = 0u; r < BR; r++) {
      var d = 0.0;
      for (var e = 0u; e < DK; e++) {
        d = fma(q_tile[r * DK + e], kr[e], d);
      }
      s[r] = select(-nonfinite_f32(0u), d * p.scale, visible(i0 + r, j));
      s_tile[r * (WG + 1u) + t] = s[r];
    }
    workgroupBarrier();
    if (t < BR) {
      var mn = m;
      for (var c = 0u; c < WG; c++) {
        mn = max(mn, s_tile[t * (WG + 1u) + c]);
      }
      a_tile[t] = exp(m - mn);
      m_tile[t] = mn;
      m = mn;
    }
    workgroupBarrier();
    for (var r = 0u; r < BR; r++) {
      s_tile[r * (WG + 1u) + t] = exp(s[r] - m_tile[r]);
      acc[r] *= a_tile[r];
    }
    workgroupBarrier();
    let jn = min(WG, kend - j0);
    if (t < BR) {
      var sum = 0.0;
      for (var c = 0u; c < jn; c++) {
        sum += s_tile[t * (WG + 1u) + c];
      }
      l = l * a_tile[t] + sum;
    }
    // o[:, t] += p v[:, t]
    if (t < DV) {
      for (var c = 0u; c < jn; c++) {
        vc[c] = v[(bh * p.tk + j0 + c) * DV + t];
      }
      for (var r = 0u; r < BR; r++) {
        var d = acc[r];
        for (var c = 0u; c < jn; c++) {
          d = fma(s_tile[r * (WG + 1u) + c], vc[c], d);
        }
        acc[r] = d;
      }
    }
  }
  workgroupBarrier();
  if (t < BR) {
    m_tile[t] = l;
    if (i0 + t < p.tq) {
      lse[bh * p.tq + i0 + t] = m + log(l);
    }
  }
  workgroupBarrier();
  if (t < DV) {
    for (var r = 0u; r < BR && i0 + r < p.tq; r++) {
      o[(bh * p.tq + i0 + r) * DV + t] = acc[r] / m_tile[r];
    }
  }
}
