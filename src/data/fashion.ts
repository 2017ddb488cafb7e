// Image datasets from a folder of MNIST-format IDX files (gzipped or raw): Fashion-MNIST, MNIST, KMNIST, ... Node only.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ParseError, WgnnError, fmtShape } from '../errors.js';
import { Dataset, bytesToUnit, type ImageDataset } from './dataset.js';
import { openIdxFile, type IdxFile } from './files.js';
import type { IdxParseOptions } from './idx.js';

/** Where Debian's `dataset-fashion-mnist` package installs the Fashion-MNIST IDX files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
/** Fashion-MNIST's class names, by label. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** Default of `maxClasses`: the most classes `loadIdxDataset` infers from the labels. */
export const IDX_MAX_CLASSES = 10_000;
/** Default of `maxElements`: the most values one split's images may hold (2^28, 1 GiB as float32). */
export const IDX_MAX_ELEMENTS = 2 ** 28;

/** Limits of `loadIdxDataset`, each checked before anything is allocated for what it bounds. */
export interface IdxDatasetOptions extends IdxParseOptions {
  /**
   * The number of classes: every label must be in 0..classes-1. Default: the largest label + 1, which must not pass
   * `maxClasses`.
   */
  classes?: number;
  /**
   * The most classes inferred from the labels (default `IDX_MAX_CLASSES`, 10,000): one label of 5,000,000 would
   * otherwise make a 5-million-class model. Not used when `classes` is given.
   */
  maxClasses?: number;
  /**
   * The most values one split's images (or labels) may hold (default `IDX_MAX_ELEMENTS`, 2^28): images become float32,
   * 4 bytes a value, so the default bounds a split at 1 GiB. Checked from the IDX headers, before any items are read.
   */
  maxElements?: number;
}

// NOTE: LeCun's names (train-images-idx3-ubyte) and the dotted ones some mirrors use (train-images.idx3-ubyte),
// each raw or .gz; the first that exists wins.
function findFile(dir: string, stem: string, idx: string): string {
  const names = [`${stem}-${idx}-ubyte`, `${stem}.${idx}-ubyte`].flatMap((b) => [b, `${b}.gz`]);
  for (const name of names) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  throw new WgnnError(`loadIdxDataset: no ${names.join(' / ')} in ${dir}`);
}

interface Split {
  images: IdxFile;
  labels: IdxFile;
}

// Opens a split's two files and checks what their headers say: types, ranks, sizes, and as many labels as images.
function openSplit(dir: string, stem: 'train' | 't10k', opts: IdxDatasetOptions, maxElements: number): Split {
  const images = openIdxFile(findFile(dir, `${stem}-images`, 'idx3'), opts);
  const ih = images.header;
  if (ih.type !== 'uint8' || (ih.dims.length !== 3 && ih.dims.length !== 4)) {
    throw new ParseError(
      `${images.file}: images must be ubyte [N,H,W] or [N,H,W,C], got ${ih.type} ${fmtShape(ih.dims)}`,
    );
  }
  const n = ih.dims[0]!;
  if (Math.max(ih.items, n) > maxElements) {
    throw new ParseError(
      `${images.file}: ${fmtShape(ih.dims)} images hold ${Math.max(ih.items, n)} values, over the limit of ${maxElements} ` +
        `(${maxElements * 4} bytes as float32); the maxElements option of loadIdxDataset raises it`,
    );
  }
  const labels = openIdxFile(findFile(dir, `${stem}-labels`, 'idx1'), opts);
  const lh = labels.header;
  if (lh.type === 'float32' || lh.type === 'float64' || lh.dims.length !== 1) {
    throw new ParseError(`${labels.file}: labels must be integers [N], got ${lh.type} ${fmtShape(lh.dims)}`);
  }
  if (lh.dims[0] !== n) {
    throw new ParseError(
      `${dir}: ${path.basename(images.file)} has ${n} images but ${path.basename(labels.file)} has ${lh.dims[0]} labels`,
    );
  }
  return { images, labels };
}

