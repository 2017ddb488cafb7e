// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_, with no host sync and no extra pass over
// the gradients: the norm and the clip factor are computed on the device, and the next optimizer step multiplies each
// gradient by the factor inside its fused kernel.
import { noGrad } from '../autograd/tape.js';
import { add, div, minimum, mul } from '../ops/binary.js';
import { sum } from '../ops/reduce.js';
import { sqrt, square } from '../ops/unary.js';
import { keep, scalar, tidy, view, type Tensor } from '../tensor.js';
import { WgnnError } from '../errors.js';
import { show } from '../options.js';

// Clip factors waiting for a step, by gradient tensor; each entry holds its own reference to the [1]-element factor.
const pending = new Map<Tensor, Tensor>();

/**
 * Computes the L2 norm over all gradients of `params` (those with `.grad`) and returns it as a 0-d tensor; the next
 * `step()` of any optimizer multiplies each of these gradients by `min(1, maxNorm / (norm + 1e-6))`, in its kernel.
 * NOTE: unlike PyTorch, `.grad` itself is left as it was: the clip is applied where the gradient is consumed (the
 * step). Clipping twice before a step composes the factors, as clipping in place twice would. A gradient replaced
 * before the step (a further `backward()` accumulates into a new tensor) loses its factor.
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): Tensor {
  // NOTE: maxNorm Infinity is allowed (as PyTorch): the norm is computed and nothing is clipped.
  if (!(typeof maxNorm === 'number' && maxNorm >= 0)) {
    throw new WgnnError(`clipGradNorm: maxNorm must be a number >= 0, got ${show(maxNorm)}`);
  }
  purgeGradScales();
  const ps = [...new Set(params)];
  const grads = ps.flatMap((p) => (p.grad ? [p.grad] : []));
  if (grads.length === 0) return scalar(0, ps[0] ? { backend: ps[0].backend } : {}); // as PyTorch: no gradients, norm 0
  return noGrad(() =>
    tidy(() => {
      // Σ over grads of Σ g², each g taken with the factor it already carries.
      const sq = grads.map((g) => {
        const prev = pending.get(g);
        const s = sum(square(g));
        return prev ? mul(s, square(prev)) : s;
      });
      const norm = sqrt(sq.reduce((a, b) => add(a, b)));
      const factor = minimum(div(maxNorm, add(norm, 1e-6)), 1);
      for (const g of grads) {
        const prev = pending.get(g);
        pending.set(g, keep(prev ? mul(prev, factor) : view(factor, factor.shape, 'clip_grad_norm')));
        prev?.dispose();
      }
      return norm;
    }),
  );
}

/** @internal The clip factor waiting for `grad`, handed over to the caller (who disposes it). */
export function takeGradScale(grad: Tensor): Tensor | undefined {
  const s = pending.get(grad);
  pending.delete(grad);
  return s;
}

/** @internal Drops the clip factors of these gradients (they are being cleared). */
export function dropGradScales(grads: Iterable<Tensor | undefined>): void {
  for (const g of grads) if (g) takeGradScale(g)?.dispose();
}

/** @internal Drops the factors of gradients that were disposed without a step. */
export function purgeGradScales(): void {
  for (const [g, s] of pending) {
    if (g.isDisposed) {
      s.dispose();
      pending.delete(g);
    }
  }
}
