// safetensors, Hugging Face's tensor file: a u64 little-endian header length N, N bytes of UTF-8 JSON indexing the
// byte buffer that follows. A pure codec (bytes in, bytes out; browser-safe) with a parser that treats every file as
// hostile, and tensor-level save/load on top of it (files only in Node).
import type { Backend, DType, TypedArray } from '../backend/backend.js';
import { DTypeError, ParseError, ShapeError, WgnnError } from '../errors.js';
import { tensor, type Tensor } from '../tensor.js';

/** The safetensors dtypes wgnn reads. It writes F32 and I32 only. */
export type StoredDType = 'F32' | 'I32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'U8';

// NOTE: loading converts each stored dtype to one of wgnn's two. F16 and BF16 widen to float32 exactly (subnormals,
// ±Inf, NaN and -0 included); F64 rounds to the nearest float32 (beyond ±3.4e38 to ±Inf), as torch's `.float()`;
// U8 widens to int32 exactly; I64 narrows to int32 only when every value fits (PyTorch's int64 labels, indices and
// counters do), otherwise ParseError naming the tensor, index and value: wrapping would corrupt them silently.
const STORED: Record<StoredDType, { bytes: number; dtype: DType }> = {
  F32: { bytes: 4, dtype: 'float32' },
  I32: { bytes: 4, dtype: 'int32' },
  F16: { bytes: 2, dtype: 'float32' },
  BF16: { bytes: 2, dtype: 'float32' },
  F64: { bytes: 8, dtype: 'float32' },
  I64: { bytes: 8, dtype: 'int32' },
  U8: { bytes: 1, dtype: 'int32' },
};

/** The largest header accepted or written, in bytes: the reference implementation's cap. */
export const MAX_HEADER_BYTES = 100_000_000;
/**
 * Default of `maxTensors`, the most tensors a file may index. Models hold hundreds to a few thousand; a header of a
 * million empty tensors fits in 60 MB and would cost gigabytes of objects to parse and load.
 */
export const MAX_TENSORS = 100_000;

/** Limits of `parseSafetensors` and `loadTensors`, checked before the header's JSON is parsed. */
export interface SafetensorsParseOptions {
  /** The most bytes the header may have (default `MAX_HEADER_BYTES`, 100 MB). */
  maxHeaderBytes?: number;
  /** The most tensors the header may index (default `MAX_TENSORS`, 100,000). */
  maxTensors?: number;
}

/** One tensor to serialize: float32 data may come as Float64Array (rounded to f32), int32 data as Int32Array. */
export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: readonly number[];
  data: TypedArray;
}

/** One tensor read from a file: `dtype` is what it was converted to, `stored` what the file held. */
export interface LoadedTensor {
  dtype: DType;
  stored: StoredDType;
  shape: number[];
  data: Float32Array | Int32Array;
}

/** A parsed file: tensors in the order of their bytes in the file, and the `__metadata__` map ({} if absent). */
export interface Safetensors {
  tensors: Map<string, LoadedTensor>;
  metadata: Record<string, string>;
}

/**
 * Serializes tensors to safetensors bytes: tensors sorted by name, `__metadata__` first with its keys sorted, the
 * header padded with spaces to a multiple of 8 bytes, data contiguous and 4-byte aligned. Deterministic: the same
 * entries give the same bytes.
 */
