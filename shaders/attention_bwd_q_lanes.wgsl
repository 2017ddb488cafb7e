// Fused attention backward for q, one row per lane (_attention_lanes): as attention_bwd_q (the same bindings, uniforms
// and result), for a software adapter with subgroups of 8. dy [bh, tq, DV], q [bh, tq, DK], k [bh, tk, DK],
// v [bh, tk, DV], lse and delta [bh, tq] -> dq [bh, tq, DK]. Each lane keeps its RQ rows of scale·q, dy, lse, delta
// and dq; per key (causal: up to the tile's last visible one) p = exp(scale·q kᵀ − lse), ds = p ∘ (dy vᵀ − delta),
// dq += ds k, scaled at the end. Each dq element is one lane's sum in key order: deterministic.
// @include _attention_lanes
// @include _attention_dy

@group(0) @binding(0) var<storage, read_write> dq: array<f32>;
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
  let i0 = (flat % p.tiles) * BL;
  let qb = head_at(p.lq, bh);
  let kb = head_at(p.lk, bh);
  let vb = head_at(p.lv, bh);
  var qr: array<array<vec4f, E_MAX>, R_MAX>;
  var dyr: array<array<vec4f, E_MAX>, R_MAX>;
  var row_lse: array<f32, R_MAX>;
  var row_delta: array<f32, R_MAX>;
  for (var r = 0u; r < RQ; r++) {
    let i = i0 + r * LANES + sl;
    for (var e = 0u; e < DK4; e++) {
      qr[r][e] = load_q(qb, i, e) * p.scale;
    }
    for (var e = 0u; e < DV4; e++) {
      dyr[r][e] = load_dy(head_at(p.lo, bh), i, e);
    }
    if (i < p.tq) {
      row_lse[r] = lse[head_at(p.ls, bh) + i * p.ls.w];
      row_delta[r] = delta[head_at(p.ls, bh) + i * p.ls.w];
    }
  }
  var kend = p.tk;
  if (p.causal != 0u) {
    kend = min(p.tk, i0 + BL + p.tk - p.tq);
  }
  var acc: array<array<vec4f, E_MAX>, R_MAX>;
  // Declared once: a declaration in the loop would be zeroed at each step.
  var x: array<vec4f, U_MAX>;
  var kr: array<vec4f, E_MAX>;
  var vr: array<vec4f, E_MAX>;
  var ds: array<f32, R_MAX>;
  for (var j0 = 0u; j0 < kend; j0 += KC) {
    for (var c = 0u; c < KC; c++) {
      for (var u = 0u; u * LANES < DK4; u++) {
        x[u] = load_k(kb, j0 + c, sl + u * LANES);
      }
      spread(&kr, &x, DK4);
      for (var u = 0u; u * LANES < DV4; u++) {
        x[u] = load_v(vb, j0 + c, sl + u * LANES);
      }
      spread(&vr, &x, DV4);
      // One short loop over the rows per step (each unrolls whole on a compiler that unrolls by size).
      for (var r = 0u; r < RQ; r++) {
        ds[r] = dot_row(&qr[r], &kr, DK4) - row_lse[r];
      }
      for (var r = 0u; r < RQ; r++) {
        ds[r] = select(0.0, exp(ds[r]), visible(i0 + r * LANES + sl, j0 + c));
      }
      for (var r = 0u; r < RQ; r++) {
        ds[r] *= dot_row(&dyr[r], &vr, DV4) - row_delta[r];
      }
      for (var r = 0u; r < RQ; r++) {
        for (var e = 0u; e < DK4; e++) {
          acc[r][e] = fma(vec4f(ds[r]), kr[e], acc[r][e]);
        }
      }
    }
  }
  for (var r = 0u; r < RQ; r++) {
    let i = i0 + r * LANES + sl;
    if (i >= p.tq) {
      continue;
    }
    for (var e = 0u; e < DK4; e++) {
      for (var c = 0u; c < 4u && e * 4u + c < DK; c++) {
        dq[qb + i * p.lq.w + e * 4u + c] = acc[r][e][c] * p.scale;
      }
    }
  }
}
