// Keras-style layers (lazily built from the first input's shape) that are also PyTorch-style modules. Shapes here
// are per sample (no batch dim), as Keras's `inputShape`; tensors carry the batch as dim 0.
import { onReplay } from '../autograd/step.js';
import { ShapeError, WgnnError, fmtShape } from '../errors.js';
import { add, div, mul, sub } from '../ops/binary.js';
import { reshape } from '../ops/layout.js';
import { linear, matmul, type Activation } from '../ops/matmul.js';
import { dropout } from '../ops/random.js';
import { emaInPlace } from '../ops/inplace.js';
import { mean } from '../ops/reduce.js';
import { softmax } from '../ops/softmax.js';
import { UNARY, unaryOps, type UnaryName } from '../ops/unary.js';
import { apply } from '../ops/apply.js';
import { conv2d, conv2dBias, convOps } from '../ops/conv.js';
import { avgPool2d, globalAvgPool2d, maxPool2d, poolOps } from '../ops/pool.js';
import { pair, type Pair, type Padding } from '../ops/window.js';
import { sqrt, square } from '../ops/unary.js';
import type { Rng } from '../rng.js';
import { sizeOf } from '../shape.js';
import { keep, type Tensor } from '../tensor.js';
import { initialize, layerRng, type Initializer } from './initializers.js';
import { Module } from './module.js';

/** An activation by name: any elementwise op of the unary table, 'softmax', or 'linear' (none). */
export type ActivationName = UnaryName | 'softmax' | 'linear';

export interface LayerOptions {
  name?: string;
  /** Per-sample input shape (no batch dim); builds the layer at once, as Keras's `inputShape`. */
  inputShape?: number[];
  /** Seed for this layer's initial weights (and dropout masks); default: drawn from `setSeed`'s generator. */
  seed?: number;
}

const counters = new Map<string, number>();
const autoName = (base: string) => {
  const n = counters.get(base) ?? 0;
  counters.set(base, n + 1);
  return n ? `${base}_${n}` : base;
};

export abstract class Layer extends Module {
  readonly name: string;
  /** Per-sample input shape once built. */
  inputShape: number[] | undefined;
  /** Draws this layer's initial weights and dropout seeds; its state goes into checkpoints. */
  readonly rng: Rng;

  /** The declared `inputShape`: weights are made from it on first use (after subclass fields exist). */
  private declared: number[] | undefined;

  constructor(kind: string, opts: LayerOptions = {}) {
    super();
    this.name = opts.name ?? autoName(kind);
    this.rng = layerRng(opts.seed);
    this.declared = opts.inputShape && [...opts.inputShape];
  }

  /** The per-sample input shape declared or built, if known. */
  get knownInputShape(): number[] | undefined {
    return this.inputShape ?? this.declared;
  }

  protected override prepare(): void {
    if (!this.inputShape && this.declared) this.build(this.declared);
  }

  get built(): boolean {
    return this.inputShape !== undefined;
  }

  /** Creates the weights for a per-sample input shape (once). */
  build(inputShape: number[]): void {
    if (this.inputShape) {
      if (fmtShape(inputShape) !== fmtShape(this.inputShape)) {
        throw new ShapeError(`${this.name}: built for input ${fmtShape(this.inputShape)}, got ${fmtShape(inputShape)} per sample`);
      }
      return;
    }
    this.inputShape = [...inputShape];
    this.createWeights(this.inputShape);
  }

  /** Per-sample output shape for a per-sample input shape (summary, and checks before any data flows). */
  abstract outputShape(inputShape: number[]): number[];

  /** The layer's activation, if it has one (the trainer fuses a final softmax into the loss). */
  get activation(): ActivationName | undefined {
    return undefined;
  }

  override forward(x: Tensor): Tensor {
    this.build(x.shape.slice(1));
    return this.run(x, true);
  }

  /**
   * The layer's output before a softmax or sigmoid activation (logits), for the fused cross-entropy losses.
   * @internal
   */
  forwardLogits(x: Tensor): Tensor {
    this.build(x.shape.slice(1));
    return this.run(x, false);
  }

  protected createWeights(_inputShape: number[]): void {}
  /** `final` false: skip a softmax or sigmoid output activation (the loss fuses it). */
  protected abstract run(x: Tensor, final: boolean): Tensor;

  /** A trainable weight kept out of every scope. */
  protected weight(kind: Initializer, shape: number[]): Tensor {
    return keep(initialize(kind, shape, this.rng).variable());
  }

  /** A number of parameters, for summary(). */
  countParams(): number {
    return this.parameters().reduce((a, p) => a + p.size, 0);
  }

  /** The layer's configuration, saved with the weights so `load()` can rebuild the model. */
  abstract config(): Record<string, unknown>;
}

