// Node file access for datasets: bounded reads of regular files and IDX files gzipped or raw (gzip inflated straight
// into a buffer sized from the IDX header). Atomic writes: platform/fs.ts.
// NOTE: namespace imports of node: modules, so a browser bundle that reaches this file still builds (Vite stubs them).
import * as buffer from 'node:buffer';
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { ParseError, fmtShape } from '../errors.js';
import {
  IDX_MAX_BYTES,
  IDX_MAX_RANK,
  adoptIdx,
  checkIdxLength,
  idxMaxBytes,
  isGzip,
  parseIdx,
  parseIdxHeader,
  type IdxArray,
  type IdxHeader,
  type IdxParseOptions,
} from './idx.js';

// NOTE: deflate writes at most 1032 bytes per input byte (a 258-byte match in 2 bits), so gzip data can never inflate
// to more than this many times its size: a header declaring more is refused before any buffer is made for it.
const DEFLATE_MAX_RATIO = 1032;
// The IDX header is at most 4 + 4 · IDX_MAX_RANK bytes.
const IDX_MAX_HEADER = 4 + 4 * IDX_MAX_RANK;
// What inflating a prefix for the header may produce: far more than a header, far less than a bomb.
const HEAD_MAX_BYTES = 64 << 10;

function gzipError(e: unknown, compressed: number): ParseError {
  const err = e as NodeJS.ErrnoException;
  return new ParseError(`gzip: corrupt or truncated data (${compressed} bytes): ${err.code ?? ''} ${err.message}`);
}

/**
 * Decompresses gzip data, refusing to produce more than `maxBytes` (zlib stops at the bound, so a gzip bomb
 * costs at most that much memory). Corrupt, truncated or oversized data is a `ParseError`.
 */
export function gunzipBounded(bytes: Uint8Array, maxBytes = IDX_MAX_BYTES): Uint8Array {
  try {
    return zlib.gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ParseError(
        `gzip: ${bytes.length} compressed bytes decompress to more than the bound of ${maxBytes} bytes`,
      );
    }
    throw gzipError(e, bytes.length);
  }
}

/**
 * The first `want` bytes that gzip data inflates to (all of them when it inflates to fewer), inflating only as much
 * of it as that takes. NOTE: a sync flush inflates what a prefix holds without needing the stream's end; the prefix
 * doubles until it gives `want` bytes, and halves back when it would give more than HEAD_MAX_BYTES (a bomb right
 * after the header), so the cost is bounded by the prefix, never by what the whole stream inflates to. The prefix
 * stops short of the 8-byte trailer, so a bad checksum or size is found by the full inflate, after the header.
 */
function gunzipHead(gz: Uint8Array, want: number): Uint8Array {
  const most = Math.max(0, gz.length - 8);
  let short = 0; // longest prefix known to give fewer than `want` bytes
  let over = Infinity; // shortest prefix known to give more than HEAD_MAX_BYTES
  let n = Math.min(most, 1024);
  for (;;) {
    let out: Uint8Array | undefined;
    try {
      out = zlib.gunzipSync(gz.subarray(0, n), {
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
        maxOutputLength: HEAD_MAX_BYTES,
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ERR_BUFFER_TOO_LARGE') throw gzipError(e, gz.length);
      over = n;
    }
    if (out && out.length >= want) return out.subarray(0, want);
    // All but the trailer gives fewer: inflate it all, which tells a short stream from a truncated or corrupt one.
    if (out && n === most) return gunzipBounded(gz, want);
    if (out) short = n;
    // one more input byte inflates to at most a few KiB, so the two bounds never meet
    if (over - short <= 1)
      throw new ParseError(`gzip: cannot find the first ${want} bytes of ${gz.length} compressed bytes`);
    n = over === Infinity ? Math.min(most, 2 * n) : short + Math.floor((over - short) / 2);
  }
}

/**
 * The header of a gzipped IDX file, read from a prefix of it and checked against `maxBytes` and against what the
 * compressed size can hold (deflate expands at most 1032x), before any buffer is made for the items.
 */
function gzipIdxHeader(gz: Uint8Array, opts: IdxParseOptions): IdxHeader {
  const h = parseIdxHeader(gunzipHead(gz, IDX_MAX_HEADER), opts);
  const total = h.headerBytes + h.dataBytes;
  if (total > gz.length * DEFLATE_MAX_RATIO) {
    throw new ParseError(
      `gzip: ${declares(h)}; ${gz.length} compressed bytes inflate to at most ${gz.length * DEFLATE_MAX_RATIO}`,
    );
  }
  if (total >= buffer.constants.MAX_LENGTH) {
    throw new ParseError(
      `gzip: ${declares(h)}; over the largest buffer Node makes (${buffer.constants.MAX_LENGTH} bytes)`,
    );
  }
  return h;
}

const declares = (h: IdxHeader) =>
  `the IDX header declares ${fmtShape(h.dims)} ${h.type}, ${h.headerBytes + h.dataBytes} bytes in all`;

/**
 * Inflates a gzipped IDX file whose header `h` is checked into one buffer of the size it declares: zlib stops as soon
 * as the stream runs past it, and a stream that ends short is left for the length check. So the memory a file costs
 * is its declared size, known and checked before it is allocated.
 */
function gunzipIdx(gz: Uint8Array, h: IdxHeader): Uint8Array {
  const total = h.headerBytes + h.dataBytes;
  // NOTE: zlib inflates into buffers of `chunkSize` bytes, and a stream that fits in the first is returned as a view
  // of it, with no copy. A single-member gzip ends with its size mod 2^32 (ISIZE): when that agrees with the header,
  // the one buffer is made exactly big enough. When it does not (several members, or a corrupt file that will fail
  // its check), zlib's default chunks are used: memory then follows what the stream holds, still capped at `total`.
  const isize = gz.length >= 18 ? new DataView(gz.buffer, gz.byteOffset + gz.length - 4, 4).getUint32(0, true) : -1;
  const chunkSize = isize === total % 2 ** 32 ? Math.max(zlib.constants.Z_MIN_CHUNK, total + 1) : undefined;
  try {
    return zlib.gunzipSync(gz, { maxOutputLength: total, chunkSize });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw new ParseError(`gzip: ${declares(h)}, but the data inflates to more`);
    throw gzipError(e, gz.length);
  }
}

/** Parses IDX bytes, gunzipping them first when they start with the gzip magic (into one buffer of the declared size). */
export function decodeIdx(bytes: Uint8Array, opts: IdxParseOptions = {}): IdxArray {
  if (!isGzip(bytes)) return parseIdx(bytes, opts);
  // the inflated buffer is ours alone: its items are used in place
  return adoptIdx(gunzipIdx(bytes, gzipIdxHeader(bytes, opts)), opts);
}

const openNonBlocking = (file: string) => fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));

