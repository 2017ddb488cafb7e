// 2-D pooling over NHWC images: max_pool2d (which also writes its argmax for backward) and avg_pool2d, each with
// a backward op without atomics (a gather per input element; without overlap, one thread per window writes its
// band instead), plus global average pooling. Forward kernels take channel quads as vec4 where C % 4 == 0.
// Attributes as Keras/TF.js and PyTorch: poolSize, strides (default poolSize), padding 'valid' | 'same' | explicit.
import type { CpuArgs, FloatArray, TensorSpec } from '../backend/backend.js';
import { u32, type GpuArgs, type GpuContext, type GpuTensor } from '../backend/kernel.js';
import { DTypeError, ShapeError, fmtShape } from '../errors.js';
import type { Rng } from '../rng.js';
import { sameShape, sizeOf, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { defineOp, type BadCase, type OpDef, type Sample, type SampleInput } from './op.js';
import { mean } from './reduce.js';
import { requireFloat } from './util.js';
import { positivePair, rank4, rowThreadGrid, slideWindow, type Padding, type Pair, type Window2d } from './window.js';

/** Options of `maxPool2d` and `avgPool2d` over NHWC images. */
export interface Pool2dAttrs {
  /** Window size [ph, pw], or one number for both. */
  poolSize: Pair;
  /** Window step [sh, sw], or one number for both; undefined means poolSize (as Keras and PyTorch). */
  strides?: Pair | undefined;
  /**
   * 'valid' (no padding), 'same' (as TF: output = ceil(in / stride), the odd extra row/column at the bottom/right),
   * one number for all four sides, or [top, bottom, left, right]. Each side must be smaller than the pool size.
   */
  padding: Padding;
}

/** Options of `avgPool2d`. */
export interface AvgPool2dAttrs extends Pool2dAttrs {
  /**
   * Divide by the whole window (padding counted as zeros) instead of by the input elements it covers.
   * NOTE: the default false is Keras/TF's 'same' averaging; PyTorch's avg_pool2d defaults to count_include_pad=True.
   */
  countIncludePad: boolean;
}

/** Backward attributes: the forward's, plus the shape of the forward's input x [N,H,W,C]. */
export type Pool2dBwdAttrs = Pool2dAttrs & { xShape: readonly number[] };
export type AvgPool2dBwdAttrs = AvgPool2dAttrs & { xShape: readonly number[] };

/** Everything the references and kernels need: x [N,H,W,C], y [N,P,Q,C], window kh×kw, its placement (dilation 1). */
interface Geom extends Window2d {
  N: number;
  H: number;
  W: number;
  C: number;
  kh: number;
  kw: number;
}

const POOL_WINDOW = { noun: 'window', strideAttr: 'strides', padBelowSize: true } as const;

/**
 * Resolves the attributes against x's shape, throwing ShapeError naming the op and the shape. Every window that
 * results holds at least one real input element (padding < pool size and P, Q >= 1 guarantee it), so a max always
 * has a candidate and an average a nonzero count.
 */
function geometry(name: string, x: Shape, a: Pool2dAttrs, what = 'input'): Geom {
  const [N, H, W, C] = rank4(name, what, x);
  const where = `${what} ${fmtShape(x)}`;
  const [kh, kw] = positivePair(name, 'poolSize', a.poolSize, where);
  const win = slideWindow(
    name,
    where,
    H,
    W,
    [kh, kw],
    { stride: a.strides ?? a.poolSize, dilation: 1, padding: a.padding },
    POOL_WINDOW,
  );
  return { N, H, W, C, kh, kw, ...win };
}

const outShape = (g: Geom): number[] => [g.N, g.P, g.Q, g.C];

/** A backward op's geometry: that of its forward on x of shape attrs.xShape. */
const bwdGeometry = (name: string, a: Pool2dBwdAttrs): Geom => geometry(name, a.xShape, a, 'xShape');

/** The window of output (p, q) clipped to the input: rows [h0, h1), columns [w0, w1). */
function windowOf(g: Geom, p: number, q: number): { h0: number; h1: number; w0: number; w1: number } {
  const hs = p * g.sh - g.pt;
  const ws = q * g.sw - g.pl;
  return { h0: Math.max(hs, 0), h1: Math.min(hs + g.kh, g.H), w0: Math.max(ws, 0), w1: Math.min(ws + g.kw, g.W) };
}

// ---- CPU references (plain loops over outputs, float64 sums) ----

// x [N,H,W,C] -> y [N,P,Q,C], argmax [N,P,Q,C] (int32: h·W + w of the winner within its image and channel).
// NOTE: ties go to the first maximum in row-major window order (a later equal value does not replace it), as
// PyTorch; padded positions are never candidates (as if -Inf); a NaN wins over any number and the first NaN stays.
function maxPoolRef(x: ArrayLike<number>, g: Geom, y: FloatArray): { out: FloatArray; aux: Int32Array } {
  const arg = new Int32Array(y.length);
  let o = 0;
  for (let n = 0; n < g.N; n++) {
    for (let p = 0; p < g.P; p++) {
      for (let q = 0; q < g.Q; q++) {
        const { h0, h1, w0, w1 } = windowOf(g, p, q);
        for (let c = 0; c < g.C; c++, o++) {
          let best = NaN;
          let at = -1;
          for (let h = h0; h < h1; h++) {
            for (let w = w0; w < w1; w++) {
              const v = x[((n * g.H + h) * g.W + w) * g.C + c]!;
              if (at < 0 || (!Number.isNaN(best) && (v > best || Number.isNaN(v)))) {
                best = v;
                at = h * g.W + w;
              }
            }
          }
          y[o] = best;
          arg[o] = at;
        }
      }
    }
  }
  return { out: y, aux: arg };
}

/** Elements the average of window (p, q) divides by. */
function countOf(g: Geom, p: number, q: number, includePad: boolean): number {
  if (includePad) return g.kh * g.kw;
  const { h0, h1, w0, w1 } = windowOf(g, p, q);
  return (h1 - h0) * (w1 - w0);
}

// x [N,H,W,C] -> y [N,P,Q,C]: the window's sum over its real elements (padding adds 0) over countOf.
function avgPoolRef(x: ArrayLike<number>, g: Geom, includePad: boolean, y: FloatArray): FloatArray {
  let o = 0;
  for (let n = 0; n < g.N; n++) {
    for (let p = 0; p < g.P; p++) {
      for (let q = 0; q < g.Q; q++) {
        const { h0, h1, w0, w1 } = windowOf(g, p, q);
        const count = countOf(g, p, q, includePad);
        for (let c = 0; c < g.C; c++, o++) {
          let s = 0;
          for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) s += x[((n * g.H + h) * g.W + w) * g.C + c]!;
          y[o] = s / count;
        }
      }
    }
  }
  return y;
}

