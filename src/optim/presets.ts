// The optimizers by name, each with a default learning rate: what `wgnn train --optimizer` and the demo's menu offer.
import { adam, adamw } from './adam.js';
import { adagrad } from './adagrad.js';
import type { Optimizer } from './optimizer.js';
import { rmsprop } from './rmsprop.js';
import type { Schedule } from './schedules.js';
import { sgd } from './sgd.js';

export interface OptimizerPreset {
  /** The default learning rate (the start of a schedule). */
  lr: number;
  make(lr: number | Schedule): Optimizer;
}

export const OPTIMIZERS: Record<'adam' | 'adamw' | 'sgd' | 'momentum' | 'rmsprop' | 'adagrad', OptimizerPreset> = {
  adam: { lr: 1e-3, make: (lr) => adam({ lr }) },
  adamw: { lr: 1e-3, make: (lr) => adamw({ lr }) },
  sgd: { lr: 0.05, make: (lr) => sgd({ lr }) },
  momentum: { lr: 0.02, make: (lr) => sgd({ lr, momentum: 0.9, nesterov: true }) },
  rmsprop: { lr: 1e-3, make: (lr) => rmsprop({ lr }) },
  adagrad: { lr: 0.05, make: (lr) => adagrad({ lr }) },
};
export type OptimizerName = keyof typeof OPTIMIZERS;
