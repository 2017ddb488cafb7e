// Text for language models: a character-level tokenizer (one token per Unicode code point), corpora read as UTF-8
// (any text file, or Debian's `fortunes`), and token datasets of seeded random windows of blockSize + 1 tokens.
// Pure (browsers too) but for readText and readFortunes, which load src/platform/fs.ts only when called.
import { ArgumentError, FileError, ParseError, VocabularyError } from '../errors.js';
import { checkNumber, knownKeys, optionsObject, show } from '../options.js';
import type { Rng } from '../rng.js';
import { batchRng } from './dataset.js';

const files = () => import('../platform/fs.js');

/** The most distinct characters a tokenizer takes by default (`maxVocab`). */
export const MAX_VOCAB = 1024;
/** The largest text file `readText` reads by default (`maxBytes`): 256 MiB. */
export const TEXT_MAX_BYTES = 256 * 2 ** 20;
/** Where Debian's package `fortunes` puts its text files. */
export const FORTUNES_DIR = '/usr/share/games/fortunes';

const MAX_CODE_POINT = 0x10ffff;

/** The code points of `text` (an unpaired surrogate counts as one, as `for (const c of text)` sees it). */
function codePoints(text: string): Int32Array {
  const out = new Int32Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const cp = text.codePointAt(i)!;
    if (cp > 0xffff) i++;
    out[n++] = cp;
  }
  return out.subarray(0, n);
}

/** The string of these code points (String.fromCodePoint takes them as arguments: a bounded number per call). */
function fromCodePoints(points: ArrayLike<number>): string {
  const parts: string[] = [];
  for (let i = 0; i < points.length; i += 4096)
    parts.push(String.fromCodePoint(...Array.prototype.slice.call(points, i, i + 4096)));
  return parts.join('');
}

/** A code point as a message names it: `'é' (U+00E9)`, or just `U+0007` for what does not print. */
export function describeChar(cp: number): string {
  const code = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  const c = String.fromCodePoint(cp);
  return /^[\p{L}\p{N}\p{P}\p{S}]$/u.test(c) ? `'${c}' (${code})` : code;
}

function maxVocabOption(who: string, opts: unknown, error: typeof ArgumentError = ArgumentError): number {
  const o = optionsObject(who, 'options', opts, error);
  knownKeys(who, o, ['maxVocab'], error);
  return o.maxVocab === undefined
    ? MAX_VOCAB
    : checkNumber(who, 'maxVocab', o.maxVocab, { min: 1, integer: true }, error);
}

/** The JSON form of a CharTokenizer (saved in a model file's metadata under `tokenizer`). */
export interface CharTokenizerJSON {
  kind: 'char';
  /** The vocabulary: id i is the i-th code point of this string. */
  chars: string;
}

/**
 * A character-level tokenizer: the vocabulary is a list of Unicode code points (an emoji is one token, not two UTF-16
 * units), id i the i-th. `fromText` builds it from a corpus (its distinct code points sorted), `encode`/`decode`
 * map text to int32 ids and back, `toJSON`/`fromJSON` save it with a model.
 */
export class CharTokenizer {
  /** The vocabulary as one string: id i is its i-th code point. */
  readonly chars: string;
  /** The code point of each id. */
  private readonly points: Int32Array;
  /** The id of each code point below its length (−1: not in the vocabulary); the others are in `astral`. */
  private readonly bmp: Int32Array;
  private readonly astral = new Map<number, number>();

  private constructor(points: Int32Array) {
    this.points = points;
    this.chars = fromCodePoints(points);
    let top = 0;
    for (const cp of points) if (cp <= 0xffff) top = Math.max(top, cp + 1);
    this.bmp = new Int32Array(top).fill(-1);
    points.forEach((cp, id) => (cp <= 0xffff ? (this.bmp[cp] = id) : this.astral.set(cp, id)));
  }

