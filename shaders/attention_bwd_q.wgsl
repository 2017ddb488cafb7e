// Fused attention backward for q (src/ops/attention.ts). dy [bh, tq, DV], q [bh, tq, DK], k [bh, tk, DK],
// v [bh, tk, DV], lse and delta [bh, tq] (the forward's log Σ exp and rowsum(dy ∘ o)) -> dq [bh, tq, DK]. One
// workgroup per (batch·head, tile of BR queries) loops over tiles of WG keys (causal ones past the tile's last visible
// key skipped): thread t recomputes p = exp(scale·q k[j]ᵀ − lse) for key j = j0 + t, ds = p ∘ (dy v[j]ᵀ − delta),
// then owns column t of dq += scale · ds k. Each dq element is one thread's sum in a fixed order: no atomics.
// @include _attention

@group(0) @binding(0) var<storage, read_write> dq: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

var<workgroup> q_tile: array<f32, BR * DK>;
var<workgroup> dy_tile: array<f32, BR * DV>;
var<workgroup> ds_tile: array<f32, BR * WG>;
// lse and delta of the tile's rows.
var<workgroup> row_tile: array<vec2f, BR>;

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
  for (var x = t; x < BR * DV; x += WG) {
    var val = 0.0;
    if (i0 + x / DV < p.tq) {
      val = dy[(bh * p.tq + i0) * DV + x];
    }
    dy_tile[x] = val;
  }
  if (t < BR && i0 + t < p.tq) {
    row_tile[t] = vec2f(lse[bh * p.tq + i0 + t], delta[bh * p.tq + i0 + t]);
  }
  var kend = p.tk;
  if (p.causal != 0u) {
    kend = min(p.tk, i0 + BR + p.tk - p.tq);
  }
  var acc: array<f32, R_MAX>; // dq[i0 + r, t] / scale
  var kr: array<f32, D_MAX>;  // k[j0 + t, :]
  var vr: array<f32, D_MAX>;  // v[j0 + t, :]
  var kc: array<f32, D_MAX>;  // k[j0 .. j0 + WG, t]
  for (var j0 = 0u; j0 < kend; j0 += WG) {
    let j = j0 + t;
    for (var e = 0u; e < DK; e++) {
      kr[e] = 0.0;
      if (j < p.tk) {
        kr[e] = k[(bh * p.tk + j) * DK + e];
      }
    }
    for (var e = 0u; e < DV; e++) {
      vr[e] = 0.0;
      if (j < p.tk) {
        vr[e] = v[(bh * p.tk + j) * DV + e];
      }
    }
    // The tiles are written (first tile); the previous tile's reads of ds_tile are done.
    workgroupBarrier();
    for (var r = 0u; r < BR; r++) {
      var s = 0.0;
      for (var e = 0u; e < DK; e++) {
        s = fma(q_tile[r * DK + e], kr[e], s);
      }
      var dp = 0.0;
      for (var e = 0u; e < DV; e++) {
        dp = fma(dy_tile[r * DV + e], vr[e], dp);
      }
      var ds = 0.0;
      if (visible(i0 + r, j)) {
        let st = row_tile[r];
        ds = exp(s * p.scale - st.x) * (dp - st.y);
      }
      ds_tile[r * WG + t] = ds;
    }
    workgroupBarrier();
    if (t < DK) {
      let jn = min(WG, kend - j0);
      for (var c = 0u; c < jn; c++) {
        kc[c] = k[(bh * p.tk + j0 + c) * DK + t];
      }
      for (var r = 0u; r < BR; r++) {
        var d = acc[r];
        for (var c = 0u; c < jn; c++) {
          d = fma(ds_tile[r * WG + c], kc[c], d);
        }
        acc[r] = d;
      }
    }
  }
  if (t < DK) {
    for (var r = 0u; r < BR && i0 + r < p.tq; r++) {
      dq[(bh * p.tq + i0 + r) * DK + t] = acc[r] * p.scale;
    }
  }
}
