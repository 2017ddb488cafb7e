// Fused attention backward for q (src/ops/attention.ts). dy [bh, tq, DV], q [bh, tq, DK], k [bh, tk, DK],
// v [bh, tk, DV], lse and delta [bh, tq] (the forward's log Σ exp and rowsum(dy ∘ o)) -> dq [bh, tq, DK]. One
// workgroup per (batch·head, tile of BR queries), looping over tiles of BC keys (causal ones past the tile's last
// visible key skipped): with p = exp(s − lse) recomputed from s = scale·q kᵀ, ds = p ∘ (dy vᵀ − delta) and
// dq = scale · ds k. Each dq element is one thread's sum in a fixed order: deterministic, no atomics.
// @include _attention
// @include _attention_dy

@group(0) @binding(0) var<storage, read_write> dq: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

var<workgroup> q_tile: array<vec4f, BR * KROW>;
var<workgroup> dy_tile: array<vec4f, BR * VROW>;
var<workgroup> k_tile: array<vec4f, BC * KROW>;
var<workgroup> v_tile: array<vec4f, BC * VROW>;
var<workgroup> ds_tile: array<f32, BR * (BC + 1u)>;

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
  for (var x = li; x < BR * DV4; x += TX * TY) {
    dy_tile[(x / DV4) * VROW + x % DV4] = load_dy(ob, i0 + x / DV4, x % DV4);
  }
  var row_lse: array<f32, R_MAX>;
  var row_delta: array<f32, R_MAX>;
  for (var r = 0u; r < RQ; r++) {
    let i = i0 + ty + r * TY;
    if (i < p.tq) {
      row_lse[r] = lse[sb + i * p.ls.w];
      row_delta[r] = delta[sb + i * p.ls.w];
    }
  }
  var kend = p.tk;
  if (p.causal != 0u) {
    kend = min(p.tk, i0 + BR + p.tk - p.tq);
  }
  var acc: array<array<vec4f, Q_MAX>, R_MAX>;
  for (var j0 = 0u; j0 < kend; j0 += BC) {
    workgroupBarrier();
    for (var x = li; x < BC * DK4; x += TX * TY) {
      k_tile[(x / DK4) * KROW + x % DK4] = load_k(kb, j0 + x / DK4, x % DK4);
    }
    for (var x = li; x < BC * DV4; x += TX * TY) {
      v_tile[(x / DV4) * VROW + x % DV4] = load_v(vb, j0 + x / DV4, x % DV4);
    }
    workgroupBarrier();
    // s = q kᵀ and dp = dy vᵀ for the thread's RQ x CK block.
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
        a[r] = q_tile[(ty + r * TY) * KROW + e];
      }
      for (var c = 0u; c < CK; c++) {
        let b = k_tile[(tx + c * TX) * KROW + e];
        for (var r = 0u; r < RQ; r++) {
          s[r][c] += dot(a[r], b);
        }
      }
    }
    for (var e = 0u; e < DV4; e++) {
      var a: array<vec4f, R_MAX>;
      for (var r = 0u; r < RQ; r++) {
        a[r] = dy_tile[(ty + r * TY) * VROW + e];
      }
      for (var c = 0u; c < CK; c++) {
        let b = v_tile[(tx + c * TX) * VROW + e];
        for (var r = 0u; r < RQ; r++) {
          dp[r][c] += dot(a[r], b);
        }
      }
    }
    for (var r = 0u; r < RQ; r++) {
      let row = ty + r * TY;
      for (var c = 0u; c < CK; c++) {
        let col = tx + c * TX;
        var ds = 0.0;
        if (visible(i0 + row, j0 + col)) {
          ds = exp(s[r][c] * p.scale - row_lse[r]) * (dp[r][c] - row_delta[r]);
        }
        ds_tile[row * (BC + 1u) + col] = ds;
      }
    }
    workgroupBarrier();
    // dq += ds k (scaled at the end).
    let jn = min(BC, kend - j0);
    for (var j = 0u; j < jn; j++) {
      var b: array<vec4f, Q_MAX>;
      for (var d = 0u; d < QK; d++) {
        if (tx + d * TX < DK4) {
          b[d] = k_tile[j * KROW + tx + d * TX];
        }
      }
      for (var r = 0u; r < RQ; r++) {
        let a = vec4f(ds_tile[(ty + r * TY) * (BC + 1u) + j]);
        for (var d = 0u; d < QK; d++) {
          acc[r][d] = fma(a, b[d], acc[r][d]);
        }
      }
    }
  }
  for (var r = 0u; r < RQ; r++) {
    let i = i0 + ty + r * TY;
    if (i >= p.tq) {
      continue;
    }
    for (var d = 0u; d < QK; d++) {
      let e4 = tx + d * TX;
      for (var c = 0u; c < 4u && e4 * 4u + c < DK; c++) {
        dq[qb + i * p.lq.w + e4 * 4u + c] = acc[r][d][c] * p.scale;
      }
    }
  }
}
