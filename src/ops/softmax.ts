// softmax and log_softmax over the last axis, numerically stable (the row max is subtracted first), as PyTorch.
// One kernel (shaders/softmax_fwd.wgsl), a few threads per row (rowTile); the LOG override picks the output.
import type { FloatArray } from '../backend/backend.js';
import { grid1d, u32 } from '../backend/kernel.js';
import { DTypeError, ShapeError, fmtShape } from '../errors.js';
import { normAxes, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { defineOp, type OpDef, type Sample, type SampleInput } from './op.js';
import { mul, sub } from './binary.js';
import { rowTile, sum, wideRows } from './reduce.js';
import { exp } from './unary.js';
import { requireFloat } from './util.js';

/** Options of `softmax` and `logSoftmax`. */
export interface SoftmaxAttrs {
  /** The axis to normalise over; only the last axis (-1 or rank - 1) is supported. */
  axis: number;
}

type SoftmaxName = 'softmax' | 'log_softmax';

// Rows of 8: masked entries (-Inf), a row of all -Inf (NaN, as PyTorch), a NaN (the row is NaN), a plain row.
const SPECIAL = [
  [0, -Infinity, 1, 2, -Infinity, 3, -Infinity, 0.5],
  [-Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity],
  [1, NaN, 2, 3, 4, 5, 6, 7],
  [-1, 0, 1, 2, -2, 88, -88, 0],
].flat();

// CPU reference. x, y: [rows, n], the last axis normalised; max and sum in float64.
function softmaxRef(name: SoftmaxName, x: FloatArray, n: number, y: FloatArray): FloatArray {
  for (let b = 0; b < x.length; b += n) {
    let m = -Infinity;
    for (let i = 0; i < n; i++) m = Math.max(m, x[b + i]!); // Math.max propagates NaN
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.exp(x[b + i]! - m);
    for (let i = 0; i < n; i++)
      y[b + i] = name === 'softmax' ? Math.exp(x[b + i]! - m) / s : x[b + i]! - m - Math.log(s);
  }
  return y;
}

function softmaxOp(name: SoftmaxName): OpDef<SoftmaxAttrs> {
  return defineOp<SoftmaxAttrs>({
    name,
    arity: 1,
    attrs: { axis: -1 },
    infer: ([x], a) => {
      requireFloat(name, [x!]);
      const r = x!.shape.length;
      if (r === 0) throw new ShapeError(`${name}: input [] has rank 0; expected at least 1 dim to normalise over`);
      const [axis] = normAxes(name, a.axis, x!.shape);
      if (axis !== r - 1) {
        throw new ShapeError(
          `${name}: axis ${a.axis} of shape ${fmtShape(x!.shape)} is not supported; expected the last axis (-1 or ${r - 1})`,
        );
      }
      return { shape: x!.shape, dtype: 'float32' };
    },
    cpu: ({ inputs: [x], alloc }) =>
      softmaxRef(name, x!.data as FloatArray, x!.shape[x!.shape.length - 1]!, alloc(x!.data.length)),
    gpu: ({ inputs: [x], out, ctx }) => {
      const n = out.shape[out.shape.length - 1]!;
      if (sizeOf(out.shape) === 0) return;
      const rows = sizeOf(out.shape) / n;
      const { X, Y } = rowTile(rows, n);
      ctx.dispatch({
        shader: 'softmax_fwd',
        overrides: { X, Y, LOG: name === 'log_softmax' },
        workgroups: grid1d(rows, X, ctx.limits.maxComputeWorkgroupsPerDimension),
        outputs: [out],
        inputs: [x!],
        uniforms: [u32(rows), u32(n)],
      });
    },
    samples: function* () {
      const s = (
        shape: number[],
        label = '',
        input: Omit<SampleInput, 'shape'> = {},
        attrs?: SoftmaxAttrs,
      ): Sample<SoftmaxAttrs> => ({
        name: `[${shape}]${label}`,
        inputs: [{ shape, ...input }],
        ...(attrs ? { attrs } : {}),
      });
      yield s([5, 1]);
      yield s([7]);
      yield s([3, 33]);
      yield s([2, 65]);
      yield s([3, 129], ' in [-8,8]', { range: [-8, 8] });
      yield s([2, 1000]);
      yield s([2, 4097], ' in [-10,10]', { range: [-10, 10] });
      yield s([3, 4, 65], ' axis 2', {}, { axis: 2 });
      yield s([70000, 3]); // many short rows: one thread each
      yield s([9, 300]); // 8 threads per row: one barrier per reduction, no tree
      yield s([4194305, 1]); // 64 rows per workgroup: more than 65535 workgroups fold into a 2-D grid
      yield s([4, 33], ' in [-1000,1000]', { range: [-1000, 1000] });
      yield s([4, 8], ' -Inf masks, all -Inf row, NaN', { values: SPECIAL });
      yield s([4, 1024], ' -Inf masks, all -Inf row, NaN', { values: wideRows(SPECIAL, 8, 128) }); // 32 threads per row
      yield s([0, 5]);
    },
    bad: [
      {
        name: 'axis not last',
        inputs: [{ shape: [3, 4] }],
        attrs: { axis: 0 },
        error: ShapeError,
        message: new RegExp(`${name}: axis 0 of shape \\[3,4\\] is not supported`),
      },
      {
        name: 'axis out of range',
        inputs: [{ shape: [3, 4] }],
        attrs: { axis: 2 },
        error: ShapeError,
        message: new RegExp(`${name}: axis 2 is out of range for shape \\[3,4\\]`),
      },
      {
        name: 'rank 0',
        inputs: [{ shape: [] }],
        error: ShapeError,
        message: new RegExp(`${name}: input \\[\\] has rank 0`),
      },
      {
        name: 'int32 input',
        inputs: [{ shape: [2, 3], dtype: 'int32' }],
        error: DTypeError,
        message: new RegExp(`${name}: input 0 \\[2,3\\] is int32`),
      },
    ],
    tol: name === 'softmax' ? { atol: 1e-6, rtol: 1e-5 } : { atol: 1e-5, rtol: 1e-5 },
    gradTol: { atol: 1e-4, rtol: 1e-4 }, // the rule sums dy·y over rows of up to 4097
    grad: {
      saves: { output: true },
      // d softmax: dx = y (dy − Σ dy·y);  d log_softmax: dx = dy − softmax(x) Σ dy, with softmax(x) = exp(y).
      rule: ({ output: y, needs }, dy) => {
        if (!needs[0]) return [null];
        if (name === 'softmax') return [mul(y!, sub(dy, sum(mul(dy, y!), -1, true)))];
        return [sub(dy, mul(exp(y!), sum(dy, -1, true)))];
      },
    },
  });
}

export const softmaxOps = {
  softmax: softmaxOp('softmax'),
  log_softmax: softmaxOp('log_softmax'),
};

/** Softmax over the last axis (`axis` must name it), as torch.softmax; a row of all -Inf gives NaN. */
export const softmax = (x: Tensor, axis = -1): Tensor => apply(softmaxOps.softmax, [x], { axis });

/** log(softmax(x)) over the last axis, computed as x - max - log(sum(exp(x - max))), as torch.log_softmax. */
export const logSoftmax = (x: Tensor, axis = -1): Tensor => apply(softmaxOps.log_softmax, [x], { axis });
