// The GPT: a Sequential shaped like nanoGPT's model (token + position embedding, pre-LN transformer blocks, a final
// layer norm, a language-model head tied to the token table), trained with fit or trainStep like any model, and
// text generation with a key/value cache beside it.
import { noGrad } from '../autograd/tape.js';
import { ArgumentError, ParseError, WgnnError } from '../errors.js';
import { CharTokenizer } from '../data/text.js';
import { slice } from '../ops/layout.js';
import { checkBoolean, checkNumber, checkOneOf, knownKeys, optionsObject, show } from '../options.js';
import { Rng } from '../rng.js';
import { Tensor, keep, tensor, tidy } from '../tensor.js';
import { Layer, LayerNormalization } from './layers.js';
import { Sequential } from './sequential.js';
import { LMHead, TokenAndPositionEmbedding, TransformerBlock, type KVCache } from './transformer.js';

/** A GPT's shape, as `gpt()` takes it and a saved model's metadata (`gpt`) holds it. */
export interface GPTConfig {
  vocabSize: number;
  /** Longest context, in tokens. */
  blockSize: number;
  /** Number of transformer blocks. */
  layers: number;
  heads: number;
  /** Model width D (a multiple of heads). */
  dim: number;
  /** Dropout on the embeddings, the attention probabilities and the residual branches while training. */
  dropout: number;
  /** The head's kernel is the token embedding's table (GPT-2's weight tying). */
  tieWeights: boolean;
  /** The MLP's GELU: 'gelu_tanh' (GPT-2's tanh approximation) or 'gelu' (exact, nanoGPT's nn.GELU()). */
  activation: 'gelu' | 'gelu_tanh';
  /** The layer norms' epsilon. */
  epsilon: number;
}

/** Options of `gpt()`: the architecture, and optional dropout, tying, activation, epsilon, init and seed. */
export type GPTOptions = Pick<GPTConfig, 'vocabSize' | 'blockSize' | 'layers' | 'heads' | 'dim'> &
  Partial<Omit<GPTConfig, 'vocabSize' | 'blockSize' | 'layers' | 'heads' | 'dim'>> & {
    /** Standard deviation of the N(0, σ²) initialisation (default 0.02; the two residual projections get σ/√(2L)). */
    initStd?: number;
    /** Seed of the initial weights and dropout masks (default: drawn from `setSeed`'s generator). */
    seed?: number;
  };

/** A character-level (or any) tokenizer a GPT can carry: saved with the model, used by `generate` on text. */
export interface Tokenizer {
  readonly vocabSize: number;
  /** Token ids of a text. */
  encode(text: string): Int32Array;
  /** The text of token ids. */
  decode(ids: ArrayLike<number>): string;
  /** What the model file stores (metadata `tokenizer`). */
  toJSON(): unknown;
}

/** Options of `GPT.generate`. */
export interface GenerateOptions {
  /** Number of tokens to generate. */
  maxTokens: number;
  /** Divides the logits before sampling (default 1); 0 picks the most likely token every time (greedy). */
  temperature?: number;
  /** Sample among the k most likely tokens only. */
  topK?: number;
  /** Seed of the sampling: the same seed, prompt and weights give the same tokens (default 0). */
  seed?: number;
  /** Called with each token as it is generated (and its text, when the model has a tokenizer); may be async. */
  onToken?: (id: number, text: string | undefined) => void | Promise<void>;
  /**
   * Keep each block's keys and values (default true), so a new token costs one position; false recomputes the whole
   * context per token. Both give the same tokens.
   */
  cache?: boolean;
}

const GPT_KEYS = [
  'vocabSize',
  'blockSize',
  'layers',
  'heads',
  'dim',
  'dropout',
  'tieWeights',
  'activation',
  'epsilon',
  'initStd',
  'seed',
] as const;

/**
 * A GPT-style language model, shaped like nanoGPT's (pre-LN blocks, GELU MLP ×4, biases, final layer norm, the head
 * tied to the token table by default): int32 token ids x [B, T] (T <= blockSize) -> next-token probabilities
 * [B, T, vocabSize] (`logits` gives the logits). Train it with `compile` + `fit` on (x, y = x shifted by one) and
 * sparseCategoricalCrossentropy, or with `trainStep`.
 */
