// The layer/model API: Keras-style factories (`layers.dense({...})`, `sequential([...])`) and the PyTorch-style
// `Module` they are built on.
import { layerFactories } from './registry.js';
import { Sequential } from './sequential.js';

export { Module } from './module.js';
export {
  Layer,
  Dense,
  Conv2D,
  MaxPooling2D,
  AveragePooling2D,
  GlobalAveragePooling2D,
  Flatten,
  Dropout,
  BatchNormalization,
  Embedding,
  LayerNormalization,
  ActivationLayer,
} from './layers.js';
export { setLayerLimits, checkInitializer } from './layers.js';
export {
  TokenAndPositionEmbedding,
  MultiHeadAttention,
  TransformerBlock,
  LMHead,
  type TokenAndPositionEmbeddingOptions,
  type MultiHeadAttentionOptions,
  type TransformerBlockOptions,
  type LMHeadOptions,
  type KVCache,
} from './transformer.js';
export { LAYERS, layerFromConfig, type LayerFactories } from './registry.js';
export type {
  ActivationName,
  DenseOptions,
  Conv2dOptions,
  EmbeddingOptions,
  Pool2dOptions,
  LayerOptions,
  LayerLimits,
} from './layers.js';
export {
  Sequential,
  type CompileOptions,
  type FitOptions,
  type History,
  type Logs,
  type Callbacks,
  type Data,
  type HostTensor,
  type EvaluateOptions,
} from './sequential.js';
export { getLoss, type LossName, type Loss } from './losses.js';
export {
  trainStep,
  forwardForLoss,
  StepMeter,
  TrainStep,
  WeightCheck,
  type TrainStepOptions,
  type LayerStack,
  type MeterOptions,
  type NonFiniteWeights,
} from './train.js';
export { initialize, setSeed, randomNormal, type Initializer, type InitializerName } from './initializers.js';

/** Keras-style layer factories, one per entry of the layer list (`layers.dense(o: DenseOptions) => Dense`, ...). */
export const layers = layerFactories();

/** A model that runs its layers in order. */
export const sequential = (ls: ConstructorParameters<typeof Sequential>[0] = []) => new Sequential(ls);
export { seedModel } from './models.js';
export { gpt, GPT, type GPTConfig, type GPTOptions, type GenerateOptions, type Tokenizer } from './gpt.js';
