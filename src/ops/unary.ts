// Unary elementwise ops: each a row with two independent implementations side by side, the WGSL expression
// (spliced into shaders/unary_fwd.wgsl, `x` the input, `p.alpha` the attribute) and the CPU reference, and the
// same for its derivative (shaders/unary_bwd.wgsl): one forward and one backward kernel for the whole family.
import type { TensorSpec } from '../backend/backend.js';
import { grid1d, f32, u32, type GpuArgs } from '../backend/kernel.js';
import { ArgumentError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { sameShape, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { defineOp, type OpDef } from './op.js';
import { erf, requireFloat } from './util.js';

export interface UnaryAttrs {
  /** leaky_relu's negative slope; unused by the others. */
  alpha: number;
}

interface UnaryRow {
  wgsl: string;
  ref: (x: number, alpha: number) => number;
  /** Input range for random samples (log and sqrt stay positive; special values are tested separately). */
  range?: [number, number];
  tol?: { atol: number; rtol: number };
  /**
   * The derivative as dx = g(s, dy), where s is the saved input `x` or output `y` (whichever makes g cheaper),
   * again as WGSL (spliced into shaders/unary_bwd.wgsl) beside its CPU reference. `yRange`: where y lives.
   */
  grad: {
    uses: 'x' | 'y';
    wgsl: string;
    ref: (s: number, dy: number, alpha: number) => number;
    yRange?: [number, number];
  };
}

const PHI = 0.3989422804014327; // 1/√(2π)
const GELU_C = 0.7978845608028654; // √(2/π)
const GELU_K = 0.044715;

// NOTE: NaN in, NaN out, as PyTorch and TF: relu(NaN) = NaN, so one NaN input shows in the loss instead of being
// mapped to 0 and training on silently. WGSL's max/min/clamp may drop a NaN operand and compilers may fold x != x,
// so NaN is tested by its bits (is_nan_f32). The derivatives follow torch 1.13 at NaN too: relu'(NaN)·dy = dy (its
// backward masks only y <= 0), leaky_relu'(NaN)·dy = alpha·dy, abs'(NaN) = sgn(NaN) = 0.
// NOTE: relu'(0) = 0 and abs'(0) = 0, as PyTorch.
export const UNARY = {
  relu: {
    wgsl: 'select(max(x, 0.0), x, is_nan_f32(x))',
    ref: (x) => (x > 0 || Number.isNaN(x) ? x : 0),
    grad: {
      uses: 'y',
      wgsl: 'select(0.0, dy, y > 0.0 || is_nan_f32(y))',
      ref: (y, dy) => (y > 0 || Number.isNaN(y) ? dy : 0),
      yRange: [0, 3],
    },
  },
  leaky_relu: {
    wgsl: 'select(p.alpha * x, x, x > 0.0)',
    ref: (x, a) => (x > 0 ? x : a * x),
    grad: {
      uses: 'x',
      wgsl: 'select(p.alpha * dy, dy, x > 0.0 && !is_nan_f32(x))',
      ref: (x, dy, a) => (x > 0 ? dy : a * dy),
    },
  },
  sigmoid: {
    wgsl: 'sigmoid_f32(x)',
    ref: (x) => 1 / (1 + Math.exp(-x)),
    range: [-12, 12],
    // d sigmoid = y (1 - y)
    grad: { uses: 'y', wgsl: 'dy * y * (1.0 - y)', ref: (y, dy) => dy * y * (1 - y), yRange: [0, 1] },
  },
  tanh: {
    wgsl: 'tanh_f32(x)',
    ref: (x) => Math.tanh(x),
    range: [-6, 6],
    // d tanh = 1 - y²
    grad: { uses: 'y', wgsl: 'dy * (1.0 - y * y)', ref: (y, dy) => dy * (1 - y * y), yRange: [-1, 1] },
  },
  // NOTE: gelu is the exact erf form (PyTorch's and Keras's default), not the tanh approximation.
  gelu: {
    wgsl: '0.5 * x * (1.0 + erf_f32(x * 0.7071067811865476))',
    ref: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
    range: [-5, 5],
    // d gelu = Φ(x) + x φ(x)
    grad: {
      uses: 'x',
      wgsl: `dy * (0.5 * (1.0 + erf_f32(x * 0.7071067811865476)) + x * ${PHI} * exp(-0.5 * x * x))`,
      ref: (x, dy) => dy * (0.5 * (1 + erf(x / Math.SQRT2)) + x * PHI * Math.exp(-0.5 * x * x)),
    },
  },
  // GPT-2's gelu, torch's F.gelu(x, approximate='tanh'): 0.5 x (1 + tanh(u)), u = c (x + k x³), c = √(2/π),
  // k = 0.044715. Torch 1.13 (float64): x = -3, -1, 0.5, 3 -> -0.0036373920817729943, -0.1588080093917233,
  // 0.34571400982514394, 2.996362607918227; derivative 1.0115841666309695 at 3, -0.08296408384578258 at -1;
  // gelu(-Inf) = NaN (-Inf·0), as here.
  gelu_tanh: {
    wgsl: `0.5 * x * (1.0 + tanh_f32(${GELU_C} * (x + ${GELU_K} * x * x * x)))`,
    ref: (x) => 0.5 * x * (1 + Math.tanh(GELU_C * (x + GELU_K * x * x * x))),
    range: [-5, 5],
    // d gelu_tanh = 0.5 (1 + t) + 0.5 x (1 - t²) c (1 + 3k x²), t = tanh(u) (torch's formula; NaN at ±Inf as torch)
    grad: {
      uses: 'x',
      wgsl: `dy * gelu_tanh_grad_f32(x)`,
      ref: (x, dy) => {
        const t = Math.tanh(GELU_C * (x + GELU_K * x * x * x));
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * GELU_K * x * x));
      },
    },
  },
  exp: {
    wgsl: 'exp(x)',
    ref: (x) => Math.exp(x),
    range: [-10, 10],
    tol: { atol: 1e-6, rtol: 2e-5 },
    grad: { uses: 'y', wgsl: 'dy * y', ref: (y, dy) => dy * y, yRange: [0, 20] },
  },
  log: {
    wgsl: 'log(x)',
    ref: (x) => Math.log(x),
    range: [1e-3, 100],
    grad: { uses: 'x', wgsl: 'dy / x', ref: (x, dy) => dy / x },
  },
  neg: { wgsl: '-x', ref: (x) => -x, grad: { uses: 'x', wgsl: '-dy', ref: (_, dy) => -dy } },
  sqrt: {
    wgsl: 'sqrt(x)',
    ref: (x) => Math.sqrt(x),
    range: [0, 100],
    // d √x = 1 / (2 √x)
    grad: { uses: 'y', wgsl: '0.5 * dy / y', ref: (y, dy) => (0.5 * dy) / y, yRange: [0.01, 10] },
  },
  square: { wgsl: 'x * x', ref: (x) => x * x, grad: { uses: 'x', wgsl: '2.0 * x * dy', ref: (x, dy) => 2 * x * dy } },
  abs: {
    wgsl: 'abs(x)',
    ref: (x) => Math.abs(x),
    // dy · sgn(x), sgn(NaN) = 0 as torch (WGSL's sign(NaN) is unspecified, JavaScript's is NaN).
    grad: {
      uses: 'x',
      wgsl: 'dy * select(sign(x), 0.0, is_nan_f32(x))',
      ref: (x, dy) => dy * (x > 0 ? 1 : x < 0 ? -1 : 0),
    },
  },
} satisfies Record<string, UnaryRow>;

