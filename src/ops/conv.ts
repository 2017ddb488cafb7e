// 2-D convolution, NHWC: conv2d (and conv2d_bias, its fused bias + activation epilogue) with its input gradient
// conv2d_bwd_x and filter gradient conv2d_bwd_w. All three are implicit GEMMs over shaders/conv2d_*.wgsl (no im2col
// buffer), except the forward and input gradient of inputs with few channels (direct kernels); 1×1 stride-1 unpadded
// convolutions are plain matmuls and run matmul's kernel.
import type { CpuArgs, FloatArray, TensorSpec } from '../backend/backend.js';
import { f32, grid1d, i32, subgroupRowDefines, u32, type GpuTensor, type UniformWord } from '../backend/kernel.js';
import { DTypeError, ShapeError, WgnnError, fmtShape } from '../errors.js';
import type { Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { matmulOps, type Activation } from './matmul.js';
import { defineOp, type BadCase, type Grad, type OpDef, type Sample } from './op.js';
import { sum } from './reduce.js';
import { UNARY, unaryOps, type UnaryName } from './unary.js';
import { requireFloat } from './util.js';
import { foldIntoZ, rank4, slideWindow, type Pair, type Padding, type Window2d } from './window.js';

export type { Pair, Padding } from './window.js';

/** Options of `conv2d` and `conv2dBias` over NHWC images with [R,S,C,K] filters. */
export interface ConvAttrs {
  /** Step between output pixels: one number or [sh, sw]. */
  stride: Pair;
  padding: Padding;
  /** Spacing between filter taps: one number or [dh, dw]. */
  dilation: Pair;
}

export interface Conv2dAttrs extends ConvAttrs {
  /** Applied to each output element after the bias: 'none' or an elementwise op of the unary table. */
  activation: Activation;
  /** leaky_relu's negative slope. */
  alpha: number;
}

export interface Conv2dBwdXAttrs extends ConvAttrs {
  /** The forward input's shape [N,H,W,C] (several H, W give the same output size when stride > 1). */
  xShape: readonly number[];
}

export interface Conv2dBwdWAttrs extends ConvAttrs {
  /** The filter's shape [R,S,C,K]. */
  wShape: readonly number[];
}

/** Everything about one convolution's index math, from x [N,H,W,C] and w [R,S,C,K]: the window's placement and the sizes. */
interface Geom extends Window2d {
  N: number;
  H: number;
  W: number;
  C: number;
  R: number;
  S: number;
  K: number;
}

const CONV_WINDOW = { noun: 'kernel', strideAttr: 'stride' } as const;

/** Checks x [N,H,W,C] against w [R,S,C,K] and the attributes; throws ShapeError naming the op and the shapes. */
function convGeom(op: string, xs: Shape, ws: Shape, a: ConvAttrs): Geom {
  const [N, H, W, C] = rank4(op, 'x', xs);
  const [R, S, Cw, K] = rank4(op, 'w', ws, 'R,S,C,K');
  if (C !== Cw)
    throw new ShapeError(
      `${op}: x ${fmtShape(xs)} has C = ${C} but w ${fmtShape(ws)} has C = ${Cw}; expected equal channel counts`,
    );
  if (R < 1 || S < 1)
    throw new ShapeError(`${op}: w ${fmtShape(ws)} has an empty ${R}x${S} kernel; expected R, S >= 1`);
  const win = slideWindow(op, `x ${fmtShape(xs)} and w ${fmtShape(ws)}`, H, W, [R, S], a, CONV_WINDOW);
  return { N, H, W, C, R, S, K, ...win };
}

/** The window's stride, dilation and top/left padding as uniform words: the tail the conv kernels' structs share. */
const windowWords = (g: Geom): UniformWord[] => [i32(g.sh), i32(g.sw), i32(g.dh), i32(g.dw), i32(g.pt), i32(g.pl)];

const outShape = (g: Geom): number[] => [g.N, g.P, g.Q, g.K];

/** A 1×1 convolution without stride or padding: y [N·H·W, K] = x [N·H·W, C] @ w [C, K]. */
const isPointwise = (g: Geom): boolean =>
  g.R === 1 && g.S === 1 && g.sh === 1 && g.sw === 1 && g.pt + g.pb + g.pl + g.pr === 0;

function activationRow(op: string, name: Activation): (typeof UNARY)[UnaryName] | undefined {
  if (name === 'none') return undefined;
  if (!(name in UNARY)) {
    throw new WgnnError(
      `${op}: unknown activation '${String(name)}'; expected 'none' or one of ${Object.keys(UNARY).join(', ')}`,
    );
  }
  return UNARY[name];
}

/** The same storage seen with another shape (a GpuTensor is only a buffer and a shape). */
const reshaped = (t: GpuTensor, shape: number[]): GpuTensor => ({ buffer: t.buffer, shape, dtype: t.dtype });

// ---- Tiles. The kernels hold an 8x8 block of the output per thread (TM x TN, consts in the WGSL, as matmul.wgsl);
// the host sizes the workgroup tile to the GEMM: TILE_N covers the columns (8..64), TILE_M the rows (8..128,
// keeping TILE_M·TILE_N <= 4096, i.e. at most 64 threads, and the workgroup memory under 16 KiB). Small GEMMs
// (the filter gradient of a 3x3 C=1 layer is 9 x 32) then get small tiles instead of a 64x64 one that is 93% padding.
const TM = 8;
const TN = 8;
const TILE_K = 16;
/** The filter gradient splits its reduction until there are this many workgroups (enough to fill a large GPU). */
const TARGET_WORKGROUPS = 512;
/** ...but gives each split at least this many TILE_K slices, so the partial sums stay a small part of the work. */
const MIN_SLICES_PER_SPLIT = 4;
/** Most floats of partial sums the filter gradient keeps in scratch. */
const MAX_PARTIAL = 1 << 24;
const REDUCE_WG = 256;

const pow2 = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));

function tilesFor(rows: number, cols: number): { TILE_M: number; TILE_N: number; TILE_K: number } {
  const TILE_N = Math.min(64, Math.max(TN, pow2(cols)));
  const TILE_M = Math.min(128, 4096 / TILE_N, Math.max(TM, pow2(rows)));
  return { TILE_M, TILE_N, TILE_K };
}

