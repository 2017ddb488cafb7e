// Transformer layers, shaped as nanoGPT's: token + position embedding, multi-head self-attention with a fused QKV
// projection, the pre-LN block (attention and a GELU MLP, each with a residual) and the language-model head (its own
// kernel, or tied to the token embedding). Each is a Layer (Keras-style, in a Sequential) and a Module (PyTorch-style).
import { DTypeError, ShapeError, WgnnError, fmtShape } from '../errors.js';
import { checkBoolean, checkNumber, checkOneOf } from '../options.js';
import { attention, attentionQkv } from '../ops/attention.js';
import { add } from '../ops/binary.js';
import { gather } from '../ops/gather.js';
import { concat, reshape, slice, transpose } from '../ops/layout.js';
import { matmul } from '../ops/matmul.js';
import { dropout } from '../ops/random.js';
import { softmax } from '../ops/softmax.js';
import type { Tensor } from '../tensor.js';
import { randomNormal } from './initializers.js';
import {
  Dense,
  Layer,
  LayerNormalization,
  checkSize,
  lastAxisFits,
  optional,
  type ActivationName,
  type LayerOptions,
  type WeightSpec,
} from './layers.js';

/** The keys and values a MultiHeadAttention has seen so far in generation: k, v [B, H, T, D/H]. */
export interface KVCache {
  k: Tensor;
  v: Tensor;
}

/** nanoGPT's initialisation: N(0, 0.02²) for kernels and embeddings. */
const STD = 0.02;

const checkRate = (layer: string, v: unknown): number =>
  optional(v, 0, (r) => checkNumber(layer, 'dropout', r, { min: 0, below: 1 }));
const checkStd = (layer: string, option: string, v: unknown, fallback: number): number =>
  optional(v, fallback, (s) => checkNumber(layer, option, s, { min: 0, max: 1e6 }));

/** The weights of a Dense child `field` (kernel [inDim, units] from N(0, std²), bias zeros), as it will draw them. */
const denseSpecs = (field: string, inDim: number, units: number, std: number): WeightSpec[] => [
  { field: `${field}.kernel`, shape: [inDim, units], init: randomNormal(std), trainable: true },
  { field: `${field}.bias`, shape: [units], init: 'zeros', trainable: true },
];

/** The weights of a LayerNormalization child `field` over width d. */
const normSpecs = (field: string, d: number): WeightSpec[] => [
  { field: `${field}.gamma`, shape: [d], init: 'ones', trainable: true },
  { field: `${field}.beta`, shape: [d], init: 'zeros', trainable: true },
];

/** A sequence input [T, D] per sample: its T and D, or a ShapeError naming the layer. */
function sequence(layer: string, inputShape: readonly number[]): [number, number] {
  if (inputShape.length !== 2)
    throw new ShapeError(`${layer}: input ${fmtShape(inputShape)} per sample; expected a sequence [T, features]`);
  return inputShape as [number, number];
}

export interface TokenAndPositionEmbeddingOptions extends LayerOptions {
  /** Vocabulary size V: token ids run 0..V-1. */
  vocabSize: number;
  /** Longest sequence (the model's block size): positions run 0..maxLength-1. */
  maxLength: number;
  /** Width D of each embedding. */
  outputDim: number;
  /** Dropout on the sum while training (nanoGPT's `drop`), default 0. */
  dropout?: number;
  /** Standard deviation of both tables' N(0, σ²) initialisation, default 0.02. */
  initStd?: number;
}

/**
 * int32 token ids x [B, T] -> tokens[x] + positions[0..T-1], [B, T, D] (nanoGPT's wte + wpe, keras-hub's
 * TokenAndPositionEmbedding). T may be anything up to `maxLength`; more is a ShapeError naming both.
 */
export class TokenAndPositionEmbedding extends Layer {
  static readonly kind = 'TokenAndPositionEmbedding';
  tokens!: Tensor;
  positions!: Tensor;
  readonly vocabSize: number;
  readonly maxLength: number;
  readonly outputDim: number;
  readonly rate: number;
  readonly initStd: number;

  constructor(opts: TokenAndPositionEmbeddingOptions) {
    super('token_and_position_embedding', opts, ['vocabSize', 'maxLength', 'outputDim', 'dropout', 'initStd']);
    this.vocabSize = checkSize(this.name, 'vocabSize', opts.vocabSize, 1, 'maxParams');
    this.maxLength = checkSize(this.name, 'maxLength', opts.maxLength, 1, 'maxParams');
    this.outputDim = checkSize(this.name, 'outputDim', opts.outputDim, 1, 'maxParams');
    this.rate = checkRate(this.name, opts.dropout);
    this.initStd = checkStd(this.name, 'initStd', opts.initStd, STD);
  }

