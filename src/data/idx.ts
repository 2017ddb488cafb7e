// IDX files (the MNIST format): a parser that treats its input as hostile, and the matching encoder.
// Layout: 00 00 <type> <rank>, then <rank> big-endian u32 dims, then the items big-endian, row-major.
// Pure: no Node modules, so a browser can parse bytes it fetched (and decompressed) itself.
import { ArgumentError, ParseError, ShapeError, fmtShape } from '../errors.js';

/** Item types of the IDX spec, by their type byte. */
export type IdxType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
/** An IDX file's values, in the typed array of its element type. */
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A parsed IDX array: its item type, its dims and the items in row-major order. */
export interface IdxArray {
  type: IdxType;
  dims: number[];
  data: IdxData;
}

const TYPES: Record<number, { type: IdxType; size: number }> = {
  0x08: { type: 'uint8', size: 1 },
  0x09: { type: 'int8', size: 1 },
  0x0b: { type: 'int16', size: 2 },
  0x0c: { type: 'int32', size: 4 },
  0x0d: { type: 'float32', size: 4 },
  0x0e: { type: 'float64', size: 8 },
};
const TYPE_BYTE: Record<IdxType, number> = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
};

/** Most dims an IDX file may declare. NOTE: the spec allows 255; datasets use 1 (labels) to 4 (colour images). */
export const IDX_MAX_RANK = 4;
/** Default cap on an IDX payload (1 GiB): the largest array a file may make us allocate, or a gzip inflate to. */
export const IDX_MAX_BYTES = 2 ** 30;

/** Limits of `parseIdx` on a file of unknown origin. */
export interface IdxParseOptions {
  /**
   * Refuse payloads (product of dims · item size) above this many bytes (default `IDX_MAX_BYTES`, 1 GiB), checked
   * from the header before anything is allocated or inflated; raise it to read larger files.
   */
  maxBytes?: number;
}

const hex = (v: number, digits = 2) => `0x${v.toString(16).padStart(digits, '0')}`;

/** True when the bytes start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The payload cap of `opts` (default `IDX_MAX_BYTES`), checked: an `ArgumentError` unless it is in 0..2^53-1. */
export function idxMaxBytes(opts: IdxParseOptions): number {
  const maxBytes = opts.maxBytes ?? IDX_MAX_BYTES;
  if (!(maxBytes >= 0 && maxBytes <= Number.MAX_SAFE_INTEGER))
    throw new ArgumentError(`parseIdx: maxBytes ${maxBytes} outside 0..2^53-1`);
  return maxBytes;
}

/** What an IDX header declares, checked: the item type, the dims, and the sizes they imply. */
export interface IdxHeader {
  type: IdxType;
  dims: number[];
  /** Items: the product of the dims. */
  items: number;
  /** Bytes of the header: 4 + 4 · rank. */
  headerBytes: number;
  /** Bytes of the items: items · item size. */
  dataBytes: number;
}

/**
 * Parses and checks the header at the start of `bytes` (the whole file is not needed: 4 + 4 · rank bytes are): the
 * magic, the type byte, the rank (1..4), each dim, and the payload against `maxBytes`, so a caller can refuse a file
 * or size its buffer before reading the rest. Any failure is a `ParseError` naming the offset and the sizes.
 */
