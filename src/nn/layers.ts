// Keras-style layers (lazily built from the first input's shape) that are also PyTorch-style modules. Shapes here
// are per sample (no batch dim), as Keras's `inputShape`; tensors carry the batch as dim 0.
import { onReplay } from '../autograd/step.js';
import { isGradEnabled } from '../autograd/tape.js';
import { DTypeError, LimitError, ShapeError, WgnnError, fmtShape } from '../errors.js';
import { checkBoolean, checkNumber, checkOneOf, knownKeys, optionsObject, show } from '../options.js';
import { add, div, mul, sub } from '../ops/binary.js';
import { reshape } from '../ops/layout.js';
import { linear, matmul, type Activation } from '../ops/matmul.js';
import { dropout } from '../ops/random.js';
import { emaInPlace } from '../ops/inplace.js';
import { gather } from '../ops/gather.js';
import { layerNorm } from '../ops/norm.js';
import { mean } from '../ops/reduce.js';
import { softmax } from '../ops/softmax.js';
import { UNARY, unaryOps, type UnaryName } from '../ops/unary.js';
import { apply } from '../ops/apply.js';
import { conv2d, conv2dBias, convOps } from '../ops/conv.js';
import { avgPool2d, globalAvgPool2d, maxPool2d, poolOps } from '../ops/pool.js';
import { pair, type Pair, type Padding } from '../ops/window.js';
import { sqrt, square } from '../ops/unary.js';
import type { Rng } from '../rng.js';
import { sameShape, sizeOf } from '../shape.js';
import { Tensor, keep } from '../tensor.js';
import { initialize, layerRng, type Initializer, type InitializerName } from './initializers.js';
import { Module } from './module.js';

/** An activation by name: any elementwise op of the unary table, 'softmax', or 'linear' (none). */
export type ActivationName = UnaryName | 'softmax' | 'linear';

/** Options every layer takes. */
export interface LayerOptions {
  name?: string;
  /** Per-sample input shape (no batch dim); builds the layer at once, as Keras's `inputShape`. */
  inputShape?: number[];
  /** Seed for this layer's initial weights (and dropout masks); default: drawn from `setSeed`'s generator. */
  seed?: number;
}
const LAYER_KEYS = ['name', 'inputShape', 'seed'];

const counters = new Map<string, number>();
const autoName = (base: string) => {
  const n = counters.get(base) ?? 0;
  counters.set(base, n + 1);
  return n ? `${base}_${n}` : base;
};

/**
 * What a layer may allocate, checked before anything is (from code or from a model file): a size past a limit is a
 * LimitError naming it. Raise them with {@link setLayerLimits} for larger models.
 */
export interface LayerLimits {
  /** Most weights and buffers one layer may hold (default 2^26: 256 MiB of float32, WebGPU's default maxBufferSize). */
  maxParams: number;
  /** Most elements in one sample of a layer's input or output, and in any one size option (default 2^26). */
  maxSampleSize: number;
}
const limits: LayerLimits = { maxParams: 2 ** 26, maxSampleSize: 2 ** 26 };

/** Sets some of the {@link LayerLimits} (positive integers) and returns the previous ones; `setLayerLimits({})` reads them. */
export function setLayerLimits(l: Partial<LayerLimits>): LayerLimits {
  const o = optionsObject('setLayerLimits', 'limits', l);
  knownKeys('setLayerLimits', o, Object.keys(limits));
  const next = { ...limits };
  for (const k of Object.keys(limits) as (keyof LayerLimits)[]) {
    if (o[k] !== undefined)
      next[k] = checkNumber('setLayerLimits', k, o[k], { integer: true, min: 1, max: Number.MAX_SAFE_INTEGER });
  }
  const prev = { ...limits };
  Object.assign(limits, next);
  return prev;
}

const overLimit = (layer: string, what: string, n: number, limit: keyof LayerLimits) =>
  new LimitError(
    `${layer}: ${what} ${n}, over the limit of ${limits[limit]} (${limit}); setLayerLimits({ ${limit} }) raises it`,
  );

/** A size option (units, a kernel side, a pad): an integer >= min (ShapeError), within maxSampleSize or `limit`. */
export function checkSize(
  layer: string,
  option: string,
  v: unknown,
  min = 1,
  limit: keyof LayerLimits = 'maxSampleSize',
): number {
  const n = checkNumber(layer, option, v, { integer: true, min }, ShapeError);
  if (n > limits[limit]) throw overLimit(layer, option, n, limit);
  return n;
}

