// Checkpoints: named tensors (weights, optimizer state) plus a JSON state (step, RNG states, data cursor) in one
// safetensors file, written atomically, with a CRC-32 of every tensor's bytes checked on load.
import type { Backend } from '../backend/backend.js';
import { ParseError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { loadTensors, parseSafetensors, saveTensors } from './safetensors.js';

const FORMAT = 'wgnn.checkpoint';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE) over the tensors' bytes in name order. */
function checksum(tensors: [string, ArrayBufferView][]): string {
  let c = 0xffffffff;
  for (const [, d] of [...tensors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  }
  return ((c ^ 0xffffffff) >>> 0).toString(16).padStart(8, '0');
}

/** Writes a checkpoint (atomically, in Node, when `path` is given) and returns its bytes. */
export async function saveCheckpoint(path: string | undefined, tensors: Record<string, Tensor>, state: object): Promise<Uint8Array> {
  const datas = await Promise.all(Object.entries(tensors).map(async ([k, t]) => [k, await t.data()] as [string, ArrayBufferView]));
  // The checksum covers the bytes as stored: f32 or i32 words (a float64 CPU backend rounds to f32 on write).
  const stored = datas.map(([k, d]) => [k, d instanceof Float64Array ? Float32Array.from(d) : d] as [string, ArrayBufferView]);
  return saveTensors(path, tensors, { format: FORMAT, state: JSON.stringify(state), crc32: checksum(stored) });
}

/** Reads a checkpoint: verifies its format and checksum, then loads the tensors onto a backend. */
export async function loadCheckpoint(source: string | Uint8Array, opts: { backend?: Backend } = {}): Promise<{ tensors: Record<string, Tensor>; state: unknown }> {
  const bytes = typeof source === 'string' ? await (await import('../platform/fs.js')).readFile(source, 'loadCheckpoint') : source;
  const parsed = parseSafetensors(bytes);
  const m = parsed.metadata;
  if (m.format !== FORMAT || m.state === undefined || m.crc32 === undefined) {
    throw new ParseError(`loadCheckpoint: not a wgnn checkpoint (metadata format '${m.format ?? ''}'; expected ${FORMAT} with state and crc32)`);
  }
  const crc = checksum([...parsed.tensors].map(([k, t]) => [k, t.data]));
  if (crc !== m.crc32) throw new ParseError(`loadCheckpoint: checksum ${crc} does not match the recorded ${m.crc32}; the file is corrupted`);
  let state: unknown;
  try {
    state = JSON.parse(m.state);
  } catch {
    throw new ParseError('loadCheckpoint: its state is not valid JSON');
  }
  return { tensors: await loadTensors(bytes, opts), state };
}