export function parseIdxHeader(bytes: Uint8Array, opts: IdxParseOptions = {}): IdxHeader {
  const maxBytes = idxMaxBytes(opts);
  const len = bytes.length;
  if (len < 4) throw new ParseError(`IDX: ${len} bytes, too short for the 4-byte magic at offset 0`);
  if (isGzip(bytes))
    throw new ParseError('IDX: gzip data (1f 8b at offset 0); decompress it first (decodeIdx in Node)');
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new ParseError(`IDX: bad magic ${hex(bytes[0]!)} ${hex(bytes[1]!)} at offset 0; expected 0x00 0x00`);
  }
  const t = TYPES[bytes[2]!];
  if (!t) {
    throw new ParseError(
      `IDX: unknown type byte ${hex(bytes[2]!)} at offset 2; expected one of 0x08 0x09 0x0b 0x0c 0x0d 0x0e`,
    );
  }
  const rank = bytes[3]!;
  if (rank < 1 || rank > IDX_MAX_RANK) {
    throw new ParseError(`IDX: rank ${rank} at offset 3; expected 1..${IDX_MAX_RANK} dims`);
  }
  const header = 4 + 4 * rank;
  if (len < header) {
    throw new ParseError(`IDX: truncated header: ${rank} dims need ${header} bytes, the file has ${len}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const maxItems = Math.floor(maxBytes / t.size);
  const dims: number[] = [];
  let items = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    // NOTE: a zero dim is legal (an empty array); it is the product that must stay under the cap.
    // Dividing rather than multiplying keeps every intermediate exact (far below 2^53).
    if (d > 0 && items > Math.floor(maxItems / d)) {
      throw new ParseError(
        `IDX: dim ${i} = ${d} at offset ${4 + 4 * i}: dims ${fmtShape([...dims, d])} of ${t.type} (${t.size} bytes each) ` +
          `exceed the cap of ${maxBytes} bytes (the maxBytes option raises it)`,
      );
    }
    dims.push(d);
    items *= d;
  }
  return { type: t.type, dims, items, headerBytes: header, dataBytes: items * t.size };
}

/** Checks that a file of `len` bytes is exactly what header `h` declares (a `ParseError` naming both sizes if not). */
export function checkIdxLength(h: IdxHeader, len: number): void {
  const expected = h.headerBytes + h.dataBytes;
  if (len !== expected) {
    const diff = len < expected ? `${expected - len} bytes short` : `${len - expected} bytes extra`;
    throw new ParseError(
      `IDX: length mismatch: header (${h.headerBytes} bytes) declares ${fmtShape(h.dims)} ${h.type} = ${h.dataBytes} bytes of data, ` +
        `so ${expected} bytes in all; the file has ${len} (${diff})`,
    );
  }
}

/**
 * Parses an uncompressed IDX file. Every size is checked before anything is allocated: the header as
 * `parseIdxHeader` does, and the byte length, which must be exactly header + product(dims) · item size.
 * Any failure is a `ParseError` naming the offset and the sizes. The result owns its data (a copy, never a view of
 * `bytes`).
 */
export function parseIdx(bytes: Uint8Array, opts: IdxParseOptions = {}): IdxArray {
  const h = parseIdxHeader(bytes, opts);
  checkIdxLength(h, bytes.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { type: h.type, dims: h.dims, data: readItems(bytes, view, h.headerBytes, h.items, h.type) };
}

// Below this many bytes of items adoptIdx copies them: small buffers may sit in Node's shared 8 KiB Buffer pool, and
// a result should not be a view into memory other Buffers use. Copies this small cost nothing.
const ADOPT_MIN_BYTES = 64 << 10;

/**
 * Parses IDX bytes that the caller hands over (a buffer nothing else uses, such as one just read or inflated), with
 * the checks of `parseIdx`, but without copying: the items are put in host order in place and the result is a view
 * of `bytes`' buffer, so parsing needs no memory beyond the file's. `bytes` is overwritten.
 */
export function adoptIdx(bytes: Uint8Array, opts: IdxParseOptions = {}): IdxArray {
  const h = parseIdxHeader(bytes, opts);
  checkIdxLength(h, bytes.length);
  if (h.dataBytes < ADOPT_MIN_BYTES) return parseIdx(bytes, opts);
  const size = TYPES[TYPE_BYTE[h.type]]!.size;
  let at = bytes.byteOffset + h.headerBytes;
  // A typed array's offset must be a multiple of its item size: when it is not (float64 after a 12- or 20-byte
  // header), the items move down over the header, which is read already and at least 8 bytes long.
  const shift = at % size;
  if (shift !== 0) {
    bytes.copyWithin(h.headerBytes - shift, h.headerBytes);
    at -= shift;
  }
  const buf = bytes.buffer as ArrayBuffer;
  const n = h.items;
  // NOTE: byte order is swapped in place, from the file's big-endian to the host's, which wgnn takes to be
  // little-endian everywhere (uploads to the GPU copy bytes as they are). Bits are kept: NaN payloads survive.
  if (size === 2) {
    const u = new Uint16Array(buf, at, n);
    for (let i = 0; i < n; i++) u[i] = ((u[i]! & 0xff) << 8) | (u[i]! >>> 8);
  } else if (size >= 4) {
    const u = new Uint32Array(buf, at, (n * size) / 4);
    for (let i = 0; i < u.length; i++) u[i] = bswap32(u[i]!);
    // a float64 is two words: after swapping each word's bytes, the two words swap too
    if (size === 8) {
      for (let i = 0; i < u.length; i += 2) {
        const lo = u[i]!;
        u[i] = u[i + 1]!;
        u[i + 1] = lo;
      }
    }
  }
  const Ctor = {
    uint8: Uint8Array,
    int8: Int8Array,
    int16: Int16Array,
    int32: Int32Array,
    float32: Float32Array,
    float64: Float64Array,
  }[h.type];
  return { type: h.type, dims: h.dims, data: new Ctor(buf, at, n) };
}

const bswap32 = (x: number) => ((x << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;

// Items are big-endian; DataView reads them whatever the host's byte order.
function readItems(bytes: Uint8Array, v: DataView, off: number, n: number, type: IdxType): IdxData {
  // NOTE: copies through the typed-array constructor: `slice` on a Node Buffer (what fs and zlib return) is a view.
  if (type === 'uint8') return new Uint8Array(bytes.subarray(off, off + n));
  if (type === 'int8') return new Int8Array(bytes.buffer, bytes.byteOffset + off, n).slice();
  const out =
    type === 'int16'
      ? new Int16Array(n)
      : type === 'int32'
        ? new Int32Array(n)
        : type === 'float32'
          ? new Float32Array(n)
          : new Float64Array(n);
  const size = out.BYTES_PER_ELEMENT;
  const get = {
    int16: (o: number) => v.getInt16(o, false),
    int32: (o: number) => v.getInt32(o, false),
    float32: (o: number) => v.getFloat32(o, false),
    float64: (o: number) => v.getFloat64(o, false),
  }[type];
  for (let i = 0; i < n; i++) out[i] = get(off + size * i);
  return out;
}

function typeOf(data: IdxData): IdxType {
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Float32Array) return 'float32';
  return 'float64';
}

/** Encodes dims and a typed array as an IDX file (the type follows the array: Uint8Array is ubyte, ...). */
export function encodeIdx(dims: readonly number[], data: IdxData): Uint8Array {
  if (dims.length < 1 || dims.length > IDX_MAX_RANK) {
    throw new ShapeError(`encodeIdx: rank ${dims.length} for ${fmtShape(dims)}; expected 1..${IDX_MAX_RANK} dims`);
  }
  if (!dims.every((d) => Number.isInteger(d) && d >= 0 && d <= 0xffffffff)) {
    throw new ShapeError(`encodeIdx: dims ${fmtShape(dims)} must be integers in 0..2^32-1`);
  }
  const items = dims.reduce((a, b) => a * b, 1);
  if (items !== data.length) {
    throw new ShapeError(`encodeIdx: dims ${fmtShape(dims)} hold ${items} items, the data has ${data.length}`);
  }
  const type = typeOf(data);
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + data.byteLength);
  const v = new DataView(out.buffer);
  out[2] = TYPE_BYTE[type];
  out[3] = dims.length;
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  if (data.BYTES_PER_ELEMENT === 1) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header);
  } else {
    const size = data.BYTES_PER_ELEMENT;
    const set = {
      int16: (o: number, x: number) => v.setInt16(o, x, false),
      int32: (o: number, x: number) => v.setInt32(o, x, false),
      float32: (o: number, x: number) => v.setFloat32(o, x, false),
      float64: (o: number, x: number) => v.setFloat64(o, x, false),
    }[type as 'int16' | 'int32' | 'float32' | 'float64'];
    for (let i = 0; i < data.length; i++) set(header + size * i, data[i]!);
  }
  return out;
}
