// Fused attention forward, one row per lane (_attention_lanes): as attention_fwd (the same bindings, uniforms and
// results), for a software adapter with subgroups of 8. q [bh, tq, DK], k [bh, tk, DK], v [bh, tk, DV] -> o [bh, tq,
// DV], lse [bh, tq]. One workgroup per (batch·head, BL queries); each lane keeps its RQ rows of scale·q, their
// running max m and sum l and the output, and takes the keys KC at a time (causal: up to the tile's last visible
// one): scores, a new max, the output rescaled once per KC keys, then p v.
// @include _attention_lanes

@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@group(0) @binding(1) var<storage, read_write> lse: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(subgroup_invocation_id) sl: u32) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.tiles * p.bh) {
    return;
  }
  let bh = flat / p.tiles;
  let i0 = (flat % p.tiles) * BL;
  let kb = head_at(p.lk, bh);
  let vb = head_at(p.lv, bh);
  var qr: array<array<vec4f, E_MAX>, R_MAX>;
  for (var r = 0u; r < RQ; r++) {
    for (var e = 0u; e < DK4; e++) {
      qr[r][e] = load_q(head_at(p.lq, bh), i0 + r * LANES + sl, e) * p.scale;
    }
  }
  // Keys past the tile's last row's last visible one are masked for every row: stop before them.
  var kend = p.tk;
  if (p.causal != 0u) {
    kend = min(p.tk, i0 + BL + p.tk - p.tq);
  }
  var m: array<f32, R_MAX>;
  var l: array<f32, R_MAX>;
  var acc: array<array<vec4f, E_MAX>, R_MAX>;
  for (var r = 0u; r < RQ; r++) {
    m[r] = NEG_BIG;
  }
  // Declared once: a declaration in the loop would be zeroed at each step.
  var s: array<array<f32, R_MAX>, KC_MAX>;
  var x: array<vec4f, U_MAX>;
  var kr: array<vec4f, E_MAX>;
  var vr: array<vec4f, E_MAX>;
  for (var j0 = 0u; j0 < kend; j0 += KC) {
    // s = scale·q kᵀ for KC keys, -inf where masked.
    for (var c = 0u; c < KC; c++) {
      for (var u = 0u; u * LANES < DK4; u++) {
        x[u] = load_k(kb, j0 + c, sl + u * LANES);
      }
      spread(&kr, &x, DK4);
      for (var r = 0u; r < RQ; r++) {
        s[c][r] = select(-nonfinite_f32(0u), dot_row(&qr[r], &kr, DK4), visible(i0 + r * LANES + sl, j0 + c));
      }
    }
    // The rows' new max; the output and sum so far rescaled to it; p = exp(s − max).
    for (var r = 0u; r < RQ; r++) {
      var mx = m[r];
      for (var c = 0u; c < KC; c++) {
        mx = max(mx, s[c][r]);
      }
      let alpha = exp(m[r] - mx);
      m[r] = mx;
      var sum = l[r] * alpha;
      for (var c = 0u; c < KC; c++) {
        s[c][r] = exp(s[c][r] - mx);
        sum += s[c][r];
      }
      l[r] = sum;
      for (var e = 0u; e < DV4; e++) {
        acc[r][e] *= alpha;
      }
    }
    // o += p v.
    for (var c = 0u; c < KC; c++) {
      for (var u = 0u; u * LANES < DV4; u++) {
        x[u] = load_v(vb, j0 + c, sl + u * LANES);
      }
      spread(&vr, &x, DV4);
      for (var r = 0u; r < RQ; r++) {
        for (var e = 0u; e < DV4; e++) {
          acc[r][e] = fma(vec4f(s[c][r]), vr[e], acc[r][e]);
        }
      }
    }
  }
  for (var r = 0u; r < RQ; r++) {
    let i = i0 + r * LANES + sl;
    if (i >= p.tq) {
      continue;
    }
    let ob = head_at(p.lo, bh) + i * p.lo.w;
    for (var e = 0u; e < DV4; e++) {
      for (var c = 0u; c < 4u && e * 4u + c < DV; c++) {
        o[ob + e * 4u + c] = acc[r][e][c] / l[r];
      }
    }
    lse[head_at(p.ls, bh) + i * p.ls.w] = m[r] + log(l[r]);
  }
}