  /** Number of tokens V: ids are 0..V-1. */
  get vocabSize(): number {
    return this.points.length;
  }

  /**
   * The tokenizer of `text`: its distinct code points sorted by code point. Empty text is an ArgumentError; more
   * distinct characters than `maxVocab` (default 1024) a VocabularyError naming the count and the limit.
   */
  static fromText(text: string, opts: { maxVocab?: number } = {}): CharTokenizer {
    const who = 'CharTokenizer.fromText';
    const maxVocab = maxVocabOption(who, opts);
    if (typeof text !== 'string') throw new ArgumentError(`${who}: text must be a string, got ${show(text)}`);
    if (text.length === 0) throw new ArgumentError(`${who}: the text is empty; a vocabulary needs a character`);
    const seen = new Uint8Array(MAX_CODE_POINT + 1);
    let count = 0;
    for (const cp of codePoints(text)) if (!seen[cp]) ((seen[cp] = 1), count++);
    if (count > maxVocab) {
      throw new VocabularyError(
        `${who}: the text has ${count} distinct characters, over the limit of ${maxVocab} (maxVocab)`,
      );
    }
    const points = new Int32Array(count);
    for (let cp = 0, n = 0; n < count; cp++) if (seen[cp]) points[n++] = cp;
    return new CharTokenizer(points);
  }

  /**
   * The tokenizer `toJSON` gave, from an object read from a file and so treated as hostile: anything but
   * `{ kind: 'char', chars }` with a non-empty string of distinct code points, at most `maxVocab` of them, is a
   * ParseError saying what is wrong.
   */
  static fromJSON(json: unknown, opts: { maxVocab?: number } = {}): CharTokenizer {
    const who = 'CharTokenizer.fromJSON';
    const maxVocab = maxVocabOption(who, opts);
    const o = optionsObject(who, 'the tokenizer', json, ParseError);
    knownKeys(who, o, ['kind', 'chars'], ParseError);
    if (!Object.hasOwn(o, 'kind') || o.kind !== 'char')
      throw new ParseError(`${who}: kind ${show(o.kind)}; expected "char"`);
    const chars = Object.hasOwn(o, 'chars') ? o.chars : undefined;
    if (typeof chars !== 'string') throw new ParseError(`${who}: chars must be a string, got ${show(chars)}`);
    if (chars.length === 0) throw new ParseError(`${who}: chars is empty; expected the vocabulary`);
    // a code point is at most 2 UTF-16 units: refuse a huge string before walking it
    const points = chars.length > 2 * maxVocab ? undefined : codePoints(chars);
    if (!points || points.length > maxVocab) {
      const n = points ? `${points.length} characters` : `over ${maxVocab} characters (${chars.length} UTF-16 units)`;
      throw new ParseError(`${who}: a vocabulary of ${n}, over the limit of ${maxVocab} (maxVocab)`);
    }
    const first = new Map<number, number>();
    points.forEach((cp, i) => {
      const j = first.get(cp);
      if (j !== undefined)
        throw new ParseError(`${who}: chars holds ${describeChar(cp)} twice, as ids ${j} and ${i}; expected each once`);
      first.set(cp, i);
    });
    return new CharTokenizer(Int32Array.from(points));
  }

  /** `{ kind: 'char', chars }`: what `fromJSON` takes back. */
  toJSON(): CharTokenizerJSON {
    return { kind: 'char', chars: this.chars };
  }

  /** The ids of `text`, one per code point. A character outside the vocabulary is a VocabularyError naming it. */
  encode(text: string): Int32Array {
    if (typeof text !== 'string') throw new ArgumentError(`encode: text must be a string, got ${show(text)}`);
    const ids = codePoints(text);
    for (let i = 0; i < ids.length; i++) {
      const cp = ids[i]!;
      const id = cp < this.bmp.length ? this.bmp[cp]! : (this.astral.get(cp) ?? -1);
      if (id < 0) {
        throw new VocabularyError(
          `encode: the character ${describeChar(cp)} at position ${i} (in code points) is not in the vocabulary of ${this.vocabSize} characters`,
        );
      }
      ids[i] = id;
    }
    return ids.slice();
  }