export type UnaryName = keyof typeof UNARY;

const WG = 256;

// Special values each op must get right (Inf/NaN positions must match between GPU and CPU), besides NONFINITE.
const SPECIAL: Partial<Record<UnaryName, number[]>> = {
  exp: [0, -0, 1, -1, 88, 89, -104],
  log: [0, -0, -1, 1, 1e-30],
  sqrt: [0, -1, 4, 1e-30],
  sigmoid: [0, 50, -50, 100, -100],
  tanh: [0, 20, -20, 60, -60, 1e-7],
  gelu: [0, 10, -10, 1e-6],
  gelu_tanh: [0, 10, -10, 1e-6, 0.5, -3],
};
const SMOOTH_SPECIAL: ReadonlySet<UnaryName> = new Set(['sigmoid', 'tanh', 'gelu', 'gelu_tanh']);
// Every op's forward and backward get these: NaN must come out as NaN (PyTorch), ±Inf as the CPU reference says.
const NONFINITE = [NaN, Infinity, -Infinity];
// The saved x or y of the backward's special sample, against DY_SPECIAL: 7 and 5 values are coprime, so the
// [35]-element sample, each list cycled, meets every pair.
const S_SPECIAL = [NaN, Infinity, -Infinity, 0, -0, 1, -1];
const DY_SPECIAL = [1, -2, NaN, Infinity, 0];

