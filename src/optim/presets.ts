// The optimizers by name, each with a default learning rate: what `wgnn train --optimizer` and the demo's menu offer.
import { adam, adamw } from './adam.js';
import { adagrad } from './adagrad.js';
import type { Optimizer } from './optimizer.js';
import { rmsprop } from './rmsprop.js';
import type { Schedule } from './schedules.js';
import { sgd } from './sgd.js';
import { WgnnError } from '../errors.js';
import { show } from '../options.js';

/** An optimizer the CLI and the demo offer by name, with its default learning rate. */
export interface OptimizerPreset {
  /** The default learning rate (the start of a schedule). */
  lr: number;
  /** The optimizer at this learning rate (or schedule). */
  make(lr: number | Schedule): Optimizer;
}

// No prototype: a name from a user (`--optimizer constructor`) must not find Object.prototype's members.
/** The optimizers by name (`--optimizer` in the CLI). */
export const OPTIMIZERS: Readonly<
  Record<'adam' | 'adamw' | 'sgd' | 'momentum' | 'rmsprop' | 'adagrad', OptimizerPreset>
> = Object.freeze(
  Object.assign(Object.create(null) as object, {
    adam: { lr: 1e-3, make: (lr) => adam({ lr }) },
    adamw: { lr: 1e-3, make: (lr) => adamw({ lr }) },
    sgd: { lr: 0.05, make: (lr) => sgd({ lr }) },
    momentum: { lr: 0.02, make: (lr) => sgd({ lr, momentum: 0.9, nesterov: true }) },
    rmsprop: { lr: 1e-3, make: (lr) => rmsprop({ lr }) },
    adagrad: { lr: 0.05, make: (lr) => adagrad({ lr }) },
  } satisfies Record<string, OptimizerPreset>),
);
/** A name of {@link OPTIMIZERS}. */
export type OptimizerName = keyof typeof OPTIMIZERS;

/** The preset named `name`, or a WgnnError listing the names. */
export function optimizerPreset(name: string): OptimizerPreset {
  if (typeof name === 'string' && Object.hasOwn(OPTIMIZERS, name)) return OPTIMIZERS[name as OptimizerName];
  throw new WgnnError(`unknown optimizer ${show(name)}; expected one of ${Object.keys(OPTIMIZERS).join(', ')}`);
}
