// Checkpoints: named tensors (weights, optimizer state) plus a JSON state (step, RNG states, data cursor) in one
// safetensors file, written atomically, with a CRC-32 of the whole file (header, names, state and tensor bytes)
// checked before anything in it is used. Non-finite tensors are never written.
import type { Backend, TypedArray } from '../backend/backend.js';
import { NonFiniteError, ParseError, WgnnError, fmtShape } from '../errors.js';
import { tensor, type Tensor } from '../tensor.js';
import { parseSafetensors, serializeSafetensors, type LoadedTensor, type SafetensorsEntry } from './safetensors.js';

const FORMAT = 'wgnn.checkpoint';

// NOTE: the checksum is the first metadata key ("checksum" sorts before "format" and "state", and the writer puts
// __metadata__ first), so it sits at a fixed offset: the header opens with PREFIX, then 8 hex digits and a quote.
// The CRC covers every byte of the file but those 8 digits: the header length, every tensor name, dtype, shape and
// offset, the state JSON, the padding and the tensor bytes. A file without PREFIX there is not verifiable.
const PREFIX = new TextEncoder().encode('{"__metadata__":{"checksum":"crc32:');
const AT = 8 + PREFIX.length; // offset of the checksum's 8 hex digits
const UNSET = '00000000';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crcUpdate(c: number, bytes: Uint8Array, begin: number, end: number): number {
  for (let i = begin; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return c;
}

/** CRC-32 (IEEE) of the file without its checksum digits, as 8 hex digits. */
function fileChecksum(bytes: Uint8Array): string {
  const c = crcUpdate(crcUpdate(0xffffffff, bytes, 0, AT), bytes, AT + 8, bytes.length);
  return ((c ^ 0xffffffff) >>> 0).toString(16).padStart(8, '0');
}

/** Whether the file opens with a checksummed checkpoint header (PREFIX, 8 characters, a quote). */
function sealed(bytes: Uint8Array): boolean {
  if (bytes.length < AT + 9 || bytes[AT + 8] !== 0x22) return false;
  for (let i = 0; i < PREFIX.length; i++) if (bytes[8 + i] !== PREFIX[i]) return false;
  return true;
}

/** The metadata of a safetensors header that is JSON, without decoding any tensor; undefined if there is none such. */
function headerMetadata(bytes: Uint8Array): Record<string, unknown> | undefined {
  if (bytes.length < 8) return undefined;
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) return undefined;
  try {
    const header: unknown = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + Number(n))),
    );
    const m = (header as Record<string, unknown> | null)?.__metadata__;
    return typeof m === 'object' && m !== null ? (m as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The index of the first NaN or ±Inf, or -1. */
function firstNonFinite(d: Float32Array): number {
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return i;
  return -1;
}

/**
 * Writes a checkpoint (atomically, in Node, when `path` is given) and returns its bytes. A float tensor holding a NaN
 * or an Inf (as stored: float32) is a WgnnError naming it, thrown before anything is written, so the last good
 * checkpoint at `path` survives. `state` must be JSON (it is read back as `JSON.parse` gives it).
 */
export async function saveCheckpoint(
  path: string | undefined,
  tensors: Record<string, Tensor>,
  state: object,
): Promise<Uint8Array> {
  const entries: SafetensorsEntry[] = await Promise.all(
    Object.entries(tensors).map(async ([name, t]) => {
      const d: TypedArray = await t.data();
      // Checked as stored: a float64 CPU backend's values round to f32 on write (1e39 becomes Inf).
      return { name, dtype: t.dtype, shape: t.shape, data: d instanceof Float64Array ? Float32Array.from(d) : d };
    }),
  );
  const where = `saveCheckpoint${path === undefined ? '' : ` ${path}`}`;
  for (const e of entries) {
    const i = e.data instanceof Float32Array ? firstNonFinite(e.data) : -1;
    if (i >= 0) {
      throw new NonFiniteError(
        `${where}: tensor ${e.name} ${fmtShape(e.shape)} holds ${e.data[i]} at index ${i}; a checkpoint is never written from a non-finite state${path === undefined ? '' : ' (the file there is left as it was)'}`,
      );
    }
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(state);
  } catch (e) {
    throw new WgnnError(`${where}: the state is not JSON (${(e as Error).message})`);
  }
  if (typeof text !== 'string') throw new WgnnError(`${where}: the state is not JSON`);
  const bytes = serializeSafetensors(entries, { checksum: `crc32:${UNSET}`, format: FORMAT, state: text });
  if (!sealed(bytes))
    throw new WgnnError(
      `${where}: the serialized header does not open with the checksum (writer out of step with checkpoint.ts)`,
    );
  bytes.set(new TextEncoder().encode(fileChecksum(bytes)), AT);
  if (path !== undefined) (await import('../platform/fs.js')).writeFileAtomic(path, bytes);
  return bytes;
}

/** A checkpoint read and verified on the host: its tensors (float32/int32) by name and its state as parsed JSON. */
export interface CheckpointData {
  tensors: Map<string, LoadedTensor>;
  state: unknown;
}

/**
 * Reads a checkpoint into host memory and verifies it whole before returning anything: the checksum of the entire
 * file, then its structure (a safetensors file), its metadata (exactly checksum, format and state) and dtypes (F32,
 * I32), and that its state is JSON. Any failure is a ParseError naming the first problem; nothing is allocated on a
 * device. What the state must hold is for the caller to check (Sequential checks it against the model it resumes).
 */
export async function readCheckpoint(source: string | Uint8Array): Promise<CheckpointData> {
  const bytes =
    typeof source === 'string' ? await (await import('../platform/fs.js')).readFile(source, 'loadCheckpoint') : source;
  const what = typeof source === 'string' ? `loadCheckpoint ${source}` : 'loadCheckpoint';
  if (!sealed(bytes)) {
    // Not verifiable: what it is instead, for the message, from its header (a broken file gets the parser's ParseError).
    const m = headerMetadata(bytes) ?? parseSafetensors(bytes).metadata;
    if (m.format === FORMAT && m.crc32 !== undefined) {
      throw new ParseError(
        `${what}: an older wgnn checkpoint, whose checksum covers only its tensor bytes: its tensor names and state cannot be verified, so it is not used; start from the model file or train afresh`,
      );
    }
    const format = typeof m.format === 'string' ? m.format.slice(0, 40) : '';
    throw new ParseError(
      `${what}: not a wgnn checkpoint (metadata format '${format}'; expected ${FORMAT} with a whole-file checksum first in its header)`,
    );
  }
  const recorded = String.fromCharCode(...bytes.subarray(AT, AT + 8));
  const crc = fileChecksum(bytes);
  if (crc !== recorded) {
    throw new ParseError(
      `${what}: the file's checksum is ${crc}, the recorded one ${JSON.stringify(recorded).slice(0, 40)}; the file is corrupted or was edited`,
    );
  }
  const parsed = parseSafetensors(bytes);
  const m = parsed.metadata;
  const keys = Object.keys(m).sort().join(',');
  if (keys !== 'checksum,format,state' || m.format !== FORMAT || m.checksum !== `crc32:${recorded}`) {
    throw new ParseError(
      `${what}: metadata keys ${keys.slice(0, 80)} (format '${m.format?.slice(0, 40)}'); expected checksum, format ${FORMAT} and state`,
    );
  }
  for (const [name, t] of parsed.tensors) {
    if (t.stored !== 'F32' && t.stored !== 'I32')
      throw new ParseError(`${what}: tensor ${name} is ${t.stored}; checkpoints hold F32 and I32 only`);
  }
  let state: unknown;
  try {
    state = JSON.parse(m.state!);
  } catch {
    throw new ParseError(`${what}: its state is not valid JSON`);
  }
  return { tensors: parsed.tensors, state };
}

/** Reads and verifies a checkpoint (as `readCheckpoint` does), then loads its tensors onto a backend. */
export async function loadCheckpoint(
  source: string | Uint8Array,
  opts: { backend?: Backend } = {},
): Promise<{ tensors: Record<string, Tensor>; state: unknown }> {
  const { tensors, state } = await readCheckpoint(source);
  const out: [string, Tensor][] = [];
  try {
    for (const [name, t] of tensors)
      out.push([name, tensor(t.data, t.shape, { dtype: t.dtype, backend: opts.backend })]);
  } catch (e) {
    for (const [, t] of out) t.dispose();
    throw e;
  }
  // fromEntries defines own properties, so a tensor named "__proto__" stays a tensor.
  return { tensors: Object.fromEntries(out), state };
}