// Checks every label against the classes, declared or inferred, and returns the class count.
function checkLabels(splits: { file: string; y: Int32Array }[], opts: IdxDatasetOptions): number {
  const declared = opts.classes;
  const max = declared ?? opts.maxClasses ?? IDX_MAX_CLASSES;
  let classes = 0;
  for (const { file, y } of splits) {
    for (let i = 0; i < y.length; i++) {
      const v = y[i]!;
      if (v >= 0 && v < max) {
        classes = Math.max(classes, v + 1);
        continue;
      }
      if (v < 0) throw new ParseError(`${file}: label ${v} at index ${i} is negative`);
      throw new ParseError(
        declared !== undefined
          ? `${file}: label ${v} at index ${i} is outside 0..${declared - 1} (classes: ${declared})`
          : `${file}: label ${v} at index ${i} would make ${v + 1} classes, over the limit of ${max}; pass loadIdxDataset ` +
            '{ classes } (the number of classes) or a larger { maxClasses }',
      );
    }
  }
  return declared ?? classes;
}

function checkOptions(opts: IdxDatasetOptions): void {
  const check = (name: keyof IdxDatasetOptions, min: number, max: number) => {
    const v = opts[name];
    if (v !== undefined && !(Number.isInteger(v) && v >= min && v <= max))
      throw new WgnnError(`loadIdxDataset: ${name} ${String(v)} must be an integer in ${min}..${max}`);
  };
  check('classes', 1, 2 ** 31 - 1);
  check('maxClasses', 1, 2 ** 31 - 1);
  check('maxElements', 1, Number.MAX_SAFE_INTEGER);
  check('maxBytes', 0, Number.MAX_SAFE_INTEGER);
}

/**
 * Reads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte
 * (each raw or .gz) from `dir`: x [N,H,W,C] float32 in [0,1] (pixels / 255), y [N] int32. Everything a file's header
 * says is checked before any items are read: each split has as many labels as images, train and test images have
 * the same size, and sizes are within `maxBytes` (a file's payload, default 1 GiB) and `maxElements` (a split, default
 * 2^28 values). Then every label is checked against `classes`, or else against `maxClasses` (default 10,000), before
 * the images are read. A file that breaks a rule or a limit is a `ParseError` naming the file, the values and the
 * option that raises the limit; a missing file or folder is a `WgnnError`.
 */
export function loadIdxDataset(dir: string, opts: IdxDatasetOptions = {}): ImageDataset {
  checkOptions(opts);
  if (!fs.existsSync(dir)) throw new WgnnError(`loadIdxDataset: no folder ${dir}`);
  const maxElements = opts.maxElements ?? IDX_MAX_ELEMENTS;
  const splits = [openSplit(dir, 'train', opts, maxElements), openSplit(dir, 't10k', opts, maxElements)];
  const [train, test] = splits.map((s) => s.images.header.dims.slice(1));
  if (fmtShape(train!) !== fmtShape(test!)) {
    throw new ParseError(`${dir}: train images are ${fmtShape(train!)} but test images are ${fmtShape(test!)}`);
  }
  // labels first: they are small, and a bad one refuses the folder before the images are read
  const ys = splits.map((s) => {
    const data = s.labels.read().data;
    return { file: s.labels.file, y: data instanceof Int32Array ? data : Int32Array.from(data) };
  });
  const classes = checkLabels(ys, opts);
  const [trainSet, testSet] = splits.map((s, k) => {
    const { dims, data } = s.images.read();
    const [n, h, w, c = 1] = dims;
    return new Dataset(bytesToUnit(data as Uint8Array), [n!, h!, w!, c], ys[k]!.y);
  });
  return { train: trainSet!, test: testSet!, classes };
}

/** Fashion-MNIST (60,000 train, 10,000 test, 10 classes) from Debian's `dataset-fashion-mnist` or `dir`. */
export function loadFashionMnist(dir = FASHION_MNIST_DIR): ImageDataset {
  if (!fs.existsSync(dir)) {
    throw new WgnnError(
      `Fashion-MNIST: no folder ${dir}. Install it with \`bash scripts/setup-machine.sh\` (Debian package dataset-fashion-mnist) or pass the folder of its IDX files`,
    );
  }
  return loadIdxDataset(dir, { classes: 10 });
}