// dy [N,P,Q,C], argmax [N,P,Q,C] -> dx [N,H,W,C]. In the forward, y[n,p,q,c] was x at argmax, so each dy is added
// to that one element (a scatter here, in float64; the kernel gathers instead).
function maxPoolBwdRef(dy: ArrayLike<number>, arg: ArrayLike<number>, g: Geom, dx: FloatArray): FloatArray {
  const acc = new Float64Array(dx.length);
  let o = 0;
  for (let n = 0; n < g.N; n++) {
    for (let p = 0; p < g.P; p++) {
      for (let q = 0; q < g.Q; q++) {
        for (let c = 0; c < g.C; c++, o++) acc[(n * g.H * g.W + arg[o]!) * g.C + c]! += dy[o]!;
      }
    }
  }
  dx.set(acc);
  return dx;
}

// dy [N,P,Q,C] -> dx [N,H,W,C]. In the forward, y[n,p,q,c] was the window's sum over count, so each real element
// of the window gets dy / count (padding takes its share and drops it when countIncludePad).
function avgPoolBwdRef(dy: ArrayLike<number>, g: Geom, includePad: boolean, dx: FloatArray): FloatArray {
  const acc = new Float64Array(dx.length);
  let o = 0;
  for (let n = 0; n < g.N; n++) {
    for (let p = 0; p < g.P; p++) {
      for (let q = 0; q < g.Q; q++) {
        const { h0, h1, w0, w1 } = windowOf(g, p, q);
        const count = countOf(g, p, q, includePad);
        for (let c = 0; c < g.C; c++, o++) {
          for (let h = h0; h < h1; h++)
            for (let w = w0; w < w1; w++) acc[((n * g.H + h) * g.W + w) * g.C + c]! += dy[o]! / count;
        }
      }
    }
  }
  dx.set(acc);
  return dx;
}

// ---- GPU: every kernel runs on a rows × threads grid (rowThreadGrid), two integer divisions a thread ----

/** The uniforms of the kernels that include _pool.wgsl; c is C, or C / 4 in the vec4 kernels. */
const poolUniforms = (g: Geom, rows: number, c: number, includePad = false): number[] => [
  rows,
  g.H,
  g.W,
  c,
  g.P,
  g.Q,
  g.kh,
  g.kw,
  g.sh,
  g.sw,
  g.pt,
  g.pl,
  Number(includePad),
];

