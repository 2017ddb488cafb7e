// The demo's choices: the seed models (wg.nn.seedModel, as `wgnn train` builds them) and the command line's
// optimizers with their default learning rates (wg.optim.OPTIMIZERS).
import * as wg from '../src/index.js';

export type ModelKind = 'mlp' | 'cnn';

/** The seed MLP 784-128-10 or the small CNN, for 28×28×1 images and 10 classes. */
export const seedModel = (kind: ModelKind): wg.Sequential => wg.nn.seedModel(kind, [28, 28, 1], 10);

/** Each optimizer of the command line with its default learning rate. */
export const OPTIMIZERS: Record<string, wg.optim.OptimizerPreset> = wg.optim.OPTIMIZERS;