// [WG * 4 * 257 + 3]: past 257 full workgroups of 4-element threads, the last thread with 3 elements.
const SHAPES = [[1], [7], [33], [65], [129], [3, 5, 7], [2, 0, 3], [], [WG * 4 * 257 + 3]];

const int32Bad = (name: string, arity: number) => ({
  name: 'int32 input',
  inputs: Array.from({ length: arity }, () => ({ shape: [2, 3], dtype: 'int32' as const })),
  error: DTypeError,
  message: new RegExp(`${name}: input 0 \\[2,3\\] is int32`),
});

function elementwise(name: string, shader: 'unary_fwd' | 'unary_bwd', expr: string) {
  return {
    infer: (inputs: readonly TensorSpec[]): TensorSpec => {
      requireFloat(name, inputs);
      if (inputs[1] && !sameShape(inputs[0]!.shape, inputs[1].shape)) {
        throw new ShapeError(
          `${name}: ${fmtShape(inputs[0]!.shape)} and ${fmtShape(inputs[1].shape)} differ; expected equal shapes`,
        );
      }
      return { shape: inputs[0]!.shape, dtype: 'float32' };
    },
    gpu: ({ inputs, out, attrs, ctx }: GpuArgs<UnaryAttrs>) => {
      const n = sizeOf(out.shape);
      ctx.dispatch({
        shader,
        defines: { EXPR: expr },
        overrides: { WG },
        // 4 elements per thread.
        workgroups: grid1d(Math.ceil(n / 4), WG, ctx.limits.maxComputeWorkgroupsPerDimension),
        outputs: [out],
        inputs,
        uniforms: [u32(n), f32(attrs.alpha)],
      });
    },
  };
}

// dx = g(s, dy): the backward kernel of one unary op; s is its saved x or y.
function unaryBwdOp(name: UnaryName): OpDef<UnaryAttrs> {
  const g: UnaryRow['grad'] = UNARY[name].grad;
  const bwd = `${name}_bwd_x`;
  const sRange = g.uses === 'y' ? (g.yRange ?? [-3, 3]) : ((UNARY[name] as UnaryRow).range ?? [-3, 3]);
  return defineOp<UnaryAttrs>({
    name: bwd,
    arity: 2,
    attrs: { alpha: 0.2 },
    ...elementwise(bwd, 'unary_bwd', g.wgsl.replace(/\b[xy]\b/g, 's')),
    // dx [n] = g(s [n], dy [n])
    cpu: ({ inputs: [sv, dy], attrs, alloc }) => {
      const out = alloc(sv!.data.length);
      for (let i = 0; i < out.length; i++) out[i] = g.ref(sv!.data[i]!, dy!.data[i]!, attrs.alpha);
      return out;
    },
    samples: function* () {
      for (const shape of SHAPES) yield { name: `[${shape}]`, inputs: [{ shape, range: sRange }, { shape }] };
      if (name === 'leaky_relu')
        yield { name: '[4,33] alpha=0.01', inputs: [{ shape: [4, 33] }, { shape: [4, 33] }], attrs: { alpha: 0.01 } };
      const n = S_SPECIAL.length * DY_SPECIAL.length;
      yield {
        name: `special [${S_SPECIAL}] with dy [${DY_SPECIAL}]`,
        inputs: [
          { shape: [n], values: S_SPECIAL },
          { shape: [n], values: DY_SPECIAL },
        ],
      };
    },
    bad: [
      int32Bad(bwd, 2),
      {
        name: 'shape mismatch',
        inputs: [{ shape: [2, 3] }, { shape: [3, 2] }],
        error: ShapeError,
        message: new RegExp(`${bwd}: \\[2,3\\] and \\[3,2\\] differ`),
      },
    ],
    tol: { atol: 1e-5, rtol: 1e-5 },
    grad: { none: 'second-order gradients are not supported' },
  });
}