const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);

// Sample and bad-case inputs: values in [-1, 1], where the stated tolerances were measured.
const RANGE: [number, number] = [-1, 1];
const inp = (shape: number[], dtype: 'int32' | 'float32' = 'float32') => ({ shape, dtype, range: RANGE });

// ---- conv2d / conv2d_bias

/** The direct forward takes inputs of at most this many channels. */
const FWD_DIRECT_MAX_C = 4;
/** Output channels per direct-forward thread where K % 4 == 0, in vec4s: 8 at C = 1, else 4 (measured below). */
const fwdDirectKbVec4 = (C: number): number => (C === 1 ? 8 : 4);
/** ...and in scalars where K % 4 != 0. */
const FWD_DIRECT_KB_SCALAR = 8;

/**
 * The forward kernel for a convolution (conv2d and conv2d_bias): conv2d_fwd_direct where C <= 4 (a thread per output
 * pixel and 16 or 32 output channels, no workgroup tiles), matmul for other 1×1 stride-1 unpadded convolutions, else
 * the implicit GEMM conv2d_fwd, whose K-deep tiles staged in workgroup memory dominate a reduction of R·S·C = 9. On
 * lavapipe (conv2d_bias + relu, wall clock, median of 9, 4 vec4s a thread): [64,28,28,1] 3x3 valid → 32, 8 ms direct
 * against 12.5 as the GEMM; [64,28,28,2] 'same' → 32, 14 against 24; C = 3 → 32, 20 against 24, → 64, 40 against 41;
 * C = 4 → 32 ([32,32,32,4] 'same'), 22 against 23. 8 vec4s a thread: 5.4 against 6.6 ms at C = 1 (the conv bench's
 * GPU time), but 33 against 20 at C = 3. At C = 8 → 32 the direct kernel loses with 4 vec4s (55 against 34 ms; with
 * 8 it wins, 27), so the GEMM keeps C > 4.
 */
export function conv2dFwdKernel(
  xShape: Shape,
  wShape: Shape,
  a: ConvAttrs,
): 'conv2d_fwd_direct' | 'matmul' | 'conv2d_fwd' {
  return fwdKernel(convGeom('conv2d', xShape, wShape, a));
}

function fwdKernel(g: Geom): 'conv2d_fwd_direct' | 'matmul' | 'conv2d_fwd' {
  if (g.C <= FWD_DIRECT_MAX_C) return 'conv2d_fwd_direct';
  return isPointwise(g) ? 'matmul' : 'conv2d_fwd';
}

function convOp(name: 'conv2d' | 'conv2d_bias'): OpDef<Conv2dAttrs> {
  const withBias = name === 'conv2d_bias';
  return defineOp<Conv2dAttrs>({
    name,
    arity: withBias ? 3 : 2,
    attrs: { stride: 1, padding: 'valid', dilation: 1, activation: 'none', alpha: 0.2 },
    infer: (inputs, attrs) => {
      const [x, w, bias] = inputs as [TensorSpec, TensorSpec, TensorSpec?];
      requireFloat(name, inputs);
      activationRow(name, attrs.activation);
      const g = convGeom(name, x.shape, w.shape, attrs);
      if (bias && (bias.shape.length !== 1 || bias.shape[0] !== g.K)) {
        throw new ShapeError(
          `${name}: bias ${fmtShape(bias.shape)} does not match K = ${g.K} of w ${fmtShape(w.shape)}; expected [${g.K}]`,
        );
      }
      return { shape: outShape(g), dtype: 'float32' };
    },
    cpu: ({ inputs: [x, w, bias], attrs, alloc }) => {
      const g = convGeom(name, x!.shape, w!.shape, attrs);
      return conv2dRef(
        g,
        x!.data as FloatArray,
        w!.data as FloatArray,
        bias?.data as FloatArray | undefined,
        attrs,
        alloc,
      );
    },
    gpu: ({ inputs: [x, w, bias], out, attrs, ctx }) => {
      const g = convGeom(name, x!.shape, w!.shape, attrs);
      const act = activationRow(name, attrs.activation);
      const kernel = fwdKernel(g);
      if (kernel === 'conv2d_fwd_direct') {
        const vec4 = g.K % 4 === 0;
        const KV = vec4 ? g.K / 4 : g.K;
        const KB = Math.min(KV, vec4 ? fwdDirectKbVec4(g.C) : FWD_DIRECT_KB_SCALAR);
        const groups = ceilDiv(KV, KB);
        const threads = g.N * g.P * g.Q * groups;
        const f = act?.wgsl ?? 'x';
        ctx.dispatch({
          shader: 'conv2d_fwd_direct',
          defines: vec4
            ? { V: 'vec4f', KB: String(KB), ACT: f, ACT_V: 'vec4f(act(a.x), act(a.y), act(a.z), act(a.w))' }
            : { V: 'f32', KB: String(KB), ACT: f, ACT_V: 'act(a)' },
          overrides: { WG: DIRECT_WG, CH: g.C, HAS_BIAS: withBias },
          workgroups: grid1d(threads, DIRECT_WG, ctx.limits.maxComputeWorkgroupsPerDimension),
          outputs: [out],
          // As the GEMM, a placeholder bias (one vec4) for plain conv2d.
          inputs: [x!, w!, bias ?? ctx.scratch(16)],
          uniforms: [
            u32(threads),
            u32(groups),
            u32(g.H),
            u32(g.W),
            u32(g.P),
            u32(g.Q),
            u32(g.R),
            u32(g.S),
            u32(KV),
            f32(attrs.alpha),
            ...windowWords(g),
          ],
        });
        return;
      }
      if (kernel === 'matmul') {
        const rows = g.N * g.H * g.W;
        const mm = withBias ? matmulOps.matmul_bias : matmulOps.matmul;
        const ins = [reshaped(x!, [rows, g.C]), reshaped(w!, [g.C, g.K])];
        mm.gpu({
          inputs: withBias ? [...ins, bias!] : ins,
          out: reshaped(out, [rows, g.K]),
          attrs: { transA: false, transB: false, activation: attrs.activation, alpha: attrs.alpha, kernel: 'auto' },
          ctx,
        });
        return;
      }
      const M = g.N * g.P * g.Q;
      const t = tilesFor(M, g.K);
      const [gy, gz] = foldIntoZ(ceilDiv(M, t.TILE_M), ctx.limits.maxComputeWorkgroupsPerDimension);
      ctx.dispatch({
        shader: 'conv2d_fwd',
        defines: { ACT: act?.wgsl ?? 'x', ...subgroupRowDefines(ctx, t.TILE_N / TN) },
        overrides: { ...t, HAS_BIAS: withBias },
        workgroups: [ceilDiv(g.K, t.TILE_N), gy, gz],
        outputs: [out],
        // The kernel always declares a bias binding; plain conv2d binds a placeholder it never reads.
        inputs: [x!, w!, bias ?? ctx.scratch(4)],
        uniforms: [
          u32(M),
          u32(g.K),
          u32(g.R * g.S * g.C),
          f32(attrs.alpha),
          u32(g.H),
          u32(g.W),
          u32(g.C),
          u32(g.S),
          u32(g.P),
          u32(g.Q),
          ...windowWords(g),
        ],
      });
    },
    samples: () => (withBias ? CASES.filter((c) => c.bias).map(biasSample) : CASES.map(fwdSample)),
    bad: withBias ? biasBad : convBad,
    // Inputs in [-1, 1], reductions of up to R·S·C = 576 terms: the largest error seen against the float64
    // reference was 3.5e-5 (the 56x56x64 layer, outputs of std ~8), at most 13% of this tolerance anywhere; it leaves
    // room for summation order and FMA contraction while a dropped or misplaced tap (error ~0.1 and up) fails.
    tol: { atol: 1e-4, rtol: 1e-4 },
    // dx reduces R·S·K = 576 terms, dw and dbias N·P·Q (3,136 for the 56x56 layer); largest error seen 3.4e-5.
    gradTol: { atol: 1e-4, rtol: 1e-4 },
    grad: convGrad(withBias),
  });
}

