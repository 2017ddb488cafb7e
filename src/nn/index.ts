// The layer/model API: Keras-style factories (`layers.dense({...})`, `sequential([...])`) and the PyTorch-style
// `Module` they are built on.
import {
  ActivationLayer,
  AveragePooling2D,
  BatchNormalization,
  Conv2D,
  Dense,
  Dropout,
  Flatten,
  GlobalAveragePooling2D,
  MaxPooling2D,
  type ActivationName,
  type Conv2dOptions,
  type DenseOptions,
  type LayerOptions,
  type Pool2dOptions,
} from './layers.js';
import { Sequential } from './sequential.js';

export { Module } from './module.js';
export { Layer, Dense, Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Flatten, Dropout, BatchNormalization, ActivationLayer } from './layers.js';
export type { ActivationName, DenseOptions, Conv2dOptions, Pool2dOptions, LayerOptions } from './layers.js';
export { Sequential, type CompileOptions, type FitOptions, type History, type Logs, type Callbacks, type Data, type HostTensor } from './sequential.js';
export { getLoss, type LossName, type Loss } from './losses.js';
export { trainStep, forwardForLoss, StepMeter, type TrainStepOptions, type LayerStack } from './train.js';
export { initialize, setSeed, type Initializer } from './initializers.js';

/** Keras-style layer factories. */
export const layers = {
  dense: (o: DenseOptions) => new Dense(o),
  conv2d: (o: Conv2dOptions) => new Conv2D(o),
  maxPool2d: (o: Pool2dOptions = {}) => new MaxPooling2D(o),
  maxPooling2d: (o: Pool2dOptions = {}) => new MaxPooling2D(o),
  avgPool2d: (o: Pool2dOptions = {}) => new AveragePooling2D(o),
  averagePooling2d: (o: Pool2dOptions = {}) => new AveragePooling2D(o),
  globalAveragePooling2d: (o: LayerOptions = {}) => new GlobalAveragePooling2D(o),
  flatten: (o: LayerOptions = {}) => new Flatten(o),
  dropout: (o: LayerOptions & { rate: number }) => new Dropout(o),
  batchNormalization: (o: LayerOptions & { momentum?: number; epsilon?: number } = {}) => new BatchNormalization(o),
  activation: (o: LayerOptions & { activation: ActivationName }) => new ActivationLayer(o),
};

/** A model that runs its layers in order. */
export const sequential = (ls: ConstructorParameters<typeof Sequential>[0] = []) => new Sequential(ls);
export { seedModel } from './models.js';