  /** The text of `ids`. An id that is not an integer in 0..vocabSize-1 is a VocabularyError naming it and its index. */
  decode(ids: ArrayLike<number>): string {
    const points = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) {
        throw new VocabularyError(
          `decode: id ${show(id)} at index ${i} is outside the vocabulary 0..${this.vocabSize - 1}`,
        );
      }
      points[i] = this.points[id]!;
    }
    return fromCodePoints(points);
  }
}

/**
 * `bytes` as UTF-8 text (a leading byte-order mark dropped). Refuses, with a ParseError naming `source` and what was
 * expected: no bytes, a NUL byte (a binary file), bytes that are not UTF-8.
 */
export function decodeText(bytes: Uint8Array, source = 'text'): string {
  if (bytes.length === 0) throw new ParseError(`${source}: the file is empty; expected UTF-8 text`);
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new ParseError(`${source}: a NUL byte at offset ${nul}: a binary file; expected UTF-8 text`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ParseError(`${source}: not UTF-8 (an invalid byte sequence); expected UTF-8 text`);
  }
  if (text.length === 0) throw new ParseError(`${source}: holds only a byte-order mark; expected UTF-8 text`);
  return text;
}

/**
 * The text of a UTF-8 file (`wgnn train --text FILE`). Node only. A missing file, one that is not a regular file, or
 * one over `maxBytes` (default TEXT_MAX_BYTES) is a FileError; an empty, binary or non-UTF-8 file a ParseError
 * naming the file (see `decodeText`).
 */
export async function readText(path: string, opts: { maxBytes?: number } = {}): Promise<string> {
  const o = optionsObject('readText', 'options', opts, ArgumentError);
  knownKeys('readText', o, ['maxBytes'], ArgumentError);
  const maxBytes =
    o.maxBytes === undefined
      ? TEXT_MAX_BYTES
      : checkNumber('readText', 'maxBytes', o.maxBytes, { min: 1, integer: true }, ArgumentError);
  return decodeText(await (await files()).readFile(path, 'readText', maxBytes), path);
}

/**
 * The fortunes of a fortune file's text: the pieces between lines holding only `%`, without those lines; empty or
 * blank pieces are dropped.
 */
export function parseFortunes(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop(); // the newline that ends the last line
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i <= lines.length; i++) {
    if (i < lines.length && lines[i] !== '%' && lines[i] !== '%\r') continue;
    const body = lines.slice(start, i).join('\n');
    if (body.trim() !== '') out.push(body);
    start = i + 1;
  }
  return out;
}

/**
 * The corpus of Debian's package `fortunes`: every fortune file in `dir` (the regular files, not the `.dat` indexes
 * strfile makes, nor the `.u8` links), in file-name order, each fortune followed by a line `%` as in the files (so a
 * model sees where a fortune ends). For well-formed files this is their concatenation; an empty fortune is dropped
 * and a last one without its `%` line gets one. Node only. A missing folder is a FileError saying to install the
 * package; a binary or non-UTF-8 file a ParseError naming it.
 */