// y = act(z), z = x ⊛ w + bias. With dz = act'(dy):
//   dx = conv2d_bwd_x(dz, w) (the transposed convolution), dw = conv2d_bwd_w(x, dz), dbias = Σ_{n,p,q} dz.
function convGrad(withBias: boolean): Grad<Conv2dAttrs> {
  return {
    // relu/sigmoid/tanh/exp/sqrt take their derivative from y; the others need z, recomputed from x, w (and bias).
    saves: { inputs: withBias ? [0, 1, 2] : [0, 1], output: true },
    rule: ({ inputs: [x, w, bias], output: y, shapes, attrs, needs }, dy) => {
      const { activation: act, alpha, stride, padding, dilation } = attrs;
      const geo: ConvAttrs = { stride, padding, dilation };
      let dz = dy;
      if (act !== 'none') {
        const s =
          UNARY[act].grad.uses === 'y'
            ? y!
            : apply(withBias ? convOps.conv2d_bias : convOps.conv2d, withBias ? [x!, w!, bias!] : [x!, w!], geo);
        dz = apply(unaryOps[`${act}_bwd_x`], [s, dy], { alpha });
      }
      const dx = needs[0] ? apply(convOps.conv2d_bwd_x, [dz, w!], { ...geo, xShape: shapes[0]! }) : null;
      const dw = needs[1] ? apply(convOps.conv2d_bwd_w, [x!, dz], { ...geo, wShape: shapes[1]! }) : null;
      const dbias = withBias && needs[2] ? sum(dz, [0, 1, 2]) : null;
      return withBias ? [dx, dw, dbias] : [dx, dw];
    },
  };
}

// CPU reference, float64 sums. x [N,H,W,C], w [R,S,C,K], bias [K] -> y [N,P,Q,K]:
//   y[n,p,q,k] = act(Σ_{r,s,c} x[n, p·sh − pt + r·dh, q·sw − pl + s·dw, c] · w[r,s,c,k] + bias[k]),
// taps that fall in the padding contributing nothing.
function conv2dRef(
  g: Geom,
  x: FloatArray,
  w: FloatArray,
  bias: FloatArray | undefined,
  a: Conv2dAttrs,
  alloc: CpuArgs<unknown>['alloc'],
): FloatArray {
  const { N, H, W, C, R, S, K, P, Q } = g;
  const f = a.activation === 'none' ? undefined : UNARY[a.activation].ref;
  const y = alloc(N * P * Q * K);
  const acc = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < P; p++) {
      for (let q = 0; q < Q; q++) {
        acc.fill(0);
        for (let r = 0; r < R; r++) {
          const h = p * g.sh - g.pt + r * g.dh;
          if (h < 0 || h >= H) continue;
          for (let s = 0; s < S; s++) {
            const wc = q * g.sw - g.pl + s * g.dw;
            if (wc < 0 || wc >= W) continue;
            for (let c = 0; c < C; c++) {
              const xv = x[((n * H + h) * W + wc) * C + c]!;
              const wo = ((r * S + s) * C + c) * K;
              for (let k = 0; k < K; k++) acc[k] += xv * w[wo + k]!;
            }
          }
        }
        const yo = ((n * P + p) * Q + q) * K;
        for (let k = 0; k < K; k++) {
          const z = acc[k]! + (bias ? bias[k]! : 0);
          y[yo + k] = f ? f(z, a.alpha) : z;
        }
      }
    }
  }
  return y;
}

// ---- conv2d_bwd_x: dy [N,P,Q,K], w [R,S,C,K] -> dx [N,H,W,C]

/** The direct kernel takes inputs of at most this many channels (its per-thread accumulators). */
const DIRECT_MAX_C = 8;
const DIRECT_WG = 64;