export function serializeSafetensors(
  entries: readonly SafetensorsEntry[],
  metadata?: Record<string, string>,
): Uint8Array {
  const seen = new Set<string>();
  for (const e of entries) {
    if (typeof e.name !== 'string' || e.name === '' || e.name === '__metadata__') {
      throw new WgnnError(
        `serializeSafetensors: invalid tensor name ${show(e.name)}; expected a non-empty string other than "__metadata__"`,
      );
    }
    if (seen.has(e.name)) throw new WgnnError(`serializeSafetensors: duplicate tensor name ${show(e.name)}`);
    seen.add(e.name);
    const ok =
      e.dtype === 'int32'
        ? e.data instanceof Int32Array
        : e.dtype === 'float32' && (e.data instanceof Float32Array || e.data instanceof Float64Array);
    if (!ok) {
      throw new DTypeError(
        `serializeSafetensors: tensor ${show(e.name)} has dtype ${show(e.dtype)} and ${e.data?.constructor.name} data; expected float32 with Float32Array/Float64Array or int32 with Int32Array`,
      );
    }
    const n = elementCount(e.shape);
    if (n === undefined || n !== e.data.length) {
      throw new ShapeError(
        `serializeSafetensors: tensor ${show(e.name)} has shape ${show(e.shape)} and ${e.data.length} values; expected non-negative integer dims whose product is the value count`,
      );
    }
  }
  // NOTE: names sort by UTF-16 code units (JS `<`), not locale: deterministic everywhere. The reference sorts UTF-8
  // bytes, which differs only for names mixing characters above U+FFFF with ones in U+E000..U+FFFF.
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // The header is assembled by hand: JSON.stringify of an object would move integer-like keys ("0", "10") first.
  const parts: string[] = [];
  const metaKeys = Object.keys(metadata ?? {}).sort();
  if (metaKeys.length > 0) {
    const kv = metaKeys.map((k) => {
      const v = metadata![k];
      if (typeof v !== 'string')
        throw new WgnnError(`serializeSafetensors: metadata ${show(k)} is ${show(v)}; expected a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${kv.join(',')}}`);
  }
  let offset = 0;
  for (const e of sorted) {
    const end = offset + e.data.length * 4;
    parts.push(
      `${JSON.stringify(e.name)}:{"dtype":"${e.dtype === 'int32' ? 'I32' : 'F32'}","shape":${JSON.stringify(e.shape)},"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = Math.ceil(json.length / 8) * 8;
  if (headerLen > MAX_HEADER_BYTES) {
    throw new WgnnError(
      `serializeSafetensors: the header would be ${headerLen} bytes, over the ${MAX_HEADER_BYTES}-byte cap readers enforce`,
    );
  }
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  // NOTE: typed arrays are copied as bytes, so this (and the reader) assumes a little-endian host, as uploads to the
  // GPU already do throughout wgnn.
  offset = 8 + headerLen;
  for (const e of sorted) {
    const d = e.data instanceof Float64Array ? Float32Array.from(e.data) : e.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), offset);
    offset += d.byteLength;
  }
  return out;
}

interface Indexed {
  name: string;
  stored: StoredDType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses safetensors bytes, validating everything before allocating anything sized by the header: header length
 * within the file and `maxHeaderBytes`, UTF-8, at most `maxTensors` tensors (counted before the JSON is parsed), a
 * JSON object without duplicate keys, each entry's dtype, shape and data_offsets, and that the tensors tile the byte
 * buffer exactly (no overlaps, gaps or trailing bytes). Any failure is a `ParseError` naming the tensor, the problem
 * and the offsets or sizes involved; a limit's names the option that raises it. The cost is linear in the file.
 */
export function parseSafetensors(bytes: Uint8Array, opts: SafetensorsParseOptions = {}): Safetensors {
  const maxHeader = opts.maxHeaderBytes ?? MAX_HEADER_BYTES;
  const maxTensors = opts.maxTensors ?? MAX_TENSORS;
  for (const [name, v] of [
    ['maxHeaderBytes', maxHeader],
    ['maxTensors', maxTensors],
  ] as const) {
    if (!(Number.isSafeInteger(v) && v >= 0))
      throw new WgnnError(`parseSafetensors: ${name} ${String(v)} must be an integer >= 0`);
  }
  if (bytes.length < 8)
    throw new ParseError(`safetensors: the file is ${bytes.length} bytes; expected at least 8 (the header length)`);
  const declared = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(maxHeader)) {
    throw new ParseError(
      `safetensors: header length ${declared} exceeds the ${maxHeader}-byte cap (file of ${bytes.length} bytes)` +
        (declared > BigInt(bytes.length) ? '' : '; the maxHeaderBytes option raises it'),
    );
  }
  const headerLen = Number(declared);
  if (8 + headerLen > bytes.length) {
    throw new ParseError(
      `safetensors: header length ${headerLen} runs past the end of the file (${bytes.length} bytes: at most ${bytes.length - 8} after the 8-byte length)`,
    );
  }
  if (headerLen === 0 || bytes[8] !== 0x7b) {
    throw new ParseError(
      `safetensors: the ${headerLen}-byte header must be a JSON object beginning with "{" (0x7b); found ${headerLen === 0 ? 'nothing' : `0x${bytes[8]!.toString(16)}`}`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    throw new ParseError(`safetensors: the ${headerLen}-byte header is not valid UTF-8`);
  }
  // NOTE: the keys are scanned before JSON.parse, which would build every entry's objects first: a header of a million
  // empty tensors is refused here, after reading maxTensors keys, instead of costing seconds and gigabytes.
  const duplicate = scanKeys(text, maxTensors);
  let header: Record<string, unknown>; // JSON text that begins with "{" and parses is an object
  try {
    header = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new ParseError(`safetensors: the ${headerLen}-byte header is not valid JSON (${(e as Error).message})`);
  }
  if (duplicate) throw new ParseError(duplicate);

  const bufferLen = bytes.length - 8 - headerLen;
  let metadata: Record<string, string> = {};
  const index: Indexed[] = [];
  // NOTE: for-in, not Object.entries: with many keys the header is a dictionary-mode object, and entries() would
  // build a pair for each of them first. JSON.parse makes every key an own property ("__proto__" too); hasOwn skips
  // what a polluted Object.prototype would add.
  for (const name in header) {
    if (!Object.hasOwn(header, name)) continue;
    if (name === '__metadata__') metadata = checkMetadata(header[name]);
    else index.push(checkEntry(name, header[name], bufferLen));
  }
  // The tensors must tile [0, bufferLen): sorted by offsets, each begins where the previous one ended.
  index.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev = '';
  for (const t of index) {
    if (t.begin < cursor) {
      throw new ParseError(
        `safetensors: tensor ${show(t.name)} data_offsets [${t.begin}, ${t.end}] overlap tensor ${show(prev)}, which ends at ${cursor}`,
      );
    }
    if (t.begin > cursor) {
      throw new ParseError(
        `safetensors: bytes [${cursor}, ${t.begin}) of the byte buffer are not indexed by any tensor (gap before tensor ${show(t.name)})`,
      );
    }
    cursor = t.end;
    prev = t.name;
  }
  if (cursor !== bufferLen) {
    throw new ParseError(
      `safetensors: bytes [${cursor}, ${bufferLen}) at the end of the byte buffer are not indexed by any tensor`,
    );
  }

  const base = 8 + headerLen;
  const tensors = new Map<string, LoadedTensor>();
  for (const t of index) {
    const raw = bytes.subarray(base + t.begin, base + t.end);
    tensors.set(t.name, { dtype: STORED[t.stored].dtype, stored: t.stored, shape: t.shape, data: decode(t, raw) });
  }
  return { tensors, metadata };
}

/** Saves tensors as safetensors bytes (their data read asynchronously), written atomically to `path` when given. */
export async function saveTensors(
  path: string | undefined,
  named: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<Uint8Array> {
  const list = Object.entries(named);
  const data = await Promise.all(list.map(([, t]) => t.data()));
  const bytes = serializeSafetensors(
    list.map(([name, t], i) => ({ name, dtype: t.dtype, shape: t.shape, data: data[i]! })),
    metadata,
  );
  if (path !== undefined) (await import('../platform/fs.js')).writeFileAtomic(path, bytes);
  return bytes;
}

/**
 * Loads the tensors of safetensors bytes or of a file (Node) onto a backend (the default one unless given), within
 * the limits of `parseSafetensors` (`maxHeaderBytes`, `maxTensors`).
 */
export async function loadTensors(
  source: Uint8Array | string,
  opts: { backend?: Backend } & SafetensorsParseOptions = {},
): Promise<Record<string, Tensor>> {
  const bytes =
    typeof source === 'string' ? await (await import('../platform/fs.js')).readFile(source, 'loadTensors') : source;
  const out: [string, Tensor][] = [];
  try {
    for (const [name, t] of parseSafetensors(bytes, opts).tensors) {
      out.push([name, tensor(t.data, t.shape, { dtype: t.dtype, backend: opts.backend })]);
    }
  } catch (e) {
    for (const [, t] of out) t.dispose();
    throw e;
  }
  // fromEntries defines own properties, so a tensor named "__proto__" stays a tensor.
  return Object.fromEntries(out);
}

function checkEntry(name: string, info: unknown, bufferLen: number): Indexed {
  const where = () => `safetensors: tensor ${show(name)}`; // a function: show() is paid for only in a message
  if (name === '') throw new ParseError('safetensors: a tensor has an empty name');
  if (!isObject(info))
    throw new ParseError(`${where()} is ${show(info)}; expected an object {dtype, shape, data_offsets}`);
  const { dtype, shape, data_offsets: offsets } = info;
  if (typeof dtype !== 'string' || !Object.hasOwn(STORED, dtype)) {
    throw new ParseError(`${where()}: dtype ${show(dtype)} is not one wgnn reads (${Object.keys(STORED).join(', ')})`);
  }
  const stored = dtype as StoredDType;
  if (!Array.isArray(shape)) throw new ParseError(`${where()}: shape ${show(shape)} is not an array`);
  const count = elementCount(shape);
  if (count === undefined) {
    throw new ParseError(
      `${where()}: shape ${show(shape)} must hold non-negative integers whose running product stays at most 2^53-1`,
    );
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw new ParseError(`${where()}: data_offsets ${show(offsets)} must be two non-negative integers [begin, end]`);
  }
  // NOTE: numbers are checked after JSON.parse, so 16.0 or 1.6e1 read as 16 (serde_json in the reference rejects
  // them); what matters holds all the same: every offset is an exact integer within the file.
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > bufferLen) {
    throw new ParseError(
      `${where()}: data_offsets [${begin}, ${end}] are outside the ${bufferLen}-byte buffer or reversed (expected 0 <= begin <= end <= ${bufferLen})`,
    );
  }
  const need = count * STORED[stored].bytes; // exact: a safe integer times 1, 2, 4 or 8
  if (end - begin !== need) {
    throw new ParseError(
      `${where()}: data_offsets [${begin}, ${end}] span ${end - begin} bytes; shape ${show(shape)} of ${stored} needs ${need}`,
    );
  }
  return { name, stored, shape: shape as number[], begin, end };
}

function checkMetadata(info: unknown): Record<string, string> {
  if (!isObject(info))
    throw new ParseError(`safetensors: __metadata__ is ${show(info)}; expected an object of strings`);
  for (const [k, v] of Object.entries(info)) {
    if (typeof v !== 'string')
      throw new ParseError(`safetensors: __metadata__ ${show(k)} is ${show(v)}; expected a string`);
  }
  return info as Record<string, string>;
}

// NOTE: JSON.parse keeps the last of duplicate keys silently. The spec disallows duplicates, and two readers taking
// different copies would see different tensors, so a duplicate key at any depth is a ParseError. This scan finds which
// strings are keys and returns the message for the first duplicate, which the caller throws once JSON.parse has
// accepted the text (on text it rejects, that error comes first). It counts the tensors as it goes, throwing when they
// pass `maxTensors`. Linear: a key with no escapes is a slice of the text, and one Set per depth is reused, since only
// one object per depth is open at a time.
function scanKeys(text: string, maxTensors: number): string | undefined {
  const sets: Set<string>[] = []; // sets[d]: the keys of the object open at depth d + 1
  const isObject: boolean[] = []; // per depth: an object (true) or an array
  let depth = 0;
  let expectKey = false;
  let tensors = 0;
  let duplicate: string | undefined;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      let escaped = false;
      for (; j < n; j++) {
        const d = text.charCodeAt(j);
        if (d === 0x22) break;
        if (d === 0x5c) {
          escaped = true;
          j++;
        }
      }
      if (j >= n) return duplicate; // an unterminated string: JSON.parse will say so
      if (expectKey && depth > 0) {
        let key: string;
        try {
          key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        } catch {
          return duplicate; // a bad escape: JSON.parse will say so
        }
        if (depth === 1 && key !== '__metadata__' && ++tensors > maxTensors) {
          throw new ParseError(
            `safetensors: the header indexes more than ${maxTensors} tensors (at character ${i}); the maxTensors option raises the limit`,
          );
        }
        const keys = sets[depth - 1]!;
        if (duplicate === undefined && keys.has(key)) {
          duplicate = `safetensors: duplicate ${depth === 1 ? 'tensor name' : 'key'} ${show(key)} at character ${i} of the header`;
        }
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      if (c === 0x7b) (sets[depth] ??= new Set()).clear();
      isObject[depth++] = c === 0x7b;
      expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) {
      if (--depth < 0) return duplicate; // unbalanced: JSON.parse will say so
    } else if (c === 0x2c) {
      expectKey = depth > 0 && isObject[depth - 1]!;
    }
  }
  return duplicate;
}

// raw: the tensor's bytes in the file (validated: exactly count * item size).
function decode(t: Indexed, raw: Uint8Array): Float32Array | Int32Array {
  if (t.stored === 'U8') return Int32Array.from(raw);
  // NOTE: F16 and BF16 read the file's bytes in place. They were copied first, as below, which allocated 3x their
  // bytes (the copy, then the float32 result): over the bound of twice the file's size that a parse may allocate.
  if (t.stored === 'F16' || t.stored === 'BF16')
    return decodeHalf(t.stored, new DataView(raw.buffer, raw.byteOffset, raw.byteLength));
  // The bytes as items of their size: a view of the file when its offset is aligned for them, else a fresh copy.
  const size = STORED[t.stored].bytes;
  const aligned = (raw.byteOffset & (size - 1)) === 0;
  const words = aligned ? raw : new Uint8Array(raw);
  const [buf, off] = [words.buffer, words.byteOffset];
  switch (t.stored) {
    case 'F32': {
      const out = new Float32Array(buf, off, raw.length / 4);
      return aligned ? out.slice() : out; // a result never shares the file's memory
    }
    case 'I32': {
      const out = new Int32Array(buf, off, raw.length / 4);
      return aligned ? out.slice() : out;
    }
    case 'F64':
      return Float32Array.from(new Float64Array(buf, off, raw.length / 8));
    case 'I64': {
      // little-endian halves: a value fits int32 when its high word is the sign extension of its low word
      const w = new Int32Array(buf, off, raw.length / 4);
      const out = new Int32Array(w.length / 2);
      for (let i = 0; i < out.length; i++) {
        const lo = w[2 * i]!;
        if (w[2 * i + 1] !== lo >> 31) {
          throw new ParseError(
            `safetensors: tensor ${show(t.name)} (I64) holds ${new BigInt64Array(buf, off, out.length)[i]} at index ${i}, outside int32; wgnn loads I64 as int32`,
          );
        }
        out[i] = lo;
      }
      return out;
    }
  }
}

// h: the tensor's bytes, little-endian 16-bit values at any alignment.
function decodeHalf(stored: 'F16' | 'BF16', h: DataView): Float32Array {
  const out = new Float32Array(h.byteLength / 2);
  if (stored === 'BF16') {
    // bf16 is the top half of an f32
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < out.length; i++) bits[i] = h.getUint16(2 * i, true) << 16;
    return out;
  }
  // f16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits; every value is exact in f32
  for (let i = 0; i < out.length; i++) {
    const x = h.getUint16(2 * i, true);
    const e = (x >> 10) & 0x1f;
    const m = x & 0x3ff;
    const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1024 + m) * 2 ** (e - 25);
    out[i] = x & 0x8000 ? -v : v;
  }
  return out;
}

// The element count of a shape, or undefined if a dim is not a non-negative safe integer or the product passes 2^53-1.
function elementCount(shape: readonly unknown[]): number | undefined {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || (d as number) < 0) return undefined;
    n *= d as number;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

// A value for an error message, cut short: hostile headers can hold megabyte names.
function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    // NOTE: JSON.parse takes any depth but JSON.stringify recurses: a value nested ~5,000 deep ([[[...]]] as an
    // entry, shape or metadata value) threw RangeError here, out of the parser, instead of its ParseError.
    s = Array.isArray(v) ? '[...]' : '{...}';
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
