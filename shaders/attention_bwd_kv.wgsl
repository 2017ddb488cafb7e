// Fused attention backward for k and v (src/ops/attention.ts). dy [bh, tq, DV], q [bh, tq, DK], k [bh, tk, DK],
// v [bh, tk, DV], lse and delta [bh, tq] -> dkv [bh, tk, DK + DV] (dk, then dv, in each row). One workgroup per
// (batch·head, tile of BR keys) loops over tiles of WG queries (causal: from the tile of the first query that sees
// key j0): thread t recomputes pᵀ = exp(scale·k q[i]ᵀ − lse_i) for query i = i0 + t and dsᵀ = pᵀ ∘ (v dy[i]ᵀ − delta_i),
// then owns column t of dv += pᵀ dy and of dk += scale · dsᵀ q. Each element is one thread's sum in a fixed order.
// @include _attention

@group(0) @binding(0) var<storage, read_write> dkv: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

var<workgroup> k_tile: array<f32, BR * DK>;
var<workgroup> v_tile: array<f32, BR * DV>;
var<workgroup> p_tile: array<f32, BR * WG>;
var<workgroup> ds_tile: array<f32, BR * WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.tiles * p.bh) {
    return;
  }
  let bh = flat / p.tiles;
  let j0 = (flat % p.tiles) * BR;
  for (var x = t; x < BR * DK; x += WG) {
    var val = 0.0;
    if (j0 + x / DK < p.tk) {
      val = k[(bh * p.tk + j0) * DK + x];
    }
    k_tile[x] = val;
  }
  for (var x = t; x < BR * DV; x += WG) {
    var val = 0.0;
    if (j0 + x / DV < p.tk) {
      val = v[(bh * p.tk + j0) * DV + x];
    }
    v_tile[x] = val;
  }
  // The first query that sees key j0 is j0 + tq − tk (causal); start at its tile.
  var istart = 0u;
  if (p.causal != 0u && j0 + p.tq > p.tk) {
    istart = (j0 + p.tq - p.tk) / WG * WG;
  }
  var acc_k: array<f32, R_MAX>; // dk[j0 + r, t] / scale
  var acc_v: array<f32, R_MAX>; // dv[j0 + r, t]
  var qr: array<f32, D_MAX>;    // q[i0 + t, :], then q[i0 .. i0 + WG, t]
  var yr: array<f32, D_MAX>;    // dy[i0 + t, :], then dy[i0 .. i0 + WG, t]
  for (var i0 = istart; i0 < p.tq; i0 += WG) {
    let i = i0 + t;
    var st = vec2f(0.0);
    if (i < p.tq) {
      st = vec2f(lse[bh * p.tq + i], delta[bh * p.tq + i]);
    }
    for (var e = 0u; e < DK; e++) {
      qr[e] = 0.0;
      if (i < p.tq) {
        qr[e] = q[(bh * p.tq + i) * DK + e];
      }
    }
    for (var e = 0u; e < DV; e++) {
      yr[e] = 0.0;
      if (i < p.tq) {
        yr[e] = dy[(bh * p.tq + i) * DV + e];
      }
    }
    // The tiles are written (first tile); the previous tile's reads of p_tile and ds_tile are done.
    workgroupBarrier();
    for (var r = 0u; r < BR; r++) {
      var s = 0.0;
      for (var e = 0u; e < DK; e++) {
        s = fma(k_tile[r * DK + e], qr[e], s);
      }
      var dp = 0.0;
      for (var e = 0u; e < DV; e++) {
        dp = fma(v_tile[r * DV + e], yr[e], dp);
      }
      var pr = 0.0;
      if (visible(i, j0 + r)) {
        pr = exp(s * p.scale - st.x);
      }
      p_tile[r * WG + t] = pr;
      ds_tile[r * WG + t] = pr * (dp - st.y);
    }
    workgroupBarrier();
    let n = min(WG, p.tq - i0);
    if (t < DV) {
      for (var c = 0u; c < n; c++) {
        yr[c] = dy[(bh * p.tq + i0 + c) * DV + t];
      }
      for (var r = 0u; r < BR; r++) {
        var d = acc_v[r];
        for (var c = 0u; c < n; c++) {
          d = fma(p_tile[r * WG + c], yr[c], d);
        }
        acc_v[r] = d;
      }
    }
    if (t < DK) {
      for (var c = 0u; c < n; c++) {
        qr[c] = q[(bh * p.tq + i0 + c) * DK + t];
      }
      for (var r = 0u; r < BR; r++) {
        var d = acc_k[r];
        for (var c = 0u; c < n; c++) {
          d = fma(ds_tile[r * WG + c], qr[c], d);
        }
        acc_k[r] = d;
      }
    }
  }
  for (var r = 0u; r < BR && j0 + r < p.tk; r++) {
    let base = (bh * p.tk + j0 + r) * (DK + DV);
    if (t < DK) {
      dkv[base + t] = acc_k[r] * p.scale;
    }
    if (t < DV) {
      dkv[base + DK + t] = acc_v[r];
    }
  }
}
