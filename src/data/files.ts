// Node file access for datasets: a bounded gunzip and IDX files gzipped or raw (atomic writes: platform/fs.ts).
// NOTE: namespace imports of node: modules, so a browser bundle that reaches this file still builds (Vite stubs them).
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { ParseError } from '../errors.js';
import { IDX_MAX_BYTES, isGzip, parseIdx, type IdxArray, type IdxParseOptions } from './idx.js';

/**
 * Decompresses gzip data, refusing to produce more than `maxBytes` (zlib stops at the bound, so a gzip bomb
 * costs at most that much memory). Corrupt, truncated or oversized data is a `ParseError`.
 */
export function gunzipBounded(bytes: Uint8Array, maxBytes = IDX_MAX_BYTES): Uint8Array {
  try {
    return zlib.gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ParseError(`gzip: ${bytes.length} compressed bytes decompress to more than the bound of ${maxBytes} bytes`);
    }
    throw new ParseError(`gzip: corrupt or truncated data (${bytes.length} bytes): ${err.code ?? ''} ${err.message}`);
  }
}

/** Parses IDX bytes, gunzipping them first (bounded by `maxBytes`) when they start with the gzip magic. */
export function decodeIdx(bytes: Uint8Array, opts: IdxParseOptions = {}): IdxArray {
  if (!isGzip(bytes)) return parseIdx(bytes, opts);
  // The header may add up to 4 + 4 · IDX_MAX_RANK bytes to the payload cap.
  const raw = gunzipBounded(bytes, (opts.maxBytes ?? IDX_MAX_BYTES) + 20);
  return parseIdx(raw, opts);
}

/** Reads and parses an IDX file (gzipped or raw); a parse failure names the file. */
export function readIdxFile(file: string, opts: IdxParseOptions = {}): IdxArray {
  const bytes = fs.readFileSync(file);
  try {
    return decodeIdx(bytes, opts);
  } catch (e) {
    if (e instanceof ParseError) throw new ParseError(`${file}: ${e.message}`);
    throw e;
  }
}
