// layer_norm over the last axis with γ and β, as torch.nn.functional.layer_norm (biased variance, eps inside the
// square root). One fused forward kernel per row writes y and each row's (mean, rstd) for the backward; the backward
// is one row kernel for dx and one column kernel for dγ, dβ together (both deterministic: fixed reduction trees).
import type { CpuInput, FloatArray, TensorSpec } from '../backend/backend.js';
import { f32, grid1d, u32 } from '../backend/kernel.js';
import { ArgumentError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { reshape, slice } from './layout.js';
import { defineOp, type BadCase, type OpDef, type Sample, type SampleInput } from './op.js';
import { rowTile } from './reduce.js';
import { requireFloat } from './util.js';

/** Options of `layerNorm`. */
export interface LayerNormAttrs {
  /** Added to the variance inside the square root (PyTorch's default 1e-5). */
  eps: number;
}

type NoAttrs = Record<string, never>;

const lastDim = (s: TensorSpec): number => s.shape[s.shape.length - 1]!;

// x [..., D] and a [D] parameter named `what`: throws unless its shape is [D] and it is float32.
function requireParam(op: string, what: string, x: TensorSpec, p: TensorSpec): void {
  if (p.shape.length !== 1 || p.shape[0] !== lastDim(x)) {
    throw new ShapeError(
      `${op}: ${what} ${fmtShape(p.shape)} does not match x ${fmtShape(x.shape)}; expected [${lastDim(x)}]`,
    );
  }
}

function requireX(op: string, x: TensorSpec): void {
  if (x.shape.length === 0) throw new ShapeError(`${op}: x [] has rank 0; expected at least 1 dim to normalise over`);
}

// stats [..., 2]: each row's mean and rstd, as the forward writes them.
const statsShape = (x: TensorSpec): number[] => [...x.shape.slice(0, -1), 2];

function requireStats(op: string, x: TensorSpec, st: TensorSpec): void {
  const want = statsShape(x);
  if (fmtShape(st.shape) !== fmtShape(want)) {
    throw new ShapeError(
      `${op}: stats ${fmtShape(st.shape)} do not match x ${fmtShape(x.shape)}; expected ${fmtShape(want)}`,
    );
  }
}

function requireSame(op: string, dy: TensorSpec, x: TensorSpec): void {
  if (fmtShape(dy.shape) !== fmtShape(x.shape)) {
    throw new ShapeError(`${op}: dy ${fmtShape(dy.shape)} and x ${fmtShape(x.shape)} differ`);
  }
}

// CPU reference, from the definition: per row of n, mean and biased variance in float64, y = (x − mean)/√(var + eps)·γ + β.
function layerNormRef(x: CpuInput, g: CpuInput, b: CpuInput, eps: number, y: FloatArray, st: FloatArray): void {
  const n = g.data.length;
  for (let r = 0; r * n < x.data.length; r++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x.data[r * n + i]!;
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x.data[r * n + i]! - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / n + eps);
    for (let i = 0; i < n; i++) y[r * n + i] = (x.data[r * n + i]! - mean) * rstd * g.data[i]! + b.data[i]!;
    st[2 * r] = mean;
    st[2 * r + 1] = rstd;
  }
}

// dx per row of n: with x̂ = (x − mean)·rstd and g = dy·γ, y = x̂γ + β gives dx = rstd·(g − Σg/n − x̂·Σ(g·x̂)/n).
function bwdXRef(dy: CpuInput, x: CpuInput, gamma: CpuInput, st: CpuInput, dx: FloatArray): FloatArray {
  const n = gamma.data.length;
  for (let r = 0; r * n < x.data.length; r++) {
    const [mean, rstd] = [st.data[2 * r]!, st.data[2 * r + 1]!];
    let sg = 0;
    let sgx = 0;
    for (let i = 0; i < n; i++) {
      const g = dy.data[r * n + i]! * gamma.data[i]!;
      sg += g;
      sgx += g * (x.data[r * n + i]! - mean) * rstd;
    }
    for (let i = 0; i < n; i++) {
      const g = dy.data[r * n + i]! * gamma.data[i]!;
      dx[r * n + i] = rstd * (g - sg / n - (x.data[r * n + i]! - mean) * rstd * (sgx / n));
    }
  }
  return dx;
}