export function gpt(opts: GPTOptions): GPT {
  const o = optionsObject('gpt', 'options', opts);
  knownKeys('gpt', o, GPT_KEYS);
  const int = (k: string, min = 1) => checkNumber('gpt', k, o[k], { integer: true, min, max: 2 ** 30 });
  const [vocabSize, blockSize, layers, heads, dim] = [
    int('vocabSize'),
    int('blockSize'),
    int('layers'),
    int('heads'),
    int('dim'),
  ];
  if (dim % heads !== 0) throw new ArgumentError(`gpt: dim ${dim} is not a multiple of heads ${heads}`);
  const num = (k: string, fallback: number, range: Parameters<typeof checkNumber>[3]) =>
    o[k] === undefined ? fallback : checkNumber('gpt', k, o[k], range);
  const dropout = num('dropout', 0, { min: 0, below: 1 });
  const epsilon = num('epsilon', 1e-5, { above: 0 });
  const std = num('initStd', 0.02, { min: 0, max: 1e6 });
  const seed = o.seed === undefined ? undefined : checkNumber('gpt', 'seed', o.seed, { integer: true });
  const tieWeights = o.tieWeights === undefined ? true : checkBoolean('gpt', 'tieWeights', o.tieWeights);
  const activation = o.activation === undefined ? 'gelu_tanh' : checkOneOf('gpt', 'activation', o.activation, ACTS);
  const at = (i: number) => (seed === undefined ? {} : { seed: seed + i });
  return new GPT([
    new TokenAndPositionEmbedding({
      vocabSize,
      maxLength: blockSize,
      outputDim: dim,
      dropout,
      initStd: std,
      inputShape: [blockSize],
      ...at(0),
    }),
    ...Array.from(
      { length: layers },
      (_, i) =>
        new TransformerBlock({
          heads,
          dropout,
          activation,
          epsilon,
          initStd: std,
          outputInitStd: std / Math.sqrt(2 * layers),
          ...at(i + 1),
        }),
    ),
    new LayerNormalization({ epsilon, ...at(layers + 1) }),
    new LMHead({ units: vocabSize, tieWeights, initStd: std, ...at(layers + 2) }),
  ]);
}

const ACTS = ['gelu', 'gelu_tanh'] as const;

/** A GPT (made by `gpt()`): a Sequential with its config and tokenizer saved in its file, `generate` with a key/value cache, and `logits`. */
export class GPT extends Sequential {
  readonly config: GPTConfig;
  private tok: Tokenizer | undefined;

  /**
   * A GPT over `layers`: [TokenAndPositionEmbedding, TransformerBlock × L (L >= 1, all alike), LayerNormalization,
   * LMHead]; anything else is an ArgumentError. A tied head is tied to the embedding here.
   */
  constructor(layers: Layer[]) {
    super(layers);
    const [emb, ...rest] = layers;
    const head = rest.pop();
    const norm = rest.pop();
    const blocks = rest as TransformerBlock[];
    const first = blocks[0];
    const alike = (b: TransformerBlock) =>
      first !== undefined &&
      b instanceof TransformerBlock &&
      b.heads === first.heads &&
      b.rate === first.rate &&
      b.act === first.act &&
      b.epsilon === first.epsilon &&
      b.causal &&
      b.mlpRatio === 4;
    if (
      !(emb instanceof TokenAndPositionEmbedding) ||
      !(norm instanceof LayerNormalization) ||
      !(head instanceof LMHead) ||
      !blocks.every(alike) ||
      !first
    ) {
      throw new ArgumentError(
        `GPT: layers [${layers.map((l) => (l instanceof Layer ? l.kind : show(l))).join(', ')}]; expected [TokenAndPositionEmbedding, TransformerBlock × L (alike, causal, mlpRatio 4), LayerNormalization, LMHead]`,
      );
    }
    if (head.units !== emb.vocabSize)
      throw new ArgumentError(`GPT: the head has ${head.units} units for a vocabulary of ${emb.vocabSize}`);
    this.config = {
      vocabSize: emb.vocabSize,
      blockSize: emb.maxLength,
      layers: blocks.length,
      heads: first.heads,
      dim: emb.outputDim,
      dropout: first.rate,
      tieWeights: head.tieWeights,
      activation: first.act,
      epsilon: first.epsilon,
    };
  }

  // The parts, read from `layers` (fields holding them would list every weight twice).
  private get embedding(): TokenAndPositionEmbedding {
    return this.layers[0] as TokenAndPositionEmbedding;
  }
  private get blocks(): TransformerBlock[] {
    return this.layers.slice(1, -2) as TransformerBlock[];
  }
  private get norm(): LayerNormalization {
    return this.layers[this.layers.length - 2] as LayerNormalization;
  }
  private get head(): LMHead {
    return this.layers[this.layers.length - 1] as LMHead;
  }