/**
 * The input-gradient kernel for a convolution: conv2d_bwd_x_direct where C <= 8 (a thread per input pixel, all its
 * channels, the K sums in vec4s where K % 4 == 0), matmul for other 1×1 stride-1 unpadded convolutions, else the
 * implicit GEMM conv2d_bwd_x. The GEMM's columns are the C channels, so at C = 1 its 8x8 blocks are 7/8 padding: on
 * lavapipe the seed CNN's [64,28,28,1] 3x3 → 32 layer takes 19 ms direct, 175 ms as the GEMM; at C = 4, K = 32
 * 'same', 43 ms against 100-185 ms; [32,32,32,3] 3x3 stride 2 'same' → 16, 4 ms against 49 ms; at C = 8, K = 32
 * 'same', 75-83 ms against 181-187 ms. At C = 16 the GEMM wins (115-144 ms against 155-164 ms).
 */
export function conv2dBwdXKernel(
  xShape: Shape,
  wShape: Shape,
  a: ConvAttrs,
): 'conv2d_bwd_x_direct' | 'matmul' | 'conv2d_bwd_x' {
  return bwdXKernel(convGeom('conv2d_bwd_x', xShape, wShape, a));
}

function bwdXKernel(g: Geom): 'conv2d_bwd_x_direct' | 'matmul' | 'conv2d_bwd_x' {
  if (g.C <= DIRECT_MAX_C) return 'conv2d_bwd_x_direct';
  return isPointwise(g) ? 'matmul' : 'conv2d_bwd_x';
}

const conv2dBwdX: OpDef<Conv2dBwdXAttrs> = defineOp<Conv2dBwdXAttrs>({
  name: 'conv2d_bwd_x',
  arity: 2,
  attrs: { stride: 1, padding: 'valid', dilation: 1, xShape: [] },
  infer: (inputs, attrs) => {
    const [dy, w] = inputs as [TensorSpec, TensorSpec];
    requireFloat('conv2d_bwd_x', inputs);
    const g = convGeom('conv2d_bwd_x', attrs.xShape, w.shape, attrs);
    checkDy('conv2d_bwd_x', dy.shape, g, `x ${fmtShape(attrs.xShape)} (xShape) and w ${fmtShape(w.shape)}`);
    return { shape: [...attrs.xShape], dtype: 'float32' };
  },
  // In the forward pass each x[n,h,w,c] fed y[n,p,q,k] with weight w[r,s,c,k]; so now each dy[n,p,q,k] flows
  // back to that x through the same weight: the forward's loops, scattering into dx (float64).
  cpu: ({ inputs: [dy, w], attrs, alloc }) => {
    const g = convGeom('conv2d_bwd_x', attrs.xShape, w!.shape, attrs);
    const { N, H, W, C, R, S, K, P, Q } = g;
    const D = dy!.data;
    const F = w!.data;
    const dx = new Float64Array(N * H * W * C);
    for (let n = 0; n < N; n++) {
      for (let p = 0; p < P; p++) {
        for (let q = 0; q < Q; q++) {
          const yo = ((n * P + p) * Q + q) * K;
          for (let r = 0; r < R; r++) {
            const h = p * g.sh - g.pt + r * g.dh;
            if (h < 0 || h >= H) continue;
            for (let s = 0; s < S; s++) {
              const wc = q * g.sw - g.pl + s * g.dw;
              if (wc < 0 || wc >= W) continue;
              for (let c = 0; c < C; c++) {
                const wo = ((r * S + s) * C + c) * K;
                let acc = 0;
                for (let k = 0; k < K; k++) acc += D[yo + k]! * F[wo + k]!;
                dx[((n * H + h) * W + wc) * C + c] += acc;
              }
            }
          }
        }
      }
    }
    const out = alloc(dx.length);
    out.set(dx);
    return out;
  },
  gpu: ({ inputs: [dy, w], out, attrs, ctx }) => {
    const g = convGeom('conv2d_bwd_x', attrs.xShape, w!.shape, attrs);
    const M = g.N * g.H * g.W;
    const kernel = bwdXKernel(g);
    if (kernel === 'conv2d_bwd_x_direct') {
      const vec4 = g.K % 4 === 0;
      ctx.dispatch({
        shader: 'conv2d_bwd_x_direct',
        defines: vec4 ? { V: 'vec4f', TOTAL: '(a.x + a.y) + (a.z + a.w)' } : { V: 'f32', TOTAL: 'a' },
        overrides: { WG: DIRECT_WG, CH: g.C },
        workgroups: grid1d(M, DIRECT_WG, ctx.limits.maxComputeWorkgroupsPerDimension),
        outputs: [out],
        inputs: [dy!, w!],
        uniforms: [
          u32(M),
          u32(g.H),
          u32(g.W),
          u32(g.P),
          u32(g.Q),
          u32(g.R),
          u32(g.S),
          u32(vec4 ? g.K / 4 : g.K),
          ...windowWords(g),
        ],
      });
      return;
    }
    if (kernel === 'matmul') {
      // dx [N·H·W, C] = dy [N·H·W, K] @ w [C, K]ᵀ
      const attrsMm = { transA: false, transB: true, activation: 'none', alpha: 0, kernel: 'auto' } as const;
      matmulOps.matmul.gpu({
        inputs: [reshaped(dy!, [M, g.K]), reshaped(w!, [g.C, g.K])],
        out: reshaped(out, [M, g.C]),
        attrs: attrsMm,
        ctx,
      });
      return;
    }
    const t = tilesFor(M, g.C);
    const [gy, gz] = foldIntoZ(ceilDiv(M, t.TILE_M), ctx.limits.maxComputeWorkgroupsPerDimension);
    ctx.dispatch({
      shader: 'conv2d_bwd_x',
      defines: subgroupRowDefines(ctx, t.TILE_N / TN),
      overrides: { ...t, STRIDE_H: g.sh, STRIDE_W: g.sw },
      workgroups: [ceilDiv(g.C, t.TILE_N), gy, gz],
      outputs: [out],
      inputs: [dy!, w!],
      uniforms: [
        u32(M),
        u32(g.C),
        u32(g.R * g.S * g.K),
        u32(g.K),
        u32(g.H),
        u32(g.W),
        u32(g.P),
        u32(g.Q),
        u32(g.S),
        i32(g.dh),
        i32(g.dw),
        i32(g.pt),
        i32(g.pl),
      ],
    });
  },
  samples: () => CASES.map(bwdXSample),
  bad: [
    {
      name: 'dy does not match xShape and w',
      inputs: [inp([1, 4, 4, 2]), inp([3, 3, 3, 2])],
      attrs: { xShape: [1, 7, 7, 3] },
      error: ShapeError,
      message:
        /conv2d_bwd_x: dy \[1,4,4,2\] does not match the output of x \[1,7,7,3\] \(xShape\) and w \[3,3,3,2\].*expected \[1,5,5,2\]/,
    },
    {
      name: 'xShape rank 3',
      inputs: [inp([1, 5, 5, 2]), inp([3, 3, 3, 2])],
      attrs: { xShape: [7, 7, 3] },
      error: ShapeError,
      message: /conv2d_bwd_x: x \[7,7,3\] has rank 3; expected rank 4/,
    },
    {
      name: 'channel mismatch',
      inputs: [inp([1, 5, 5, 2]), inp([3, 3, 4, 2])],
      attrs: { xShape: [1, 7, 7, 3] },
      error: ShapeError,
      message: /conv2d_bwd_x: x \[1,7,7,3\] has C = 3 but w \[3,3,4,2\] has C = 4/,
    },
    {
      name: 'stride 0',
      inputs: [inp([1, 5, 5, 2]), inp([3, 3, 3, 2])],
      attrs: { xShape: [1, 7, 7, 3], stride: 0 },
      error: ShapeError,
      message: /conv2d_bwd_x: stride 0 for x \[1,7,7,3\] and w \[3,3,3,2\]; expected positive integers/,
    },
    {
      name: 'int32 dy',
      inputs: [inp([1, 5, 5, 2], 'int32'), inp([3, 3, 3, 2])],
      attrs: { xShape: [1, 7, 7, 3] },
      error: DTypeError,
      message: /conv2d_bwd_x: input 0 \[1,5,5,2\] is int32/,
    },
  ],
  // Reductions of up to R·S·K = 576 terms, as the forward: largest error seen 3.3e-5 (the 56x56x64 layer).
  tol: { atol: 1e-4, rtol: 1e-4 },
  grad: { none: 'second-order gradients are not supported' },
});

