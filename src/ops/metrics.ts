// Metrics computed on the GPU, so training never reads predictions back: the number of correct predictions.
import { f32, u32 } from '../backend/kernel.js';
import { DTypeError, ShapeError, fmtShape } from '../errors.js';
import { sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { defineOp, type OpDef } from './op.js';

/** Options of `countCorrect`. */
export interface CountCorrectAttrs {
  /** With one output unit: predictions above it count as class 1 (0.5 for probabilities, 0 for logits). */
  threshold: number;
}

const WG = 256;

/**
 * Rows and classes of pred [..., C] (a prediction per row over the last axis, as Keras's accuracy: [B, C], or
 * [B, T, C] for a sequence) or [B] (one unit).
 */
const dims = (shape: readonly number[]) =>
  shape.length > 1 ? { rows: sizeOf(shape.slice(0, -1)), c: shape[shape.length - 1]! } : { rows: shape[0] ?? 1, c: 1 };

export const countCorrectOp: OpDef<CountCorrectAttrs> = defineOp<CountCorrectAttrs>({
  name: 'count_correct',
  arity: 2,
  attrs: { threshold: 0.5 },
  infer: ([pred, target]) => {
    const [p, t] = [pred!, target!];
    const what = `pred ${fmtShape(p.shape)}, target ${t.dtype}${fmtShape(t.shape)}`;
    if (p.dtype !== 'float32') throw new DTypeError(`count_correct: ${what}: predictions must be float32`);
    if (p.shape.length < 1) throw new ShapeError(`count_correct: ${what}; expected pred [batch, classes]`);
    const { rows, c } = dims(p.shape);
    const sparse = t.dtype === 'int32';
    const ok = sparse ? sizeOf(t.shape) === rows && c > 1 : sizeOf(t.shape) === rows * c;
    if (!ok) {
      throw new ShapeError(
        `count_correct: ${what}; expected int32 labels of pred's shape without its class axis (with > 1 class) or float targets of pred's shape`,
      );
    }
    return { shape: [], dtype: 'float32' };
  },
  // count = Σ_rows [argmax(pred row) = label] (or the threshold rule for one unit), as a float.
  cpu: ({ inputs: [pred, target], attrs, alloc }) => {
    const { rows, c } = dims(pred!.shape);
    const P = pred!.data;
    const T = target!.data;
    const argmax = (a: ArrayLike<number>, r: number) => {
      let best = 0;
      for (let j = 1; j < c; j++) if (a[r * c + j]! > a[r * c + best]!) best = j;
      return best;
    };
    let n = 0;
    for (let r = 0; r < rows; r++) {
      if (c === 1) n += (P[r]! > attrs.threshold ? 1 : 0) === Math.round(T[r]!) ? 1 : 0;
      else if (target!.dtype === 'int32') n += argmax(P, r) === T[r] ? 1 : 0;
      else n += argmax(P, r) === argmax(T, r) ? 1 : 0;
    }
    const out = alloc(1);
    out[0] = n;
    return out;
  },
  gpu: ({ inputs: [pred, target], out, attrs, ctx }) => {
    const { rows, c } = dims(pred!.shape);
    ctx.dispatch({
      shader: 'count_correct',
      overrides: { WG, SPARSE: target!.dtype === 'int32' },
      workgroups: [1],
      outputs: [out],
      inputs: [pred!, target!],
      uniforms: [u32(rows), u32(c), f32(attrs.threshold)],
    });
  },
  samples: function* () {
    yield { name: '[1,10] sparse', inputs: [{ shape: [1, 10] }, { shape: [1], dtype: 'int32', range: [0, 10] }] };
    yield { name: '[7,3] sparse', inputs: [{ shape: [7, 3] }, { shape: [7], dtype: 'int32', range: [0, 3] }] };
    yield { name: '[64,10] sparse', inputs: [{ shape: [64, 10] }, { shape: [64], dtype: 'int32', range: [0, 10] }] };
    yield { name: '[513,10] sparse', inputs: [{ shape: [513, 10] }, { shape: [513], dtype: 'int32', range: [0, 10] }] };
    yield {
      name: '[33,5] one-hot targets',
      inputs: [{ shape: [33, 5] }, { shape: [33, 5], values: [0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0] }],
    };
    yield {
      name: '[65,1] threshold',
      inputs: [
        { shape: [65, 1], range: [0, 1] },
        { shape: [65, 1], values: [0, 1, 1] },
      ],
    };
    yield {
      name: '[9,4] ties',
      inputs: [
        { shape: [9, 4], values: [1, 1, 0, 2, 2, 0] },
        { shape: [9], dtype: 'int32', range: [0, 4] },
      ],
    };
    yield {
      name: '[3,7,11] a sequence: each position over the last axis',
      inputs: [{ shape: [3, 7, 11] }, { shape: [3, 7], dtype: 'int32', range: [0, 11] }],
    };
    yield {
      name: '[2,5,3] sequence with float targets',
      inputs: [{ shape: [2, 5, 3] }, { shape: [2, 5, 3], range: [0, 1] }],
    };
    yield { name: '[0,10] empty batch', inputs: [{ shape: [0, 10] }, { shape: [0], dtype: 'int32', range: [0, 10] }] };
    yield {
      name: '[129] logits threshold 0',
      inputs: [{ shape: [129, 1] }, { shape: [129, 1], values: [1, 0] }],
      attrs: { threshold: 0 },
    };
  },
  bad: [
    {
      name: 'labels of the wrong length',
      inputs: [{ shape: [4, 3] }, { shape: [5], dtype: 'int32' }],
      error: ShapeError,
      message: /count_correct: pred \[4,3\], target int32\[5\]/,
    },
    {
      name: 'int32 predictions',
      inputs: [
        { shape: [4, 3], dtype: 'int32' },
        { shape: [4], dtype: 'int32' },
      ],
      error: DTypeError,
      message: /count_correct: pred \[4,3\]/,
    },
  ],
  tol: { atol: 0, rtol: 0 },
  grad: { none: 'a count of correct predictions is piecewise constant' },
});

export const metricOps = { count_correct: countCorrectOp };

/**
 * The number of correct predictions in a batch as a scalar tensor, computed on the GPU: arg-max of `pred` [B, C]
 * against int32 labels [B] or the arg-max of one-hot targets [B, C]; with one unit, `pred > threshold` against 0/1.
 */
export const countCorrect = (pred: Tensor, target: Tensor, threshold = 0.5): Tensor =>
  apply(countCorrectOp, [pred, target], { threshold });