/** Applies an activation by name after a layer that could not fuse it. */
export function activate(x: Tensor, act: ActivationName | undefined, alpha = 0.2): Tensor {
  if (!act || act === 'linear') return x;
  if (act === 'softmax') return softmax(x);
  return apply(unaryOps[act], [x], { alpha });
}

/** Output activations a cross-entropy loss can take over (it then gets logits). */
const fusable = (act: ActivationName | undefined): boolean => act === 'softmax' || act === 'sigmoid';

/** The activation a fused kernel epilogue can take ('none' for softmax and linear, which are applied apart). */
export const epilogue = (act: ActivationName | undefined): Activation => (act && act !== 'softmax' && act !== 'linear' ? act : 'none');

export function checkActivation(layer: string, act: string | undefined): ActivationName | undefined {
  if (act === undefined || act === 'linear' || act === 'softmax' || act in UNARY) return act as ActivationName | undefined;
  throw new WgnnError(`${layer}: unknown activation '${act}'; expected linear, softmax or one of ${Object.keys(UNARY).join(', ')}`);
}

export interface DenseOptions extends LayerOptions {
  units: number;
  activation?: ActivationName;
  useBias?: boolean;
  kernelInitializer?: Initializer;
  biasInitializer?: Initializer;
  /** Input features, for PyTorch-style eager construction (same as inputShape [inputDim]). */
  inputDim?: number;
}

/** y = act(x @ kernel + bias), x [..., in], kernel [in, units]: one fused matmul kernel. */
export class Dense extends Layer {
  kernel!: Tensor;
  bias: Tensor | undefined;
  readonly units: number;
  private readonly act: ActivationName | undefined;
  private readonly opts: DenseOptions;

  constructor(opts: DenseOptions) {
    super('dense', { ...opts, inputShape: opts.inputShape ?? (opts.inputDim !== undefined ? [opts.inputDim] : undefined) });
    this.units = opts.units;
    this.act = checkActivation(this.name, opts.activation);
    this.opts = opts;
    if (!(Number.isInteger(opts.units) && opts.units > 0)) throw new ShapeError(`${this.name}: units ${opts.units}; expected a positive integer`);
  }

  override get activation(): ActivationName | undefined {
    return this.act ?? this.opts.activation;
  }

  protected override createWeights(inputShape: number[]): void {
    const inDim = inputShape[inputShape.length - 1];
    if (inDim === undefined) throw new ShapeError(`${this.name}: input ${fmtShape(inputShape)} has no feature axis; expected [..., features]`);
    this.kernel = this.weight(this.opts.kernelInitializer ?? 'glorotUniform', [inDim, this.opts.units]);
    this.bias = this.opts.useBias === false ? undefined : this.weight(this.opts.biasInitializer ?? 'zeros', [this.opts.units]);
  }

  outputShape(inputShape: number[]): number[] {
    return [...inputShape.slice(0, -1), this.opts.units];
  }

  protected run(x: Tensor, final: boolean): Tensor {
    const act = final || !fusable(this.activation) ? this.activation : 'linear';
    const y = this.bias ? linear(x, this.kernel, this.bias, { activation: epilogue(act) }) : matmul(x, this.kernel, { activation: epilogue(act) });
    return act === 'softmax' ? softmax(y) : y;
  }

  config(): Record<string, unknown> {
    return { units: this.opts.units, activation: this.act ?? 'linear', useBias: this.opts.useBias !== false };
  }
}

/** [N, ...] -> [N, prod(...)]: a view, no copy. */
export class Flatten extends Layer {
  constructor(opts: LayerOptions = {}) {
    super('flatten', opts);
  }
  outputShape(inputShape: number[]): number[] {
    return [sizeOf(inputShape)];
  }
  protected run(x: Tensor): Tensor {
    return reshape(x, [x.shape[0]!, -1]);
  }
  config(): Record<string, unknown> {
    return {};
  }
}

/** An activation as its own layer. */
export class ActivationLayer extends Layer {
  private readonly act: ActivationName;
  constructor(opts: LayerOptions & { activation: ActivationName }) {
    super(opts.activation, opts);
    this.act = checkActivation(this.name, opts.activation) ?? 'linear';
  }
  override get activation(): ActivationName {
    return this.act;
  }
  outputShape(inputShape: number[]): number[] {
    return inputShape;
  }
  protected run(x: Tensor, final: boolean): Tensor {
    return !final && fusable(this.act) ? reshape(x, x.shape) : activate(x, this.act);
  }
  config(): Record<string, unknown> {
    return { activation: this.act };
  }
}