/**
 * The forward kernel: the vec4 one (a thread per output channel quad) where C % 4 == 0, else the scalar one. On
 * lavapipe at the seed CNN's [64,26,26,32] pool 2 the vec4 kernels take 2.2 ms (max) and 1.7 ms (avg), the scalar
 * ones forced on that shape 8-9 and 5-8 ms (the former one-thread-per-output kernels with four divisions: 10-11).
 */
export function poolFwdKernel(kind: 'max' | 'avg', x: Shape): `${'max' | 'avg'}_pool2d_fwd${'' | '_vec4'}` {
  return `${kind}_pool2d_fwd${x[3]! % 4 === 0 ? '_vec4' : ''}`;
}

function poolFwdDispatch(
  ctx: GpuContext,
  kind: 'max' | 'avg',
  g: Geom,
  outputs: GpuTensor[],
  x: GpuTensor,
  includePad = false,
) {
  const shader = poolFwdKernel(kind, [g.N, g.H, g.W, g.C]);
  const c = shader.endsWith('_vec4') ? g.C / 4 : g.C;
  if (g.N * g.P === 0 || g.Q * c === 0) return;
  const grid = rowThreadGrid(
    kind === 'max' ? 'max_pool2d' : 'avg_pool2d',
    g.N * g.P,
    g.Q * c,
    ctx.limits.maxComputeWorkgroupsPerDimension,
  );
  ctx.dispatch({ shader, ...grid, outputs, inputs: [x], uniforms: poolUniforms(g, g.N * g.P, c, includePad).map(u32) });
}

/**
 * The avg-pool backward kernel, chosen as maxPoolBwdKernel: avg_pool2d_bwd_window where windows cannot overlap
 * and C % 4 == 0 (a thread per dy quad writes its band of dx), else the gather avg_pool2d_bwd. On lavapipe at the
 * seed CNN's [64,26,26,32] pool 2 the window kernel takes 1.3 ms, the gather forced on that shape 5-6 ms (and the
 * former one-thread-per-element gather ~40 ms); at the ResNet stem's overlapping 3x3 s2 the gather takes 14 ms (48).
 */
export function avgPoolBwdKernel(a: AvgPool2dBwdAttrs): 'avg_pool2d_bwd_window' | 'avg_pool2d_bwd' {
  const g = bwdGeometry('avg_pool2d_bwd_x', a);
  return g.kh <= g.sh && g.kw <= g.sw && g.C % 4 === 0 ? 'avg_pool2d_bwd_window' : 'avg_pool2d_bwd';
}

/**
 * The max-pool backward kernel for these attributes: max_pool2d_bwd_window where windows cannot overlap (pool <=
 * stride on both axes) and C is a multiple of 4, else the gather max_pool2d_bwd (overlapping windows, other C).
 * On lavapipe at the seed CNN's [64,26,26,32] pool 2 the window kernel takes 1.4 ms, the gather 7.4 ms (and the
 * former one-thread-per-element gather 31 ms): a quarter of the gather's threads, vec4 loads and stores, no sums.
 */
export function maxPoolBwdKernel(a: Pool2dBwdAttrs): 'max_pool2d_bwd_window' | 'max_pool2d_bwd' {
  const g = bwdGeometry('max_pool2d_bwd_x', a);
  return g.kh <= g.sh && g.kw <= g.sw && g.C % 4 === 0 ? 'max_pool2d_bwd_window' : 'max_pool2d_bwd';
}

// ---- samples ----

interface Config {
  name: string;
  x: number[];
  attrs: Partial<AvgPool2dAttrs>;
  /** Explicit x values (ties, special values), made from the sample rng. */
  values?: (rng: Rng, x: Shape) => number[];
  range?: [number, number];
}

// Integers 0..2 (long runs of ties in every window), with about one element in 16 at -Inf.
// NOTE: ties have no derivative, so finite differences cannot check them; the -Inf entries (a masked input) also
// keep this sample out of the float64 gradient check, while GPU backward = CPU backward still checks the tie rule.
const tiesWithInf = (rng: Rng, x: Shape) =>
  Array.from({ length: sizeOf(x) }, () => (rng.next() < 1 / 16 ? -Infinity : rng.int(0, 3)));
// Integers -1..1 with NaN (propagates; the first one wins), +Inf, -0 beside 0, and each image's last row at -Inf
// (windows with nothing but -Inf must still pick a real element).
const specials = (rng: Rng, x: Shape) =>
  Array.from({ length: sizeOf(x) }, (_, i) => {
    const h = Math.floor(i / (x[2]! * x[3]!)) % x[1]!;
    if (h === x[1]! - 1) return -Infinity;
    return i % 7 === 3 ? NaN : i % 11 === 5 ? Infinity : i % 13 === 1 ? -0 : rng.int(-1, 2);
  });