  /** Encodes prompts and decodes generated tokens; saved with the model. Its vocabulary must fit the model's. */
  get tokenizer(): Tokenizer | undefined {
    return this.tok;
  }
  set tokenizer(t: Tokenizer | undefined) {
    if (t !== undefined && !(t.vocabSize <= this.config.vocabSize))
      throw new ArgumentError(
        `GPT: a tokenizer of ${t.vocabSize} tokens for a model whose vocabulary is ${this.config.vocabSize}`,
      );
    this.tok = t;
  }

  /** A GPT's layers are fixed by its config. */
  override add(): this {
    throw new WgnnError('GPT: add() on a GPT; its layers are fixed (build another with gpt())');
  }

  /** The logits [B, T, V] for token ids x [B, T] (the output before the head's softmax). */
  logits(x: Tensor): Tensor {
    const ls = this.layers;
    return ls[ls.length - 1]!.forwardLogits(ls.slice(0, -1).reduce((h, l) => l.forward(h), x));
  }

  /** A saved tokenizer comes back with the model (a ParseError when it is not a valid one). */
  protected override restore(metadata: Readonly<Record<string, string>>): void {
    if (metadata.tokenizer === undefined) return;
    let json: unknown;
    try {
      json = JSON.parse(metadata.tokenizer);
    } catch (e) {
      throw new ParseError(`GPT.load: metadata "tokenizer" is not JSON (${(e as Error).message})`);
    }
    try {
      this.tokenizer = CharTokenizer.fromJSON(json);
    } catch (e) {
      // fromJSON's ParseError, or the setter's ArgumentError (more tokens than the model's vocabulary): the file's fault
      if (!(e instanceof WgnnError)) throw e;
      throw new ParseError(`GPT.load: metadata "tokenizer": ${e.message}`);
    }
  }

  protected override metadata(): Record<string, string> {
    return {
      gpt: JSON.stringify(this.config),
      ...(this.tokenizer ? { tokenizer: JSON.stringify(this.tokenizer.toJSON()) } : {}),
    };
  }

  /**
   * Generates `maxTokens` tokens after `prompt` (text, with a tokenizer, or token ids), sampling each from the
   * softmax of the last position's logits / temperature (top-k when given) with a generator seeded by `seed`.
   * Returns the new tokens only: text for a text prompt, ids for ids. A prompt longer than the block size keeps its
   * last blockSize tokens, as does the context as it grows (nanoGPT's crop). Runs in eval mode (no dropout), then
   * restores the mode it found.
   */
  async generate(prompt: string, opts: GenerateOptions): Promise<string>;
  async generate(prompt: ArrayLike<number>, opts: GenerateOptions): Promise<Int32Array>;
  async generate(prompt: string | ArrayLike<number>, opts: GenerateOptions): Promise<string | Int32Array> {
    const o = optionsObject('generate', 'options', opts);
    knownKeys('generate', o, ['maxTokens', 'temperature', 'topK', 'seed', 'onToken', 'cache']);
    const maxTokens = checkNumber('generate', 'maxTokens', o.maxTokens, { integer: true, min: 0, max: 2 ** 30 });
    const temperature =
      o.temperature === undefined ? 1 : checkNumber('generate', 'temperature', o.temperature, { min: 0, max: 1e6 });
    const topK =
      o.topK === undefined
        ? undefined
        : checkNumber('generate', 'topK', o.topK, { integer: true, min: 1, max: this.config.vocabSize });
    const seed = o.seed === undefined ? 0 : checkNumber('generate', 'seed', o.seed, { integer: true });
    const useCache = o.cache === undefined ? true : checkBoolean('generate', 'cache', o.cache);
    if (o.onToken !== undefined && typeof o.onToken !== 'function')
      throw new ArgumentError(`generate: onToken is ${show(o.onToken)}; expected a function`);
    this.prepare(); // build the weights if no input has flowed yet
    const text = typeof prompt === 'string';
    const ids = this.promptIds(prompt);
    const rng = new Rng(seed);
    const context = [...ids];
    const out = new Int32Array(maxTokens);
    const wasTraining = this.training;
    this.eval();
    let cache: KVCache[] | undefined;
    let cached = 0; // positions in the cache
    try {
      for (let n = 0; n < maxTokens; n++) {
        let logits: Tensor;
        if (!useCache || !cache || cached >= this.config.blockSize) {
          // The whole (cropped) context; with the cache full, positions shift, so every token recomputes from here.
          cache = disposeCache(cache);
          const window = context.slice(-this.config.blockSize);
          const r = this.forwardCached(window, 0, undefined);
          logits = r.logits;
          if (useCache) [cache, cached] = [r.cache, window.length];
          else disposeCache(r.cache);
        } else {
          // Only the newest token, at the next position, over the cached keys and values.
          const r = this.forwardCached(context.slice(-1), cached, cache);
          disposeCache(cache);
          [logits, cache, cached] = [r.logits, r.cache, cached + 1];
        }
        const row = (await logits.data()) as Float32Array;
        logits.dispose();
        const id = pick(row, temperature, topK, rng);
        out[n] = id;
        context.push(id);
        await o.onToken?.(id, this.tokenizer?.decode([id]));
      }
    } finally {
      disposeCache(cache);
      this.train(wasTraining);
    }
    return text ? this.tokenizer!.decode(out) : out;
  }