/** fstat of an open file, refusing anything but a regular file. */
function regularFile(fd: number): fs.Stats {
  const st = fs.fstatSync(fd);
  if (!st.isFile()) throw new ParseError(`not a regular file (${kindOf(st)}); data files must be regular files`);
  return st;
}

function kindOf(st: fs.Stats): string {
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a folder';
  return 'not a file';
}

/**
 * Reads a whole regular file of at most `maxBytes` bytes. The file is opened without blocking and checked with fstat
 * before a byte is read: a device, FIFO, socket or folder (a data file linked to /dev/zero, say) is a `ParseError`,
 * and so is a file over `maxBytes`, refused from its size, or one that changes size while it is read: at most its
 * size + 1 bytes are ever read. `limit` names the limit in the message.
 */
export function readFileBounded(file: string, maxBytes: number, limit = 'maxBytes'): Uint8Array {
  return named(file, () => {
    const fd = openNonBlocking(file);
    try {
      const st = regularFile(fd);
      if (st.size > maxBytes) throw new ParseError(`${st.size} bytes, over the limit of ${maxBytes} bytes (${limit})`);
      const out = new Uint8Array(st.size);
      for (let n = 0; n < out.length; ) {
        const got = fs.readSync(fd, out, n, out.length - n, n);
        if (got === 0) throw new ParseError(`ended after ${n} of its ${st.size} bytes (changed while being read)`);
        n += got;
      }
      if (fs.readSync(fd, new Uint8Array(1), 0, 1, out.length) !== 0)
        throw new ParseError(`grew past its ${st.size} bytes while being read`);
      return out;
    } finally {
      fs.closeSync(fd);
    }
  });
}

/** Runs f, prefixing the message of a ParseError it throws with the file's name. */
function named<T>(file: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ParseError && !e.message.startsWith(`${file}: `)) throw new ParseError(`${file}: ${e.message}`);
    throw e;
  }
}

// NOTE: a gzip of incompressible data is slightly larger than the data (5 bytes per 64 KiB stored block, plus its
// header and trailer), so a compressed file may exceed the payload cap by 0.1% and a few KiB.
const fileCap = (opts: IdxParseOptions) => {
  const maxBytes = idxMaxBytes(opts);
  return IDX_MAX_HEADER + maxBytes + Math.ceil(maxBytes / 1000) + 4096;
};
const FILE_LIMIT = 'maxBytes, plus room for the header and gzip framing';

/** An IDX file whose header is read and checked but whose items are not read yet. */
export interface IdxFile {
  file: string;
  header: IdxHeader;
  /** Reads the items: a raw file's are used in place, a gzipped one is inflated into one buffer of the declared size. */
  read(): IdxArray;
}

/**
 * Opens an IDX file (gzipped or raw) and checks its header, so that sizes and counts can be compared across files
 * before anything is allocated for their items. Only a regular file is read (see `readFileBounded`). A raw file's
 * header is read alone and its size must be what the header declares; a gzipped file is read whole (it is the
 * compressed size, within `maxBytes`) and inflated only as far as the header. Failures are `ParseError`s naming the
 * file.
 */
export function openIdxFile(file: string, opts: IdxParseOptions = {}): IdxFile {
  const cap = fileCap(opts);
  return named(file, () => {
    const fd = openNonBlocking(file);
    let size: number;
    let head = new Uint8Array(IDX_MAX_HEADER);
    try {
      size = regularFile(fd).size;
      head = head.subarray(0, fs.readSync(fd, head, 0, Math.min(size, head.length), 0));
    } finally {
      fs.closeSync(fd);
    }
    if (!isGzip(head)) {
      const header = parseIdxHeader(head, opts);
      checkIdxLength(header, size);
      return { file, header, read: () => named(file, () => adoptIdx(readFileBounded(file, cap, FILE_LIMIT), opts)) };
    }
    const gz = readFileBounded(file, cap, FILE_LIMIT);
    const header = gzipIdxHeader(gz, opts);
    return { file, header, read: () => named(file, () => adoptIdx(gunzipIdx(gz, header), opts)) };
  });
}

/**
 * Reads and parses an IDX file (gzipped or raw) with bounded memory: only a regular file, and only when its size fits
 * `maxBytes`; the result's items are the only large allocation (see `openIdxFile`). A failure names the file.
 */
export function readIdxFile(file: string, opts: IdxParseOptions = {}): IdxArray {
  return openIdxFile(file, opts).read();
}
