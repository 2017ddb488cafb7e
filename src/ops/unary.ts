// Unary elementwise ops: each a row with two independent implementations side by side, the WGSL expression
// (spliced into shaders/unary_fwd.wgsl, `x` the input, `p.alpha` the attribute) and the CPU reference.
import { grid1d, f32, u32 } from '../backend/webgpu/context.js';
import { DTypeError } from '../errors.js';
import { sizeOf } from '../shape.js';
import { defineOp, type OpDef, type Sample } from './op.js';
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
}

// NOTE: relu(0) = 0 and relu(NaN) is not specified on the GPU (WGSL max() may drop NaN); samples avoid NaN inputs.
export const UNARY = {
  relu: { wgsl: 'max(x, 0.0)', ref: (x) => (x > 0 ? x : 0) },
  leaky_relu: { wgsl: 'select(p.alpha * x, x, x > 0.0)', ref: (x, a) => (x > 0 ? x : a * x) },
  sigmoid: { wgsl: 'sigmoid_f32(x)', ref: (x) => 1 / (1 + Math.exp(-x)), range: [-12, 12] },
  tanh: { wgsl: 'tanh_f32(x)', ref: (x) => Math.tanh(x), range: [-6, 6] },
  // NOTE: gelu is the exact erf form (PyTorch's and Keras's default), not the tanh approximation.
  gelu: { wgsl: '0.5 * x * (1.0 + erf_f32(x * 0.7071067811865476))', ref: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)), range: [-5, 5] },
  exp: { wgsl: 'exp(x)', ref: (x) => Math.exp(x), range: [-10, 10], tol: { atol: 1e-6, rtol: 2e-5 } },
  log: { wgsl: 'log(x)', ref: (x) => Math.log(x), range: [1e-3, 100] },
  neg: { wgsl: '-x', ref: (x) => -x },
  sqrt: { wgsl: 'sqrt(x)', ref: (x) => Math.sqrt(x), range: [0, 100] },
  square: { wgsl: 'x * x', ref: (x) => x * x },
  abs: { wgsl: 'abs(x)', ref: (x) => Math.abs(x) },
} satisfies Record<string, UnaryRow>;

export type UnaryName = keyof typeof UNARY;

const WG = 256;

// Special values each op must get right (Inf/NaN positions must match between GPU and CPU).
const SPECIAL: Partial<Record<UnaryName, number[]>> = {
  exp: [0, -0, 1, -1, 88, 89, -104, Infinity, -Infinity],
  log: [0, -1, 1, 1e-30, Infinity],
  sqrt: [0, -1, 4, 1e-30, Infinity],
  sigmoid: [0, 50, -50, 100, -100],
  tanh: [0, 20, -20, 60, -60, 1e-7],
  gelu: [0, 10, -10, 1e-6],
};

function unaryOp(name: UnaryName): OpDef<UnaryAttrs> {
  const row: UnaryRow = UNARY[name];
  const range = row.range ?? [-3, 3];
  return defineOp<UnaryAttrs>({
    name,
    arity: 1,
    attrs: { alpha: 0.2 },
    infer: (inputs) => {
      requireFloat(name, inputs);
      return { shape: inputs[0]!.shape, dtype: 'float32' };
    },
    // y [n] = f(x [n]), float64 before rounding to f32.
    cpu: ({ inputs: [x], attrs }) => {
      const out = new Float32Array(x!.data.length);
      for (let i = 0; i < out.length; i++) out[i] = row.ref(x!.data[i]!, attrs.alpha);
      return out;
    },
    gpu: ({ inputs: [x], out, attrs, ctx }) => {
      const n = sizeOf(out.shape);
      ctx.dispatch({
        shader: 'unary_fwd',
        defines: { EXPR: row.wgsl },
        overrides: { WG },
        workgroups: grid1d(n, WG, ctx.limits.maxComputeWorkgroupsPerDimension),
        outputs: [out],
        inputs: [x!],
        uniforms: [u32(n), f32(attrs.alpha)],
      });
    },
    samples: function* () {
      const s = (shape: number[], extra: Partial<Sample<UnaryAttrs>> = {}): Sample<UnaryAttrs> => ({
        name: `[${shape}]`,
        inputs: [{ shape, range }],
        ...extra,
      });
      yield s([1]);
      yield s([7]);
      yield s([33]);
      yield s([65]);
      yield s([129]);
      yield s([3, 5, 7]);
      yield s([2, 0, 3]);
      yield s([]);
      yield s([WG * 257 + 3]);
      if (name === 'leaky_relu') yield s([4, 33], { name: '[4,33] alpha=0.01', attrs: { alpha: 0.01 } });
      const sp = SPECIAL[name];
      if (sp) yield { name: `special [${sp.join(',')}]`, inputs: [{ shape: [sp.length], values: sp }] };
    },
    bad: [
      { name: 'int32 input', inputs: [{ shape: [2, 3], dtype: 'int32' }], error: DTypeError, message: new RegExp(`${name}: input 0 \\[2,3\\] is int32`) },
    ],
    tol: row.tol ?? { atol: 1e-5, rtol: 1e-5 },
  });
}

export const unaryOps = Object.fromEntries(
  (Object.keys(UNARY) as UnaryName[]).map((n) => [n, unaryOp(n)]),
) as { [K in UnaryName]: OpDef<UnaryAttrs> };
