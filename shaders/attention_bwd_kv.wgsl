// Fused attention backward for k and v (src/ops/attention.ts). dy [bh, tq, DV], q [bh, tq, DK], k [bh, tk, DK],
// v [bh, tk, DV], lse and delta [bh, tq] -> dk, dv in `dkv` (one [bh, tk, DK + DV] for the op on split heads, their
// columns of dqkv [B, T, 3·H·DK] for attention_qkv: the uniforms' layouts say where). One workgroup per
// (batch·head, tile of BR keys), looping over tiles of BC queries (causal: from the first query that sees the tile's
// first key): with pᵀ = exp(scale·k qᵀ − lse) recomputed, dv = pᵀ dy and, with dsᵀ = pᵀ ∘ (v dyᵀ − delta),
// dk = scale · dsᵀ q. Each element is one thread's sum in a fixed order: deterministic, no atomics.
// @include _attention
// @include _attention_dy

@group(0) @binding(0) var<storage, read_write> dkv: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

var<workgroup> k_tile: array<vec4f, BR * KROW>;
var<workgroup> v_tile: array<vec4f, BR * VROW>;
var<workgroup> q_tile: array<vec4f, BC * KROW>;
var<workgroup> dy_tile: array<vec4f, BC * VROW>;
var<workgroup> lse_tile: array<f32, BC>;
var<workgroup> delta_tile: array<f32, BC>;
// pᵀ, then dsᵀ, of the tile [BR][BC + 1].
var<workgroup> p_tile: array<f32, BR * (BC + 1u)>;

