// The embedded MNIST digits as rows (a label byte, then 784 pixel bytes) and their seeded train/test split.
// Pure: `loadMnist` (Node) gets the rows from its cache, the browser demo from the mnist.idx.gz it fetched.
import { ArgumentError, ParseError, fmtShape } from '../errors.js';
import { Rng } from '../rng.js';
import { Dataset, bytesToUnit, permutation, type ImageDataset } from './dataset.js';
import type { IdxArray } from './idx.js';

/** Height and width of an MNIST image. */
export const MNIST_SIDE = 28;
const PIXELS = MNIST_SIDE * MNIST_SIDE;
/** Bytes in one row: the label, then the 28·28 pixels. */
export const MNIST_ROW = 1 + PIXELS;

/** How the embedded digits split into training and test rows. */
export interface MnistSplitOptions {
  /** Seed of the train/test shuffle (default 0). */
  seed?: number;
  /** Images in the training split (default 8000); the rest are the test split. */
  trainSize?: number;
}

/**
 * The rows of a parsed IDX array that should hold MNIST rows: ubyte [N, 785] with labels 0..9. Anything else is a
 * `ParseError` naming `source` and what it holds.
 */
export function mnistRows(a: IdxArray, source = 'MNIST rows'): Uint8Array {
  if (a.type !== 'uint8' || a.dims.length !== 2 || a.dims[1] !== MNIST_ROW) {
    throw new ParseError(
      `${source}: ${a.type} ${fmtShape(a.dims)}; expected uint8 [N, ${MNIST_ROW}] (a label, then ${PIXELS} pixels)`,
    );
  }
  for (let r = 0; r < a.dims[0]!; r++) {
    const label = a.data[r * MNIST_ROW]!;
    if (label > 9) throw new ParseError(`${source}: row ${r} has label ${label}; expected 0..9`);
  }
  return a.data as Uint8Array;
}

/**
 * Splits MNIST rows into train and test: x [N,28,28,1] float32 in [0,1] (NHWC), y [N] int32 labels 0..9. The rows
 * are shuffled with `permutation(N, new Rng(seed))`; the first `trainSize` of that order are train, the rest test,
 * so the same seed gives the same split.
 */
export function splitMnist(rows: Uint8Array, opts: MnistSplitOptions = {}): ImageDataset {
  if (rows.length % MNIST_ROW !== 0)
    throw new ParseError(`splitMnist: ${rows.length} bytes is not a whole number of ${MNIST_ROW}-byte rows`);
  const n = rows.length / MNIST_ROW;
  const trainSize = opts.trainSize ?? 8000;
  if (!(Number.isInteger(trainSize) && trainSize >= 0 && trainSize <= n)) {
    throw new ArgumentError(`splitMnist: trainSize ${trainSize} outside 0..${n}`);
  }
  const order = permutation(n, new Rng(opts.seed ?? 0));
  const split = (rowIds: Int32Array): Dataset => {
    const pixels = new Uint8Array(rowIds.length * PIXELS);
    const y = new Int32Array(rowIds.length);
    rowIds.forEach((r, i) => {
      y[i] = rows[r * MNIST_ROW]!;
      pixels.set(rows.subarray(r * MNIST_ROW + 1, (r + 1) * MNIST_ROW), i * PIXELS);
    });
    return new Dataset(bytesToUnit(pixels), [rowIds.length, MNIST_SIDE, MNIST_SIDE, 1], y);
  };
  return { train: split(order.subarray(0, trainSize)), test: split(order.subarray(trainSize)), classes: 10 };
}
