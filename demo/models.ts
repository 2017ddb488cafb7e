// The demo's choices: the seed models (wg.nn.seedModel, as `wgnn train` builds them) and the command line's
// optimizers with its default learning rates (makeOptimizer in src/cli/main.ts).
import * as wg from '../src/index.js';

export type ModelKind = 'mlp' | 'cnn';

/** The seed MLP 784-128-10 or the small CNN, for 28×28×1 images and 10 classes. */
export const seedModel = (kind: ModelKind): wg.Sequential => wg.nn.seedModel(kind, [28, 28, 1], 10);

/** Each optimizer of the command line with its default learning rate. */
export const OPTIMIZERS: Record<string, { lr: number; make(lr: number): wg.optim.Optimizer }> = {
  adam: { lr: 1e-3, make: (lr) => wg.optim.adam({ lr }) },
  adamw: { lr: 1e-3, make: (lr) => wg.optim.adamw({ lr }) },
  sgd: { lr: 0.05, make: (lr) => wg.optim.sgd({ lr }) },
  momentum: { lr: 0.02, make: (lr) => wg.optim.sgd({ lr, momentum: 0.9, nesterov: true }) },
  rmsprop: { lr: 1e-3, make: (lr) => wg.optim.rmsprop({ lr }) },
  adagrad: { lr: 0.05, make: (lr) => wg.optim.adagrad({ lr }) },
};
