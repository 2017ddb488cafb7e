// Scaled dot-product attention, softmax(q kᵀ · scale + mask) v, composed from table ops (matmul, add, softmax), so
// its backward is the tape's, through those ops. A fused flash-style kernel may replace the body; the API is final.
import { ArgumentError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { broadcastShapes } from '../shape.js';
import { tensor, tidy, type Tensor } from '../tensor.js';
import { add, mul } from './binary.js';
import { matmul } from './matmul.js';
import { dropout, type DropoutAttrs } from './random.js';
import { softmax } from './softmax.js';

/** Options of {@link attention}. */
export interface AttentionOptions {
  /**
   * Query i attends to keys 0 .. i + (Tk − Tq) only: with Tq = Tk, position t sees positions up to t (GPT), and a
   * single new query over a key/value cache sees the whole cache. Needs Tq <= Tk, so no row is empty.
   * NOTE: bottom-right aligned, as flash-attention's causal; torch's SDPA aligns top-left, which is the same for Tq = Tk.
   */
  causal?: boolean;
  /** Multiplies q kᵀ; default 1/√Dh. */
  scale?: number;
  /**
   * Additive mask, float32, broadcastable to [B, H, Tq, Tk]: added to the scaled scores before the softmax (0 keeps,
   * -Infinity blocks). A boolean mask `keep` becomes one with `where(keep, 0, -Infinity)`. A row blocked
   * entirely gives NaN, as torch. Its gradient is the scores' gradient, as for any added tensor.
   */
  mask?: Tensor;
  /**
   * Dropout on the attention probabilities while training (torch's `dropout_p`): `rate` in [0, 1) and the seed box
   * of the dropout op (a layer advances it per step).
   */
  dropout?: { rate: number; seed: DropoutAttrs['seed'] };
}

/**
 * Scaled dot-product attention: q [B, H, Tq, Dh], k [B, H, Tk, Dh], v [B, H, Tk, Dv] -> [B, H, Tq, Dv], as
 * torch.nn.functional.scaled_dot_product_attention. Throws ShapeError naming the three shapes when
 * they do not fit, ArgumentError for a scale that is not a finite number.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const shapes = `q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`;
  const bad = (why: string) => new ShapeError(`attention: ${shapes}: ${why}`);
  for (const [name, t] of [
    ['q', q],
    ['k', k],
    ['v', v],
  ] as const) {
    if (t.rank !== 4) throw bad(`${name} has rank ${t.rank}; expected [B, H, T, D]`);
    if (t.dtype !== 'float32')
      throw new DTypeError(`attention: ${name} ${fmtShape(t.shape)} is ${t.dtype}; expected float32`);
  }
  const [B, H, Tq, Dh] = q.shape as [number, number, number, number];
  const Tk = k.shape[2]!;
  if (k.shape[0] !== B || k.shape[1] !== H || v.shape[0] !== B || v.shape[1] !== H) {
    throw bad('batch and head dims [B, H] differ; expected them equal');
  }
  if (k.shape[3] !== Dh) throw bad(`q's head dim ${Dh} and k's ${k.shape[3]} differ; expected them equal`);
  if (v.shape[2] !== Tk) throw bad(`k has ${Tk} positions and v ${v.shape[2]}; expected them equal`);
  if (opts.causal && Tq > Tk) throw bad(`causal with ${Tq} queries over ${Tk} keys; expected Tq <= Tk`);
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) {
    throw new ArgumentError(`attention: scale is ${String(scale)}; expected a finite number`);
  }
  if (opts.mask) broadcastShapes('attention: mask', opts.mask.shape, [B, H, Tq, Tk]);
  return tidy(() => {
    let s = mul(matmul(q, k, { transB: true }), scale); // [B, H, Tq, Tk]
    if (opts.causal) s = add(s, causalBias(Tq, Tk, q));
    if (opts.mask) s = add(s, opts.mask);
    const p = softmax(s, -1);
    return matmul(opts.dropout && opts.dropout.rate > 0 ? dropout(p, opts.dropout.rate, opts.dropout.seed) : p, v);
  });
}

// [Tq, Tk]: 0 where query i may see key j (j <= i + Tk − Tq), -Infinity elsewhere; on like's backend.
function causalBias(Tq: number, Tk: number, like: Tensor): Tensor {
  const data = new Float32Array(Tq * Tk);
  for (let i = 0; i < Tq; i++) data.fill(-Infinity, i * Tk + i + Tk - Tq + 1, (i + 1) * Tk);
  return tensor(data, [Tq, Tk], { backend: like.backend });
}