/** A per-sample shape (no batch dim): positive integers whose product is within maxSampleSize. */
function checkSampleShape(layer: string, option: string, v: unknown): number[] {
  if (!Array.isArray(v))
    throw new ShapeError(
      `${layer}: ${option} must be an array of positive integers (per sample, no batch dim), got ${show(v)}`,
    );
  const shape = v.map((d: unknown, i) => checkSize(layer, `${option}[${i}]`, d));
  if (sizeOf(shape) > limits.maxSampleSize)
    throw overLimit(layer, `${option} ${fmtShape(shape)} holds`, sizeOf(shape), 'maxSampleSize');
  return shape;
}

/** A kernel size, stride or dilation: n or [h, w], positive integers. */
function checkPair(layer: string, option: string, v: unknown): Pair {
  if (typeof v === 'number') return checkSize(layer, option, v);
  if (!Array.isArray(v) || v.length !== 2)
    throw new ShapeError(`${layer}: ${option} must be a positive integer or [height, width], got ${show(v)}`);
  return [checkSize(layer, `${option}[0]`, v[0]), checkSize(layer, `${option}[1]`, v[1])];
}

/** 'valid', 'same', n or [top, bottom, left, right], integers >= 0. */
function checkPadding(layer: string, v: unknown): Padding {
  if (v === 'valid' || v === 'same') return v;
  if (typeof v === 'number') return checkSize(layer, 'padding', v, 0);
  if (!Array.isArray(v) || v.length !== 4)
    throw new ShapeError(
      `${layer}: padding must be 'valid', 'same', an integer >= 0 or [top, bottom, left, right], got ${show(v)}`,
    );
  return v.map((p: unknown, i) => checkSize(layer, `padding[${i}]`, p, 0)) as unknown as Padding;
}

// Every initialiser by name (a Record, so a new one in the InitializerName type must be listed here).
const INITIALIZERS = Object.keys({
  glorotUniform: 1,
  glorotNormal: 1,
  heUniform: 1,
  heNormal: 1,
  zeros: 1,
  ones: 1,
  randomUniform: 1,
  randomNormal: 1,
} satisfies Record<InitializerName, 1>) as InitializerName[];

/** An initialiser option: a name of `INITIALIZERS` or `{ kind: 'randomNormal', stddev }` (stddev finite, >= 0). */
export function checkInitializer(layer: string, option: string, v: unknown): Initializer {
  if (typeof v === 'string') return checkOneOf(layer, option, v, INITIALIZERS);
  const o = v as Record<string, unknown> | null;
  if (o === null || typeof o !== 'object' || Array.isArray(o) || o.kind !== 'randomNormal')
    throw new WgnnError(
      `${layer}: ${option} is ${show(v)}; expected one of ${INITIALIZERS.join(', ')} or { kind: 'randomNormal', stddev }`,
    );
  knownKeys(`${layer}: ${option}`, o, ['kind', 'stddev']);
  return { kind: 'randomNormal', stddev: checkNumber(layer, `${option}.stddev`, o.stddev, { min: 0, max: 1e6 }) };
}

/** The same rank and last axis: what a layer whose weights see only the last axis needs (Keras's InputSpec axes={-1}). */
export const lastAxisFits = (built: readonly number[], input: readonly number[]): boolean =>
  built.length === input.length && built[built.length - 1] === input[input.length - 1];

export const optional = <T>(v: unknown, fallback: T, check: (v: unknown) => T): T =>
  v === undefined ? fallback : check(v);

/** A weight a layer makes when built: the field that holds it, its shape, its initialiser, and whether it trains. */
export interface WeightSpec {
  field: string;
  shape: number[];
  init: Initializer;
  trainable: boolean;
}

/** The base of the Keras-style layers: weights made on first use from the input shape, a config to save and rebuild it, `forward` on a batch. */
export abstract class Layer extends Module {
  readonly name: string;
  /** Per-sample input shape once built. */
  inputShape: number[] | undefined;
  /** Draws this layer's initial weights and dropout seeds; its state goes into checkpoints. */
  readonly rng: Rng;

  /** The declared `inputShape`: weights are made from it on first use (after subclass fields exist). */
  private declared: number[] | undefined;