// ---- conv2d_bwd_w: x [N,H,W,C], dy [N,P,Q,K] -> dw [R,S,C,K]

/** Pixels per split, at least, of the direct filter gradient (each of its threads sums that many). */
const BWD_W_DIRECT_SPAN = 256;
/** Threads the direct filter gradient aims for over all its splits. */
const DIRECT_THREADS = 1 << 15;

/**
 * The filter-gradient kernel for a convolution: conv2d_bwd_w_direct where C <= 4 and K % 4 == 0 (a thread per tap and
 * vec4 of K, per split of the pixels), else the implicit GEMM conv2d_bwd_w. The GEMM's rows are the R·S·C taps, 9 at
 * the seed CNN's first layer, so its 8x8 blocks are mostly padding; its tiles also took lavapipe ~0.6 s to compile,
 * at the first step, against ~0.1 s for the direct kernel.
 */
export function conv2dBwdWKernel(xShape: Shape, wShape: Shape, a: ConvAttrs): 'conv2d_bwd_w_direct' | 'conv2d_bwd_w' {
  return bwdWKernel(convGeom('conv2d_bwd_w', xShape, wShape, a));
}

function bwdWKernel(g: Geom): 'conv2d_bwd_w_direct' | 'conv2d_bwd_w' {
  // NOTE: 65,535 workgroups per dimension is WebGPU's least limit: every device takes the direct grid.
  const fits = g.R * g.S * g.C * (g.K / 4) <= DIRECT_WG * 65535;
  return g.C <= FWD_DIRECT_MAX_C && g.K % 4 === 0 && fits ? 'conv2d_bwd_w_direct' : 'conv2d_bwd_w';
}

