// Datasets on the host: inputs x [N, ...] and targets y [N, ...] as typed arrays, seeded per-epoch shuffles,
// batches, a Keras-style validation split and standardisation. No tensors here: the trainer decides when to upload.
import { ArgumentError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { Rng } from '../rng.js';
import type { Augment } from './augment.js';

/** One batch: copies of the selected rows, with their shapes ([B, ...]). */
export interface Batch<X extends Float32Array | Int32Array = Float32Array> {
  x: X;
  xShape: number[];
  y: Float32Array | Int32Array;
  yShape: number[];
  /** The dataset rows in this batch, in batch order. */
  indices: Int32Array;
}

/** Options of a Dataset's `batches`. */
export interface BatchOptions {
  /** Visit the rows in a seeded random order (default true). */
  shuffle?: boolean;
  /** Seed of the shuffles (default 0). */
  seed?: number;
  /** Epoch number: each epoch of a seed has its own permutation, the same on every run (default 0). */
  epoch?: number;
  /** Skip the last batch when it is shorter than `batchSize` (default false: it is yielded). */
  dropLast?: boolean;
  /**
   * Changes each batch's x (its copy, never the dataset) with `batchRng(seed, epoch, batch)`, so a batch's
   * augmentation repeats exactly for the same seed, epoch and batch index and differs between epochs. y is untouched.
   */
  augment?: Augment;
}

/** A train/test pair of image datasets (x [N,H,W,C] in [0,1], y [N] int32 class ids). */
export interface ImageDataset {
  train: Dataset;
  test: Dataset;
  /** Number of classes: the labels are 0..classes-1. */
  classes: number;
}

// NOTE: seed and epoch go through a 32-bit mixer (murmur3's finaliser) because mulberry32 seeds that differ by
// its increment give the same stream shifted by one; mixed, nearby (seed, epoch) pairs give unrelated streams.
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A uniformly random permutation of 0..n-1 (Fisher–Yates) drawn from `rng`. */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

const epochKey = (seed: number, epoch: number): number => fmix32(fmix32(seed >>> 0) ^ (epoch >>> 0));

/** The permutation of epoch `epoch` under `seed`: a pure function of the three numbers. */
export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  return permutation(n, new Rng(epochKey(seed, epoch)));
}

/** The Rng that augments batch `batch` of epoch `epoch` under `seed`: a pure function of the three numbers. */
export function batchRng(seed: number, epoch: number, batch: number): Rng {
  return new Rng(fmix32(epochKey(seed, epoch) ^ fmix32(batch >>> 0)));
}

/** Bytes 0..255 as float32 in [0,1]. NOTE: divides by 255 (as Keras' `x / 255`), so 255 maps to exactly 1. */
export function bytesToUnit(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]! / 255;
  return out;
}

const rowSize = (shape: readonly number[]) => shape.slice(1).reduce((a, b) => a * b, 1);

function gather<T extends Float32Array | Int32Array>(src: T, size: number, rows: ArrayLike<number>): T {
  const out = new (src.constructor as new (n: number) => T)(rows.length * size);
  for (let r = 0; r < rows.length; r++) out.set(src.subarray(rows[r]! * size, (rows[r]! + 1) * size), r * size);
  return out;
}

/**
 * Host arrays x [N, ...] (float32 inputs, or int32 token ids) and y [N, ...] (int32 class ids or float32 targets),
 * row-aligned.
 */
export class Dataset<X extends Float32Array | Int32Array = Float32Array> {
  /** Number of rows N. */
  readonly length: number;
  readonly xShape: readonly number[];
  readonly yShape: readonly number[];

  /** `yShape` defaults to [N] (one label per row). */
  constructor(
    readonly x: X,
    xShape: readonly number[],
    readonly y: Float32Array | Int32Array,
    yShape: readonly number[] = [xShape[0] ?? 0],
  ) {
    const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
    if (xShape.length < 1 || size(xShape) !== x.length) {
      throw new ShapeError(`Dataset: x has ${x.length} values, its shape ${fmtShape(xShape)} holds ${size(xShape)}`);
    }
    if (yShape.length < 1 || size(yShape) !== y.length) {
      throw new ShapeError(`Dataset: y has ${y.length} values, its shape ${fmtShape(yShape)} holds ${size(yShape)}`);
    }
    if (xShape[0] !== yShape[0]) {
      throw new ShapeError(`Dataset: x ${fmtShape(xShape)} and y ${fmtShape(yShape)} differ in their number of rows`);
    }
    this.length = xShape[0]!;
    this.xShape = [...xShape];
    this.yShape = [...yShape];
  }