/** Zeroes a fraction `rate` of activations while training (scaling the rest); the identity in eval mode. */
export class Dropout extends Layer {
  readonly rate: number;
  constructor(opts: LayerOptions & { rate: number }) {
    super('dropout', opts);
    if (!(opts.rate >= 0 && opts.rate < 1)) throw new ShapeError(`${this.name}: rate ${opts.rate}; expected 0 <= rate < 1`);
    this.rate = opts.rate;
  }
  outputShape(inputShape: number[]): number[] {
    return inputShape;
  }
  protected run(x: Tensor): Tensor {
    if (!this.training || this.rate === 0) return reshape(x, x.shape);
    // A fresh box per step: a captured step keeps this one and advances it before every replay, drawing seeds in
    // the same order as eager steps would.
    const seed = { value: this.nextSeed() };
    onReplay(() => (seed.value = this.nextSeed()));
    return dropout(x, this.rate, seed);
  }

  private nextSeed(): number {
    return Math.floor(this.rng.next() * 2 ** 32);
  }
  config(): Record<string, unknown> {
    return { rate: this.rate };
  }
}

/**
 * Batch normalisation over the last axis (channels), as Keras: in training, normalise with the batch mean and
 * (biased) variance and update the moving statistics; in eval, use the moving statistics.
 * NOTE: momentum 0.99 and epsilon 1e-3 are Keras's defaults (PyTorch's are 0.9 in its convention and 1e-5).
 */
export class BatchNormalization extends Layer {
  gamma!: Tensor;
  beta!: Tensor;
  movingMean!: Tensor;
  movingVariance!: Tensor;
  readonly momentum: number;
  readonly epsilon: number;

  constructor(opts: LayerOptions & { momentum?: number; epsilon?: number } = {}) {
    super('batch_normalization', opts);
    this.momentum = opts.momentum ?? 0.99;
    this.epsilon = opts.epsilon ?? 1e-3;
  }

  protected override createWeights(inputShape: number[]): void {
    const c = inputShape[inputShape.length - 1];
    if (c === undefined) throw new ShapeError(`${this.name}: input ${fmtShape(inputShape)} has no channel axis`);
    this.gamma = this.weight('ones', [c]);
    this.beta = this.weight('zeros', [c]);
    this.movingMean = keep(initialize('zeros', [c], this.rng));
    this.movingVariance = keep(initialize('ones', [c], this.rng));
  }

  outputShape(inputShape: number[]): number[] {
    return inputShape;
  }

  protected run(x: Tensor): Tensor {
    const axes = [...Array(x.rank - 1).keys()];
    if (!this.training) {
      return add(mul(div(sub(x, this.movingMean), sqrt(add(this.movingVariance, this.epsilon))), this.gamma), this.beta);
    }
    const m = mean(x, axes);
    const centered = sub(x, m);
    const v = mean(square(centered), axes);
    // In place, so a captured step's replays keep updating the same statistics.
    emaInPlace(this.movingMean, m, this.momentum);
    emaInPlace(this.movingVariance, v, this.momentum);
    return add(mul(div(centered, sqrt(add(v, this.epsilon))), this.gamma), this.beta);
  }

  config(): Record<string, unknown> {
    return { momentum: this.momentum, epsilon: this.epsilon };
  }
}

export interface Conv2dOptions extends LayerOptions {
  filters: number;
  kernelSize: Pair;
  strides?: Pair;
  padding?: Padding;
  dilationRate?: Pair;
  activation?: ActivationName;
  useBias?: boolean;
  kernelInitializer?: Initializer;
  biasInitializer?: Initializer;
}

/** y = act(conv2d(x, kernel) + bias), x [N,H,W,C], kernel [R,S,C,filters]: implicit GEMM with a fused epilogue. */
export class Conv2D extends Layer {
  kernel!: Tensor;
  bias: Tensor | undefined;
  private readonly act: ActivationName | undefined;
  private readonly opts: Conv2dOptions;

  constructor(opts: Conv2dOptions) {
    super('conv2d', opts);
    this.opts = opts;
    this.act = checkActivation(this.name, opts.activation);
    if (!(Number.isInteger(opts.filters) && opts.filters > 0)) throw new ShapeError(`${this.name}: filters ${opts.filters}; expected a positive integer`);
  }

  override get activation(): ActivationName | undefined {
    return this.act;
  }

  private attrs(act: ActivationName | undefined) {
    return { stride: this.opts.strides ?? 1, padding: this.opts.padding ?? 'valid', dilation: this.opts.dilationRate ?? 1, activation: epilogue(act) };
  }