  protected override weightSpecs(): WeightSpec[] {
    const init = randomNormal(this.initStd);
    return [
      { field: 'tokens', shape: [this.vocabSize, this.outputDim], init, trainable: true },
      { field: 'positions', shape: [this.maxLength, this.outputDim], init, trainable: true },
    ];
  }

  /** Any length up to maxLength: the tables do not depend on it. */
  protected override fits(_built: readonly number[], input: readonly number[]): boolean {
    return input.length === 1;
  }

  override get idCount(): number {
    return this.vocabSize;
  }

  outputShape(inputShape: number[]): number[] {
    if (inputShape.length !== 1)
      throw new ShapeError(`${this.name}: input ${fmtShape(inputShape)} per sample; expected token ids [T]`);
    const t = inputShape[0]!;
    if (t > this.maxLength)
      throw new ShapeError(
        `${this.name}: ${t} positions per sample, more than maxLength (the block size) ${this.maxLength}`,
      );
    return [t, this.outputDim];
  }

  protected run(x: Tensor): Tensor {
    return this.embed(x, 0);
  }

  /** The embeddings of ids x [B, T] at positions start..start+T-1 (generation feeds a few positions at a time). */
  embed(x: Tensor, start: number): Tensor {
    if (x.dtype !== 'int32')
      throw new DTypeError(`${this.name}: input ${fmtShape(x.shape)} is ${x.dtype}; expected int32 token ids`);
    if (x.rank !== 2) throw new ShapeError(`${this.name}: input ${fmtShape(x.shape)}; expected token ids [B, T]`);
    const t = x.shape[1]!;
    if (start + t > this.maxLength)
      throw new ShapeError(
        `${this.name}: positions ${start}..${start + t - 1}, past maxLength (the block size) ${this.maxLength}`,
      );
    const h = add(gather(this.tokens, x), slice(this.positions, [start, 0], [t, this.outputDim]));
    return this.training && this.rate > 0 ? dropout(h, this.rate, this.dropoutSeed()) : h;
  }

  config(): Record<string, unknown> {
    return {
      vocabSize: this.vocabSize,
      maxLength: this.maxLength,
      outputDim: this.outputDim,
      dropout: this.rate,
      initStd: this.initStd,
    };
  }
}

export interface MultiHeadAttentionOptions extends LayerOptions {
  /** Number of heads H; the model width D must be a multiple of it (head width D/H). */
  heads: number;
  /** Each position attends to itself and the positions before it only (default false, as Keras). */
  causal?: boolean;
  /** Dropout on the attention probabilities while training (Keras's `dropout`, nanoGPT's attn_dropout), default 0. */
  dropout?: number;
  /** N(0, σ²) initialisation of the QKV kernel, default 0.02. */
  initStd?: number;
  /** N(0, σ²) initialisation of the output kernel, default 0.02 (GPT-2 scales it by 1/√(2·layers)). */
  outputInitStd?: number;
}

/**
 * Multi-head self-attention on x [B, T, D]: one fused projection to q, k, v ([D, 3D], columns [q | k | v], each
 * head's D/H contiguous: nanoGPT's c_attn), scaled dot-product attention per head, and an output projection (c_proj).
 * The child layers `qkv` and `out` are Dense layers with biases.
 */
export class MultiHeadAttention extends Layer {
  static readonly kind = 'MultiHeadAttention';
  readonly heads: number;
  readonly causal: boolean;
  readonly rate: number;
  readonly initStd: number;
  readonly outputInitStd: number;
  qkv!: Dense;
  out!: Dense;

  constructor(opts: MultiHeadAttentionOptions) {
    super('multi_head_attention', opts, ['heads', 'causal', 'dropout', 'initStd', 'outputInitStd']);
    this.heads = checkSize(this.name, 'heads', opts.heads);
    this.causal = optional(opts.causal, false, (v) => checkBoolean(this.name, 'causal', v));
    this.rate = checkRate(this.name, opts.dropout);
    this.initStd = checkStd(this.name, 'initStd', opts.initStd, STD);
    this.outputInitStd = checkStd(this.name, 'outputInitStd', opts.outputInitStd, STD);
  }

  /** D from a per-sample input [T, D], checked against the heads. */
  private width(inputShape: readonly number[]): number {
    const d = sequence(this.name, inputShape)[1];
    if (d % this.heads !== 0)
      throw new ShapeError(`${this.name}: width ${d} is not a multiple of heads ${this.heads}; expected D = H·(D/H)`);
    return d;
  }

