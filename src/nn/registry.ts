// The layer list: every layer class by its Keras-style factory name, from which `wg.layers` and `layerFromConfig`
// (what `Sequential.load` rebuilds a saved stack with) are made. A new layer is one entry here.
import { WgnnError } from '../errors.js';
import {
  ActivationLayer,
  AveragePooling2D,
  BatchNormalization,
  Conv2D,
  Dense,
  Dropout,
  Embedding,
  Flatten,
  GlobalAveragePooling2D,
  Layer,
  LayerNormalization,
  MaxPooling2D,
} from './layers.js';
import { LMHead, MultiHeadAttention, TokenAndPositionEmbedding, TransformerBlock } from './transformer.js';

/**
 * Every layer class, by its Keras-style factory name (`wg.layers.dense`, ...; some classes under two names, as
 * Keras).
 */
export const LAYERS = {
  dense: Dense,
  conv2d: Conv2D,
  maxPool2d: MaxPooling2D,
  maxPooling2d: MaxPooling2D,
  avgPool2d: AveragePooling2D,
  averagePooling2d: AveragePooling2D,
  globalAveragePooling2d: GlobalAveragePooling2D,
  flatten: Flatten,
  dropout: Dropout,
  batchNormalization: BatchNormalization,
  embedding: Embedding,
  layerNormalization: LayerNormalization,
  layerNorm: LayerNormalization,
  activation: ActivationLayer,
  tokenAndPositionEmbedding: TokenAndPositionEmbedding,
  multiHeadAttention: MultiHeadAttention,
  transformerBlock: TransformerBlock,
  lmHead: LMHead,
} as const;

/** One factory per entry of {@link LAYERS}, typed by its class: `dense(o: DenseOptions) => Dense`. */
export type LayerFactories = {
  [K in keyof typeof LAYERS]: (...opts: ConstructorParameters<(typeof LAYERS)[K]>) => InstanceType<(typeof LAYERS)[K]>;
};

/** The factories of {@link LAYERS}: `layers.dense({ units: 10 })` is `new Dense({ units: 10 })`. */
export function layerFactories(): LayerFactories {
  // Each factory passes its options to its own class, so the mapped type holds; Object.fromEntries cannot say so.
  const make = (cls: new (opts: never) => Layer) => (opts: never) => new cls(opts);
  return Object.fromEntries(
    Object.entries(LAYERS).map(([name, cls]) => [name, make(cls)]),
  ) as unknown as LayerFactories;
}

// A Map, not an object: a saved class named `constructor` or `__proto__` must not find Object.prototype's members.
// Configs come from `config()` or a file; each constructor checks its options again.
const CLASSES = new Map<string, new (config: Record<string, unknown>) => Layer>(
  Object.values(LAYERS).map((cls) => [cls.kind, cls as unknown as new (config: Record<string, unknown>) => Layer]),
);

/**
 * A layer from its class's `kind` and `config()` (what `Sequential.save` writes). An unknown kind throws `error`
 * (`load` passes ParseError: the file is at fault), naming the kind and the known ones.
 */
export function layerFromConfig(
  kind: string,
  config: Record<string, unknown>,
  error: new (message: string) => WgnnError = WgnnError,
): Layer {
  const cls = typeof kind === 'string' ? CLASSES.get(kind) : undefined;
  if (!cls)
    throw new error(
      `layerFromConfig: unknown layer class ${JSON.stringify(kind)}; expected one of ${[...CLASSES.keys()].join(', ')}`,
    );
  return new cls(config);
}