// [2, n]: dγ = Σ over rows of dy·x̂, dβ = Σ over rows of dy.
function bwdParamsRef(dy: CpuInput, x: CpuInput, st: CpuInput, n: number, out: FloatArray): FloatArray {
  out.fill(0);
  for (let r = 0; r * n < x.data.length; r++) {
    for (let i = 0; i < n; i++) {
      const d = dy.data[r * n + i]!;
      out[i]! += d * (x.data[r * n + i]! - st.data[2 * r]!) * st.data[2 * r + 1]!;
      out[n + i]! += d;
    }
  }
  return out;
}

const pow2Ceil = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** dx [..., D] from dy, x [..., D], γ [D] and the forward's stats [..., 2]. */
export const layerNormBwdXOp: OpDef<NoAttrs> = defineOp<NoAttrs>({
  name: 'layer_norm_bwd_x',
  arity: 4,
  attrs: {},
  infer: ([dy, x, gamma, st]) => {
    requireFloat('layer_norm_bwd_x', [dy!, x!, gamma!, st!]);
    requireX('layer_norm_bwd_x', x!);
    requireSame('layer_norm_bwd_x', dy!, x!);
    requireParam('layer_norm_bwd_x', 'gamma', x!, gamma!);
    requireStats('layer_norm_bwd_x', x!, st!);
    return { shape: x!.shape, dtype: 'float32' };
  },
  cpu: ({ inputs: [dy, x, gamma, st], alloc }) => bwdXRef(dy!, x!, gamma!, st!, alloc(x!.data.length)),
  gpu: ({ inputs, out, ctx }) => {
    const n = lastDim(out);
    if (sizeOf(out.shape) === 0) return;
    const rows = sizeOf(out.shape) / n;
    const { X, Y } = rowTile(rows, n);
    ctx.dispatch({
      shader: 'layer_norm_bwd_x',
      overrides: { X, Y },
      workgroups: grid1d(rows, X, ctx.limits.maxComputeWorkgroupsPerDimension),
      outputs: [out],
      inputs,
      uniforms: [u32(rows), u32(n)],
    });
  },
  // stats are any (mean, rstd > 0): the kernel's formula holds for any, and the forward's come with layer_norm's.
  samples: function* () {
    for (const shape of [[1], [3, 7], [65, 33], [2, 3, 80], [4, 768], [4097, 5], [2, 2, 3, 129], [4194305, 1]]) {
      yield {
        name: `[${shape}]`,
        inputs: [
          { shape },
          { shape },
          { shape: [shape.at(-1)!] },
          { shape: statsShape({ shape, dtype: 'float32' }), range: [0.25, 2] },
        ],
      } satisfies Sample<NoAttrs>;
    }
  },
  bad: [
    {
      name: 'stats shape',
      inputs: [{ shape: [3, 4] }, { shape: [3, 4] }, { shape: [4] }, { shape: [3, 1] }],
      error: ShapeError,
      message: /layer_norm_bwd_x: stats \[3,1\] do not match x \[3,4\]; expected \[3,2\]/,
    },
    {
      name: 'dy shape',
      inputs: [{ shape: [3, 5] }, { shape: [3, 4] }, { shape: [4] }, { shape: [3, 2] }],
      error: ShapeError,
      message: /layer_norm_bwd_x: dy \[3,5\] and x \[3,4\] differ/,
    },
  ],
  // Two sums over the row (up to 768) in f32, scaled by rstd (up to 2 here).
  tol: { atol: 1e-5, rtol: 1e-4 },
  grad: { none: 'second-order gradients are not supported' },
});