  protected override weightSpecs(inputShape: number[]): WeightSpec[] {
    const d = this.width(inputShape);
    return [...denseSpecs('qkv', d, 3 * d, this.initStd), ...denseSpecs('out', d, d, this.outputInitStd)];
  }

  protected override createWeights(inputShape: number[]): void {
    const d = this.width(inputShape);
    const dense = (units: number, std: number) =>
      this.adopt(new Dense({ units, kernelInitializer: randomNormal(std), biasInitializer: 'zeros' }));
    this.qkv = dense(3 * d, this.initStd);
    this.out = dense(d, this.outputInitStd);
    this.qkv.build(inputShape);
    this.out.build(inputShape);
  }

  protected override fits(built: readonly number[], input: readonly number[]): boolean {
    return lastAxisFits(built, input);
  }

  outputShape(inputShape: number[]): number[] {
    this.width(inputShape);
    return inputShape;
  }

  protected run(x: Tensor): Tensor {
    return this.selfAttend(x);
  }

  /**
   * The layer's forward on x [B, T, D], each position over its own sequence: the heads are read out of the fused
   * projection by one op (attentionQkv), with no transposes. y is what `attend(x).y` gives, bit for bit.
   */
  selfAttend(x: Tensor): Tensor {
    if (x.rank !== 3) throw new ShapeError(`${this.name}: input ${fmtShape(x.shape)}; expected [B, T, D]`);
    const drop = this.training && this.rate > 0 ? { rate: this.rate, seed: this.dropoutSeed() } : undefined;
    return this.out.forward(attentionQkv(this.qkv.forward(x), this.heads, { causal: this.causal, dropout: drop }));
  }

  /**
   * Attention of x [B, T, D]'s positions over `cache`'s keys and values followed by their own (causal: position t of
   * x is position cache.T + t). Returns y [B, T, D] and the cache extended by x's keys and values (new tensors; the
   * caller disposes the old cache). Without a cache this is the layer's forward.
   */
  attend(x: Tensor, cache?: KVCache): { y: Tensor; cache: KVCache } {
    if (x.rank !== 3) throw new ShapeError(`${this.name}: input ${fmtShape(x.shape)}; expected [B, T, D]`);
    const [b, t, d] = x.shape as [number, number, number];
    const h = this.heads;
    const hd = d / h;
    // [B, T, 3D] -> [3, B, H, T, D/H]: q, k, v per head.
    const qkv = transpose(reshape(this.qkv.forward(x), [b, t, 3, h, hd]), [2, 0, 3, 1, 4]);
    const part = (i: number) => reshape(slice(qkv, [i, 0, 0, 0, 0], [1, b, h, t, hd]), [b, h, t, hd]);
    let [k, v] = [part(1), part(2)];
    if (cache) [k, v] = [concat([cache.k, k], 2), concat([cache.v, v], 2)];
    const drop = this.training && this.rate > 0 ? { rate: this.rate, seed: this.dropoutSeed() } : undefined;
    const o = attention(part(0), k, v, { causal: this.causal, dropout: drop }); // [B, H, T, D/H]
    const y = this.out.forward(reshape(transpose(o, [0, 2, 1, 3]), [b, t, d]));
    return { y, cache: { k, v } };
  }

  config(): Record<string, unknown> {
    return {
      heads: this.heads,
      causal: this.causal,
      dropout: this.rate,
      initStd: this.initStd,
      outputInitStd: this.outputInitStd,
    };
  }
}

/** The MLP's activations: GELU exact (erf) or with GPT-2's tanh approximation. */
const MLP_ACTIVATIONS = ['gelu', 'gelu_tanh'] as const;
type MlpActivation = (typeof MLP_ACTIVATIONS)[number];

export interface TransformerBlockOptions extends LayerOptions {
  heads: number;
  /** Causal self-attention (default true: a decoder block, as GPT). */
  causal?: boolean;
  /** Dropout on the attention probabilities and on both residual branches while training, default 0. */
  dropout?: number;
  /** 'gelu_tanh' (default, GPT-2's) or 'gelu' (exact, nanoGPT's nn.GELU()). */
  activation?: MlpActivation;
  /** The layer norms' epsilon, default 1e-5. */
  epsilon?: number;
  /** Width of the MLP's hidden layer as a multiple of D, default 4. */
  mlpRatio?: number;
  /** N(0, σ²) initialisation of the kernels, default 0.02. */
  initStd?: number;
  /** N(0, σ²) of the two kernels that write into the residual (attn.out, proj), default 0.02. */
  outputInitStd?: number;
}