export async function readFortunes(dir = FORTUNES_DIR): Promise<string> {
  const fs = await files();
  const install = `install Debian's package \`fortunes\` (bash scripts/setup-machine.sh, or apt-get install fortunes)`;
  let names: string[];
  try {
    names = await fs.listFiles(dir, 'readFortunes');
  } catch (e) {
    if (e instanceof FileError && (e.code === 'ENOENT' || e.code === 'ENOTDIR')) {
      const why = e.code === 'ENOENT' ? 'does not exist' : 'is not a folder';
      throw new FileError(`readFortunes: ${dir} ${why}; ${install}`, dir, e.code);
    }
    throw e;
  }
  names = names.filter((n) => !n.startsWith('.') && !n.endsWith('.dat') && !n.endsWith('.u8'));
  if (names.length === 0)
    throw new FileError(`readFortunes: ${dir} holds no fortune files; ${install}`, dir, undefined);
  const parts: string[] = [];
  for (const name of names) {
    const file = `${dir.replace(/\/+$/, '')}/${name}`;
    const text = decodeText(await fs.readFile(file, 'readFortunes', TEXT_MAX_BYTES), file);
    for (const f of parseFortunes(text)) parts.push(`${f}\n%\n`);
  }
  return parts.join('');
}

/** One batch of windows: x [B, T] and y [B, T] (x shifted by one token), int32, row-major. */
export interface TokenBatch {
  /** Inputs: each row is blockSize consecutive tokens. */
  x: Int32Array;
  /** Targets: the token after each of x's, so y[b, t] = x[b, t + 1] within a window. */
  y: Int32Array;
  /** Shape [B, T]: batch size and blockSize. */
  shape: [number, number];
  /** Where each window starts in the token array. */
  starts: Int32Array;
}

const positiveInt = (who: string, option: string, v: unknown) =>
  checkNumber(who, option, v, { min: 1, integer: true }, ArgumentError);

/**
 * Token ids for a language model, sampled as nanoGPT does: a batch is B windows of blockSize + 1 consecutive tokens at
 * uniformly random starts in 0..length − blockSize − 1; x is each window's first blockSize tokens, y its last
 * blockSize. Batches are seeded: the batch at (seed, step) is a pure function of the two (`batchAt`), so a resumed run
 * and a PyTorch run fed the same batches see the same data.
 */
export class TokenDataset {
  readonly blockSize: number;

  /** A token array shorter than blockSize + 1 is an ArgumentError naming both lengths. */
  constructor(
    readonly tokens: Int32Array,
    blockSize: number,
  ) {
    if (!(tokens instanceof Int32Array))
      throw new ArgumentError(`TokenDataset: tokens must be an Int32Array, got ${show(tokens)}`);
    this.blockSize = positiveInt('TokenDataset', 'blockSize', blockSize);
    if (tokens.length < blockSize + 1) {
      throw new ArgumentError(
        `TokenDataset: ${tokens.length} tokens, fewer than blockSize + 1 = ${blockSize + 1} (a window is blockSize inputs and the token after them)`,
      );
    }
  }

  /** Number of tokens. */
  get length(): number {
    return this.tokens.length;
  }

  /** Number of distinct windows (starts 0..length − blockSize − 1). */
  get windows(): number {
    return this.tokens.length - this.blockSize;
  }