@compute @workgroup_size(TX, TY)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let flat = wid.x + wid.y * nwg.x;
  if (flat >= p.tiles * p.bh) {
    return;
  }
  let bh = flat / p.tiles;
  let j0 = (flat % p.tiles) * BR;
  let qb = head_at(p.lq, bh);
  let kb = head_at(p.lk, bh);
  let vb = head_at(p.lv, bh);
  let ob = head_at(p.lo, bh);
  let sb = head_at(p.ls, bh);
  let tx = lid.x;
  let ty = lid.y;
  for (var x = li; x < BR * DK4; x += TX * TY) {
    k_tile[(x / DK4) * KROW + x % DK4] = load_k(kb, j0 + x / DK4, x % DK4);
  }
  for (var x = li; x < BR * DV4; x += TX * TY) {
    v_tile[(x / DV4) * VROW + x % DV4] = load_v(vb, j0 + x / DV4, x % DV4);
  }
  // The first query that sees key j0 is j0 + tq − tk (causal); start at its tile.
  var istart = 0u;
  if (p.causal != 0u && j0 + p.tq > p.tk) {
    istart = (j0 + p.tq - p.tk) / BC * BC;
  }
  var acc_k: array<array<vec4f, Q_MAX>, R_MAX>;
  var acc_v: array<array<vec4f, Q_MAX>, R_MAX>;
  for (var i0 = istart; i0 < p.tq; i0 += BC) {
    workgroupBarrier();
    for (var x = li; x < BC * DK4; x += TX * TY) {
      q_tile[(x / DK4) * KROW + x % DK4] = load_q(qb, i0 + x / DK4, x % DK4);
    }
    for (var x = li; x < BC * DV4; x += TX * TY) {
      dy_tile[(x / DV4) * VROW + x % DV4] = load_dy(ob, i0 + x / DV4, x % DV4);
    }
    for (var x = li; x < BC; x += TX * TY) {
      if (i0 + x < p.tq) {
        lse_tile[x] = lse[sb + (i0 + x) * p.ls.w];
        delta_tile[x] = delta[sb + (i0 + x) * p.ls.w];
      }
    }
    workgroupBarrier();
    // sᵀ = k qᵀ and dpᵀ = v dyᵀ for the thread's RQ x CK block (rows: keys, columns: queries).
    // NOTE: zeroed by hand: a declaration in a loop is not re-zeroed each iteration on every driver (lavapipe).
    var s: array<array<f32, C_MAX>, R_MAX>;
    var dp: array<array<f32, C_MAX>, R_MAX>;
    for (var r = 0u; r < RQ; r++) {
      for (var c = 0u; c < CK; c++) {
        s[r][c] = 0.0;
        dp[r][c] = 0.0;
      }
    }
    for (var e = 0u; e < DK4; e++) {
      var a: array<vec4f, R_MAX>;
      for (var r = 0u; r < RQ; r++) {
        a[r] = k_tile[(ty + r * TY) * KROW + e];
      }
      for (var c = 0u; c < CK; c++) {
        let b = q_tile[(tx + c * TX) * KROW + e];
        for (var r = 0u; r < RQ; r++) {
          s[r][c] += dot(a[r], b);
        }
      }
    }
    for (var e = 0u; e < DV4; e++) {
      var a: array<vec4f, R_MAX>;
      for (var r = 0u; r < RQ; r++) {
        a[r] = v_tile[(ty + r * TY) * VROW + e];
      }
      for (var c = 0u; c < CK; c++) {
        let b = dy_tile[(tx + c * TX) * VROW + e];
        for (var r = 0u; r < RQ; r++) {
          dp[r][c] += dot(a[r], b);
        }
      }
    }
    var ds: array<array<f32, C_MAX>, R_MAX>;
    for (var r = 0u; r < RQ; r++) {
      let row = ty + r * TY;
      for (var c = 0u; c < CK; c++) {
        let col = tx + c * TX;
        var pr = 0.0;
        if (visible(i0 + col, j0 + row)) {
          pr = exp(s[r][c] * p.scale - lse_tile[col]);
        }
        ds[r][c] = pr * (dp[r][c] - delta_tile[col]);
        p_tile[row * (BC + 1u) + col] = pr;
      }
    }
    workgroupBarrier();
    // dv += pᵀ dy.
    let n = min(BC, p.tq - i0);
    for (var i = 0u; i < n; i++) {
      var b: array<vec4f, Q_MAX>;
      for (var d = 0u; d < QV; d++) {
        if (tx + d * TX < DV4) {
          b[d] = dy_tile[i * VROW + tx + d * TX];
        }
      }
      for (var r = 0u; r < RQ; r++) {
        let a = vec4f(p_tile[(ty + r * TY) * (BC + 1u) + i]);
        for (var d = 0u; d < QV; d++) {
          acc_v[r][d] = fma(a, b[d], acc_v[r][d]);
        }
      }
    }
    workgroupBarrier();
    for (var r = 0u; r < RQ; r++) {
      for (var c = 0u; c < CK; c++) {
        p_tile[(ty + r * TY) * (BC + 1u) + tx + c * TX] = ds[r][c];
      }
    }
    workgroupBarrier();
    // dk += dsᵀ q (scaled at the end).
    for (var i = 0u; i < n; i++) {
      var b: array<vec4f, Q_MAX>;
      for (var d = 0u; d < QK; d++) {
        if (tx + d * TX < DK4) {
          b[d] = q_tile[i * KROW + tx + d * TX];
        }
      }
      for (var r = 0u; r < RQ; r++) {
        let a = vec4f(p_tile[(ty + r * TY) * (BC + 1u) + i]);
        for (var d = 0u; d < QK; d++) {
          acc_k[r][d] = fma(a, b[d], acc_k[r][d]);
        }
      }
    }
  }
  for (var r = 0u; r < RQ; r++) {
    let j = j0 + ty + r * TY;
    if (j >= p.tk) {
      continue;
    }
    let dkb = head_at(p.ldk, bh) + j * p.ldk.w;
    let dvb = head_at(p.ldv, bh) + j * p.ldv.w;
    for (var d = 0u; d < QK; d++) {
      let e4 = tx + d * TX;
      for (var c = 0u; c < 4u && e4 * 4u + c < DK; c++) {
        dkv[dkb + e4 * 4u + c] = acc_k[r][d][c] * p.scale;
      }
    }
    for (var d = 0u; d < QV; d++) {
      let e4 = tx + d * TX;
      for (var c = 0u; c < 4u && e4 * 4u + c < DV; c++) {
        dkv[dvb + e4 * 4u + c] = acc_v[r][d][c];
      }
    }
  }
}