const CONFIGS_COMMON: Config[] = [
  { name: '[3,8,8,1] pool 2', x: [3, 8, 8, 1], attrs: { poolSize: 2 } },
  { name: '[2,7,9,3] pool 2 valid', x: [2, 7, 9, 3], attrs: { poolSize: 2 } },
  { name: '[2,7,9,4] pool 2 same', x: [2, 7, 9, 4], attrs: { poolSize: 2, padding: 'same' } },
  { name: '[2,11,13,3] pool 3 stride 2', x: [2, 11, 13, 3], attrs: { poolSize: 3, strides: 2 } },
  { name: '[2,9,7,5] pool 3 stride 2 same', x: [2, 9, 7, 5], attrs: { poolSize: 3, strides: 2, padding: 'same' } },
  { name: '[1,6,7,5] pool 3 stride 1', x: [1, 6, 7, 5], attrs: { poolSize: 3, strides: 1 } },
  { name: '[2,26,26,32] pool 2', x: [2, 26, 26, 32], attrs: { poolSize: 2 } },
  { name: '[2,7,8,3] pool [2,3] strides [1,2]', x: [2, 7, 8, 3], attrs: { poolSize: [2, 3], strides: [1, 2] } },
  {
    name: '[1,5,6,33] pool [3,2] strides [2,1] padding [1,2,0,1]',
    x: [1, 5, 6, 33],
    attrs: { poolSize: [3, 2], strides: [2, 1], padding: [1, 2, 0, 1] },
  },
  { name: '[2,4,5,2] pool 2 stride 3', x: [2, 4, 5, 2], attrs: { poolSize: 2, strides: 3 } },
  { name: '[0,4,4,3] pool 2', x: [0, 4, 4, 3], attrs: { poolSize: 2 } },
];

// For the window backward kernels (pool <= stride, C % 4 = 0; the common ones above with 4 and 32 channels take
// them too) and the vec4 forward kernels (C % 4 = 0): rows and columns no window reaches (27 and 25 under pool 2;
// the gaps of stride 3), windows hanging over the edge ('same', explicit padding), batch 1. The seed CNN's shape
// with 3x3 stride 2 windows takes the gathers, as do all odd channel counts.
const CONFIGS_C4: Config[] = [
  { name: '[2,27,25,8] pool 2', x: [2, 27, 25, 8], attrs: { poolSize: 2 } },
  { name: '[2,8,7,4] pool 2 stride 3', x: [2, 8, 7, 4], attrs: { poolSize: 2, strides: 3 } },
  { name: '[1,8,10,8] pool 3 same', x: [1, 8, 10, 8], attrs: { poolSize: 3, padding: 'same' } },
  {
    name: '[1,5,7,12] pool [2,3] padding [1,0,2,1]',
    x: [1, 5, 7, 12],
    attrs: { poolSize: [2, 3], padding: [1, 0, 2, 1] },
  },
  { name: '[2,26,26,32] pool 3 stride 2', x: [2, 26, 26, 32], attrs: { poolSize: 3, strides: 2 } },
];

const MAX_CONFIGS: Config[] = [
  ...CONFIGS_COMMON,
  ...CONFIGS_C4,
  // All values negative: a padded zero would win if padding were a candidate.
  {
    name: '[2,7,7,3] pool 3 stride 2 padding 1 in [-3,-1]',
    x: [2, 7, 7, 3],
    attrs: { poolSize: 3, strides: 2, padding: 1 },
    range: [-3, -1],
  },
  {
    name: '[2,7,7,8] pool 3 stride 2 padding 1 in [-3,-1]',
    x: [2, 7, 7, 8],
    attrs: { poolSize: 3, strides: 2, padding: 1 },
    range: [-3, -1],
  },
  {
    name: '[2,6,7,3] pool 3 stride 1 ties and -Inf',
    x: [2, 6, 7, 3],
    attrs: { poolSize: 3, strides: 1 },
    values: tiesWithInf,
  },
  {
    name: '[2,6,7,8] pool 3 stride 1 ties and -Inf',
    x: [2, 6, 7, 8],
    attrs: { poolSize: 3, strides: 1 },
    values: tiesWithInf,
  },
  {
    name: '[2,6,7,3] pool 2 stride 1 same NaN, Inf, -0',
    x: [2, 6, 7, 3],
    attrs: { poolSize: 2, strides: 1, padding: 'same' },
    values: specials,
  },
  {
    name: '[2,6,7,4] pool 2 stride 1 same NaN, Inf, -0',
    x: [2, 6, 7, 4],
    attrs: { poolSize: 2, strides: 1, padding: 'same' },
    values: specials,
  },
];