/**
 * A pre-LN transformer block on x [B, T, D]: h = x + drop(attn(ln1(x))); y = h + drop(proj(act(fc(ln2(h))))),
 * as nanoGPT's Block. Children: ln1, attn (MultiHeadAttention), ln2, fc (Dense D -> ratio·D), proj (Dense back to D).
 */
export class TransformerBlock extends Layer {
  static readonly kind = 'TransformerBlock';
  readonly heads: number;
  readonly causal: boolean;
  readonly rate: number;
  readonly act: MlpActivation;
  readonly epsilon: number;
  readonly mlpRatio: number;
  readonly initStd: number;
  readonly outputInitStd: number;
  ln1!: LayerNormalization;
  attn!: MultiHeadAttention;
  ln2!: LayerNormalization;
  fc!: Dense;
  proj!: Dense;

  constructor(opts: TransformerBlockOptions) {
    super('transformer_block', opts, [
      'heads',
      'causal',
      'dropout',
      'activation',
      'epsilon',
      'mlpRatio',
      'initStd',
      'outputInitStd',
    ]);
    this.heads = checkSize(this.name, 'heads', opts.heads);
    this.causal = optional(opts.causal, true, (v) => checkBoolean(this.name, 'causal', v));
    this.rate = checkRate(this.name, opts.dropout);
    this.act = optional(opts.activation, 'gelu_tanh', (v) => checkOneOf(this.name, 'activation', v, MLP_ACTIVATIONS));
    this.epsilon = optional(opts.epsilon, 1e-5, (v) => checkNumber(this.name, 'epsilon', v, { above: 0 }));
    this.mlpRatio = optional(opts.mlpRatio, 4, (v) => checkNumber(this.name, 'mlpRatio', v, { above: 0, max: 1e6 }));
    this.initStd = checkStd(this.name, 'initStd', opts.initStd, STD);
    this.outputInitStd = checkStd(this.name, 'outputInitStd', opts.outputInitStd, STD);
  }

  private hidden(inputShape: readonly number[]): [number, number] {
    const d = sequence(this.name, inputShape)[1];
    const hidden = Math.round(this.mlpRatio * d);
    if (hidden < 1) throw new ShapeError(`${this.name}: mlpRatio ${this.mlpRatio} · width ${d} gives no hidden units`);
    return [d, hidden];
  }

  protected override weightSpecs(inputShape: number[]): WeightSpec[] {
    const [d, hidden] = this.hidden(inputShape);
    if (d % this.heads !== 0)
      throw new ShapeError(`${this.name}: width ${d} is not a multiple of heads ${this.heads}; expected D = H·(D/H)`);
    return [
      ...normSpecs('ln1', d),
      ...denseSpecs('attn.qkv', d, 3 * d, this.initStd),
      ...denseSpecs('attn.out', d, d, this.outputInitStd),
      ...normSpecs('ln2', d),
      ...denseSpecs('fc', d, hidden, this.initStd),
      ...denseSpecs('proj', hidden, d, this.outputInitStd),
    ];
  }

  protected override createWeights(inputShape: number[]): void {
    const [d, hidden] = this.hidden(inputShape);
    const ln = () => this.adopt(new LayerNormalization({ epsilon: this.epsilon }));
    const dense = (units: number, std: number, activation?: ActivationName) =>
      this.adopt(new Dense({ units, activation, kernelInitializer: randomNormal(std), biasInitializer: 'zeros' }));
    this.ln1 = ln();
    this.attn = this.adopt(
      new MultiHeadAttention({
        heads: this.heads,
        causal: this.causal,
        dropout: this.rate,
        initStd: this.initStd,
        outputInitStd: this.outputInitStd,
      }),
    );
    this.ln2 = ln();
    this.fc = dense(hidden, this.initStd, this.act);
    this.proj = dense(d, this.outputInitStd);
    for (const l of [this.ln1, this.attn, this.ln2, this.fc]) l.build(inputShape);
    this.proj.build([inputShape[0]!, hidden]);
  }

  protected override fits(built: readonly number[], input: readonly number[]): boolean {
    return lastAxisFits(built, input);
  }

  outputShape(inputShape: number[]): number[] {
    this.weightSpecs(inputShape);
    return inputShape;
  }

  protected run(x: Tensor): Tensor {
    return this.mlp(x, this.attn.selfAttend(this.ln1.forward(x)));
  }

  /** The block on x [B, T, D] after the positions in `cache` (generation); returns y and the extended cache. */
  step(x: Tensor, cache?: KVCache): { y: Tensor; cache: KVCache } {
    const a = this.attn.attend(this.ln1.forward(x), cache);
    return { y: this.mlp(x, a.y), cache: a.cache };
  }

