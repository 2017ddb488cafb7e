// Optimizers (fused GPU update kernels, PyTorch's update rules), learning-rate schedules and gradient clipping.
export {
  Optimizer,
  type CommonOptions,
  type FiniteCheck,
  type OptimizerState,
  type ParamState,
  type UpdateOptions,
} from './optimizer.js';
export { SGD, sgd, type SgdOptions } from './sgd.js';
export { Adam, adam, adamw, type AdamOptions } from './adam.js';
export { RMSprop, rmsprop, type RmspropOptions } from './rmsprop.js';
export { Adagrad, adagrad, type AdagradOptions } from './adagrad.js';
export { stepDecay, exponentialDecay, cosineDecay, warmupCosine, type Schedule } from './schedules.js';
export { clipGradNorm } from './clip.js';
export { OPTIMIZERS, optimizerPreset, type OptimizerName, type OptimizerPreset } from './presets.js';