function unaryOp(name: UnaryName, bwd: OpDef<UnaryAttrs>): OpDef<UnaryAttrs> {
  const row: UnaryRow = UNARY[name];
  const range = row.range ?? [-3, 3];
  return defineOp<UnaryAttrs>({
    name,
    arity: 1,
    attrs: { alpha: 0.2 },
    ...elementwise(name, 'unary_fwd', row.wgsl),
    // y [n] = f(x [n]), float64 before rounding to f32.
    cpu: ({ inputs: [x], attrs, alloc }) => {
      const out = alloc(x!.data.length);
      for (let i = 0; i < out.length; i++) out[i] = row.ref(x!.data[i]!, attrs.alpha);
      return out;
    },
    samples: function* () {
      for (const shape of SHAPES) yield { name: `[${shape}]`, inputs: [{ shape, range }] };
      if (name === 'leaky_relu')
        yield { name: '[4,33] alpha=0.01', inputs: [{ shape: [4, 33], range }], attrs: { alpha: 0.01 } };
      // NOTE: special values at smooth points of the op are a sample of their own, so the gradient check (finite
      // samples only) covers them; the others (exp's overflow, log and sqrt at 0 and below) go with the non-finite ones.
      const sp = SPECIAL[name] ?? [];
      if (SMOOTH_SPECIAL.has(name)) {
        yield { name: `special [${sp.join(',')}]`, inputs: [{ shape: [sp.length], values: sp }] };
        yield {
          name: `non-finite [${NONFINITE.join(',')}]`,
          inputs: [{ shape: [NONFINITE.length], values: NONFINITE }],
        };
      } else {
        const all = [...sp, ...NONFINITE];
        yield { name: `special [${all.join(',')}]`, inputs: [{ shape: [all.length], values: all }] };
      }
    },
    bad: [int32Bad(name, 1)],
    tol: row.tol ?? { atol: 1e-5, rtol: 1e-5 },
    grad: {
      saves: row.grad.uses === 'x' ? { inputs: [0] } : { output: true },
      rule: (ctx, dy) => [apply(bwd, [(row.grad.uses === 'x' ? ctx.inputs[0] : ctx.output)!, dy], ctx.attrs)],
    },
  });
}

type UnaryOps = { [K in UnaryName]: OpDef<UnaryAttrs> } & { [K in `${UnaryName}_bwd_x`]: OpDef<UnaryAttrs> };

export const unaryOps = Object.fromEntries(
  (Object.keys(UNARY) as UnaryName[]).flatMap((n) => {
    const bwd = unaryBwdOp(n);
    return [
      [n, unaryOp(n, bwd)],
      [bwd.name, bwd],
    ];
  }),
) as UnaryOps;

const unary =
  (op: OpDef<UnaryAttrs>) =>
  (x: Tensor): Tensor =>
    apply(op, [x]);

/** max(x, 0) elementwise; NaN stays NaN (as torch.relu). */
export const relu = unary(unaryOps.relu);
/** 1 / (1 + exp(-x)) elementwise. */
export const sigmoid = unary(unaryOps.sigmoid);
/** tanh(x) elementwise. */
export const tanh = unary(unaryOps.tanh);
/** Options of {@link gelu}. */
export interface GeluOptions {
  /** 'none' (default): the exact erf form; 'tanh': GPT-2's approximation, as torch's `approximate='tanh'`. */
  approximate?: 'none' | 'tanh';
}
/** x·Φ(x) elementwise: the exact erf form, or with `{ approximate: 'tanh' }` 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))). */
export const gelu = (x: Tensor, opts: GeluOptions = {}): Tensor => {
  const approximate = opts.approximate ?? 'none';
  if (approximate !== 'none' && approximate !== 'tanh') {
    throw new ArgumentError(`gelu: approximate is ${String(approximate)}; expected 'none' or 'tanh'`);
  }
  return apply(approximate === 'tanh' ? unaryOps.gelu_tanh : unaryOps.gelu, [x]);
};
/** e^x elementwise. */
export const exp = unary(unaryOps.exp);
/** Natural log elementwise. */
export const log = unary(unaryOps.log);
/** -x elementwise. */
export const neg = unary(unaryOps.neg);
/** √x elementwise. */
export const sqrt = unary(unaryOps.sqrt);
/** x² elementwise. */
export const square = unary(unaryOps.square);
/** |x| elementwise. */
export const abs = unary(unaryOps.abs);
/** x for x > 0, alpha·x otherwise. */
export const leakyRelu = (x: Tensor, alpha = 0.2): Tensor => apply(unaryOps.leaky_relu, [x], { alpha });
