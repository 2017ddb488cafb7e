// Keras-named losses and metrics. Where the model ends in softmax (or sigmoid) and the loss is a cross-entropy, the
// trainer passes logits and the loss runs the fused, numerically stable kernel instead of log(softmax(x)).
import { WgnnError } from '../errors.js';
import { show } from '../options.js';
import { binaryCrossEntropyWithLogits, maximum, minimum, mul, sub, add } from '../ops/binary.js';
import { mseLoss, softmaxCrossEntropy } from '../ops/loss.js';
import { mean } from '../ops/reduce.js';
import { log, neg } from '../ops/unary.js';
import type { Tensor } from '../tensor.js';

/** The losses `compile` knows by name. */
export type LossName =
  | 'mse'
  | 'meanSquaredError'
  | 'binaryCrossentropy'
  | 'categoricalCrossentropy'
  | 'sparseCategoricalCrossentropy';

/** A loss function: predictions and targets to a scalar, and the output activation it fuses with (then it takes logits). */
export interface Loss {
  name: LossName;
  /** The final activation this loss fuses with (the trainer then hands it logits). */
  fuses?: 'softmax' | 'sigmoid';
  /** Mean loss over the batch from the model's output (or its logits when `fromLogits`). */
  compute(out: Tensor, target: Tensor, fromLogits: boolean): Tensor;
}

// NOTE: probabilities are clipped to [1e-7, 1 − 1e-7] before the log, as Keras does.
const EPS = 1e-7;
const clip = (p: Tensor) => minimum(maximum(p, EPS), 1 - EPS);

const LOSSES: Record<LossName, Loss> = {
  mse: { name: 'mse', compute: (p, t) => mseLoss(p, t) },
  meanSquaredError: { name: 'meanSquaredError', compute: (p, t) => mseLoss(p, t) },
  binaryCrossentropy: {
    name: 'binaryCrossentropy',
    fuses: 'sigmoid',
    compute: (out, t, fromLogits) => {
      if (fromLogits) return mean(binaryCrossEntropyWithLogits(out, t));
      // −[t log p + (1 − t) log(1 − p)]
      const p = clip(out);
      return mean(neg(add(mul(t, log(p)), mul(sub(1, t), log(sub(1, p))))));
    },
  },
  // On probabilities p (rows summing to 1), softmax(log p) = p, so the fused kernel on log p gives −Σ t log p.
  categoricalCrossentropy: {
    name: 'categoricalCrossentropy',
    fuses: 'softmax',
    compute: (out, t, fromLogits) => softmaxCrossEntropy(fromLogits ? out : log(clip(out)), t),
  },
  sparseCategoricalCrossentropy: {
    name: 'sparseCategoricalCrossentropy',
    fuses: 'softmax',
    compute: (out, t, fromLogits) => softmaxCrossEntropy(fromLogits ? out : log(clip(out)), t),
  },
};

/**
 * A loss by name (an own entry of the table: 'constructor' or 'toString' are unknown names, not Object.prototype's
 * members), or a Loss object passed through; anything else is a WgnnError listing the known losses.
 */
export function getLoss(name: LossName | Loss): Loss {
  if (typeof name === 'string' && Object.hasOwn(LOSSES, name)) return LOSSES[name];
  const custom = name as Partial<Loss> | null;
  if (typeof custom === 'object' && custom !== null && typeof custom.compute === 'function') return name as Loss;
  throw new WgnnError(
    `compile: unknown loss ${show(name)}; expected one of ${Object.keys(LOSSES).join(', ')}, or a Loss object with compute()`,
  );
}