  protected override createWeights(inputShape: number[]): void {
    if (inputShape.length !== 3) throw new ShapeError(`${this.name}: input ${fmtShape(inputShape)} per sample; expected [H, W, C]`);
    const [r, s] = pair(this.opts.kernelSize);
    this.kernel = this.weight(this.opts.kernelInitializer ?? 'glorotUniform', [r, s, inputShape[2]!, this.opts.filters]);
    this.bias = this.opts.useBias === false ? undefined : this.weight(this.opts.biasInitializer ?? 'zeros', [this.opts.filters]);
  }

  outputShape(inputShape: number[]): number[] {
    const [r, s] = pair(this.opts.kernelSize);
    const w = { shape: [r, s, inputShape[2] ?? 0, this.opts.filters], dtype: 'float32' as const };
    return convOps.conv2d.infer([{ shape: [1, ...inputShape], dtype: 'float32' }, w], { ...convOps.conv2d.attrs, ...this.attrs(this.act) }).shape.slice(1);
  }

  protected run(x: Tensor, final: boolean): Tensor {
    const act = final || !fusable(this.act) ? this.act : 'linear';
    const y = this.bias ? conv2dBias(x, this.kernel, this.bias, this.attrs(act)) : conv2d(x, this.kernel, this.attrs(act));
    return act === 'softmax' ? softmax(y) : y;
  }

  config(): Record<string, unknown> {
    const o = this.opts;
    return { filters: o.filters, kernelSize: o.kernelSize, strides: o.strides ?? 1, padding: o.padding ?? 'valid', dilationRate: o.dilationRate ?? 1, activation: this.act ?? 'linear', useBias: o.useBias !== false };
  }
}

export interface Pool2dOptions extends LayerOptions {
  poolSize?: Pair;
  strides?: Pair;
  padding?: 'valid' | 'same' | number | readonly [number, number, number, number];
}

abstract class Pool2D extends Layer {
  protected readonly attrs: { poolSize: Pair; strides: Pair | undefined; padding: NonNullable<Pool2dOptions['padding']> };
  constructor(kind: string, opts: Pool2dOptions) {
    super(kind, opts);
    this.attrs = { poolSize: opts.poolSize ?? 2, strides: opts.strides, padding: opts.padding ?? 'valid' };
  }
  outputShape(inputShape: number[]): number[] {
    return poolOps.max_pool2d.infer([{ shape: [1, ...inputShape], dtype: 'float32' }], { ...poolOps.max_pool2d.attrs, ...this.attrs }).shape.slice(1);
  }
  config(): Record<string, unknown> {
    return { poolSize: this.attrs.poolSize, strides: this.attrs.strides ?? this.attrs.poolSize, padding: this.attrs.padding };
  }
}

/** Max over each window; backward routes the gradient through the saved arg-max. */
export class MaxPooling2D extends Pool2D {
  constructor(opts: Pool2dOptions = {}) {
    super('max_pooling2d', opts);
  }
  protected run(x: Tensor): Tensor {
    return maxPool2d(x, this.attrs);
  }
}

/** Mean over each window (padding not counted, as Keras). */
export class AveragePooling2D extends Pool2D {
  constructor(opts: Pool2dOptions = {}) {
    super('average_pooling2d', opts);
  }
  protected run(x: Tensor): Tensor {
    return avgPool2d(x, this.attrs);
  }
}

/** [N,H,W,C] -> [N,C], the mean over H and W. */
export class GlobalAveragePooling2D extends Layer {
  constructor(opts: LayerOptions = {}) {
    super('global_average_pooling2d', opts);
  }
  outputShape(inputShape: number[]): number[] {
    return [inputShape[inputShape.length - 1]!];
  }
  protected run(x: Tensor): Tensor {
    return globalAvgPool2d(x);
  }
  config(): Record<string, unknown> {
    return {};
  }
}

// Configs come from our own `config()` methods (checked again by each constructor).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyConfig = any;
const CLASSES: Record<string, (config: AnyConfig) => Layer> = {
  Dense: (c) => new Dense(c),
  Conv2D: (c) => new Conv2D(c),
  MaxPooling2D: (c) => new MaxPooling2D(c),
  AveragePooling2D: (c) => new AveragePooling2D(c),
  GlobalAveragePooling2D: (c) => new GlobalAveragePooling2D(c),
  Flatten: (c) => new Flatten(c),
  Dropout: (c) => new Dropout(c),
  BatchNormalization: (c) => new BatchNormalization(c),
  ActivationLayer: (c) => new ActivationLayer(c),
};

/** A layer from its class name and `config()` (what `Sequential.save` writes). */
export function layerFromConfig(cls: string, config: Record<string, unknown>): Layer {
  const make = CLASSES[cls];
  if (!make) throw new WgnnError(`layerFromConfig: unknown layer class '${cls}'; expected one of ${Object.keys(CLASSES).join(', ')}`);
  return make(config);
}