const AVG_CONFIGS: Config[] = [
  ...CONFIGS_COMMON,
  ...CONFIGS_C4,
  { name: '[2,7,7,3] pool 3 stride 2 padding 1', x: [2, 7, 7, 3], attrs: { poolSize: 3, strides: 2, padding: 1 } },
  {
    name: '[2,7,7,3] pool 3 stride 2 padding 1 countIncludePad',
    x: [2, 7, 7, 3],
    attrs: { poolSize: 3, strides: 2, padding: 1, countIncludePad: true },
  },
  {
    name: '[2,9,7,5] pool 3 stride 2 same countIncludePad',
    x: [2, 9, 7, 5],
    attrs: { poolSize: 3, strides: 2, padding: 'same', countIncludePad: true },
  },
  // Windows over the edge, divided by kh·kw: the vec4 forward and the window backward.
  {
    name: '[1,7,9,8] pool 2 same countIncludePad',
    x: [1, 7, 9, 8],
    attrs: { poolSize: 2, padding: 'same', countIncludePad: true },
  },
  {
    name: '[2,5,7,4] pool [2,3] padding [1,0,2,1] countIncludePad',
    x: [2, 5, 7, 4],
    attrs: { poolSize: [2, 3], padding: [1, 0, 2, 1], countIncludePad: true },
  },
  {
    name: '[2,6,7,3] pool 2 stride 1 same NaN, Inf, -0',
    x: [2, 6, 7, 3],
    attrs: { poolSize: 2, strides: 1, padding: 'same' },
    values: specials,
  },
  {
    name: '[2,6,7,4] pool 2 stride 1 same NaN, Inf, -0',
    x: [2, 6, 7, 4],
    attrs: { poolSize: 2, strides: 1, padding: 'same' },
    values: specials,
  },
];

function xInput(c: Config, rng: Rng): SampleInput {
  if (c.values) return { shape: c.x, values: c.values(rng, c.x) };
  return c.range ? { shape: c.x, range: c.range } : { shape: c.x };
}

const geomOf = (name: string, c: Config, defaults: Pool2dAttrs) => geometry(name, c.x, { ...defaults, ...c.attrs });

// ---- bad cases ----

function badCases(name: string, input: (x: number[]) => SampleInput[], bwd: boolean): BadCase<AvgPool2dBwdAttrs>[] {
  const c = (label: string, x: number[], a: Partial<AvgPool2dAttrs>, message: RegExp): BadCase<AvgPool2dBwdAttrs> => ({
    name: label,
    inputs: input(x),
    attrs: bwd ? { ...a, xShape: x } : a,
    error: ShapeError,
    message,
  });
  const what = bwd ? 'xShape' : 'input';
  return [
    c('rank 3', [2, 3, 4], {}, new RegExp(`${name}: ${what} \\[2,3,4\\] has rank 3; expected rank 4`)),
    c(
      'pool size 0',
      [1, 4, 4, 1],
      { poolSize: 0 },
      new RegExp(`${name}: poolSize 0 for ${what} \\[1,4,4,1\\]; expected positive integers`),
    ),
    c(
      'stride 0',
      [1, 4, 4, 1],
      { poolSize: 2, strides: [1, 0] },
      new RegExp(`${name}: strides \\[1,0\\] for ${what} \\[1,4,4,1\\]; expected positive integers`),
    ),
    c(
      'window larger than the input',
      [1, 2, 5, 1],
      { poolSize: 3 },
      new RegExp(
        `${name}: the 3x3 window is larger than the 2x5 input padded by \\[0,0,0,0\\] for ${what} \\[1,2,5,1\\]; expected an output of at least 1x1`,
      ),
    ),
    c(
      'padding as large as the pool',
      [1, 4, 4, 1],
      { poolSize: 2, padding: 2 },
      new RegExp(
        `${name}: padding 2 for ${what} \\[1,4,4,1\\]; expected 'valid', 'same', .*, each smaller than the 2x2 window`,
      ),
    ),
  ];
}

// ---- ops ----

const POOL_DEFAULTS: Pool2dAttrs = { poolSize: 2, strides: undefined, padding: 'valid' };
const AVG_DEFAULTS: AvgPool2dAttrs = { ...POOL_DEFAULTS, countIncludePad: false };

