// Fused attention backward for k and v, one row per lane (_attention_lanes): as attention_bwd_kv (the same bindings,
// uniforms and results), for a software adapter with subgroups of 8. dy [bh, tq, DV], q [bh, tq, DK], k [bh, tk, DK],
// v [bh, tk, DV], lse and delta [bh, tq] -> dk, dv in `dkv` where the layouts say. Each lane keeps its RQ key rows of
// scale·k and v and their dk, dv; per query (causal: from the first that sees the tile's first key)
// pᵀ = exp(scale·k qᵀ − lse), dv += pᵀ dy, dsᵀ = pᵀ ∘ (v dyᵀ − delta), dk += dsᵀ q, scaled at the end. The queries'
// lse and delta come KC at a time, one per lane, and pass by broadcast. Each element is one lane's sum in query order:
// deterministic, no atomics.
// @include _attention_lanes
// @include _attention_dy

@group(0) @binding(0) var<storage, read_write> dkv: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(subgroup_invocation_id) sl: u32) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.tiles * p.bh) {
    return;
  }
  let bh = flat / p.tiles;
  let j0 = (flat % p.tiles) * BL;
  let qb = head_at(p.lq, bh);
  let ob = head_at(p.lo, bh);
  let sb = head_at(p.ls, bh);
  var kr: array<array<vec4f, E_MAX>, R_MAX>;
  var vr: array<array<vec4f, E_MAX>, R_MAX>;
  for (var r = 0u; r < RQ; r++) {
    for (var e = 0u; e < DK4; e++) {
      kr[r][e] = load_k(head_at(p.lk, bh), j0 + r * LANES + sl, e) * p.scale;
    }
    for (var e = 0u; e < DV4; e++) {
      vr[r][e] = load_v(head_at(p.lv, bh), j0 + r * LANES + sl, e);
    }
  }
  // The first query that sees key j0 is j0 + tq − tk (causal).
  var istart = 0u;
  if (p.causal != 0u && j0 + p.tq > p.tk) {
    istart = j0 + p.tq - p.tk;
  }
  var acc_k: array<array<vec4f, E_MAX>, R_MAX>;
  var acc_v: array<array<vec4f, E_MAX>, R_MAX>;
  // Declared once: a declaration in the loop would be zeroed at each step.
  var x: array<vec4f, U_MAX>;
  var qc: array<vec4f, E_MAX>;
  var dyc: array<vec4f, E_MAX>;
  var pr: array<f32, R_MAX>;
  var ds: array<f32, R_MAX>;
  for (var i0 = istart; i0 < p.tq; i0 += KC) {
    var ls = 0.0;
    var dl = 0.0;
    if (sl < KC && i0 + sl < p.tq) {
      ls = lse[sb + (i0 + sl) * p.ls.w];
      dl = delta[sb + (i0 + sl) * p.ls.w];
    }
    let row_lse = rows1(ls);
    let row_delta = rows1(dl);
    for (var c = 0u; c < KC; c++) {
      for (var u = 0u; u * LANES < DK4; u++) {
        x[u] = load_q(qb, i0 + c, sl + u * LANES);
      }
      spread(&qc, &x, DK4);
      for (var u = 0u; u * LANES < DV4; u++) {
        x[u] = load_dy(ob, i0 + c, sl + u * LANES);
      }
      spread(&dyc, &x, DV4);
      // One short loop over the rows per step (each unrolls whole on a compiler that unrolls by size).
      for (var r = 0u; r < RQ; r++) {
        pr[r] = dot_row(&kr[r], &qc, DK4) - row_lse[c];
      }
      for (var r = 0u; r < RQ; r++) {
        pr[r] = select(0.0, exp(pr[r]), visible(i0 + c, j0 + r * LANES + sl));
      }
      for (var r = 0u; r < RQ; r++) {
        ds[r] = pr[r] * (dot_row(&vr[r], &dyc, DV4) - row_delta[c]);
      }
      for (var r = 0u; r < RQ; r++) {
        for (var e = 0u; e < DV4; e++) {
          acc_v[r][e] = fma(vec4f(pr[r]), dyc[e], acc_v[r][e]);
        }
      }
      for (var r = 0u; r < RQ; r++) {
        for (var e = 0u; e < DK4; e++) {
          acc_k[r][e] = fma(vec4f(ds[r]), qc[e], acc_k[r][e]);
        }
      }
    }
  }
  for (var r = 0u; r < RQ; r++) {
    let j = j0 + r * LANES + sl;
    if (j >= p.tk) {
      continue;
    }
    let dkb = head_at(p.ldk, bh) + j * p.ldk.w;
    let dvb = head_at(p.ldv, bh) + j * p.ldv.w;
    for (var e = 0u; e < DK4; e++) {
      for (var c = 0u; c < 4u && e * 4u + c < DK; c++) {
        dkv[dkb + e * 4u + c] = acc_k[r][e][c] * p.scale;
      }
    }
    for (var e = 0u; e < DV4; e++) {
      for (var c = 0u; c < 4u && e * 4u + c < DV; c++) {
        dkv[dvb + e * 4u + c] = acc_v[r][e][c];
      }
    }
  }
}