/** [2, D]: dγ (row 0) and dβ (row 1) from dy, x [..., D] and the forward's stats [..., 2]. */
export const layerNormBwdParamsOp: OpDef<NoAttrs> = defineOp<NoAttrs>({
  name: 'layer_norm_bwd_params',
  arity: 3,
  attrs: {},
  infer: ([dy, x, st]) => {
    requireFloat('layer_norm_bwd_params', [dy!, x!, st!]);
    requireX('layer_norm_bwd_params', x!);
    requireSame('layer_norm_bwd_params', dy!, x!);
    requireStats('layer_norm_bwd_params', x!, st!);
    return { shape: [2, lastDim(x!)], dtype: 'float32' };
  },
  cpu: ({ inputs: [dy, x, st], out, alloc }) => bwdParamsRef(dy!, x!, st!, out.shape[1]!, alloc(sizeOf(out.shape))),
  gpu: ({ inputs: [dy, x, st], out, ctx }) => {
    const n = out.shape[1]!;
    const rows = sizeOf(x!.shape) / n;
    if (n === 0) return;
    // Up to 32 adjacent columns per workgroup, each split over Y threads: enough for tall inputs (dγ of 4097 rows
    // in one column) to spread, a fixed Y per shape so the sums' order is fixed too.
    const X = Math.min(32, pow2Ceil(n));
    let Y = 1;
    while (X * Y < 256 && Y * 16 < rows) Y *= 2;
    ctx.dispatch({
      shader: 'layer_norm_bwd_params',
      overrides: { X, Y },
      workgroups: grid1d(n, X, ctx.limits.maxComputeWorkgroupsPerDimension),
      outputs: [out],
      inputs: [dy!, x!, st!],
      uniforms: [u32(rows), u32(n)],
    });
  },
  samples: function* () {
    for (const shape of [[1], [3, 7], [65, 33], [2, 3, 80], [4, 768], [4097, 5], [2, 2, 3, 129], [70000, 3]]) {
      yield {
        name: `[${shape}]`,
        inputs: [{ shape }, { shape }, { shape: statsShape({ shape, dtype: 'float32' }), range: [0.25, 2] }],
      } satisfies Sample<NoAttrs>;
    }
  },
  bad: [
    {
      name: 'stats shape',
      inputs: [{ shape: [3, 4] }, { shape: [3, 4] }, { shape: [2, 2] }],
      error: ShapeError,
      message: /layer_norm_bwd_params: stats \[2,2\] do not match x \[3,4\]; expected \[3,2\]/,
    },
  ],
  // Column sums over up to 70000 rows in f32 (a sequential run per thread, then a tree).
  tol: { atol: 1e-4, rtol: 1e-4 },
  grad: { none: 'second-order gradients are not supported' },
});

// x of `shape`, and γ, β [D] (γ near 1, β near 0 as after init, but random so that both matter).
function sample(shape: number[], label = '', x: Omit<SampleInput, 'shape'> = {}, eps?: number): Sample<LayerNormAttrs> {
  const d = shape.at(-1)!;
  return {
    name: `[${shape}]${label}`,
    inputs: [
      { shape, ...x },
      { shape: [d], range: [0.5, 1.5] },
      { shape: [d], range: [-0.5, 0.5] },
    ],
    ...(eps === undefined ? {} : { attrs: { eps } }),
  };
}

const bad = (
  name: string,
  inputs: SampleInput[],
  error: BadCase<LayerNormAttrs>['error'],
  message: RegExp,
  attrs?: Partial<LayerNormAttrs>,
): BadCase<LayerNormAttrs> => ({
  name,
  inputs,
  error,
  message,
  ...(attrs ? { attrs } : {}),
});