const conv2dBwdW: OpDef<Conv2dBwdWAttrs> = defineOp<Conv2dBwdWAttrs>({
  name: 'conv2d_bwd_w',
  arity: 2,
  attrs: { stride: 1, padding: 'valid', dilation: 1, wShape: [] },
  infer: (inputs, attrs) => {
    const [x, dy] = inputs as [TensorSpec, TensorSpec];
    requireFloat('conv2d_bwd_w', inputs);
    const g = convGeom('conv2d_bwd_w', x.shape, attrs.wShape, attrs);
    checkDy('conv2d_bwd_w', dy.shape, g, `x ${fmtShape(x.shape)} and w ${fmtShape(attrs.wShape)} (wShape)`);
    return { shape: [...attrs.wShape], dtype: 'float32' };
  },
  // In the forward pass w[r,s,c,k] multiplied x[n, p·sh − pt + r·dh, q·sw − pl + s·dw, c] into y[n,p,q,k] for
  // every output pixel; so now dw[r,s,c,k] = Σ_{n,p,q} that x · dy[n,p,q,k] (float64).
  cpu: ({ inputs: [x, dy], attrs, alloc }) => {
    const g = convGeom('conv2d_bwd_w', x!.shape, attrs.wShape, attrs);
    const { N, H, W, C, R, S, K, P, Q } = g;
    const X = x!.data;
    const D = dy!.data;
    const dw = new Float64Array(R * S * C * K);
    for (let n = 0; n < N; n++) {
      for (let p = 0; p < P; p++) {
        for (let q = 0; q < Q; q++) {
          const yo = ((n * P + p) * Q + q) * K;
          for (let r = 0; r < R; r++) {
            const h = p * g.sh - g.pt + r * g.dh;
            if (h < 0 || h >= H) continue;
            for (let s = 0; s < S; s++) {
              const wc = q * g.sw - g.pl + s * g.dw;
              if (wc < 0 || wc >= W) continue;
              for (let c = 0; c < C; c++) {
                const xv = X[((n * H + h) * W + wc) * C + c]!;
                const wo = ((r * S + s) * C + c) * K;
                for (let k = 0; k < K; k++) dw[wo + k] += xv * D[yo + k]!;
              }
            }
          }
        }
      }
    }
    const out = alloc(dw.length);
    out.set(dw);
    return out;
  },
  gpu: ({ inputs: [x, dy], out, attrs, ctx }) => {
    const g = convGeom('conv2d_bwd_w', x!.shape, attrs.wShape, attrs);
    const M = g.R * g.S * g.C;
    const red = g.N * g.P * g.Q;
    const maxDim = ctx.limits.maxComputeWorkgroupsPerDimension;
    const reduce = (part: GpuTensor | GPUBuffer, splits: number): void => {
      if (splits === 1) return;
      ctx.dispatch({
        shader: 'conv2d_bwd_w_reduce',
        overrides: { WG: REDUCE_WG },
        workgroups: grid1d(M * g.K, REDUCE_WG, maxDim),
        outputs: [out],
        inputs: [part],
        uniforms: [u32(M * g.K), u32(splits)],
      });
    };
    // Both kernels' uniforms: their output grid (rows, columns), the reduction and its span per split, the geometry.
    const uniforms = (rows: number, cols: number, span: number) =>
      [rows, cols, red, span, g.H, g.W, g.C, g.S, g.P, g.Q].map(u32).concat(windowWords(g));
    if (bwdWKernel(g) === 'conv2d_bwd_w_direct') {
      // A thread per (tap, vec4 of K) and split; splits of at least BWD_W_DIRECT_SPAN pixels, enough of them to give
      // DIRECT_THREADS threads in all (and partial sums within MAX_PARTIAL).
      const nOut = M * (g.K / 4);
      const want = Math.min(
        ceilDiv(red, BWD_W_DIRECT_SPAN),
        ceilDiv(DIRECT_THREADS, nOut),
        Math.floor(MAX_PARTIAL / Math.max(M * g.K, 1)),
        maxDim,
      );
      const span = Math.max(1, ceilDiv(red, Math.max(1, want)));
      const splits = Math.max(1, ceilDiv(red, span));
      const part = splits > 1 ? ctx.scratch(splits * M * g.K * 4) : out;
      ctx.dispatch({
        shader: 'conv2d_bwd_w_direct',
        overrides: { WG: DIRECT_WG },
        workgroups: [ceilDiv(nOut, DIRECT_WG), 1, splits],
        outputs: [part],
        inputs: [x!, dy!],
        uniforms: uniforms(nOut, g.K / 4, span),
      });
      reduce(part, splits);
      return;
    }
    const t = tilesFor(M, g.K);
    const tiles = ceilDiv(M, t.TILE_M) * ceilDiv(g.K, t.TILE_N);
    // Split N·P·Q into `splits` spans of whole TILE_K slices, one per workgroup z, each summed in the kernel;
    // then conv2d_bwd_w_reduce adds the partials in split order (deterministic: no float atomics).
    const slices = ceilDiv(red, TILE_K);
    const want = Math.min(
      ceilDiv(TARGET_WORKGROUPS, tiles),
      Math.floor(slices / MIN_SLICES_PER_SPLIT),
      Math.floor(MAX_PARTIAL / Math.max(M * g.K, 1)),
      ctx.limits.maxComputeWorkgroupsPerDimension,
    );
    const span = Math.max(1, ceilDiv(slices, Math.max(1, want))) * TILE_K;
    const splits = Math.max(1, ceilDiv(red, span));
    const part = splits > 1 ? ctx.scratch(splits * M * g.K * 4) : out;
    ctx.dispatch({
      shader: 'conv2d_bwd_w',
      defines: subgroupRowDefines(ctx, t.TILE_N / TN),
      overrides: t,
      workgroups: [ceilDiv(g.K, t.TILE_N), ceilDiv(M, t.TILE_M), splits],
      outputs: [part],
      inputs: [x!, dy!],
      uniforms: uniforms(M, g.K, span),
    });
    reduce(part, splits);
  },
  samples: () => CASES.map(bwdWSample),
  bad: [
    {
      name: 'dy does not match x and wShape',
      inputs: [inp([2, 6, 6, 3]), inp([2, 4, 4, 4])],
      attrs: { wShape: [3, 3, 3, 4], stride: 2, padding: 'same' },
      error: ShapeError,
      message:
        /conv2d_bwd_w: dy \[2,4,4,4\] does not match the output of x \[2,6,6,3\] and w \[3,3,3,4\] \(wShape\); expected \[2,3,3,4\]/,
    },
    {
      name: 'wShape rank 2',
      inputs: [inp([1, 5, 5, 2]), inp([1, 5, 5, 4])],
      attrs: { wShape: [2, 4] },
      error: ShapeError,
      message: /conv2d_bwd_w: w \[2,4\] has rank 2; expected rank 4/,
    },
    {
      name: 'dilation 0',
      inputs: [inp([1, 5, 5, 2]), inp([1, 3, 3, 4])],
      attrs: { wShape: [3, 3, 2, 4], dilation: [1, 0] },
      error: ShapeError,
      message: /conv2d_bwd_w: dilation \[1,0\] for x \[1,5,5,2\] and w \[3,3,2,4\]; expected positive integers/,
    },
    {
      name: 'int32 x',
      inputs: [inp([1, 5, 5, 2], 'int32'), inp([1, 3, 3, 4])],
      attrs: { wShape: [3, 3, 2, 4] },
      error: DTypeError,
      message: /conv2d_bwd_w: input 0 \[1,5,5,2\] is int32/,
    },
  ],
  // Sums over N·P·Q (3,136 terms for the 56x56 layer) in split partials: largest error seen 2.2e-5.
  tol: { atol: 1e-4, rtol: 1e-4 },
  grad: { none: 'second-order gradients are not supported' },
});

/** Throws unless dy is the output shape [N,P,Q,K] of the convolution `g`. */
function checkDy(op: string, dy: Shape, g: Geom, what: string): void {
  const want = outShape(g);
  if (dy.length !== 4 || dy.some((d, i) => d !== want[i])) {
    throw new ShapeError(`${op}: dy ${fmtShape(dy)} does not match the output of ${what}; expected ${fmtShape(want)}`);
  }
}

// ---- Samples: one list of convolutions; each op takes its own inputs from each.