/** Checks a backward op's inputs against the forward geometry of xShape: dy (and argmax) must be [N,P,Q,C]. */
function bwdShape(name: string, inputs: readonly TensorSpec[], a: Pool2dBwdAttrs): TensorSpec {
  const [dy, arg] = inputs as [TensorSpec, TensorSpec | undefined];
  requireFloat(name, [dy]);
  const want = outShape(bwdGeometry(name, a));
  if (!sameShape(dy.shape, want)) {
    throw new ShapeError(
      `${name}: dy ${fmtShape(dy.shape)} does not match the pooled shape ${fmtShape(want)} of x ${fmtShape(a.xShape)}; expected dy ${fmtShape(want)}`,
    );
  }
  if (arg) {
    if (arg.dtype !== 'int32')
      throw new DTypeError(`${name}: argmax ${fmtShape(arg.shape)} is ${arg.dtype}; expected int32`);
    if (!sameShape(arg.shape, dy.shape)) {
      throw new ShapeError(
        `${name}: argmax ${fmtShape(arg.shape)} and dy ${fmtShape(dy.shape)} differ; expected equal shapes`,
      );
    }
  }
  return { shape: a.xShape, dtype: 'float32' };
}

const int32X = (name: string) => ({
  name: 'int32 input',
  inputs: [{ shape: [1, 4, 4, 1], dtype: 'int32' as const }],
  error: DTypeError,
  message: new RegExp(`${name}: input 0 \\[1,4,4,1\\] is int32`),
});

/**
 * dx [N,H,W,C] from dy [N,P,Q,C] and argmax [N,P,Q,C]: each x element gets dy of the windows won by it (see
 * maxPoolBwdKernel for the two kernels).
 */
export const maxPool2dBwdOp: OpDef<Pool2dBwdAttrs> = defineOp<Pool2dBwdAttrs>({
  name: 'max_pool2d_bwd_x',
  arity: 2,
  attrs: { ...POOL_DEFAULTS, xShape: [] },
  infer: (inputs, a) => bwdShape('max_pool2d_bwd_x', inputs, a),
  cpu: ({ inputs: [dy, arg], attrs, alloc }: CpuArgs<Pool2dBwdAttrs>) =>
    maxPoolBwdRef(dy!.data, arg!.data, bwdGeometry('max_pool2d_bwd_x', attrs), alloc(sizeOf(attrs.xShape))),
  gpu: ({ inputs, out, attrs, ctx }: GpuArgs<Pool2dBwdAttrs>) => {
    const g = bwdGeometry('max_pool2d_bwd_x', attrs);
    const shader = maxPoolBwdKernel(attrs);
    const [rows, len, c] =
      shader === 'max_pool2d_bwd_window'
        ? [g.N * g.P, g.Q * (g.C / 4), g.C / 4]
        : [g.N * g.H, g.W * Math.ceil(g.C / 4), g.C];
    if (rows === 0 || len === 0) return;
    const grid = rowThreadGrid('max_pool2d_bwd_x', rows, len, ctx.limits.maxComputeWorkgroupsPerDimension);
    ctx.dispatch({ shader, ...grid, outputs: [out], inputs, uniforms: poolUniforms(g, rows, c).map(u32) });
  },
  // dy random; argmax from the CPU forward reference on random x (or ties), so every index lies in its window.
  samples: function* (rng) {
    for (const c of MAX_CONFIGS) {
      const g = geomOf('max_pool2d_bwd_x', c, POOL_DEFAULTS);
      const n = sizeOf(c.x);
      const x = c.values ? c.values(rng, c.x) : Array.from({ length: n }, () => rng.uniform(-2, 2));
      const { aux } = maxPoolRef(x, g, new Float64Array(sizeOf(outShape(g))));
      yield {
        name: c.name,
        inputs: [{ shape: outShape(g) }, { shape: outShape(g), dtype: 'int32', values: [...aux] }],
        attrs: { ...c.attrs, xShape: c.x },
      } satisfies Sample<Pool2dBwdAttrs>;
    }
  },
  bad: [
    ...badCases('max_pool2d_bwd_x', () => [{ shape: [1, 1, 1, 1] }, { shape: [1, 1, 1, 1], dtype: 'int32' }], true),
    {
      name: 'dy not the pooled shape',
      inputs: [{ shape: [1, 3, 2, 2] }, { shape: [1, 3, 2, 2], dtype: 'int32' }],
      attrs: { poolSize: 2, xShape: [1, 4, 4, 2] },
      error: ShapeError,
      message: /max_pool2d_bwd_x: dy \[1,3,2,2\] does not match the pooled shape \[1,2,2,2\] of x \[1,4,4,2\]/,
    },
    {
      name: 'float argmax',
      inputs: [{ shape: [1, 2, 2, 2] }, { shape: [1, 2, 2, 2] }],
      attrs: { poolSize: 2, xShape: [1, 4, 4, 2] },
      error: DTypeError,
      message: /max_pool2d_bwd_x: argmax \[1,2,2,2\] is float32; expected int32/,
    },
    {
      name: 'argmax shape differs',
      inputs: [{ shape: [1, 2, 2, 2] }, { shape: [1, 2, 2, 1], dtype: 'int32' }],
      attrs: { poolSize: 2, xShape: [1, 4, 4, 2] },
      error: ShapeError,
      message: /max_pool2d_bwd_x: argmax \[1,2,2,1\] and dy \[1,2,2,2\] differ/,
    },
  ],
  // Each dx sums up to ceil(kh/sh)·ceil(kw/sw) dy in f32 (9 in pool 3 stride 1); measured |error| <= 4.8e-7 over
  // 5 seeds of the samples (the float64 reference rounds once).
  tol: { atol: 2e-6, rtol: 1e-5 },
  grad: { none: 'second-order gradients are not supported' },
});