export const layerNormOp: OpDef<LayerNormAttrs> = defineOp<LayerNormAttrs>({
  name: 'layer_norm',
  arity: 3,
  attrs: { eps: 1e-5 },
  infer: ([x, gamma, beta], a) => {
    requireFloat('layer_norm', [x!, gamma!, beta!]);
    requireX('layer_norm', x!);
    requireParam('layer_norm', 'gamma', x!, gamma!);
    requireParam('layer_norm', 'beta', x!, beta!);
    if (!(a.eps >= 0)) throw new ArgumentError(`layer_norm: eps ${a.eps} is not a number >= 0`);
    return { shape: x!.shape, dtype: 'float32' };
  },
  aux: ([x]) => ({ shape: statsShape(x!), dtype: 'float32' }),
  cpu: ({ inputs: [x, gamma, beta], attrs, alloc }) => {
    const [y, st] = [alloc(x!.data.length), alloc((x!.data.length / gamma!.data.length) * 2)];
    if (gamma!.data.length > 0) layerNormRef(x!, gamma!, beta!, attrs.eps, y, st);
    return { out: y, aux: st };
  },
  gpu: ({ inputs, out, aux, attrs, ctx }) => {
    const n = lastDim(out);
    if (sizeOf(out.shape) === 0) return;
    const rows = sizeOf(out.shape) / n;
    const { X, Y } = rowTile(rows, n);
    ctx.dispatch({
      shader: 'layer_norm_fwd',
      overrides: { X, Y },
      workgroups: grid1d(rows, X, ctx.limits.maxComputeWorkgroupsPerDimension),
      outputs: [out, aux!],
      inputs,
      uniforms: [u32(rows), u32(n), f32(attrs.eps)],
    });
  },
  samples: function* () {
    yield sample([1]); // D = 1: x̂ = 0, y = β
    yield sample([3, 7]);
    yield sample([65, 33], ' in [-8,8]', { range: [-8, 8] });
    yield sample([2, 3, 80]);
    yield sample([3, 129], ' eps 0.1', {}, 0.1);
    yield sample([4, 768], ' offset 100', { range: [99, 101] }); // a large mean: the variance is taken about it
    yield sample([4097, 5]);
    yield sample([2, 2, 3, 129]);
    yield sample([5, 16], ' constant rows', {
      values: [
        0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, -3, -3, -3, -3, -3, -3, -3, -3,
        -3, -3, -3, -3, -3, -3, -3, -3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      ],
    });
    yield sample([3, 33], ' constant rows, eps 1e-3', { values: [2] }, 1e-3);
    yield sample([4194305, 1]); // 64 rows per workgroup: more than 65535 workgroups fold into a 2-D grid
  },
  bad: [
    bad('rank 0', [{ shape: [] }, { shape: [1] }, { shape: [1] }], ShapeError, /layer_norm: x \[\] has rank 0/),
    bad(
      'gamma shape',
      [{ shape: [3, 4] }, { shape: [3] }, { shape: [4] }],
      ShapeError,
      /layer_norm: gamma \[3\] does not match x \[3,4\]; expected \[4\]/,
    ),
    bad(
      'gamma rank 2',
      [{ shape: [3, 4] }, { shape: [1, 4] }, { shape: [4] }],
      ShapeError,
      /layer_norm: gamma \[1,4\] does not match x \[3,4\]; expected \[4\]/,
    ),
    bad(
      'beta shape',
      [{ shape: [3, 4] }, { shape: [4] }, { shape: [5] }],
      ShapeError,
      /layer_norm: beta \[5\] does not match x \[3,4\]; expected \[4\]/,
    ),
    bad(
      'int32 x',
      [{ shape: [2, 3], dtype: 'int32' }, { shape: [3] }, { shape: [3] }],
      DTypeError,
      /layer_norm: input 0 \[2,3\] is int32; expected float32/,
    ),
    bad(
      'int32 gamma',
      [{ shape: [2, 3] }, { shape: [3], dtype: 'int32' }, { shape: [3] }],
      DTypeError,
      /layer_norm: input 1 \[3\] is int32; expected float32/,
    ),
    bad(
      'negative eps',
      [{ shape: [2, 3] }, { shape: [3] }, { shape: [3] }],
      ArgumentError,
      /layer_norm: eps -1 is not a number >= 0/,
      { eps: -1 },
    ),
  ],
  // Two sums over up to 768 elements in f32; y is O(|γ|·|x̂|) so the relative error is what counts.
  tol: { atol: 1e-5, rtol: 1e-4 },
  gradTol: { atol: 1e-4, rtol: 1e-4 }, // dγ, dβ sum over up to 4M rows
  grad: {
    saves: { inputs: [0, 1] },
    rule: ({ inputs: [x, gamma], aux, needs }, dy) => {
      const dx = needs[0] ? apply(layerNormBwdXOp, [dy, x!, gamma!, aux!]) : null;
      if (!needs[1] && !needs[2]) return [dx, null, null];
      const p = apply(layerNormBwdParamsOp, [dy, x!, aux!]);
      const d = gamma!.shape[0]!;
      return [
        dx,
        needs[1] ? reshape(slice(p, [0, 0], [1, d]), [d]) : null,
        needs[2] ? reshape(slice(p, [1, 0], [1, d]), [d]) : null,
      ];
    },
  },
});

export const normOps = {
  layer_norm: layerNormOp,
  layer_norm_bwd_x: layerNormBwdXOp,
  layer_norm_bwd_params: layerNormBwdParamsOp,
};

/**
 * Layer normalisation over the last axis, as torch.nn.functional.layer_norm(x, [D], gamma, beta, eps):
 * y = (x − mean) / √(var + eps) · γ + β, with the biased variance of each row. x [..., D], γ, β [D].
 */
export const layerNorm = (x: Tensor, gamma: Tensor, beta: Tensor, opts: Partial<LayerNormAttrs> = {}): Tensor =>
  apply(layerNormOp, [x, gamma, beta], opts);