interface Case {
  x: number[];
  w: number[];
  attrs?: Partial<ConvAttrs>;
  label?: string;
  /** Also a conv2d_bias sample, with this epilogue. */
  bias?: Pick<Conv2dAttrs, 'activation'> & Partial<Conv2dAttrs>;
}

// Awkward sizes on purpose: C = 1, odd H x W, R ≠ S, channel counts past a tile (19, 33, 65), stride and
// dilation on one axis only, a stride larger than the kernel (gaps in dx), 'same' that pads unevenly.
const CASES: Case[] = [
  { x: [2, 5, 6, 1], w: [3, 3, 1, 4], label: ' C=1', bias: { activation: 'relu' } },
  { x: [1, 7, 9, 3], w: [3, 2, 3, 5], label: ' odd 7x9, batch 1', bias: { activation: 'gelu' } },
  { x: [2, 9, 8, 4], w: [3, 3, 4, 6], attrs: { stride: 2, padding: 'same' }, bias: { activation: 'sigmoid' } },
  { x: [1, 7, 6, 2], w: [2, 2, 2, 3], attrs: { stride: 2, padding: 'same' }, label: ' (uneven padding)' },
  { x: [1, 11, 10, 3], w: [3, 3, 3, 5], attrs: { dilation: 2 }, bias: { activation: 'tanh' } },
  { x: [2, 8, 7, 5], w: [3, 3, 5, 3], attrs: { padding: 1 }, label: ' K=3', bias: { activation: 'none' } },
  { x: [1, 6, 7, 3], w: [2, 3, 3, 4], attrs: { padding: [1, 0, 2, 1], stride: [2, 1] }, bias: { activation: 'gelu' } },
  { x: [1, 8, 8, 2], w: [2, 2, 2, 3], attrs: { stride: 3 }, label: ' (stride > kernel)' },
  { x: [1, 9, 10, 19], w: [3, 3, 19, 65], attrs: { stride: [1, 2], dilation: [2, 1], padding: 'same' } },
  { x: [2, 7, 5, 33], w: [1, 1, 33, 17], label: ' 1x1 (matmul path)', bias: { activation: 'relu' } },
  {
    x: [2, 7, 9, 6],
    w: [1, 1, 6, 5],
    attrs: { stride: 2 },
    label: ' 1x1 stride 2',
    bias: { activation: 'leaky_relu', alpha: 0.1 },
  },
  { x: [0, 5, 5, 2], w: [3, 3, 2, 3], label: ' (empty batch: dw = 0)' },
  { x: [2, 28, 28, 1], w: [3, 3, 1, 32], label: ' seed CNN layer 1', bias: { activation: 'relu' } },
  // C <= 8: conv2d_bwd_x's direct kernel, with K in vec4s (K % 4 == 0) and in scalars.
  { x: [1, 9, 7, 2], w: [3, 3, 2, 8], attrs: { stride: 2, padding: 'same' }, label: ' C=2 K=8' },
  { x: [2, 10, 9, 1], w: [3, 2, 1, 5], attrs: { dilation: 2, padding: [2, 0, 1, 3] }, label: ' C=1 K=5' },
  {
    x: [1, 8, 9, 3],
    w: [2, 3, 3, 12],
    attrs: { stride: [2, 3], dilation: [1, 2], padding: [0, 1, 2, 0] },
    label: ' C=3 K=12',
  },
  { x: [1, 6, 5, 4], w: [3, 3, 4, 8], attrs: { padding: 1, dilation: [2, 1] }, label: ' C=4 K=8' },
  { x: [2, 5, 7, 1], w: [1, 1, 1, 8], label: ' 1x1 C=1' },
  { x: [2, 7, 8, 8], w: [3, 3, 8, 16], attrs: { stride: 2, padding: 'same' }, label: ' C=8 K=16' },
  { x: [1, 6, 9, 7], w: [2, 3, 7, 4], attrs: { padding: [1, 2, 0, 1] }, label: ' C=7 K=4' },
  // C <= 4: conv2d_fwd_direct, with K past one thread's block (32 channels in vec4s at C = 1, else 16; 8 scalars) and
  // a partial last block.
  { x: [1, 5, 6, 1], w: [3, 3, 1, 36], attrs: { padding: 'same' }, label: ' C=1 K=36', bias: { activation: 'gelu' } },
  {
    x: [1, 6, 7, 2],
    w: [3, 3, 2, 20],
    attrs: { stride: 2, padding: 'same' },
    label: ' C=2 K=20',
    bias: { activation: 'leaky_relu', alpha: 0.1 },
  },
  { x: [2, 5, 6, 1], w: [2, 2, 1, 19], attrs: { dilation: [1, 2] }, label: ' C=1 K=19', bias: { activation: 'relu' } },
  { x: [1, 56, 56, 64], w: [3, 3, 64, 64], attrs: { padding: 'same' }, label: ' ResNet 56x56x64->64' },
];

const fmtAttr = (v: unknown): string => JSON.stringify(v);

function caseName(c: Case, extra: Record<string, unknown> = {}): string {
  const on = Object.entries({ ...c.attrs, ...extra }).map(([k, v]) =>
    k === 'activation' ? String(v) : typeof v === 'string' ? v : `${k}=${fmtAttr(v)}`,
  );
  return `x${fmtShape(c.x)} w${fmtShape(c.w)}${on.length ? ` ${on.join(' ')}` : ''}${c.label ?? ''}`;
}

const caseGeom = (c: Case): Geom =>
  convGeom('sample', c.x, c.w, { stride: 1, padding: 'valid', dilation: 1, ...c.attrs });

const fwdSample = (c: Case): Sample<Conv2dAttrs> => ({
  name: caseName(c),
  inputs: [inp(c.x), inp(c.w)],
  attrs: { ...c.attrs },
});
const biasSample = (c: Case): Sample<Conv2dAttrs> => ({
  name: caseName(c, c.bias),
  inputs: [inp(c.x), inp(c.w), inp([c.w[3]!])],
  attrs: { ...c.attrs, ...c.bias },
});
const bwdXSample = (c: Case): Sample<Conv2dBwdXAttrs> => ({
  name: caseName(c),
  inputs: [inp(outShape(caseGeom(c))), inp(c.w)],
  attrs: { ...c.attrs, xShape: c.x },
});
const bwdWSample = (c: Case): Sample<Conv2dBwdWAttrs> => ({
  name: caseName(c),
  inputs: [inp(c.x), inp(outShape(caseGeom(c)))],
  attrs: { ...c.attrs, wShape: c.w },
});