  // x + the attention's output a, then the MLP's residual.
  private mlp(x: Tensor, a: Tensor): Tensor {
    const h = add(x, this.residual(a));
    return add(h, this.residual(this.proj.forward(this.fc.forward(this.ln2.forward(h)))));
  }

  private residual(x: Tensor): Tensor {
    return this.training && this.rate > 0 ? dropout(x, this.rate, this.dropoutSeed()) : x;
  }

  config(): Record<string, unknown> {
    return {
      heads: this.heads,
      causal: this.causal,
      dropout: this.rate,
      activation: this.act,
      epsilon: this.epsilon,
      mlpRatio: this.mlpRatio,
      initStd: this.initStd,
      outputInitStd: this.outputInitStd,
    };
  }
}

export interface LMHeadOptions extends LayerOptions {
  /** Vocabulary size V. */
  units: number;
  /**
   * Use the token embedding's table as the kernel (logits = x · tokensᵀ, GPT-2's weight tying) instead of a kernel of
   * its own; the model (GPT) ties it to its TokenAndPositionEmbedding. Default false.
   */
  tieWeights?: boolean;
  /** N(0, σ²) initialisation of an untied kernel, default 0.02. */
  initStd?: number;
}

/**
 * The language-model head: x [B, T, D] -> logits [B, T, V] without bias (nanoGPT's lm_head), softmax over the
 * vocabulary as its activation (so `predict` gives probabilities and the cross-entropy loss fuses with it).
 */
export class LMHead extends Layer {
  static readonly kind = 'LMHead';
  kernel: Tensor | undefined;
  readonly units: number;
  readonly tieWeights: boolean;
  readonly initStd: number;
  /** The tied table [V, D] (a function, not a field: the tensor belongs to the embedding). */
  private table: (() => Tensor) | undefined;

  constructor(opts: LMHeadOptions) {
    super('lm_head', opts, ['units', 'tieWeights', 'initStd']);
    this.units = checkSize(this.name, 'units', opts.units, 1, 'maxParams');
    this.tieWeights = optional(opts.tieWeights, false, (v) => checkBoolean(this.name, 'tieWeights', v));
    this.initStd = checkStd(this.name, 'initStd', opts.initStd, STD);
  }

  /** A tied head ties itself to the last TokenAndPositionEmbedding before it in the stack. */
  override link(stack: readonly Layer[]): void {
    if (!this.tieWeights) return;
    const at = stack.indexOf(this);
    const before = stack.slice(0, at < 0 ? stack.length : at).reverse();
    const emb = before.find((l): l is TokenAndPositionEmbedding => l instanceof TokenAndPositionEmbedding);
    if (emb) this.tie(emb);
  }

  /** Ties the head to `embedding`'s token table (which must have V rows). */
  tie(embedding: TokenAndPositionEmbedding): void {
    if (!this.tieWeights) throw new WgnnError(`${this.name}: tie() on a head made with tieWeights false`);
    if (embedding.vocabSize !== this.units)
      throw new ShapeError(`${this.name}: ${this.units} units, tied to an embedding of ${embedding.vocabSize} tokens`);
    this.table = () => embedding.tokens;
  }

  protected override weightSpecs(inputShape: number[]): WeightSpec[] {
    const d = inputShape[inputShape.length - 1];
    if (d === undefined) throw new ShapeError(`${this.name}: input ${fmtShape(inputShape)}; expected [..., features]`);
    if (this.tieWeights) return [];
    return [{ field: 'kernel', shape: [d, this.units], init: randomNormal(this.initStd), trainable: true }];
  }

  protected override fits(built: readonly number[], input: readonly number[]): boolean {
    return lastAxisFits(built, input);
  }

  override get activation(): ActivationName {
    return 'softmax';
  }

  outputShape(inputShape: number[]): number[] {
    return [...inputShape.slice(0, -1), this.units];
  }

  protected run(x: Tensor, final: boolean): Tensor {
    let logits: Tensor;
    if (this.kernel) logits = matmul(x, this.kernel);
    else if (this.table) logits = matmul(x, this.table(), { transB: true });
    else
      throw new WgnnError(
        `${this.name}: tied to a token embedding, and none comes before it in the model (put a TokenAndPositionEmbedding first, or call tie())`,
      );
    return final ? softmax(logits) : logits;
  }

  config(): Record<string, unknown> {
    return { units: this.units, tieWeights: this.tieWeights, initStd: this.initStd };
  }
}