  /** Number of batches per epoch. */
  numBatches(batchSize: number, dropLast = false): number {
    checkBatchSize(batchSize);
    return dropLast ? Math.floor(this.length / batchSize) : Math.ceil(this.length / batchSize);
  }

  /** The rows `rows` (any order, repeats allowed) as a new dataset. */
  take(rows: ArrayLike<number>): Dataset<X> {
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      if (!Number.isInteger(r) || r < 0 || r >= this.length)
        throw new ArgumentError(`Dataset.take: row ${r} outside 0..${this.length - 1}`);
    }
    const n = rows.length;
    const x = gather(this.x, rowSize(this.xShape), rows);
    const y = gather(this.y, rowSize(this.yShape), rows);
    return new Dataset(x, [n, ...this.xShape.slice(1)], y, [n, ...this.yShape.slice(1)]);
  }

  /** Rows start..end-1 as a new dataset (views of this one's arrays, no copy). */
  slice(start: number, end = this.length): Dataset<X> {
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= this.length)) {
      throw new ArgumentError(`Dataset.slice(${start}, ${end}) outside 0..${this.length}`);
    }
    const xs = rowSize(this.xShape);
    const ys = rowSize(this.yShape);
    const n = end - start;
    return new Dataset(
      this.x.subarray(start * xs, end * xs) as X,
      [n, ...this.xShape.slice(1)],
      this.y.subarray(start * ys, end * ys),
      [n, ...this.yShape.slice(1)],
    );
  }

  /**
   * The epoch's batches in order: `batchSize` rows each, the last one shorter unless `dropLast`.
   * With `shuffle` (the default) the order is `epochPermutation(N, seed, epoch)`, so it changes from epoch to epoch
   * and repeats exactly for the same seed and epoch. Each batch is a fresh copy the caller may keep; `augment`, if
   * given, changes that copy's x.
   */
  *batches(batchSize: number, opts: BatchOptions = {}): Generator<Batch<X>> {
    const n = this.numBatches(batchSize, opts.dropLast);
    const order = (opts.shuffle ?? true) ? epochPermutation(this.length, opts.seed ?? 0, opts.epoch ?? 0) : null;
    const xs = rowSize(this.xShape);
    const ys = rowSize(this.yShape);
    for (let b = 0; b < n; b++) {
      const start = b * batchSize;
      const end = Math.min(start + batchSize, this.length);
      const indices = order ? order.slice(start, end) : Int32Array.from({ length: end - start }, (_, i) => start + i);
      const rows = end - start;
      const x = gather(this.x, xs, indices);
      const xShape = [rows, ...this.xShape.slice(1)];
      if (opts.augment) opts.augment(this.floatX('augment', x), xShape, batchRng(opts.seed ?? 0, opts.epoch ?? 0, b));
      yield { x, xShape, y: gather(this.y, ys, indices), yShape: [rows, ...this.yShape.slice(1)], indices };
    }
  }

  /**
   * Splits off the last `fraction` of the rows for validation, before any shuffling, as Keras' `validation_split`:
   * train keeps the first floor(N · (1 − fraction)) rows. Returns views, no copies.
   */
  validationSplit(fraction: number): { train: Dataset<X>; validation: Dataset<X> } {
    if (!(fraction > 0 && fraction < 1))
      throw new ArgumentError(`validationSplit: fraction ${fraction} outside (0, 1)`);
    const split = Math.floor(this.length * (1 - fraction));
    if (split === 0 || split === this.length) {
      throw new ArgumentError(
        `validationSplit(${fraction}) of ${this.length} rows leaves ${split} for training and ${this.length - split} for validation`,
      );
    }
    return { train: this.slice(0, split), validation: this.slice(split) };
  }

  /**
   * The first NaN or ±Inf in x, or in y when it holds float targets (int32 labels are always finite), with its flat
   * index and row; undefined when every value is finite. One pass over the data, no allocation.
   */
  firstNonFinite(): { array: 'x' | 'y'; index: number; row: number; value: number } | undefined {
    const found = (array: 'x' | 'y', a: Float32Array | Int32Array, shape: readonly number[]) => {
      const index = firstNonFinite(a);
      return index < 0 ? undefined : { array, index, row: Math.floor(index / rowSize(shape)), value: a[index]! };
    };
    return (
      found('x', this.x, this.xShape) ?? (this.y instanceof Int32Array ? undefined : found('y', this.y, this.yShape))
    );
  }

  /** The first int32 label outside 0..classes-1, with its flat index; undefined when all are in range (or y is float). */
  firstLabelOutside(classes: number): { index: number; value: number } | undefined {
    const y = this.y;
    if (!(y instanceof Int32Array)) return undefined;
    for (let i = 0; i < y.length; i++) {
      const v = y[i]!;
      if (v < 0 || v >= classes) return { index: i, value: v };
    }
    return undefined;
  }

  /**
   * Mean and standard deviation of x over every axis but the last (per channel for NHWC images), in float64.
   * NOTE: the population std (divide by N), as NumPy's default and Keras' `Normalization` layer.
   */
  stats(): { mean: Float64Array; std: Float64Array } {
    this.floatX('stats', this.x);
    const c = this.xShape.length > 1 ? this.xShape[this.xShape.length - 1]! : 1;
    const mean = new Float64Array(c);
    const sq = new Float64Array(c);
    for (let i = 0; i < this.x.length; i++) mean[i % c] += this.x[i]!;
    const count = this.x.length / c;
    for (let k = 0; k < c; k++) mean[k] /= count;
    for (let i = 0; i < this.x.length; i++) sq[i % c] += (this.x[i]! - mean[i % c]!) ** 2;
    return { mean, std: sq.map((s) => Math.sqrt(s / count)) };
  }

  /**
   * A new dataset with x' = (x − mean) / std, per channel (the last axis) when given arrays, else one scalar.
   * Compute them on the training set (`train.stats()`) and apply the same to validation and test sets.
   */
  standardize(mean: number | ArrayLike<number>, std: number | ArrayLike<number>): Dataset {
    this.floatX('standardize', this.x);
    const c = this.xShape.length > 1 ? this.xShape[this.xShape.length - 1]! : 1;
    const per = (v: number | ArrayLike<number>, what: string): ArrayLike<number> => {
      const a = typeof v === 'number' ? Array.from({ length: c }, () => v) : v;
      if (a.length !== c)
        throw new ShapeError(
          `standardize: ${what} has ${a.length} values for ${c} channels of x ${fmtShape(this.xShape)}`,
        );
      return a;
    };
    const m = per(mean, 'mean');
    const s = per(std, 'std');
    for (let k = 0; k < c; k++) {
      if (!(s[k]! > 0)) throw new ArgumentError(`standardize: std[${k}] = ${s[k]} must be > 0`);
    }
    const x = new Float32Array(this.x.length);
    for (let i = 0; i < x.length; i++) x[i] = (this.x[i]! - m[i % c]!) / s[i % c]!;
    return new Dataset(x, this.xShape, this.y, this.yShape);
  }

  /** x as float32 for `op` (augmentation, statistics), or a DTypeError: token ids are not measurements. */
  private floatX(op: string, x: Float32Array | Int32Array): Float32Array {
    if (x instanceof Float32Array) return x;
    throw new DTypeError(`Dataset ${op}: x ${fmtShape(this.xShape)} holds int32 ids; expected float32 inputs`);
  }
}

/** The index of the first NaN or ±Inf in `a`, or −1. */
export function firstNonFinite(a: ArrayLike<number>): number {
  // NOTE: v − v is 0 for every finite v and NaN for NaN and ±Inf: one subtraction and one compare per value.
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (v - v !== 0) return i;
  }
  return -1;
}

function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new ArgumentError(`batchSize ${batchSize} must be an integer >= 1`);
}