// ---- Bad inputs

const convBad: BadCase<Conv2dAttrs>[] = [
  {
    name: 'x rank 3',
    inputs: [inp([5, 5, 1]), inp([3, 3, 1, 4])],
    error: ShapeError,
    message: /conv2d: x \[5,5,1\] has rank 3; expected rank 4 \[N,H,W,C\]/,
  },
  {
    name: 'w rank 3',
    inputs: [inp([1, 5, 5, 1]), inp([3, 3, 4])],
    error: ShapeError,
    message: /conv2d: w \[3,3,4\] has rank 3; expected rank 4 \[R,S,C,K\]/,
  },
  {
    name: 'channel mismatch',
    inputs: [inp([1, 5, 5, 3]), inp([3, 3, 2, 4])],
    error: ShapeError,
    message: /conv2d: x \[1,5,5,3\] has C = 3 but w \[3,3,2,4\] has C = 2; expected equal channel counts/,
  },
  {
    name: 'kernel larger than the padded input',
    inputs: [inp([1, 4, 6, 1]), inp([5, 3, 1, 2])],
    attrs: { padding: [0, 0, 1, 1] },
    error: ShapeError,
    message:
      /conv2d: the 5x3 kernel .* larger than the 4x6 input padded by \[0,0,1,1\] for x \[1,4,6,1\] and w \[5,3,1,2\]/,
  },
  {
    name: 'dilated kernel larger than the input',
    inputs: [inp([1, 6, 6, 1]), inp([3, 3, 1, 2])],
    attrs: { dilation: 3 },
    error: ShapeError,
    message: /conv2d: the 3x3 kernel \(dilation 3,3: 7x7 input pixels\) is larger than the 6x6 input/,
  },
  {
    name: 'stride 0',
    inputs: [inp([1, 5, 5, 1]), inp([3, 3, 1, 2])],
    attrs: { stride: 0 },
    error: ShapeError,
    message: /conv2d: stride 0 for x \[1,5,5,1\] and w \[3,3,1,2\]; expected positive integers/,
  },
  {
    name: 'negative stride',
    inputs: [inp([1, 5, 5, 1]), inp([3, 3, 1, 2])],
    attrs: { stride: [1, -2] },
    error: ShapeError,
    message: /conv2d: stride \[1,-2\] for x \[1,5,5,1\] and w \[3,3,1,2\]; expected positive integers/,
  },
  {
    name: 'dilation 0',
    inputs: [inp([1, 5, 5, 1]), inp([3, 3, 1, 2])],
    attrs: { dilation: 0 },
    error: ShapeError,
    message: /conv2d: dilation 0 for x \[1,5,5,1\] and w \[3,3,1,2\]/,
  },
  {
    name: 'negative padding',
    inputs: [inp([1, 5, 5, 1]), inp([3, 3, 1, 2])],
    attrs: { padding: [1, -1, 0, 0] },
    error: ShapeError,
    message: /conv2d: padding \[1,-1,0,0\] for x \[1,5,5,1\] and w \[3,3,1,2\]/,
  },
  {
    name: 'int32 x',
    inputs: [inp([1, 5, 5, 1], 'int32'), inp([3, 3, 1, 2])],
    error: DTypeError,
    message: /conv2d: input 0 \[1,5,5,1\] is int32; expected float32/,
  },
  {
    name: 'unknown activation',
    inputs: [inp([1, 5, 5, 1]), inp([3, 3, 1, 2])],
    attrs: { activation: 'softmax' as Activation },
    error: WgnnError,
    message: /conv2d: unknown activation 'softmax'/,
  },
];

const biasBad: BadCase<Conv2dAttrs>[] = [
  {
    name: 'bias length',
    inputs: [inp([1, 5, 5, 1]), inp([3, 3, 1, 4]), inp([3])],
    error: ShapeError,
    message: /conv2d_bias: bias \[3\] does not match K = 4 of w \[3,3,1,4\]; expected \[4\]/,
  },
  {
    name: 'bias rank 2',
    inputs: [inp([1, 5, 5, 1]), inp([3, 3, 1, 4]), inp([1, 4])],
    error: ShapeError,
    message: /conv2d_bias: bias \[1,4\] does not match K = 4/,
  },
  {
    name: 'channel mismatch',
    inputs: [inp([1, 5, 5, 2]), inp([3, 3, 1, 4]), inp([4])],
    error: ShapeError,
    message: /conv2d_bias: x \[1,5,5,2\] has C = 2 but w \[3,3,1,4\] has C = 1/,
  },
  {
    name: 'int32 bias',
    inputs: [inp([1, 5, 5, 1]), inp([3, 3, 1, 4]), inp([4], 'int32')],
    error: DTypeError,
    message: /conv2d_bias: input 2 \[4\] is int32/,
  },
];

export const convOps = {
  conv2d: convOp('conv2d'),
  conv2d_bias: convOp('conv2d_bias'),
  conv2d_bwd_x: conv2dBwdX,
  conv2d_bwd_w: conv2dBwdW,
};

/**
 * 2-D convolution (cross-correlation, as every framework), NHWC: x [N,H,W,C], w [R,S,C,K] -> y [N,P,Q,K].
 * `padding` 'same' follows TF/Keras (P = ceil(H / stride), extra padding at the bottom/right); `activation`
 * is applied to the output in the same kernel.
 */
export function conv2d(x: Tensor, w: Tensor, opts: Partial<Conv2dAttrs> = {}): Tensor {
  return apply(convOps.conv2d, [x, w], opts);
}

/** A convolution layer in one kernel: act(conv2d(x, w) + bias), bias [K]. Options as {@link conv2d}. */
export function conv2dBias(x: Tensor, w: Tensor, bias: Tensor, opts: Partial<Conv2dAttrs> = {}): Tensor {
  return apply(convOps.conv2d_bias, [x, w, bias], opts);
}
