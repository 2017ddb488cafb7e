// Uniforms and window arithmetic shared by the pooling kernels on a rows × threads grid (src/ops/window.ts
// rowThreadGrid: x runs along a row, the row is gid.y + gid.z · num_workgroups.y · WY), so a thread splits its index
// with two divisions: integer division is slow on CPU implementations (lavapipe).

struct Params {
  rows: u32, // N·P (forward, window backward) or N·H (gather backward)
  h: u32,
  w: u32,
  c: u32, // channels, or channel quads in the vec4 kernels
  p: u32,
  q: u32,
  kh: u32,
  kw: u32,
  sh: u32,
  sw: u32,
  pt: u32,
  pl: u32,
  include_pad: u32, // avg pool only
}

// Window (p, q) clipped to the input: rows [x, y), columns [z, w).
fn clip_window(prm: Params, p: u32, q: u32) -> vec4u {
  let hs = i32(p * prm.sh) - i32(prm.pt);
  let ws = i32(q * prm.sw) - i32(prm.pl);
  return vec4u(u32(max(hs, 0)), u32(min(hs + i32(prm.kh), i32(prm.h))), u32(max(ws, 0)), u32(min(ws + i32(prm.kw), i32(prm.w))));
}

// What an average divides by: the real elements of window win (clip_window), or kh·kw when include_pad.
fn pool_count(prm: Params, win: vec4u) -> f32 {
  return f32(select((win.y - win.x) * (win.w - win.z), prm.kh * prm.kw, prm.include_pad != 0u));
}

// Windows along one axis that contain padded coordinate a (= input index + leading padding): [lo, hi).
fn windows_at(a: u32, k: u32, s: u32, count: u32) -> vec2u {
  let lo = select(0u, (a - k + s) / s, a >= k); // first start with start + k > a
  let hi = min(a / s + 1u, count); // one past the last start <= a
  return vec2u(lo, hi);
}

// Band i of the count bands along an axis of length len, windows every s from −pad: [lo, hi) (the window kernels of
// the backward passes, where pool <= stride). Windows start at i·s − pad, which is > 0 for i >= 1 since pad < pool.
fn band(i: u32, count: u32, s: u32, pad: u32, len: u32) -> vec2u {
  let lo = select(i * s - pad, 0u, i == 0u);
  let hi = select((i + 1u) * s - pad, len, i + 1u == count);
  return vec2u(lo, hi);
}