  /** The prompt as token ids, checked: text needs a tokenizer; ids must be integers in 0..V-1; at least one. */
  private promptIds(prompt: string | ArrayLike<number>): Int32Array {
    let ids: Int32Array;
    if (typeof prompt === 'string') {
      if (!this.tokenizer)
        throw new WgnnError(
          'generate: a text prompt needs the model to have a tokenizer (set model.tokenizer, or load a model saved with one); or pass token ids',
        );
      ids = this.tokenizer.encode(prompt);
    } else {
      if (prompt === null || typeof prompt !== 'object' || typeof prompt.length !== 'number')
        throw new ArgumentError(`generate: prompt is ${show(prompt)}; expected a string or an array of token ids`);
      ids = new Int32Array(prompt.length);
      for (let i = 0; i < prompt.length; i++) {
        const v = prompt[i]!;
        if (!Number.isInteger(v) || v < 0 || v >= this.config.vocabSize)
          throw new ArgumentError(
            `generate: prompt[${i}] is ${show(v)}; expected a token id in 0..${this.config.vocabSize - 1}`,
          );
        ids[i] = v;
      }
    }
    if (ids.length === 0) throw new ArgumentError('generate: the prompt is empty; expected at least one token');
    return ids;
  }

  /**
   * The last position's logits [V] for tokens `ids` at positions start.., after the keys and values in `cache` (one
   * per block), and the extended caches (kept: the caller disposes them).
   */
  private forwardCached(
    ids: readonly number[],
    start: number,
    cache: KVCache[] | undefined,
  ): { logits: Tensor; cache: KVCache[] } {
    return noGrad(() => {
      const next: KVCache[] = [];
      const logits = tidy(() => {
        const x = tensor(Int32Array.from(ids), [1, ids.length], { dtype: 'int32' });
        let h = this.embedding.embed(x, start);
        this.blocks.forEach((b, i) => {
          const r = b.step(h, cache?.[i]);
          next.push({ k: keep(r.cache.k), v: keep(r.cache.v) });
          h = r.y;
        });
        const d = this.config.dim;
        const last = slice(h, [0, ids.length - 1, 0], [1, 1, d]);
        return this.head.forwardLogits(this.norm.forward(last)); // [1, 1, V]
      });
      return { logits, cache: next };
    });
  }
}

function disposeCache(cache: KVCache[] | undefined): undefined {
  for (const c of cache ?? []) {
    c.k.dispose();
    c.v.dispose();
  }
  return undefined;
}

/** A token from logits [V]: argmax at temperature 0, else a draw from softmax(logits / temperature) over the top k. */
function pick(logits: Float32Array, temperature: number, topK: number | undefined, rng: Rng): number {
  const v = logits.length;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < v; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let floor = -Infinity;
  if (topK !== undefined && topK < v) floor = Float64Array.from(logits).sort().reverse()[topK - 1]!;
  let max = -Infinity;
  for (let i = 0; i < v; i++) if (logits[i]! >= floor) max = Math.max(max, logits[i]!);
  const p = new Float64Array(v);
  let total = 0;
  for (let i = 0; i < v; i++) if (logits[i]! >= floor) total += p[i] = Math.exp((logits[i]! - max) / temperature);
  if (!(total > 0) || !Number.isFinite(total))
    throw new WgnnError(`generate: the logits are not finite (max ${max}); the model's weights may have diverged`);
  let u = rng.next() * total;
  for (let i = 0; i < v; i++) {
    u -= p[i]!;
    if (u < 0 && p[i]! > 0) return i;
  }
  for (let i = v - 1; i >= 0; i--) if (p[i]! > 0) return i;
  return 0;
}
