// The seed's two models, as the CLI, the demo, the examples and the benchmarks build them.
import { WgnnError } from '../errors.js';
import { Conv2D, Dense, Flatten, MaxPooling2D } from './layers.js';
import { Sequential } from './sequential.js';

/** The seed models: an MLP 784-128-10 and a small CNN, both ending in softmax over 10 classes. */
export function seedModel(kind: string, inputShape: number[], classes: number): Sequential {
  if (kind === 'mlp') {
    return new Sequential([
      new Flatten({ inputShape }),
      new Dense({ units: 128, activation: 'relu' }),
      new Dense({ units: classes, activation: 'softmax' }),
    ]);
  }
  if (kind === 'cnn') {
    return new Sequential([
      new Conv2D({ filters: 32, kernelSize: 3, activation: 'relu', inputShape }),
      new MaxPooling2D({ poolSize: 2 }),
      new Flatten(),
      new Dense({ units: 64, activation: 'relu' }),
      new Dense({ units: classes, activation: 'softmax' }),
    ]);
  }
  throw new WgnnError(`--model ${kind}: expected mlp or cnn`);
}