  /**
   * `baseName` names unnamed layers: `dense`, `dense_1`, ... `opts` may hold the options of {@link LayerOptions}
   * and `keys` (the subclass's own, which it checks); any other key is an error naming it.
   */
  constructor(baseName: string, opts: LayerOptions, keys: readonly string[] = []) {
    super();
    const o = optionsObject(baseName, 'options', opts);
    this.name = o.name === undefined ? autoName(baseName) : checkName(baseName, o.name);
    knownKeys(this.name, o, [...LAYER_KEYS, ...keys]);
    this.rng = layerRng(optional(o.seed, undefined, (v) => checkNumber(this.name, 'seed', v, { integer: true })));
    if (o.inputShape !== undefined) this.declare(checkSampleShape(this.name, 'inputShape', o.inputShape));
  }

  /** Declares the per-sample input shape (checked by the caller). */
  protected declare(shape: number[]): void {
    this.declared = shape;
  }

  /**
   * The class's kind, which `save` writes and `load` looks up in `LAYERS` (`wg.nn.LAYERS`): each layer class declares its own
   * `static readonly kind`, a string a minifier keeps (it renames classes). A subclass defined elsewhere that
   * declares none gets its class name, so `load` names it as unknown rather than rebuilding its parent.
   */
  get kind(): string {
    const cls = this.constructor;
    return Object.hasOwn(cls, 'kind') ? (cls as unknown as { kind: string }).kind : cls.name;
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

  /**
   * Creates the weights for a per-sample input shape (once). A shape other than the one declared or built is a
   * ShapeError: a layer never rebuilds silently for another input.
   */
  build(inputShape: number[]): void {
    if (this.inputShape && this.fits(this.inputShape, inputShape)) return;
    this.plannedWeights(inputShape);
    this.inputShape = [...inputShape];
    this.createWeights(this.inputShape);
  }

  /**
   * The weights {@link build} would make for this per-sample input shape, checked before anything is allocated: the
   * shape against the one declared or built, the input and output shapes, and the limits. `load` compares them with
   * a file's tensors first.
   */
  plannedWeights(inputShape: number[]): WeightSpec[] {
    const want = this.inputShape ?? this.declared;
    if (want && !this.fits(want, inputShape)) {
      throw new ShapeError(
        `${this.name}: ${this.inputShape ? 'built' : 'declared'} for input ${fmtShape(want)} per sample, got ${fmtShape(inputShape)}`,
      );
    }
    const out = this.outputShape(inputShape); // ShapeError if the input does not fit
    for (const [what, s] of [
      ['input', inputShape],
      ['output', out],
    ] as const) {
      if (sizeOf(s) > limits.maxSampleSize)
        throw overLimit(this.name, `${what} ${fmtShape(s)} per sample holds`, sizeOf(s), 'maxSampleSize');
    }
    const specs = this.weightSpecs(inputShape);
    const n = specs.reduce((a, w) => a + sizeOf(w.shape), 0);
    if (n > limits.maxParams)
      throw overLimit(
        this.name,
        `${specs.map((w) => `${w.field} ${fmtShape(w.shape)}`).join(', ')} hold`,
        n,
        'maxParams',
      );
    return specs;
  }

  /**
   * Whether a per-sample input shape fits the weights made for `built` (default: only the same shape). A layer whose
   * weights depend on the last axis alone says so with {@link lastAxisFits}: a sequence model then runs on any length.
   */
  protected fits(built: readonly number[], input: readonly number[]): boolean {
    return sameShape(built, input);
  }

  /** Makes `child` draw from this layer's generator (weights, dropout seeds): a checkpoint holds one state for both. */
  protected adopt<T extends Layer>(child: T): T {
    (child as unknown as { rng: Rng }).rng = this.rng;
    return child;
  }

  /**
   * A dropout seed from this layer's generator, for one op of one step: a fresh box per step, which a captured step
   * keeps and advances before every replay, drawing seeds in the same order as eager steps would.
   */
  protected dropoutSeed(): { value: number } {
    const next = () => Math.floor(this.rng.next() * 2 ** 32);
    const seed = { value: next() };
    onReplay(() => (seed.value = next()));
    return seed;
  }

  /** Per-sample output shape for a per-sample input shape (summary, and checks before any data flows). */
  abstract outputShape(inputShape: number[]): number[];

  /**
   * Called by a Sequential with its whole stack when this layer joins it: a layer that shares a weight with another
   * (a head tied to the token embedding) finds it here. Nothing by default.
   */
  link(_stack: readonly Layer[]): void {}

  /** For a layer that takes int32 ids (an embedding): how many there are, ids run 0..n-1; else undefined. */
  get idCount(): number | undefined {
    return undefined;
  }

  /** The layer's activation, if it has one (the trainer fuses a final softmax into the loss). */
  get activation(): ActivationName | undefined {
    return undefined;
  }

  override forward(x: Tensor): Tensor {
    this.build(this.sampleShape(x));
    return this.run(x, true);
  }

  /**
   * The layer's output before a softmax or sigmoid activation (logits), for the fused cross-entropy losses.
   * @internal
   */
  forwardLogits(x: Tensor): Tensor {
    this.build(this.sampleShape(x));
    return this.run(x, false);
  }

  private sampleShape(x: Tensor): number[] {
    if (!(x instanceof Tensor)) throw new WgnnError(`${this.name}: input must be a Tensor, got ${show(x)}`);
    if (x.rank === 0)
      throw new ShapeError(`${this.name}: input ${fmtShape(x.shape)} has no batch axis; expected [batch, ...]`);
    return x.shape.slice(1);
  }

  /** The weights this layer makes for a per-sample input shape, in the order drawn (none by default). */
  protected weightSpecs(_inputShape: number[]): WeightSpec[] {
    return [];
  }

  /** Makes the weights of {@link weightSpecs} in their fields, each drawn from this layer's generator in turn. */
  protected createWeights(inputShape: number[]): void {
    for (const w of this.weightSpecs(inputShape)) {
      const t = w.trainable ? this.weight(w.init, w.shape) : keep(initialize(w.init, w.shape, this.rng));
      (this as unknown as Record<string, Tensor>)[w.field] = t;
    }
  }

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

function checkName(layer: string, v: unknown): string {
  if (typeof v !== 'string' || v === '')
    throw new WgnnError(`${layer}: name must be a non-empty string, got ${show(v)}`);
  return v;
}

/** Applies an activation by name after a layer that could not fuse it. */
export function activate(x: Tensor, act: ActivationName | undefined, alpha = 0.2): Tensor {
  if (!act || act === 'linear') return x;
  if (act === 'softmax') return softmax(x);
  return apply(unaryOps[act], [x], { alpha });
}

/**
 * The activation a layer's kernel fuses into its epilogue: `act`, unless the tape will record the call and act's
 * derivative needs its input (gelu, silu, leaky_relu...: UNARY's grad.uses 'x'). The fused op's backward would then
 * recompute the whole product for it (it keeps only its output); applied apart, the activation keeps its input
 * (PyTorch's Linear then GELU). NOTE: the char GPT's step on lavapipe spent 7% of its time recomputing its four MLP
 * products this way. Inference (no grad, or no input that requires it) keeps the one fused kernel.
 */
function fusedAct(
  act: ActivationName | undefined,
  inputs: readonly (Tensor | undefined)[],
): ActivationName | undefined {
  const row = act && act !== 'linear' && act !== 'softmax' ? UNARY[act] : undefined;
  const records = isGradEnabled() && inputs.some((t) => t?.requiresGrad);
  return row?.grad.uses === 'x' && records ? 'linear' : act;
}

/** Output activations a cross-entropy loss can take over (it then gets logits). */
const fusable = (act: ActivationName | undefined): boolean => act === 'softmax' || act === 'sigmoid';

/** The activation a fused kernel epilogue can take ('none' for softmax and linear, which are applied apart). */
export const epilogue = (act: ActivationName | undefined): Activation =>
  act && act !== 'softmax' && act !== 'linear' ? act : 'none';

const isActivation = (act: unknown): act is ActivationName =>
  act === 'linear' || act === 'softmax' || (typeof act === 'string' && Object.hasOwn(UNARY, act));

/** An activation option: undefined, or a name {@link isActivation} knows (an own entry of the table: not 'toString'). */
export function checkActivation(layer: string, act: unknown): ActivationName | undefined {
  if (act === undefined || isActivation(act)) return act;
  throw new WgnnError(
    `${layer}: unknown activation ${show(act)}; expected linear, softmax or one of ${Object.keys(UNARY).join(', ')}`,
  );
}

/** Options of `layers.dense`. */
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
  static readonly kind = 'Dense';
  kernel!: Tensor;
  bias: Tensor | undefined;
  readonly units: number;
  private readonly act: ActivationName | undefined;
  private readonly useBias: boolean;
  private readonly inits: [Initializer, Initializer];

  constructor(opts: DenseOptions) {
    super('dense', opts, ['units', 'activation', 'useBias', 'kernelInitializer', 'biasInitializer', 'inputDim']);
    this.units = checkSize(this.name, 'units', opts.units, 1, 'maxParams');
    this.act = checkActivation(this.name, opts.activation);
    this.useBias = optional(opts.useBias, true, (v) => checkBoolean(this.name, 'useBias', v));
    this.inits = [
      optional(opts.kernelInitializer, 'glorotUniform', (v) => checkInitializer(this.name, 'kernelInitializer', v)),
      optional(opts.biasInitializer, 'zeros', (v) => checkInitializer(this.name, 'biasInitializer', v)),
    ];
    if (opts.inputDim !== undefined) {
      if (opts.inputShape !== undefined)
        throw new WgnnError(`${this.name}: inputShape and inputDim both given; expected one of them`);
      this.declare([checkSize(this.name, 'inputDim', opts.inputDim)]);
    }
  }

  override get activation(): ActivationName | undefined {
    return this.act;
  }

  /** Any leading sizes (a sequence of any length): the weights see the last axis only. */
  protected override fits(built: readonly number[], input: readonly number[]): boolean {
    return lastAxisFits(built, input);
  }

  protected override weightSpecs(inputShape: number[]): WeightSpec[] {
    const inDim = inputShape[inputShape.length - 1];
    if (inDim === undefined)
      throw new ShapeError(`${this.name}: input ${fmtShape(inputShape)} has no feature axis; expected [..., features]`);
    return [
      { field: 'kernel', shape: [inDim, this.units], init: this.inits[0], trainable: true },
      ...(this.useBias ? [{ field: 'bias', shape: [this.units], init: this.inits[1], trainable: true }] : []),
    ];
  }

  outputShape(inputShape: number[]): number[] {
    return [...inputShape.slice(0, -1), this.units];
  }

  protected run(x: Tensor, final: boolean): Tensor {
    const act = final || !fusable(this.activation) ? this.activation : 'linear';
    const fused = fusedAct(act, [x, this.kernel, this.bias]);
    const y = this.bias
      ? linear(x, this.kernel, this.bias, { activation: epilogue(fused) })
      : matmul(x, this.kernel, { activation: epilogue(fused) });
    return fused === act ? (act === 'softmax' ? softmax(y) : y) : activate(y, act);
  }

  config(): Record<string, unknown> {
    return { units: this.units, activation: this.act ?? 'linear', useBias: this.useBias };
  }
}

/** [N, ...] -> [N, prod(...)]: a view, no copy. */
export class Flatten extends Layer {
  static readonly kind = 'Flatten';
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
  static readonly kind = 'ActivationLayer';
  private readonly act: ActivationName;
  constructor(opts: LayerOptions & { activation: ActivationName }) {
    // Named after its activation ('relu', 'relu_1'), or 'activation' until the check below names the bad one.
    super(
      isActivation((opts as { activation?: unknown } | null | undefined)?.activation) ? opts.activation : 'activation',
      opts,
      ['activation'],
    );
    this.act = checkActivation(this.name, opts.activation) ?? 'linear';
  }
  override get activation(): ActivationName {
    return this.act;
  }
  outputShape(inputShape: number[]): number[] {
    return inputShape;
  }