export const maxPool2dOp: OpDef<Pool2dAttrs> = defineOp<Pool2dAttrs>({
  name: 'max_pool2d',
  arity: 1,
  attrs: POOL_DEFAULTS,
  infer: ([x], a) => {
    requireFloat('max_pool2d', [x!]);
    return { shape: outShape(geometry('max_pool2d', x!.shape, a)), dtype: 'float32' };
  },
  aux: ([x], a) => ({ shape: outShape(geometry('max_pool2d', x!.shape, a)), dtype: 'int32' }),
  cpu: ({ inputs: [x], out, attrs, alloc }) =>
    maxPoolRef(x!.data, geometry('max_pool2d', x!.shape, attrs), alloc(sizeOf(out.shape))),
  gpu: ({ inputs: [x], out, aux, attrs, ctx }) =>
    poolFwdDispatch(ctx, 'max', geometry('max_pool2d', x!.shape, attrs), [out, aux!], x!),
  samples: function* (rng) {
    for (const c of MAX_CONFIGS)
      yield { name: c.name, inputs: [xInput(c, rng)], attrs: c.attrs } satisfies Sample<Pool2dAttrs>;
  },
  bad: [...badCases('max_pool2d', (x) => [{ shape: x }], false), int32X('max_pool2d')],
  // A max picks one input value: exact.
  tol: { atol: 0, rtol: 0 },
  gradTol: maxPool2dBwdOp.tol,
  grad: {
    saves: {},
    // d max_pool2d: dx[argmax] += dy, through the argmax the forward kernel saved (the forward is never rerun).
    rule: ({ aux, shapes, attrs, needs }, dy) => [
      needs[0] ? apply(maxPool2dBwdOp, [dy, aux!], { ...attrs, xShape: shapes[0]! }) : null,
    ],
  },
});

/** dx [N,H,W,C] from dy [N,P,Q,C]: each x element gets dy / count of the windows that contain it (see avgPoolBwdKernel). */
export const avgPool2dBwdOp: OpDef<AvgPool2dBwdAttrs> = defineOp<AvgPool2dBwdAttrs>({
  name: 'avg_pool2d_bwd_x',
  arity: 1,
  attrs: { ...AVG_DEFAULTS, xShape: [] },
  infer: (inputs, a) => bwdShape('avg_pool2d_bwd_x', inputs, a),
  cpu: ({ inputs: [dy], attrs, alloc }) =>
    avgPoolBwdRef(dy!.data, bwdGeometry('avg_pool2d_bwd_x', attrs), attrs.countIncludePad, alloc(sizeOf(attrs.xShape))),
  gpu: ({ inputs, out, attrs, ctx }) => {
    const g = bwdGeometry('avg_pool2d_bwd_x', attrs);
    const shader = avgPoolBwdKernel(attrs);
    const [rows, len, c] =
      shader === 'avg_pool2d_bwd_window'
        ? [g.N * g.P, g.Q * (g.C / 4), g.C / 4]
        : [g.N * g.H, g.W * Math.ceil(g.C / 4), g.C];
    if (rows === 0 || len === 0) return;
    const grid = rowThreadGrid('avg_pool2d_bwd_x', rows, len, ctx.limits.maxComputeWorkgroupsPerDimension);
    ctx.dispatch({
      shader,
      ...grid,
      outputs: [out],
      inputs,
      uniforms: poolUniforms(g, rows, c, attrs.countIncludePad).map(u32),
    });
  },
  samples: function* () {
    for (const c of AVG_CONFIGS) {
      if (c.values) continue; // special x values mean nothing here: backward never reads x
      const g = geomOf('avg_pool2d_bwd_x', c, AVG_DEFAULTS);
      yield {
        name: c.name,
        inputs: [{ shape: outShape(g) }],
        attrs: { ...c.attrs, xShape: c.x },
      } satisfies Sample<AvgPool2dBwdAttrs>;
    }
  },
  bad: [
    ...badCases('avg_pool2d_bwd_x', () => [{ shape: [1, 1, 1, 1] }], true),
    {
      name: 'dy not the pooled shape',
      inputs: [{ shape: [1, 2, 2, 3] }],
      attrs: { poolSize: 2, xShape: [1, 4, 4, 2] },
      error: ShapeError,
      message: /avg_pool2d_bwd_x: dy \[1,2,2,3\] does not match the pooled shape \[1,2,2,2\] of x \[1,4,4,2\]/,
    },
  ],
  // An f32 sum of up to 9 dy / count; measured |error| <= 1.2e-7 over 5 seeds of the samples.
  tol: { atol: 1e-6, rtol: 1e-5 },
  grad: { none: 'second-order gradients are not supported' },
});

