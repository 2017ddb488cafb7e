// The seed's two models, as the CLI, the demo, the examples and the benchmarks build them.
import { WgnnError } from '../errors.js';
import { layers, sequential } from './index.js';
import type { Sequential } from './sequential.js';

/** The seed models: an MLP 784-128-10 and a small CNN, both ending in softmax over 10 classes. */
export function seedModel(kind: string, inputShape: number[], classes: number): Sequential {
  if (kind === 'mlp') {
    return sequential([
      layers.flatten({ inputShape }),
      layers.dense({ units: 128, activation: 'relu' }),
      layers.dense({ units: classes, activation: 'softmax' }),
    ]);
  }
  if (kind === 'cnn') {
    return sequential([
      layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', inputShape }),
      layers.maxPool2d({ poolSize: 2 }),
      layers.flatten(),
      layers.dense({ units: 64, activation: 'relu' }),
      layers.dense({ units: classes, activation: 'softmax' }),
    ]);
  }
  throw new WgnnError(`--model ${kind}: expected mlp or cnn`);
}
