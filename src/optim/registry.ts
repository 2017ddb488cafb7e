// The in-place kernel table: every kernel that updates tensors where they are, by name: the optimizers' fused
// updates and src/ops/inplace.ts's accumulate, ema_update and anomaly_check. It sits here, above ops/, because the
// optimizers' kernels live beside their optimizers. test/inplace.test.ts walks it as test/ops.test.ts walks OPS.
import { accumulate, anomalyCheck, emaUpdate, type InPlaceDef, type InPlaceName } from '../ops/inplace.js';
import { adagradKernel } from './adagrad.js';
import { adamKernel } from './adam.js';
import { rmspropKernel } from './rmsprop.js';
import { sgdKernel } from './sgd.js';

/** One entry per InPlaceName: a name without an entry does not compile. Each entry keeps its own attribute type. */
export const INPLACE: { readonly [N in InPlaceName]: InPlaceDef<unknown> } = {
  accumulate: accumulate,
  ema_update: emaUpdate,
  anomaly_check: anomalyCheck,
  sgd: sgdKernel,
  adam: adamKernel,
  rmsprop: rmspropKernel,
  adagrad: adagradKernel,
};