  /** Any input: no weights. */
  protected override fits(): boolean {
    return true;
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
  static readonly kind = 'Dropout';
  readonly rate: number;
  constructor(opts: LayerOptions & { rate: number }) {
    super('dropout', opts, ['rate']);
    this.rate = checkNumber(this.name, 'rate', opts.rate, { min: 0, below: 1 });
  }
  outputShape(inputShape: number[]): number[] {
    return inputShape;
  }

  /** Any input: no weights. */
  protected override fits(): boolean {
    return true;
  }
  protected run(x: Tensor): Tensor {
    if (!this.training || this.rate === 0) return reshape(x, x.shape);
    return dropout(x, this.rate, this.dropoutSeed());
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
  static readonly kind = 'BatchNormalization';
  gamma!: Tensor;
  beta!: Tensor;
  movingMean!: Tensor;
  movingVariance!: Tensor;
  /** The moving statistics keep this fraction of themselves at each step, in [0, 1]. */
  readonly momentum: number;
  /** Added to the variance before the square root, > 0. */
  readonly epsilon: number;

  constructor(opts: LayerOptions & { momentum?: number; epsilon?: number } = {}) {
    super('batch_normalization', opts, ['momentum', 'epsilon']);
    this.momentum = optional(opts.momentum, 0.99, (v) => checkNumber(this.name, 'momentum', v, { min: 0, max: 1 }));
    this.epsilon = optional(opts.epsilon, 1e-3, (v) => checkNumber(this.name, 'epsilon', v, { above: 0 }));
  }

  protected override weightSpecs(inputShape: number[]): WeightSpec[] {
    const c = inputShape[inputShape.length - 1];
    if (c === undefined) throw new ShapeError(`${this.name}: input ${fmtShape(inputShape)} has no channel axis`);
    return [
      { field: 'gamma', shape: [c], init: 'ones', trainable: true },
      { field: 'beta', shape: [c], init: 'zeros', trainable: true },
      { field: 'movingMean', shape: [c], init: 'zeros', trainable: false },
      { field: 'movingVariance', shape: [c], init: 'ones', trainable: false },
    ];
  }

  outputShape(inputShape: number[]): number[] {
    return inputShape;
  }

  protected run(x: Tensor): Tensor {
    const axes = [...Array(x.rank - 1).keys()];
    if (!this.training) {
      return add(
        mul(div(sub(x, this.movingMean), sqrt(add(this.movingVariance, this.epsilon))), this.gamma),
        this.beta,
      );
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

/** Options of `layers.embedding`. */
export interface EmbeddingOptions extends LayerOptions {
  /** Vocabulary size V: indices run 0..V-1. */
  inputDim: number;
  /** Width D of each row. */
  outputDim: number;
  /** Default 'randomUniform' (uniform in [-0.05, 0.05], Keras's default for this layer). */
  embeddingsInitializer?: Initializer;
}

/**
 * Rows of `embeddings` [V, D] at int32 indices: x [N, ...] -> [N, ..., D], as Keras's Embedding and torch.nn.Embedding.
 * NOTE: the default initialiser is Keras's (uniform in ±0.05), not torch's N(0, 1); GPT-style models draw N(0, 0.02).
 */
export class Embedding extends Layer {
  static readonly kind = 'Embedding';
  embeddings!: Tensor;
  readonly inputDim: number;
  readonly outputDim: number;
  private readonly init: Initializer;

  constructor(opts: EmbeddingOptions) {
    super('embedding', opts, ['inputDim', 'outputDim', 'embeddingsInitializer']);
    this.inputDim = checkSize(this.name, 'inputDim', opts.inputDim, 1, 'maxParams');
    this.outputDim = checkSize(this.name, 'outputDim', opts.outputDim, 1, 'maxParams');
    this.init = optional(opts.embeddingsInitializer, 'randomUniform', (v) =>
      checkInitializer(this.name, 'embeddingsInitializer', v),
    );
  }

  protected override weightSpecs(): WeightSpec[] {
    return [{ field: 'embeddings', shape: [this.inputDim, this.outputDim], init: this.init, trainable: true }];
  }

  override get idCount(): number {
    return this.inputDim;
  }

  outputShape(inputShape: number[]): number[] {
    return [...inputShape, this.outputDim];
  }

  /** Any input: the table does not depend on the index shape. */
  protected override fits(): boolean {
    return true;
  }

  protected run(x: Tensor): Tensor {
    if (x.dtype !== 'int32')
      throw new DTypeError(`${this.name}: input ${fmtShape(x.shape)} is ${x.dtype}; expected int32 token indices`);
    return gather(this.embeddings, x);
  }

  config(): Record<string, unknown> {
    return { inputDim: this.inputDim, outputDim: this.outputDim, embeddingsInitializer: this.init };
  }
}

/**
 * Layer normalisation over the last axis: each row to zero mean and unit (biased) variance, then · gamma + beta,
 * as torch.nn.LayerNorm(D) and Keras's LayerNormalization(axis=-1); one fused kernel each way.
 * NOTE: epsilon defaults to 1e-5, torch's (Keras's is 1e-3): GPT parity is checked against PyTorch.
 */
export class LayerNormalization extends Layer {
  static readonly kind = 'LayerNormalization';
  gamma!: Tensor;
  beta!: Tensor;
  /** Added to the variance before the square root, > 0. */
  readonly epsilon: number;

  constructor(opts: LayerOptions & { epsilon?: number } = {}) {
    super('layer_normalization', opts, ['epsilon']);
    this.epsilon = optional(opts.epsilon, 1e-5, (v) => checkNumber(this.name, 'epsilon', v, { above: 0 }));
  }

  protected override weightSpecs(inputShape: number[]): WeightSpec[] {
    const d = inputShape[inputShape.length - 1];
    if (d === undefined)
      throw new ShapeError(`${this.name}: input ${fmtShape(inputShape)} has no feature axis; expected [..., features]`);
    return [
      { field: 'gamma', shape: [d], init: 'ones', trainable: true },
      { field: 'beta', shape: [d], init: 'zeros', trainable: true },
    ];
  }

  outputShape(inputShape: number[]): number[] {
    return inputShape;
  }

  /** Any leading sizes (a sequence of any length): the weights see the last axis only. */
  protected override fits(built: readonly number[], input: readonly number[]): boolean {
    return lastAxisFits(built, input);
  }

  protected run(x: Tensor): Tensor {
    return layerNorm(x, this.gamma, this.beta, { eps: this.epsilon });
  }

  config(): Record<string, unknown> {
    return { epsilon: this.epsilon };
  }
}

/** Options of `layers.conv2d`. */
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
  static readonly kind = 'Conv2D';
  kernel!: Tensor;
  bias: Tensor | undefined;
  readonly filters: number;
  private readonly act: ActivationName | undefined;
  private readonly geometry: { kernelSize: Pair; strides: Pair; padding: Padding; dilationRate: Pair };
  private readonly useBias: boolean;
  private readonly inits: [Initializer, Initializer];

  constructor(opts: Conv2dOptions) {
    super('conv2d', opts, [
      'filters',
      'kernelSize',
      'strides',
      'padding',
      'dilationRate',
      'activation',
      'useBias',
      'kernelInitializer',
      'biasInitializer',
    ]);
    this.filters = checkSize(this.name, 'filters', opts.filters, 1, 'maxParams');
    this.geometry = {
      kernelSize: checkPair(this.name, 'kernelSize', opts.kernelSize),
      strides: optional(opts.strides, 1, (v) => checkPair(this.name, 'strides', v)),
      padding: optional(opts.padding, 'valid', (v) => checkPadding(this.name, v)),
      dilationRate: optional(opts.dilationRate, 1, (v) => checkPair(this.name, 'dilationRate', v)),
    };
    // The kernel holds at least R·S·filters weights (one input channel): refuse an absurd one before any input.
    const [r, s] = pair(this.geometry.kernelSize);
    if (r * s * this.filters > limits.maxParams)
      throw overLimit(
        this.name,
        `kernel [${r},${s},C,${this.filters}] holds at least`,
        r * s * this.filters,
        'maxParams',
      );
    this.act = checkActivation(this.name, opts.activation);
    this.useBias = optional(opts.useBias, true, (v) => checkBoolean(this.name, 'useBias', v));
    this.inits = [
      optional(opts.kernelInitializer, 'glorotUniform', (v) => checkInitializer(this.name, 'kernelInitializer', v)),
      optional(opts.biasInitializer, 'zeros', (v) => checkInitializer(this.name, 'biasInitializer', v)),
    ];
  }

  override get activation(): ActivationName | undefined {
    return this.act;
  }

  private attrs(act: ActivationName | undefined) {
    const g = this.geometry;
    return { stride: g.strides, padding: g.padding, dilation: g.dilationRate, activation: epilogue(act) };
  }

  protected override weightSpecs(inputShape: number[]): WeightSpec[] {
    if (inputShape.length !== 3)
      throw new ShapeError(`${this.name}: input ${fmtShape(inputShape)} per sample; expected [H, W, C]`);
    const [r, s] = pair(this.geometry.kernelSize);
    return [
      { field: 'kernel', shape: [r, s, inputShape[2]!, this.filters], init: this.inits[0], trainable: true },
      ...(this.useBias ? [{ field: 'bias', shape: [this.filters], init: this.inits[1], trainable: true }] : []),
    ];
  }

  outputShape(inputShape: number[]): number[] {
    const [r, s] = pair(this.geometry.kernelSize);
    const w = { shape: [r, s, inputShape[2] ?? 0, this.filters], dtype: 'float32' as const };
    return convOps.conv2d
      .infer([{ shape: [1, ...inputShape], dtype: 'float32' }, w], { ...convOps.conv2d.attrs, ...this.attrs(this.act) })
      .shape.slice(1);
  }

  protected run(x: Tensor, final: boolean): Tensor {
    const act = final || !fusable(this.act) ? this.act : 'linear';
    const fused = fusedAct(act, [x, this.kernel, this.bias]);
    const y = this.bias
      ? conv2dBias(x, this.kernel, this.bias, this.attrs(fused))
      : conv2d(x, this.kernel, this.attrs(fused));
    return fused === act ? (act === 'softmax' ? softmax(y) : y) : activate(y, act);
  }

  config(): Record<string, unknown> {
    return { filters: this.filters, ...this.geometry, activation: this.act ?? 'linear', useBias: this.useBias };
  }
}

/** Options of `layers.maxPool2d` and `layers.avgPool2d`. */
export interface Pool2dOptions extends LayerOptions {
  poolSize?: Pair;
  strides?: Pair;
  padding?: 'valid' | 'same' | number | readonly [number, number, number, number];
}

abstract class Pool2D extends Layer {
  protected readonly attrs: {
    poolSize: Pair;
    strides: Pair | undefined;
    padding: NonNullable<Pool2dOptions['padding']>;
  };
  constructor(kind: string, opts: Pool2dOptions) {
    super(kind, opts, ['poolSize', 'strides', 'padding']);
    this.attrs = {
      poolSize: optional(opts.poolSize, 2, (v) => checkPair(this.name, 'poolSize', v)),
      strides: optional(opts.strides, undefined, (v) => checkPair(this.name, 'strides', v)),
      padding: optional(opts.padding, 'valid', (v) => checkPadding(this.name, v)),
    };
  }
  outputShape(inputShape: number[]): number[] {
    if (inputShape.length !== 3)
      throw new ShapeError(`${this.name}: input ${fmtShape(inputShape)} per sample; expected [H, W, C]`);
    return poolOps.max_pool2d
      .infer([{ shape: [1, ...inputShape], dtype: 'float32' }], { ...poolOps.max_pool2d.attrs, ...this.attrs })
      .shape.slice(1);
  }
  config(): Record<string, unknown> {
    return {
      poolSize: this.attrs.poolSize,
      strides: this.attrs.strides ?? this.attrs.poolSize,
      padding: this.attrs.padding,
    };
  }
}

/** Max over each window; backward routes the gradient through the saved arg-max. */
export class MaxPooling2D extends Pool2D {
  static readonly kind = 'MaxPooling2D';
  constructor(opts: Pool2dOptions = {}) {
    super('max_pooling2d', opts);
  }
  protected run(x: Tensor): Tensor {
    return maxPool2d(x, this.attrs);
  }
}

/** Mean over each window (padding not counted, as Keras). */
export class AveragePooling2D extends Pool2D {
  static readonly kind = 'AveragePooling2D';
  constructor(opts: Pool2dOptions = {}) {
    super('average_pooling2d', opts);
  }
  protected run(x: Tensor): Tensor {
    return avgPool2d(x, this.attrs);
  }
}

/** [N,H,W,C] -> [N,C], the mean over H and W. */
export class GlobalAveragePooling2D extends Layer {
  static readonly kind = 'GlobalAveragePooling2D';
  constructor(opts: LayerOptions = {}) {
    super('global_average_pooling2d', opts);
  }
  outputShape(inputShape: number[]): number[] {
    if (inputShape.length !== 3)
      throw new ShapeError(`${this.name}: input ${fmtShape(inputShape)} per sample; expected [H, W, C]`);
    return [inputShape[2]!];
  }
  protected run(x: Tensor): Tensor {
    return globalAvgPool2d(x);
  }
  config(): Record<string, unknown> {
    return {};
  }
}