export const avgPool2dOp: OpDef<AvgPool2dAttrs> = defineOp<AvgPool2dAttrs>({
  name: 'avg_pool2d',
  arity: 1,
  attrs: AVG_DEFAULTS,
  infer: ([x], a) => {
    requireFloat('avg_pool2d', [x!]);
    return { shape: outShape(geometry('avg_pool2d', x!.shape, a)), dtype: 'float32' };
  },
  cpu: ({ inputs: [x], out, attrs, alloc }) =>
    avgPoolRef(x!.data, geometry('avg_pool2d', x!.shape, attrs), attrs.countIncludePad, alloc(sizeOf(out.shape))),
  gpu: ({ inputs: [x], out, attrs, ctx }) =>
    poolFwdDispatch(ctx, 'avg', geometry('avg_pool2d', x!.shape, attrs), [out], x!, attrs.countIncludePad),
  samples: function* (rng) {
    for (const c of AVG_CONFIGS)
      yield { name: c.name, inputs: [xInput(c, rng)], attrs: c.attrs } satisfies Sample<AvgPool2dAttrs>;
  },
  bad: [...badCases('avg_pool2d', (x) => [{ shape: x }], false), int32X('avg_pool2d')],
  // An f32 window sum of up to 9 values over count; measured |error| <= 1.8e-7 over 5 seeds of the samples.
  tol: { atol: 1e-6, rtol: 1e-5 },
  gradTol: avgPool2dBwdOp.tol,
  grad: {
    saves: {},
    // d avg_pool2d: dx[h,w] = Σ over windows containing (h,w) of dy / count.
    rule: ({ shapes, attrs, needs }, dy) => [
      needs[0] ? apply(avgPool2dBwdOp, [dy], { ...attrs, xShape: shapes[0]! }) : null,
    ],
  },
});

export const poolOps = {
  max_pool2d: maxPool2dOp,
  max_pool2d_bwd_x: maxPool2dBwdOp,
  avg_pool2d: avgPool2dOp,
  avg_pool2d_bwd_x: avgPool2dBwdOp,
};

/**
 * Max pooling over H and W of x [N,H,W,C] -> [N,P,Q,C], as tf.layers.maxPooling2d / torch max_pool2d (NHWC).
 * Defaults: poolSize 2, strides = poolSize, padding 'valid'. Ties go to the first maximum in row-major window
 * order; padding never wins; NaN propagates. Its gradient goes to the winning element only.
 */
export const maxPool2d = (x: Tensor, opts: Partial<Pool2dAttrs> = {}): Tensor => apply(maxPool2dOp, [x], opts);

/**
 * Average pooling over H and W of x [N,H,W,C] -> [N,P,Q,C]. Defaults: poolSize 2, strides = poolSize, padding
 * 'valid', countIncludePad false (padding is left out of the divisor, as Keras/TF; PyTorch counts it by default).
 */
export const avgPool2d = (x: Tensor, opts: Partial<AvgPool2dAttrs> = {}): Tensor => apply(avgPool2dOp, [x], opts);

/** Mean over H and W: x [N,H,W,C] -> [N,C], as tf.layers.globalAveragePooling2d. */
export function globalAvgPool2d(x: Tensor): Tensor {
  if (x.rank !== 4)
    throw new ShapeError(`global_avg_pool2d: input ${fmtShape(x.shape)} has rank ${x.rank}; expected rank 4 [N,H,W,C]`);
  return mean(x, [1, 2]);
}