  /** `batchSize` windows at starts drawn from `rng` (one `rng.int` each, in batch order). */
  batch(batchSize: number, rng: Rng): TokenBatch {
    const B = positiveInt('TokenDataset.batch', 'batchSize', batchSize);
    const T = this.blockSize;
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    const starts = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const s = (starts[b] = rng.int(0, this.windows));
      x.set(this.tokens.subarray(s, s + T), b * T);
      y.set(this.tokens.subarray(s + 1, s + T + 1), b * T);
    }
    return { x, y, shape: [B, T], starts };
  }

  /** The batch of step `step` under `seed`: `batch(batchSize, batchRng(seed, 0, step))`, the same on every run. */
  batchAt(batchSize: number, seed: number, step: number): TokenBatch {
    checkNumber('TokenDataset.batchAt', 'step', step, { min: 0, integer: true }, ArgumentError);
    checkNumber('TokenDataset.batchAt', 'seed', seed, { integer: true }, ArgumentError);
    return this.batch(batchSize, batchRng(seed, 0, step));
  }

  /**
   * The batches of steps `from`, `from` + 1, ... (`batchAt` each), `steps` of them (default: without end). A run
   * resumed at step k continues with `batches(B, { seed, from: k })`.
   */
  *batches(batchSize: number, opts: { seed?: number; from?: number; steps?: number } = {}): Generator<TokenBatch> {
    const who = 'TokenDataset.batches';
    const o = optionsObject(who, 'options', opts, ArgumentError);
    knownKeys(who, o, ['seed', 'from', 'steps'], ArgumentError);
    const { seed = 0, from = 0, steps = Infinity } = opts;
    checkNumber(who, 'from', from, { min: 0, integer: true }, ArgumentError);
    if (steps !== Infinity) checkNumber(who, 'steps', steps, { min: 0, integer: true }, ArgumentError);
    for (let i = 0; i < steps; i++) yield this.batchAt(batchSize, seed, from + i);
  }

  /** `count` fixed batches for a validation loss: `batchAt(batchSize, seed, i)` for i = 0..count-1. */
  evalBatches(batchSize: number, count: number, seed = 0): TokenBatch[] {
    const n = checkNumber('TokenDataset.evalBatches', 'count', count, { min: 0, integer: true }, ArgumentError);
    return Array.from({ length: n }, (_, i) => this.batchAt(batchSize, seed, i));
  }

  /**
   * The first floor(length · fraction) tokens for training and the rest for validation, as nanoGPT (views, no copy).
   * A part shorter than blockSize + 1 is an ArgumentError naming both lengths.
   */
  split(fraction = 0.9): { train: TokenDataset; val: TokenDataset } {
    checkNumber('TokenDataset.split', 'fraction', fraction, { above: 0, below: 1 }, ArgumentError);
    const n = Math.floor(this.length * fraction);
    const need = this.blockSize + 1;
    if (n < need || this.length - n < need) {
      throw new ArgumentError(
        `TokenDataset.split(${fraction}) of ${this.length} tokens leaves ${n} for training and ${this.length - n} for validation; each needs at least blockSize + 1 = ${need}`,
      );
    }
    return {
      train: new TokenDataset(this.tokens.subarray(0, n), this.blockSize),
      val: new TokenDataset(this.tokens.subarray(n), this.blockSize),
    };
  }
}

/** Options of `textDataset`. */
export interface TextDatasetOptions {
  /** Tokens per window input (the model's context length). */
  blockSize: number;
  /** The share of the tokens, at the end, kept for validation (default 0.1, as nanoGPT). */
  valFraction?: number;
  /** Limit on the vocabulary built from the text (default 1024). */
  maxVocab?: number;
  /** Encode with this tokenizer (a saved model's) instead of building one from the text. */
  tokenizer?: CharTokenizer;
}

/**
 * A corpus ready for training: its tokenizer (built from the text unless given), and its tokens split into train
 * (the first 1 − valFraction) and val (the rest) datasets.
 */
export function textDataset(
  text: string,
  opts: TextDatasetOptions,
): { tokenizer: CharTokenizer; train: TokenDataset; val: TokenDataset } {
  const who = 'textDataset';
  const o = optionsObject(who, 'options', opts, ArgumentError);
  knownKeys(who, o, ['blockSize', 'valFraction', 'maxVocab', 'tokenizer'], ArgumentError);
  const { blockSize, valFraction = 0.1, maxVocab } = opts;
  checkNumber(who, 'valFraction', valFraction, { above: 0, below: 1 }, ArgumentError);
  if (opts.tokenizer !== undefined && !(opts.tokenizer instanceof CharTokenizer))
    throw new ArgumentError(`${who}: tokenizer must be a CharTokenizer, got ${show(opts.tokenizer)}`);
  const tokenizer = opts.tokenizer ?? CharTokenizer.fromText(text, maxVocab === undefined ? {} : { maxVocab });
  const { train, val } = new TokenDataset(tokenizer.encode(text), blockSize).split(1 - valFraction);
  return { tokenizer, train, val };
}
