// Image datasets from a folder of MNIST-format IDX files (gzipped or raw): Fashion-MNIST, MNIST, KMNIST, ... Node only.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ParseError, WgnnError, fmtShape } from '../errors.js';
import { Dataset, bytesToUnit, type ImageDataset } from './dataset.js';
import { readIdxFile } from './files.js';
import type { IdxParseOptions } from './idx.js';

/** Where Debian's `dataset-fashion-mnist` package installs the Fashion-MNIST IDX files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
/** Fashion-MNIST's class names, by label. */
export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

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

function readSplit(dir: string, stem: 'train' | 't10k', opts: IdxParseOptions): Dataset {
  const imagesFile = findFile(dir, `${stem}-images`, 'idx3');
  const labelsFile = findFile(dir, `${stem}-labels`, 'idx1');
  const images = readIdxFile(imagesFile, opts);
  const labels = readIdxFile(labelsFile, opts);
  if (images.type !== 'uint8' || (images.dims.length !== 3 && images.dims.length !== 4)) {
    throw new ParseError(`${imagesFile}: images must be ubyte [N,H,W] or [N,H,W,C], got ${images.type} ${fmtShape(images.dims)}`);
  }
  if (labels.type === 'float32' || labels.type === 'float64' || labels.dims.length !== 1) {
    throw new ParseError(`${labelsFile}: labels must be integers [N], got ${labels.type} ${fmtShape(labels.dims)}`);
  }
  const n = images.dims[0]!;
  if (labels.dims[0] !== n) {
    throw new ParseError(`${dir}: ${path.basename(imagesFile)} has ${n} images but ${path.basename(labelsFile)} has ${labels.dims[0]} labels`);
  }
  const y = Int32Array.from(labels.data);
  const neg = y.findIndex((v) => v < 0);
  if (neg >= 0) throw new ParseError(`${labelsFile}: label ${y[neg]} at index ${neg} is negative`);
  const [, h, w, c = 1] = images.dims;
  return new Dataset(bytesToUnit(images.data as Uint8Array), [n, h!, w!, c], y);
}

/**
 * Reads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte
 * (each raw or .gz) from `dir`: x [N,H,W,C] float32 in [0,1] (pixels / 255), y [N] int32. Checks that each
 * split has as many labels as images and that train and test images have the same size.
 */
export function loadIdxDataset(dir: string, opts: IdxParseOptions = {}): ImageDataset {
  if (!fs.existsSync(dir)) throw new WgnnError(`loadIdxDataset: no folder ${dir}`);
  const train = readSplit(dir, 'train', opts);
  const test = readSplit(dir, 't10k', opts);
  if (fmtShape(train.xShape.slice(1)) !== fmtShape(test.xShape.slice(1))) {
    throw new ParseError(`${dir}: train images are ${fmtShape(train.xShape.slice(1))} but test images are ${fmtShape(test.xShape.slice(1))}`);
  }
  let classes = 0;
  for (const y of [train.y, test.y]) for (let i = 0; i < y.length; i++) classes = Math.max(classes, y[i]! + 1);
  return { train, test, classes };
}

/** Fashion-MNIST (60,000 train, 10,000 test, 10 classes) from Debian's `dataset-fashion-mnist` or `dir`. */
export function loadFashionMnist(dir = FASHION_MNIST_DIR): ImageDataset {
  if (!fs.existsSync(dir)) {
    throw new WgnnError(
      `Fashion-MNIST: no folder ${dir}. Install it with \`bash scripts/setup-machine.sh\` (Debian package dataset-fashion-mnist) or pass the folder of its IDX files`,
    );
  }
  return loadIdxDataset(dir);
}
