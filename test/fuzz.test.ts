// Hostile-file fuzz of the two parsers that read untrusted bytes (issue "Reliability", item 7): small valid safetensors
// and IDX files (raw and gzipped), cut at every offset and put through 100,000 seeded mutations per format, must each
// give a result or a ParseError, within 100 ms, allocating at most twice the file size. Then whole IDX data folders,
// mutated (issue "Reliability II"), through loadIdxDataset; and above the parsers, whole model files and checkpoints,
// mutated, through Sequential.load and a resume. A failure names the seed, the case index and the mutator; case i is
// rebuilt from the seed alone (caseRng), so it replays without the others.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu/cpu.js';
import type { ImageDataset } from '../src/data/dataset.js';
import { loadIdxDataset, type IdxDatasetOptions } from '../src/data/fashion.js';
import { decodeIdx } from '../src/data/files.js';
import { encodeIdx, type IdxArray, type IdxData } from '../src/data/idx.js';
import { ParseError, WgnnError, fmtShape } from '../src/errors.js';
import { MAX_HEADER_BYTES, parseSafetensors, serializeSafetensors, type Safetensors } from '../src/io/safetensors.js';
import { Sequential, layers as nnLayers, sequential, setSeed } from '../src/nn/index.js';
import { adam, rmsprop, sgd, type Optimizer } from '../src/optim/index.js';
import { Rng } from '../src/rng.js';
import { memory, setDefaultBackend } from '../src/tensor.js';

const SEED = Number(process.env.WGNN_FUZZ_SEED ?? 20250707) >>> 0;
const MUTATIONS = 100_000; // per format
const LIMIT_MS = 100;
// arrayBuffers also moves for reasons that are not the parser's (Node's 8 KiB Buffer pool, zlib's 16 KiB output chunks).
const SLACK = 64 << 10;

const enc = new TextEncoder();
const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
const hex = (b: Uint8Array, n = 48) =>
  [...b.subarray(0, n)].map((x) => x.toString(16).padStart(2, '0')).join(' ') + (b.length > n ? ' ...' : '');
const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
const pick = <T>(r: Rng, a: readonly T[]): T => a[r.int(0, a.length)]!;
const randomBytes = (r: Rng, n: number) => Uint8Array.from({ length: n }, () => r.int(0, 256));
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
};
/** The rng of case i: derived from the seed and i alone, so one case reproduces without running the others. */
const caseRng = (salt: number, i: number) => new Rng((SEED ^ Math.imul(i + 1, 0x9e3779b1) ^ salt) >>> 0);

// ---------------------------------------------------------------------------------------------------------------------
// Allocation counting. NOTE: chosen over an allocation hook in the parsers, which would widen their API for a test.
// For the length of one call every global typed-array constructor is swapped for a subclass that adds the bytes of each
// array it creates; the parsers look these globals up at call time, and `from`, `slice` and `subarray` construct
// through the subclass (Symbol.species). Views over an existing ArrayBuffer allocate nothing and are not counted.
// Node's own Buffers (zlib's output) are made from constructors captured at startup: the gzip path is measured with
// process.memoryUsage().arrayBuffers instead, as is a sample of every other case, to catch whatever the swap misses.

const CTORS = [
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
] as const;
type AnyCtor = new (...args: unknown[]) => ArrayBufferView;
const globals = globalThis as unknown as Record<string, unknown>;
const originals = CTORS.map((n) => globals[n] as AnyCtor);
let allocated = 0;
const counting = originals.map(
  (Base) =>
    class extends Base {
      constructor(...args: unknown[]) {
        super(...args);
        if (!(args[0] instanceof ArrayBuffer || args[0] instanceof SharedArrayBuffer)) allocated += this.byteLength;
      }
    },
);

interface Outcome<T> {
  value?: T;
  error?: unknown;
  ms: number;
  bytes: number;
  arrayBuffers?: number;
}

/** Runs f with typed-array allocations counted; `arrayBuffers` (the growth of process.memoryUsage) when asked. */
function measure<T>(f: () => T, sampleMemory: boolean): Outcome<T> {
  const before = sampleMemory ? process.memoryUsage().arrayBuffers : 0;
  allocated = 0;
  CTORS.forEach((n, i) => (globals[n] = counting[i]));
  const out: Outcome<T> = { ms: 0, bytes: 0 };
  const t0 = performance.now();
  try {
    out.value = f();
  } catch (e) {
    out.error = e;
  } finally {
    out.ms = performance.now() - t0;
    CTORS.forEach((n, i) => (globals[n] = originals[i]));
  }
  out.bytes = allocated;
  if (sampleMemory) out.arrayBuffers = process.memoryUsage().arrayBuffers - before;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// One case, checked: the outcome kind (and the one the mutator predicts), time, memory, and a parsed result's values.

type Expect = 'error' | 'ok' | 'any';

class Tally {
  cases = 0;
  parsed = 0;
  parseErrors = 0;
  slowest = { ms: 0, what: '' };
  failures: string[] = [];
  perMutator = new Map<string, number>(); // cases run by each mutator
  constructor(readonly format: string) {}

  fail(what: string, why: string, bytes: Uint8Array): void {
    if (this.failures.length < 25) this.failures.push(`${what}: ${why}\n    bytes (${bytes.length}): ${hex(bytes)}`);
  }

  /**
   * Runs one case. `budget`: the most bytes of typed arrays the call may create; `memBudget`: the most growth of
   * arrayBuffers (checked when `sampleMemory`); `check`: verifies a parsed result against the bytes (a message if wrong).
   */
  run<T>(
    what: string,
    mutator: string,
    bytes: Uint8Array,
    parse: () => T,
    o: {
      expect: Expect;
      budget: number;
      memBudget: number;
      sampleMemory: boolean;
      check: (v: T) => string | undefined;
    },
  ): void {
    const r = measure(parse, o.sampleMemory);
    // NOTE: a garbage-collection pause can land in any case, a slow parse is slow every time: over the limit, the case
    // is timed twice more and keeps its fastest time.
    for (let k = 0; k < 2 && r.ms > LIMIT_MS; k++) r.ms = Math.min(r.ms, measure(parse, false).ms);
    this.cases++;
    this.perMutator.set(mutator, (this.perMutator.get(mutator) ?? 0) + 1);
    if (r.ms > this.slowest.ms) this.slowest = { ms: r.ms, what };
    if (r.error !== undefined) {
      if (!(r.error instanceof ParseError)) {
        const e = r.error as Error;
        this.fail(
          what,
          `threw ${e?.constructor?.name ?? typeof e} instead of ParseError: ${String(e?.message ?? e).slice(0, 200)}`,
          bytes,
        );
        return;
      }
      this.parseErrors++;
      if (o.expect === 'ok')
        this.fail(what, `ParseError on a file that is valid: ${r.error.message.slice(0, 300)}`, bytes);
    } else {
      this.parsed++;
      if (o.expect === 'error') this.fail(what, 'parsed a file that is invalid', bytes);
      const bad = o.check(r.value as T);
      if (bad) this.fail(what, `parsed, but ${bad}`, bytes);
    }
    if (r.ms > LIMIT_MS) this.fail(what, `took ${r.ms.toFixed(1)} ms (limit ${LIMIT_MS})`, bytes);
    if (r.bytes > o.budget)
      this.fail(
        what,
        `allocated ${r.bytes} bytes of typed arrays for a ${bytes.length}-byte file (budget ${o.budget})`,
        bytes,
      );
    if (r.arrayBuffers !== undefined && r.arrayBuffers > o.memBudget) {
      this.fail(
        what,
        `arrayBuffers grew by ${r.arrayBuffers} bytes for a ${bytes.length}-byte file (budget ${o.memBudget})`,
        bytes,
      );
    }
  }

  summary(): string {
    return `fuzz ${this.format}: ${this.cases} cases, ${this.parsed} parsed, ${this.parseErrors} ParseError, slowest ${this.slowest.ms.toFixed(2)} ms (${this.slowest.what})`;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// safetensors seeds: a header written as (key, value) JSON texts in order, so edits can keep the rest byte for byte.

type StDType = 'F32' | 'I32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'U8';
const ST_SIZE: Record<StDType, number> = { F32: 4, I32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, U8: 1 };
const isStDType = (d: unknown): d is StDType => typeof d === 'string' && Object.hasOwn(ST_SIZE, d);

interface StSeed {
  name: string;
  entries: [string, string][]; // [key as JSON text, value as JSON text]
  buffer: Uint8Array;
  pad: boolean;
  sep: string;
  hasI64: boolean;
  bytes: Uint8Array;
}
interface StInfo {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

function stBuildText(text: string, buffer: Uint8Array, pad: boolean): Uint8Array {
  const h = enc.encode(text);
  const n = pad ? Math.ceil(h.length / 8) * 8 : h.length;
  const out = new Uint8Array(8 + n + buffer.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(h, 8);
  out.fill(0x20, 8 + h.length, 8 + n);
  out.set(buffer, 8 + n);
  return out;
}
const stText = (entries: readonly [string, string][], sep: string) =>
  `{${entries.map(([k, v]) => `${k}:${v}`).join(sep)}}`;
const stBuild = (s: StSeed, entries = s.entries, buffer = s.buffer) =>
  stBuildText(stText(entries, s.sep), buffer, s.pad);

function stSeed(
  name: string,
  tensors: { name: string; dtype: StDType; shape: number[] }[],
  meta: [string, string][] | undefined,
  o: { pad?: boolean; pretty?: boolean } = {},
): StSeed {
  const r = new Rng(name.length * 7919 + 17);
  const entries: [string, string][] = [];
  const indent = o.pretty ? 2 : undefined;
  if (meta) entries.push(['"__metadata__"', JSON.stringify(Object.fromEntries(meta), null, indent)]);
  const parts: number[] = [];
  for (const t of tensors) {
    const n = t.shape.reduce((a, d) => a * d, 1);
    const begin = parts.length;
    for (let i = 0; i < n; i++) {
      if (t.dtype === 'I64') {
        const v = r.int(-(2 ** 31), 2 ** 31); // fits int32: the file is valid
        const w = new DataView(new ArrayBuffer(8));
        w.setBigInt64(0, BigInt(v), true);
        parts.push(...new Uint8Array(w.buffer));
      } else {
        for (let k = 0; k < ST_SIZE[t.dtype]; k++) parts.push(r.int(0, 256)); // any bits are a value (NaN, Inf, subnormal)
      }
    }
    entries.push([
      JSON.stringify(t.name),
      JSON.stringify({ dtype: t.dtype, shape: t.shape, data_offsets: [begin, parts.length] }, null, indent),
    ]);
  }
  const s: StSeed = {
    name,
    entries,
    buffer: Uint8Array.from(parts),
    pad: !!o.pad,
    sep: o.pretty ? ',\n  ' : ',',
    hasI64: tensors.some((t) => t.dtype === 'I64'),
    bytes: new Uint8Array(0),
  };
  s.bytes = stBuild(s);
  return s;
}

/** A file from serializeSafetensors, taken apart into the same (key, value) texts. */
function stSerialized(): StSeed {
  const r = new Rng(3);
  const f = (n: number) => Float32Array.from({ length: n }, () => r.normal());
  const bytes = serializeSafetensors(
    [
      { name: 'fc1.weight', dtype: 'float32', shape: [16, 8], data: f(128) },
      { name: 'fc1.bias', dtype: 'float32', shape: [16], data: f(16) },
      { name: 'fc2.weight', dtype: 'float32', shape: [4, 16], data: f(64) },
      { name: 'fc2.bias', dtype: 'float32', shape: [4], data: f(4) },
      { name: 'labels', dtype: 'int32', shape: [10], data: Int32Array.from({ length: 10 }, (_, i) => i - 5) },
      { name: 'step', dtype: 'int32', shape: [], data: Int32Array.of(1234) },
    ],
    { epoch: '3', format: 'pt' },
  );
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  const entries = Object.entries(header).map(([k, v]): [string, string] => [JSON.stringify(k), JSON.stringify(v)]);
  return { name: 'serialized', entries, buffer: bytes.slice(8 + n), pad: true, sep: ',', hasI64: false, bytes };
}

const ST_SEEDS: StSeed[] = [
  stSeed(
    'mixed dtypes',
    [
      { name: 'h', dtype: 'F16', shape: [3] },
      { name: 'u', dtype: 'U8', shape: [2, 3] },
      { name: 'w', dtype: 'F32', shape: [2, 2] },
      { name: 'i', dtype: 'I64', shape: [2] },
      { name: 'e', dtype: 'BF16', shape: [0, 4] },
      { name: 'd', dtype: 'F64', shape: [] },
      { name: 'k', dtype: 'I32', shape: [4, 1, 2] },
    ],
    [
      ['format', 'pt'],
      ['note', 'é ✓ "q" \\ {,['],
    ],
  ),
  stSerialized(),
  stSeed(
    'half precision',
    [
      { name: 'emb', dtype: 'F16', shape: [16, 32] },
      { name: 'ln.w', dtype: 'BF16', shape: [32] },
      { name: 'pos', dtype: 'BF16', shape: [0, 32] },
      { name: 'scale', dtype: 'F16', shape: [] },
    ],
    [['dtype', 'fp16']],
    { pad: true },
  ),
  stSeed(
    'pretty, odd names',
    [
      { name: 'é', dtype: 'U8', shape: [8, 8] },
      { name: '10', dtype: 'F64', shape: [3, 2] },
      { name: '__proto__', dtype: 'I64', shape: [3] },
      { name: 'a.b/c d', dtype: 'F32', shape: [1, 1, 1, 1] },
    ],
    [
      ['__proto__', 'p'],
      ['10', 'ten'],
    ],
    { pretty: true },
  ),
  stSeed(
    'no metadata',
    [
      { name: 'x', dtype: 'F32', shape: [5, 3] },
      { name: 'z', dtype: 'I32', shape: [0] },
      { name: 'y', dtype: 'BF16', shape: [7] },
    ],
    undefined,
  ),
  stSeed('metadata only', [], [['k', 'v']]),
  stSeed('empty', [], undefined),
];

// What a stored value should load as, decoded here apart from the parser (a string says why it cannot load).
const scratch = new DataView(new ArrayBuffer(4));
const ST_READ: Record<StDType, (dv: DataView, p: number) => number | string> = {
  F32: (dv, p) => dv.getFloat32(p, true),
  I32: (dv, p) => dv.getInt32(p, true),
  U8: (dv, p) => dv.getUint8(p),
  F64: (dv, p) => Math.fround(dv.getFloat64(p, true)),
  I64: (dv, p) => {
    const v = dv.getBigInt64(p, true);
    return v < -(2n ** 31n) || v >= 2n ** 31n ? `holds I64 ${v}, outside int32,` : Number(v);
  },
  BF16: (dv, p) => {
    scratch.setUint32(0, dv.getUint16(p, true) * 65536);
    return scratch.getFloat32(0);
  },
  F16: (dv, p) => {
    const h = dv.getUint16(p, true);
    const e = (h >> 10) & 31;
    const m = h & 1023;
    const mag = e === 31 ? (m ? NaN : Infinity) : e === 0 ? (m / 1024) * 2 ** -14 : (1 + m / 1024) * 2 ** (e - 15);
    return h & 0x8000 ? -mag : mag;
  },
};

/** Checks a parsed result against the file: tensors in file order tile the buffer, and each value decodes its bytes. */
function stCheck(bytes: Uint8Array, res: Safetensors): string | undefined {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(dv.getBigUint64(0, true));
  for (const [k, v] of Object.entries(res.metadata))
    if (typeof v !== 'string') return `metadata ${JSON.stringify(k)} is not a string`;
  let o = 8 + headerLen;
  for (const [name, t] of res.tensors) {
    if (!isStDType(t.stored)) return `tensor ${JSON.stringify(name)} stored as ${t.stored}`;
    const n = t.shape.reduce((a, d) => a * d, 1);
    const size = ST_SIZE[t.stored];
    const wantDtype = t.stored === 'I32' || t.stored === 'I64' || t.stored === 'U8' ? 'int32' : 'float32';
    if (t.dtype !== wantDtype || !(t.data instanceof (wantDtype === 'int32' ? Int32Array : Float32Array)))
      return `tensor ${JSON.stringify(name)} (${t.stored}) loaded as ${t.dtype}`;
    if (t.data.length !== n) return `tensor ${JSON.stringify(name)} has ${t.data.length} values for shape [${t.shape}]`;
    if (o + n * size > bytes.length) return `tensor ${JSON.stringify(name)} runs past the end of the file`;
    const read = ST_READ[t.stored];
    for (let i = 0; i < n; i++) {
      const want = read(dv, o + i * size);
      if (typeof want === 'string') return `tensor ${JSON.stringify(name)} ${want} at ${i}`;
      if (!same(t.data[i]!, want))
        return `tensor ${JSON.stringify(name)} [${i}] is ${t.data[i]}, the file holds ${want} (${t.stored})`;
    }
    o += n * size;
  }
  if (o !== bytes.length) return `the tensors cover up to byte ${o} of ${bytes.length}`;
  return undefined;
}

// NOTE: U8 loads as int32, 4 bytes for each byte of the file: a file that names U8 is allowed 4x its size, every
// other file 2x (F16/BF16 widen 2x, F64/I64 narrow). An escaped dtype ("\u0055\u0038") could name U8 too.
const stBudget = (b: Uint8Array) => (/"U8"|\\u/.test(latin1(b)) ? 4 : 2) * b.length;

// ---------------------------------------------------------------------------------------------------------------------
// Byte-level mutators, for both formats.

interface Mutant {
  bytes: Uint8Array;
  expect: Expect;
  huge?: boolean;
}
type Mutator<S> = [name: string, apply: (s: S, r: Rng) => Mutant | undefined];

const BYTE_MUTATORS: [string, (b: Uint8Array, r: Rng) => Uint8Array | undefined][] = [
  [
    'bit flips',
    (b, r) => {
      if (b.length === 0) return undefined;
      const c = b.slice();
      for (let k = r.int(1, 5); k > 0; k--) c[r.int(0, c.length)]! ^= 1 << r.int(0, 8);
      return c;
    },
  ],
  [
    'bytes set to 00/ff/random',
    (b, r) => {
      if (b.length === 0) return undefined;
      const c = b.slice();
      for (let k = r.int(1, 5); k > 0; k--) c[r.int(0, c.length)] = pick(r, [0x00, 0xff, r.int(0, 256)]);
      return c;
    },
  ],
  [
    'insertion',
    (b, r) => {
      const at = r.int(0, b.length + 1);
      return concat(b.subarray(0, at), randomBytes(r, r.int(1, 17)), b.subarray(at));
    },
  ],
  [
    'deletion',
    (b, r) => {
      if (b.length === 0) return undefined;
      const at = r.int(0, b.length);
      return concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + r.int(1, 17))));
    },
  ],
  [
    'splice (a chunk copied over another place)',
    (b, r) => {
      if (b.length < 2) return undefined;
      const len = r.int(1, Math.min(64, b.length));
      const c = b.slice();
      c.set(b.subarray(r.int(0, b.length - len + 1)).subarray(0, len), r.int(0, b.length - len + 1));
      return c;
    },
  ],
];
const byteMutators = <S extends { bytes: Uint8Array }>(): Mutator<S>[] =>
  BYTE_MUTATORS.map(
    ([name, f]): Mutator<S> => [
      name,
      (s, r) => {
        const bytes = f(s.bytes, r);
        return bytes && { bytes, expect: 'any' };
      },
    ],
  );

// ---------------------------------------------------------------------------------------------------------------------
// safetensors mutators: header length, data_offsets, dtypes, shapes, names, metadata, JSON structure, data.

const withLength = (b: Uint8Array, n: bigint) => {
  const c = b.slice();
  new DataView(c.buffer).setBigUint64(0, BigInt.asUintN(64, n), true);
  return c;
};
const headerLength = (s: StSeed) => Number(new DataView(s.bytes.buffer).getBigUint64(0, true));
const tensorIndices = (s: StSeed) => s.entries.flatMap(([k], i) => (k === '"__metadata__"' ? [] : [i]));
const metaIndex = (s: StSeed) => s.entries.findIndex(([k]) => k === '"__metadata__"');
const infoOf = (s: StSeed, i: number) => JSON.parse(s.entries[i]![1]) as StInfo;
const spanOf = (t: StInfo) => t.data_offsets[1] - t.data_offsets[0];
const replaced = (s: StSeed, i: number, value: string, key = s.entries[i]![0]) =>
  s.entries.map((e, j): [string, string] => (j === i ? [key, value] : e));
const entryText = (dtype: string, shape: string, offsets: string) =>
  `{"dtype":${dtype},"shape":${shape},"data_offsets":${offsets}}`;
/** A tensor entry with one field's JSON text replaced. */
function edit(s: StSeed, i: number, field: 'dtype' | 'shape' | 'data_offsets', text: string): Uint8Array {
  const t = infoOf(s, i);
  const f = {
    dtype: JSON.stringify(t.dtype),
    shape: JSON.stringify(t.shape),
    data_offsets: JSON.stringify(t.data_offsets),
    [field]: text,
  };
  return stBuild(s, replaced(s, i, entryText(f.dtype, f.shape, f.data_offsets)));
}
/** Is a shape (as JSON numbers) of this dtype valid for a span: running product a safe integer, bytes equal to span. */
function shapeFits(shape: number[], dtype: StDType, span: number): boolean {
  let n = 1n;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) return false;
    n *= BigInt(d);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) return false;
  }
  return n * BigInt(ST_SIZE[dtype]) === BigInt(span);
}
const nest = (r: Rng, depth: number) =>
  r.next() < 0.5 ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '{}' + '}'.repeat(depth);
// NOTE: past a few thousand levels a case costs 10-25 ms (JSON.parse, then a stack overflow caught): 1 in 20 go
// there (JSON.stringify overflows past about 4,000).
// Depth 1 is left out: `[]` is a valid shape (a scalar), which would make the 'deep nesting' file valid.
const nestDepth = (r: Rng) =>
  r.next() < 0.05 ? pick(r, [5000, 8000, r.int(4000, 10000)]) : pick(r, [2, 3, 10, 100, 1000, r.int(2, 2500)]);

const ST_MUTATORS: Mutator<StSeed>[] = [
  ...byteMutators<StSeed>(),
  [
    'header length: huge',
    (s, r) => ({
      bytes: withLength(
        s.bytes,
        pick(r, [
          2n ** 64n - 1n,
          2n ** 63n,
          2n ** 53n + 1n,
          2n ** 32n + BigInt(headerLength(s)),
          BigInt(MAX_HEADER_BYTES) + 1n,
          (BigInt(r.int(1, 2 ** 32)) << 32n) | BigInt(r.int(0, 2 ** 32)),
        ]),
      ),
      expect: 'error',
    }),
  ],
  ['header length: zero', (s) => ({ bytes: withLength(s.bytes, 0n), expect: 'error' })],
  [
    'header length: off by ±1..8',
    (s, r) => {
      const d = r.int(1, 9) * (r.next() < 0.5 ? -1 : 1);
      const n = headerLength(s) + d;
      return n < 0 ? undefined : { bytes: withLength(s.bytes, BigInt(n)), expect: 'error' };
    },
  ],
  [
    'header length: just past the end',
    (s, r) => ({ bytes: withLength(s.bytes, BigInt(s.bytes.length - 8 + r.int(1, 9))), expect: 'error' }),
  ],
  [
    'data_offsets: overlap (one tensor moved)',
    (s, r) => {
      const ts = tensorIndices(s).filter((i) => spanOf(infoOf(s, i)) > 0);
      if (ts.length === 0) return undefined;
      const i = pick(r, ts);
      const [b, e] = infoOf(s, i).data_offsets;
      let d = r.int(1, e - b + 9) * (r.next() < 0.5 ? -1 : 1);
      if (b + d < 0) d = -d;
      return { bytes: edit(s, i, 'data_offsets', `[${b + d},${e + d}]`), expect: 'error' };
    },
  ],
  [
    'data_offsets: out of range or malformed',
    (s, r) => {
      const ts = tensorIndices(s);
      if (ts.length === 0) return undefined;
      const i = pick(r, ts);
      const sp = spanOf(infoOf(s, i));
      const L = s.buffer.length;
      const k = r.int(1, 1000);
      const text = pick(r, [
        `[${Math.max(0, L + k - sp)},${L + k}]`,
        `[${L + k},${L + k}]`,
        `[${2 ** 53},${2 ** 53 + sp}]`,
        `[${2 ** 53 - 1},${2 ** 53 - 1}]`,
        `[0,${2 ** 64}]`,
        '[0,1e400]',
        `[-1,${sp - 1}]`,
        '[0.5,1.5]',
        `["0",${sp}]`,
        '[0]',
        `[0,${sp},${sp}]`,
        '[]',
        'null',
        '{}',
        `"0,${sp}"`,
      ]);
      return { bytes: edit(s, i, 'data_offsets', text), expect: 'error' };
    },
  ],
  [
    'data_offsets: reversed',
    (s, r) => {
      const ts = tensorIndices(s).filter((i) => spanOf(infoOf(s, i)) > 0);
      if (ts.length === 0) return undefined;
      const i = pick(r, ts);
      const [b, e] = infoOf(s, i).data_offsets;
      return { bytes: edit(s, i, 'data_offsets', `[${e},${b}]`), expect: 'error' };
    },
  ],
  [
    'dtype changed',
    (s, r) => {
      const ts = tensorIndices(s);
      if (ts.length === 0) return undefined;
      const i = pick(r, ts);
      const t = infoOf(s, i);
      const d = pick<unknown>(r, [
        'F32',
        'I32',
        'F16',
        'BF16',
        'F64',
        'I64',
        'U8',
        'F8_E4M3',
        'BOOL',
        'I8',
        'f32',
        'F32 ',
        '',
        'toString',
        '__proto__',
        'hasOwnProperty',
        4,
        null,
        ['F32'],
        { F32: 1 },
      ]);
      let expect: Expect = 'error';
      if (isStDType(d) && shapeFits(t.shape, d, spanOf(t))) expect = d === 'I64' && spanOf(t) > 0 ? 'any' : 'ok'; // I64 values may not fit int32
      return { bytes: edit(s, i, 'dtype', JSON.stringify(d)), expect };
    },
  ],
  [
    'shape: huge dims, product overflows',
    (s, r) => {
      const ts = tensorIndices(s);
      if (ts.length === 0) return undefined;
      const i = pick(r, ts);
      const t = infoOf(s, i);
      const u32 = () => r.int(0, 2 ** 32);
      const shape = pick(r, [
        [2 ** 27, 2 ** 27],
        [2 ** 32, 2 ** 32, 0],
        [2 ** 53],
        [2 ** 53 - 1, 2],
        [Number.MAX_SAFE_INTEGER],
        [2 ** 26, 2 ** 26, 2 ** 26],
        [2 ** 32, 2 ** 32, 2 ** 32, 2 ** 32],
        [65536, 65536, 65536, 65536],
        [2 ** 31, 2 ** 31, 2 ** 31],
        [1e308],
        [2 ** 53 - 1, 0],
        [0, 2 ** 53 - 1],
        [2 ** 51, 4],
        [2 ** 50 + 1],
        [u32(), u32()],
        [u32(), u32(), u32()],
        [2 ** 30, 2 ** 30 + r.int(0, 4)],
      ]);
      return {
        bytes: edit(s, i, 'shape', JSON.stringify(shape)),
        expect: isStDType(t.dtype) && shapeFits(shape, t.dtype, spanOf(t)) ? 'ok' : 'error',
        huge: true,
      };
    },
  ],
  [
    'shape: malformed',
    (s, r) => {
      const ts = tensorIndices(s);
      if (ts.length === 0) return undefined;
      const text = pick(r, [
        '[-1]',
        '[1.5]',
        '["2"]',
        '[null]',
        '2',
        'null',
        '[[2]]',
        '{}',
        '[1e400]',
        '"[2]"',
        '[true]',
        '[-9007199254740993]',
        '{"0":2}',
      ]);
      return { bytes: edit(s, pick(r, ts), 'shape', text), expect: 'error' };
    },
  ],
  [
    'shape: dims permuted or 1s added (valid)',
    (s, r) => {
      const ts = tensorIndices(s);
      if (ts.length === 0) return undefined;
      const i = pick(r, ts);
      const shape = [...infoOf(s, i).shape].reverse();
      for (let k = r.int(0, 3); k > 0; k--) shape.splice(r.int(0, shape.length + 1), 0, 1);
      return { bytes: edit(s, i, 'shape', JSON.stringify(shape)), expect: 'ok' };
    },
  ],
  [
    'duplicate names and keys',
    (s, r) => {
      const all = s.entries.map((_, i) => i);
      if (all.length === 0) return undefined;
      const j = pick(r, all);
      const [key, value] = s.entries[j]!;
      const entries = [...s.entries];
      const kind = r.int(0, 3);
      if (kind === 0) {
        entries.splice(r.int(0, entries.length + 1), 0, [key, value]); // the same name twice
      } else if (kind === 1) {
        const name = JSON.parse(key) as string; // the same name, its first character escaped
        entries.splice(r.int(0, entries.length + 1), 0, [
          `"\\u${name.charCodeAt(0).toString(16).padStart(4, '0')}${key.slice(2)}`,
          value,
        ]);
      } else {
        const inner = value.trimStart();
        if (!inner.startsWith('{') || inner.startsWith('{}')) return undefined; // a key repeated inside an entry or the metadata
        const first = JSON.parse(inner) as Record<string, unknown>;
        const k = pick(r, Object.keys(first));
        entries[j] = [key, `{${JSON.stringify(k)}:${JSON.stringify(first[k])},${inner.slice(1)}`];
      }
      return { bytes: stBuild(s, entries), expect: 'error' };
    },
  ],
  [
    'renamed',
    (s, r) => {
      const ts = tensorIndices(s);
      if (ts.length === 0) return undefined;
      const i = pick(r, ts);
      const names = new Set(s.entries.map(([k]) => JSON.parse(k) as string));
      const name = pick(r, [
        '',
        '__metadata__',
        'n'.repeat(r.int(1, 5000)),
        '\u0000',
        ' ',
        'é✓😀',
        '__proto__',
        'constructor',
        'toString',
        'hasOwnProperty',
        ...names,
      ]);
      const clash = names.has(name) && name !== JSON.parse(s.entries[i]![0]);
      return {
        bytes: stBuild(s, replaced(s, i, s.entries[i]![1], JSON.stringify(name))),
        expect: name === '' || name === '__metadata__' || clash ? 'error' : 'ok',
      };
    },
  ],
  [
    'entries reordered (valid)',
    (s, r) => {
      if (s.entries.length < 2) return undefined;
      const entries = [...s.entries];
      for (let k = entries.length - 1; k > 0; k--) {
        const j = r.int(0, k + 1);
        [entries[k], entries[j]] = [entries[j]!, entries[k]!];
      }
      return { bytes: stBuild(s, entries), expect: 'ok' };
    },
  ],
  [
    'extra field in an entry',
    (s, r) => {
      const ts = tensorIndices(s);
      if (ts.length === 0) return undefined;
      const i = pick(r, ts);
      const extra = pick(r, ['1', '"x"', 'null', '[{"a":1},{"a":[{"a":2}]}]', '{"dtype":"I8"}', nest(r, nestDepth(r))]);
      const value = s.entries[i]![1].trimStart();
      return { bytes: stBuild(s, replaced(s, i, `{"x":${extra},${value.slice(1)}`)), expect: 'any' };
    },
  ],
  [
    'metadata edited',
    (s, r) => {
      const m = metaIndex(s);
      if (m < 0) return { bytes: stBuild(s, [['"__metadata__"', '{"a":"b"}'], ...s.entries]), expect: 'ok' };
      const meta = JSON.parse(s.entries[m]![1]) as Record<string, string>;
      const kind = r.int(0, 4);
      if (kind === 0) {
        const k = pick(r, Object.keys(meta));
        const v = pick(r, ['1', 'null', '{}', '["a"]', 'true', '{"a":"b"}']);
        return {
          bytes: stBuild(
            s,
            replaced(
              s,
              m,
              JSON.stringify(meta).replace(
                `${JSON.stringify(k)}:${JSON.stringify(meta[k])}`,
                `${JSON.stringify(k)}:${v}`,
              ),
            ),
          ),
          expect: 'error',
        };
      }
      if (kind === 1)
        return {
          bytes: stBuild(s, replaced(s, m, pick(r, ['"x"', '[]', 'null', '1', '[["a","b"]]']))),
          expect: 'error',
        };
      if (kind === 2) {
        if ('__proto__' in meta && Object.hasOwn(meta, '__proto__')) return undefined;
        return { bytes: stBuild(s, replaced(s, m, `{"__proto__":"p",${JSON.stringify(meta).slice(1)}`)), expect: 'ok' };
      }
      const entries = [...s.entries];
      entries.push(...entries.splice(m, 1)); // metadata last
      return { bytes: stBuild(s, entries), expect: 'ok' };
    },
  ],
  [
    'deep nesting',
    (s, r) => {
      const deep = nest(r, nestDepth(r));
      const ts = tensorIndices(s);
      const m = metaIndex(s);
      const targets = [
        'new entry',
        ...(ts.length ? ['entry', 'dtype', 'shape', 'data_offsets'] : []),
        ...(m >= 0 ? ['metadata', 'metadata value'] : []),
      ];
      const target = pick(r, targets);
      if (target === 'new entry') return { bytes: stBuild(s, [...s.entries, ['"deep"', deep]]), expect: 'error' };
      if (target === 'metadata') return { bytes: stBuild(s, replaced(s, m, `{"k":${deep}}`)), expect: 'error' };
      if (target === 'metadata value') return { bytes: stBuild(s, replaced(s, m, deep)), expect: 'error' };
      const i = pick(r, ts);
      if (target === 'entry') return { bytes: stBuild(s, replaced(s, i, deep)), expect: 'error' };
      return { bytes: edit(s, i, target as 'dtype' | 'shape' | 'data_offsets', deep), expect: 'error' };
    },
  ],
  [
    'broken JSON',
    (s, r) => {
      const text = stText(s.entries, s.sep);
      const p = r.int(0, text.length);
      const kind = r.int(0, 3);
      if (kind === 0) return { bytes: stBuildText(text.slice(0, p), s.buffer, s.pad), expect: 'error' }; // cut before the last "}"
      if (kind === 1)
        return { bytes: stBuildText(text.slice(0, p) + text.slice(p + 1), s.buffer, s.pad), expect: 'any' };
      const c = pick(r, [...'{}[],:"\\0 9-eE.tfn\u00ff\u2028']);
      return { bytes: stBuildText(text.slice(0, p) + c + text.slice(p), s.buffer, s.pad), expect: 'any' };
    },
  ],
  [
    'data bytes changed',
    (s, r) => {
      if (s.buffer.length === 0) return undefined;
      const buffer = s.buffer.slice();
      for (let k = r.int(1, 9); k > 0; k--) buffer[r.int(0, buffer.length)] = r.int(0, 256);
      return { bytes: stBuild(s, s.entries, buffer), expect: s.hasI64 ? 'any' : 'ok' }; // an I64 may leave int32
    },
  ],
  ['trailing bytes', (s, r) => ({ bytes: concat(s.bytes, randomBytes(r, r.int(1, 17))), expect: 'error' })],
];

// ---------------------------------------------------------------------------------------------------------------------
// IDX seeds, an independent validity rule, and mutators of the header, dims, length and gzip wrapping.

interface IdxSeed {
  name: string;
  raw: Uint8Array;
  gz: boolean;
  bytes: Uint8Array;
}
const IDX_TYPES: Record<number, { size: number; ctor: new (n: number) => ArrayBufferView }> = {
  0x08: { size: 1, ctor: Uint8Array },
  0x09: { size: 1, ctor: Int8Array },
  0x0b: { size: 2, ctor: Int16Array },
  0x0c: { size: 4, ctor: Int32Array },
  0x0d: { size: 4, ctor: Float32Array },
  0x0e: { size: 8, ctor: Float64Array },
};
const IDX_CAP = 2 ** 30;

const idxSeeds = (): IdxSeed[] => {
  const r = new Rng(11);
  const raw: [string, Uint8Array][] = [
    [
      'uint8 [3,5,7]',
      encodeIdx(
        [3, 5, 7],
        Uint8Array.from({ length: 105 }, () => r.int(0, 256)),
      ),
    ],
    [
      'int8 [11]',
      encodeIdx(
        [11],
        Int8Array.from({ length: 11 }, () => r.int(-128, 128)),
      ),
    ],
    [
      'int16 [2,3,1,4]',
      encodeIdx(
        [2, 3, 1, 4],
        Int16Array.from({ length: 24 }, () => r.int(-32768, 32768)),
      ),
    ],
    [
      'int32 [4,9]',
      encodeIdx(
        [4, 9],
        Int32Array.from({ length: 36 }, () => r.int(-(2 ** 31), 2 ** 31)),
      ),
    ],
    [
      'float32 [6,2]',
      encodeIdx([6, 2], Float32Array.from([0, -0, 1.5, -3.25e-8, 3.4e38, Infinity, -Infinity, NaN, 1e-45, 7, 8, 9])),
    ],
    ['float64 [5]', encodeIdx([5], Float64Array.from([Math.PI, -1e300, 5e-324, NaN, -0]))],
    ['uint8 [0,28,28]', encodeIdx([0, 28, 28], new Uint8Array(0))],
    [
      'uint8 labels [40]',
      encodeIdx(
        [40],
        Uint8Array.from({ length: 40 }, (_, i) => i % 10),
      ),
    ],
    [
      'float32 [2,2,2,3]',
      encodeIdx(
        [2, 2, 2, 3],
        Float32Array.from({ length: 24 }, () => r.normal()),
      ),
    ],
  ];
  const seeds = raw.map(([name, bytes]): IdxSeed => ({ name, raw: bytes, gz: false, bytes }));
  for (const k of [0, 2, 5, 6, 8])
    seeds.push({ name: `${raw[k]![0]} gzipped`, raw: raw[k]![1], gz: true, bytes: zlib.gzipSync(raw[k]![1]) });
  return seeds;
};
const IDX_SEEDS = idxSeeds();

/** Whether raw (uncompressed) IDX bytes are valid, by BigInt arithmetic: written apart from the parser. */
function idxValid(b: Uint8Array, maxBytes = IDX_CAP): boolean {
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0) return false;
  const t = IDX_TYPES[b[2]!];
  const rank = b[3]!;
  if (!t || rank < 1 || rank > 4 || b.length < 4 + 4 * rank) return false;
  let items = 1n;
  for (let i = 0; i < rank; i++) {
    items *= BigInt(((b[4 + 4 * i]! << 24) | (b[5 + 4 * i]! << 16) | (b[6 + 4 * i]! << 8) | b[7 + 4 * i]!) >>> 0);
    // NOTE: the cap applies to each running product, as the parser checks dim by dim: [2^32-1, 0] is refused though
    // it holds no items, while [0, 2^32-1] is an empty array.
    if (items * BigInt(t.size) > BigInt(maxBytes)) return false;
  }
  return BigInt(b.length) === BigInt(4 + 4 * rank) + items * BigInt(t.size);
}
const gunzipOrUndefined = (b: Uint8Array) => {
  try {
    return new Uint8Array(zlib.gunzipSync(b));
  } catch {
    return undefined;
  }
};

/** Checks a parsed result against the (uncompressed) bytes: header fields, and every item (NaN payloads may differ). */
function idxCheck(raw: Uint8Array, res: IdxArray): string | undefined {
  const t = IDX_TYPES[raw[2]!]!;
  const rank = raw[3]!;
  const dims = Array.from({ length: rank }, (_, i) => new DataView(raw.buffer, raw.byteOffset).getUint32(4 + 4 * i));
  if (JSON.stringify(res.dims) !== JSON.stringify(dims)) return `dims [${res.dims}], the header says [${dims}]`;
  if (!(res.data instanceof t.ctor)) return `data is ${res.data.constructor.name} for type byte ${raw[2]}`;
  const n = dims.reduce((a, d) => a * d, 1);
  if (res.data.length !== n) return `${res.data.length} items for dims [${dims}]`;
  const again = encodeIdx(res.dims, res.data);
  const header = 4 + 4 * rank;
  for (let p = 0; p < raw.length; p++) {
    if (again[p] === raw[p]) continue;
    const i = Math.floor((p - header) / t.size);
    if (p < header || !Number.isNaN(res.data[i]!))
      return `item ${i} is ${res.data[i]}, which is not what the file holds`;
  }
  return undefined;
}

const idxBytes = (raw: Uint8Array, set: (c: Uint8Array, dv: DataView) => void) => {
  const c = raw.slice();
  set(c, new DataView(c.buffer));
  return c;
};
const rankOf = (raw: Uint8Array) => raw[3]!;

/** Mutators of the uncompressed file: the expectation comes from idxValid, so each returns bytes only. */
const IDX_RAW_MUTATORS: [string, (raw: Uint8Array, r: Rng) => { bytes: Uint8Array; huge?: boolean } | undefined][] = [
  ...BYTE_MUTATORS.map(([name, f]): [string, (raw: Uint8Array, r: Rng) => { bytes: Uint8Array } | undefined] => [
    name,
    (raw, r) => {
      const bytes = f(raw, r);
      return bytes && { bytes };
    },
  ]),
  [
    'wrong magic',
    (raw, r) => ({
      bytes: idxBytes(raw, (c) => (r.next() < 0.25 ? c.set([0x1f, 0x8b]) : (c[r.int(0, 2)] = r.int(1, 256)))),
    }),
  ],
  [
    'type byte',
    (raw, r) => ({
      bytes: idxBytes(
        raw,
        (c) => (c[2] = r.next() < 0.5 ? pick(r, [0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e]) : r.int(0, 256)),
      ),
    }),
  ],
  [
    'dim count 0/5/255 or ±1',
    (raw, r) => ({
      bytes: idxBytes(
        raw,
        (c) => (c[3] = pick(r, [0, 5, 255, r.int(5, 256), Math.max(1, c[3]! - 1), Math.min(4, c[3]! + 1)])),
      ),
    }),
  ],
  [
    'dims: one huge',
    (raw, r) => {
      const size = IDX_TYPES[raw[2]!]!.size;
      const d = pick(r, [
        0xffffffff,
        0x80000000,
        0x40000000,
        IDX_CAP / size,
        IDX_CAP / size + 1,
        r.int(0, 2 ** 32),
        2 ** 16,
      ]);
      return { bytes: idxBytes(raw, (_, dv) => dv.setUint32(4 + 4 * r.int(0, rankOf(raw)), d)), huge: true };
    },
  ],
  [
    'dims: product overflows',
    (raw, r) => {
      const rank = rankOf(raw);
      const kind = r.int(0, 3);
      // all dims max; 2^32 in total (zero if multiplied in 32 bits); just past the 1 GiB cap
      const dims =
        kind === 0
          ? Array(rank).fill(0xffffffff)
          : kind === 1
            ? [65536, 65536, 1, 1]
            : [2 ** 20, 2 ** 10, 2 ** 10 + 1, 1];
      return {
        bytes: idxBytes(raw, (_, dv) => dims.slice(0, rank).forEach((d, i) => dv.setUint32(4 + 4 * i, d))),
        huge: true,
      };
    },
  ],
  ['dims: one zero', (raw, r) => ({ bytes: idxBytes(raw, (_, dv) => dv.setUint32(4 + 4 * r.int(0, rankOf(raw)), 0)) })],
  [
    'dims permuted (valid)',
    (raw, r) => {
      const rank = rankOf(raw);
      const dv = new DataView(raw.buffer, raw.byteOffset);
      const dims = Array.from({ length: rank }, (_, i) => dv.getUint32(4 + 4 * i));
      const order = dims.map((_, i) => i).sort(() => r.next() - 0.5);
      return { bytes: idxBytes(raw, (_, out) => order.forEach((j, i) => out.setUint32(4 + 4 * i, dims[j]!))) };
    },
  ],
  [
    'length off by ±1..8',
    (raw, r) => {
      const k = r.int(1, 9);
      return { bytes: r.next() < 0.5 ? raw.slice(0, Math.max(0, raw.length - k)) : concat(raw, randomBytes(r, k)) };
    },
  ],
  ['header only', (raw) => ({ bytes: raw.slice(0, 4 + 4 * rankOf(raw)) })],
];

/** Mutators of a gzipped seed: the gzip bytes themselves, or an IDX mutation gzipped again. */
const GZ_MUTATORS: [string, (s: IdxSeed, r: Rng) => Uint8Array | undefined][] = [
  ...BYTE_MUTATORS.map(([name, f]): [string, (s: IdxSeed, r: Rng) => Uint8Array | undefined] => [
    `gzip: ${name}`,
    (s, r) => f(s.bytes, r),
  ]),
  [
    'gzip: trailer (CRC32, ISIZE)',
    (s, r) => idxBytes(s.bytes, (c, dv) => dv.setUint32(c.length - pick(r, [4, 8]), r.int(0, 2 ** 32), true)),
  ],
  ['gzip: header (method, flags)', (s, r) => idxBytes(s.bytes, (c) => (c[pick(r, [2, 3])] = r.int(0, 256)))],
  ['gzip: two members', (s) => concat(s.bytes, s.bytes)],
  [
    'gzip: inner file mutated',
    (s, r) => {
      const [, f] = pick(r, IDX_RAW_MUTATORS);
      const m = f(s.raw, r);
      return m && new Uint8Array(zlib.gzipSync(m.bytes, { level: 1 }));
    },
  ],
];

// ---------------------------------------------------------------------------------------------------------------------

/** Runs one safetensors case: the file, what to expect, and whether to sample arrayBuffers. */
function stCase(
  t: Tally,
  what: string,
  mutator: string,
  bytes: Uint8Array,
  expect: Expect,
  sampleMemory: boolean,
): void {
  const budget = stBudget(bytes);
  t.run(what, mutator, bytes, () => parseSafetensors(bytes), {
    expect,
    budget,
    memBudget: budget + SLACK,
    sampleMemory,
    check: (v) => stCheck(bytes, v),
  });
}

/** Runs one IDX case through decodeIdx (raw or gzip); validity and budget from the uncompressed bytes. */
function idxCase(
  t: Tally,
  what: string,
  mutator: string,
  bytes: Uint8Array,
  maxBytes: number | undefined,
  sampleMemory: boolean,
): void {
  const gz = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  const raw = gz ? gunzipOrUndefined(bytes) : bytes;
  const valid = raw !== undefined && idxValid(raw, maxBytes);
  // NOTE: a gzipped file is allowed twice what it inflates to (the parser reads that); the typed arrays counted are
  // only parseIdx's, zlib's output is seen by arrayBuffers.
  const size = Math.max(bytes.length, raw?.length ?? 0);
  t.run(what, mutator, bytes, () => decodeIdx(bytes, maxBytes === undefined ? {} : { maxBytes }), {
    expect: valid ? 'ok' : 'error',
    budget: 2 * size,
    memBudget: 2 * size + SLACK,
    sampleMemory: sampleMemory || gz,
    check: (v) => (raw ? idxCheck(raw, v) : 'zlib cannot gunzip it'),
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// Whole model files and checkpoints (issue 18): what Sequential.save and Sequential.saveCheckpoint write for small
// models, mutated as files (bit flips, truncations) and as what they hold (tensor names, shapes, dtypes and values; the
// layer stack, the input shape and the state JSON: fields edited, removed, added, retyped; metadata keys), checkpoints
// with their checksum left stale or recomputed (as an editor would). Every case ends in success or a WgnnError (a
// ParseError for a resume), within CASE_MS and under 1 GiB of peak RSS growth. A load that succeeds gives a model whose
// tensors are the file's and that runs; a resume that succeeds gives exactly the file's weights, optimizer state, RNGs
// and cursor, and never comes from a stale checksum on changed bytes; a refused resume leaves model and optimizer
// bitwise as they were. Case i is rebuilt from the seed alone (caseRng). On the CPU backend: the GPU adds nothing here.

const WHOLE_CASES = { model: 2000, checkpoint: 3000 };
const CASE_MS = 10_000;
const PEAK_RSS = 1 << 30;

interface Part {
  name: string;
  dtype: string;
  shape: unknown;
  data: Uint8Array;
}
interface Taken {
  meta: Record<string, unknown>;
  parts: Part[];
}

/** A safetensors file as wgnn writes one (metadata first, 8-byte padding), from parts kept in the given order. */
function wholeBuild({ meta, parts }: Taken): Uint8Array {
  const items = [`"__metadata__":${JSON.stringify(meta)}`];
  let at = 0;
  for (const p of parts) {
    items.push(
      `${JSON.stringify(p.name)}:${JSON.stringify({ dtype: p.dtype, shape: p.shape, data_offsets: [at, at + p.data.length] })}`,
    );
    at += p.data.length;
  }
  return stBuildText(`{${items.join(',')}}`, concat(...parts.map((p) => p.data)), true);
}

function wholeTake(bytes: Uint8Array): Taken {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const parts = Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .map(([name, v]) => ({
      name,
      dtype: v.dtype,
      shape: v.shape,
      data: bytes.slice(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]),
    }));
  return { meta: header.__metadata__ as unknown as Record<string, unknown>, parts };
}

const SEAL = '{"__metadata__":{"checksum":"crc32:';
/** The checksum recomputed with zlib's CRC-32 (the oracle): every byte but the 8 hex digits after SEAL. */
function wholeReseal(b: Uint8Array): Uint8Array {
  if (latin1(b.subarray(8, 8 + SEAL.length)) !== SEAL || b.length < 8 + SEAL.length + 8) return b;
  const at = 8 + SEAL.length;
  const out = b.slice();
  out.set(
    enc.encode(
      zlib
        .crc32(b.subarray(at + 8), zlib.crc32(b.subarray(0, at)))
        .toString(16)
        .padStart(8, '0'),
    ),
    at,
  );
  return out;
}

// Values a field is set to: wrong types, signs, sizes, prototype names, and plausible valid ones.
const PALETTE: unknown[] = [
  -1,
  0,
  1,
  2,
  3,
  7,
  1.5,
  -0.5,
  1e12,
  2 ** 32,
  2 ** 53,
  -(2 ** 31),
  null,
  true,
  false,
  '',
  'x',
  '1',
  '__proto__',
  'constructor',
  'toString',
  'relu',
  'tanh',
  'softmax',
  'linear',
  'same',
  'valid',
  'Dense',
  'Conv2D',
  'Flatten',
  'Dropout',
  [],
  [0],
  [1],
  [2, 2],
  [3, 3],
  [-1, 2],
  [1e12],
  [6],
  [6, 6, 1],
  [1e6, 1e6],
  {},
  { a: 1 },
  { units: 3 },
  [[1]],
];
const JSON_KEYS = [
  'extra',
  '__proto__',
  'constructor',
  'units',
  'rate',
  'filters',
  'kernelSize',
  'activation',
  'inputShape',
  'epoch',
  'steps',
];

type Json = unknown;
/** Every path into a JSON value (the root is []). */
function jsonPaths(v: Json, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => jsonPaths(x, [...at, i], out));
  else if (v && typeof v === 'object')
    for (const k of Object.keys(v)) jsonPaths((v as Record<string, Json>)[k], [...at, k], out);
  return out;
}
const setOwn = (o: object, k: string | number, v: unknown) =>
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });

/** One edit of a JSON value somewhere in it: set from PALETTE, delete, add a key, retype, duplicate or drop an element. */
function jsonEdit(root: Json, r: Rng): [Json, string] {
  const v = structuredClone(root);
  const path = pick(r, jsonPaths(v));
  const op = r.int(0, 6);
  if (path.length === 0) return [pick(r, PALETTE), 'root replaced'];
  const parent = path.slice(0, -1).reduce<Json>((o, k) => (o as Record<string, Json>)[k], v) as Record<
    string | number,
    Json
  >;
  const key = path[path.length - 1]!;
  const at = path.join('.');
  const old = parent[key];
  if (op === 0 || op === 1) setOwn(parent, key, pick(r, PALETTE));
  else if (op === 2) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
    return [v, `${at} removed`];
  } else if (op === 3 && old && typeof old === 'object' && !Array.isArray(old))
    setOwn(old, pick(r, JSON_KEYS), pick(r, PALETTE));
  else if (op === 4)
    setOwn(
      parent,
      key,
      typeof old === 'number'
        ? String(old)
        : Array.isArray(old)
          ? { ...old }
          : typeof old === 'string'
            ? [old]
            : old === null
              ? 0
              : [old],
    );
  else if (Array.isArray(parent)) parent.splice(key as number, 0, structuredClone(old));
  else setOwn(parent, key, typeof old === 'number' ? old + pick(r, [-1, 1, 0.5, 2 ** 32]) : pick(r, PALETTE));
  return [v, `${at} edited (op ${op})`];
}

const GARBAGE = [
  '',
  '{',
  'null',
  '[]',
  '{}',
  '"x"',
  '1e999',
  '[1,2',
  '{"a":}',
  'NaN',
  '[[[[[[[[[[]]]]]]]]]]',
  `${'['.repeat(6000)}${']'.repeat(6000)}`,
];

type Whole = { bytes: Uint8Array; kind: string; resealed: boolean };
type WholeMutator = (t: Taken, r: Rng, jsonKeys: readonly string[]) => Taken | undefined;

const cloneTaken = (t: Taken): Taken => ({
  meta: { ...t.meta },
  parts: t.parts.map((p) => ({ ...p, data: p.data.slice() })),
});
const somePart = (t: Taken, r: Rng) => (t.parts.length ? pick(r, t.parts) : undefined);

// Structure mutators: each returns the edited copy, or undefined when it does not apply.
const WHOLE_MUTATORS: [string, WholeMutator][] = [
  [
    'name bit flip',
    (t, r) => {
      const p = somePart(t, r);
      if (!p) return undefined;
      const i = r.int(0, p.name.length);
      p.name =
        p.name.slice(0, i) + String.fromCharCode(p.name.charCodeAt(i) ^ (1 << r.int(0, 7))) + p.name.slice(i + 1);
      return t;
    },
  ],
  [
    'names swapped',
    (t, r) => {
      if (t.parts.length < 2) return undefined;
      const [a, b] = [pick(r, t.parts), pick(r, t.parts)];
      [a.name, b.name] = [b.name, a.name];
      return t;
    },
  ],
  [
    'renamed',
    (t, r) => {
      const p = somePart(t, r);
      if (!p) return undefined;
      p.name = pick(r, [
        '__proto__',
        'constructor',
        'x',
        'layers.0.kernel',
        'layers.9.kernel',
        'layers.-1.bias',
        'model.layers.0.kernel',
        'model.layers.7.bias',
        'optim.0.exp_avg',
        'optim.4.exp_avg',
        'optim.99.momentum_buffer',
        'optim.-1.sum',
        'optim.01.exp_avg',
        'optim.1e0.exp_avg',
        `${p.name}.`,
        `${p.name} `,
        p.name.replace('model.', 'optim.0.'),
        p.name.replace(/^optim\.\d+/, 'model'),
      ]);
      return t;
    },
  ],
  [
    'shapes swapped',
    (t, r) => {
      if (t.parts.length < 2) return undefined;
      const [a, b] = [pick(r, t.parts), pick(r, t.parts)];
      [a.shape, b.shape] = [b.shape, a.shape];
      return t;
    },
  ],
  [
    'shape edited',
    (t, r) => {
      const p = somePart(t, r);
      if (!p) return undefined;
      const s = p.shape as number[];
      p.shape = pick(r, [
        [...s].reverse(),
        [1, ...s],
        [...s, 1],
        s.slice(1),
        [s.reduce((a, d) => a * d, 1)],
        [],
        [0],
        [1e12],
        [-1],
        [s[0]! + 1, ...s.slice(1)],
      ]);
      return t;
    },
  ],
  [
    'dtype edited',
    (t, r) => {
      const p = somePart(t, r);
      if (!p) return undefined;
      p.dtype = pick(r, ['I32', 'F32', 'F16', 'BF16', 'U8', 'F64', 'I64', 'f32', 'BOOL']);
      return t;
    },
  ],
  [
    'value edited',
    (t, r) => {
      const p = somePart(t, r);
      if (!p || p.data.length < 4) return undefined;
      const dv = new DataView(p.data.buffer, p.data.byteOffset, p.data.byteLength);
      const at = 4 * r.int(0, p.data.length / 4);
      dv.setFloat32(at, pick(r, [NaN, Infinity, -Infinity, 1e30, -0, 0.5, dv.getFloat32(at, true) * 2]), true);
      return t;
    },
  ],
  [
    'tensor dropped',
    (t, r) => {
      if (!t.parts.length) return undefined;
      t.parts.splice(r.int(0, t.parts.length), 1);
      return t;
    },
  ],
  [
    'tensor added',
    (t, r) => {
      const p = somePart(t, r);
      if (!p) return undefined;
      t.parts.push({ ...p, name: `${p.name}${pick(r, ['_2', '.copy', ''])}`, data: p.data.slice() }); // '' duplicates a name
      return t;
    },
  ],
  [
    'metadata JSON edited',
    (t, r, keys) => {
      const key = pick(r, keys);
      const text = t.meta[key];
      if (typeof text !== 'string') return undefined;
      if (r.next() < 0.1) t.meta[key] = pick(r, GARBAGE);
      else t.meta[key] = JSON.stringify(jsonEdit(JSON.parse(text), r)[0]) ?? 'undefined';
      return t;
    },
  ],
  [
    'metadata key edited',
    (t, r) => {
      const keys = Object.keys(t.meta);
      const k = pick(r, keys);
      const op = r.int(0, 3);
      if (op === 0) delete t.meta[k];
      else if (op === 1)
        t.meta[k] = pick(r, ['', 'x', 'wgnn.sequential', 'wgnn.checkpoint', 'null', '[]', 'crc32:00000000']);
      else t.meta = Object.fromEntries([...keys.filter((x) => x !== k).map((x) => [x, t.meta[x]]), [k, t.meta[k]]]); // key order changed
      return t;
    },
  ],
];

// Byte mutators on the file: anything may come of them.
const WHOLE_BYTES: [string, (b: Uint8Array, r: Rng) => Uint8Array][] = [
  [
    'bit flip',
    (b, r) => {
      const out = b.slice();
      out[r.int(0, b.length)]! ^= 1 << r.int(0, 8);
      return out;
    },
  ],
  [
    'bytes overwritten',
    (b, r) => {
      const out = b.slice();
      const at = r.int(0, b.length);
      out.set(randomBytes(r, Math.min(r.int(1, 9), b.length - at)), at);
      return out;
    },
  ],
  ['truncated', (b, r) => b.slice(0, r.int(0, b.length))],
  ['bytes appended', (b, r) => concat(b, randomBytes(r, r.int(1, 64)))],
];

/**
 * Case i of a seed: an edit of the JSON in the metadata (the layer stack, input shape or state: 30%), another edit of
 * the structure (30%) or of the bytes (40%); checkpoints resealed half the time.
 */
function wholeCase(
  seed: Uint8Array,
  taken: Taken,
  jsonKeys: readonly string[],
  salt: number,
  i: number,
  checkpoint: boolean,
): Whole {
  const r = caseRng(salt, i);
  let m: Whole | undefined;
  while (!m) {
    const u = r.next();
    if (u < 0.6) {
      const [name, f] = u < 0.3 ? WHOLE_MUTATORS.find(([n]) => n === 'metadata JSON edited')! : pick(r, WHOLE_MUTATORS);
      const t = f(cloneTaken(taken), r, jsonKeys);
      if (t) m = { bytes: wholeBuild(t), kind: name, resealed: false };
    } else {
      const [name, f] = pick(r, WHOLE_BYTES);
      m = { bytes: f(seed, r), kind: name, resealed: false };
    }
  }
  if (checkpoint && r.next() < 0.5) m = { ...m, bytes: wholeReseal(m.bytes), resealed: true };
  return m;
}

class WholeTally {
  cases = 0;
  ok = 0;
  refused = 0;
  failures: string[] = [];
  slowest = { ms: 0, what: '' };
  perKind = new Map<string, number>();
  constructor(readonly what: string) {}
  fail(what: string, why: string): void {
    if (this.failures.length < 25) this.failures.push(`${what}: ${why}`);
  }
  summary(): string {
    return `fuzz ${this.what}: ${this.cases} cases, ${this.ok} succeeded, ${this.refused} refused with a typed error, slowest ${this.slowest.ms.toFixed(1)} ms (${this.slowest.what}); by mutator ${JSON.stringify(Object.fromEntries(this.perKind))}`;
  }
}

const peakRss = () => process.resourceUsage().maxRSS * 1024;

/** Runs one case: its outcome (value or error), timed, with the growth of the process's peak RSS. */
async function wholeRun<T>(
  t: WholeTally,
  what: string,
  kind: string,
  f: () => Promise<T>,
): Promise<{ value?: T; error?: unknown }> {
  const peak = peakRss();
  const t0 = performance.now();
  const out: { value?: T; error?: unknown } = {};
  try {
    out.value = await f();
  } catch (e) {
    out.error = e;
  }
  const ms = performance.now() - t0;
  t.cases++;
  t.perKind.set(kind, (t.perKind.get(kind) ?? 0) + 1);
  if (ms > t.slowest.ms) t.slowest = { ms, what };
  if (ms > CASE_MS) t.fail(what, `took ${ms.toFixed(0)} ms (limit ${CASE_MS})`);
  if (peakRss() - peak > PEAK_RSS) t.fail(what, `peak RSS grew by ${peakRss() - peak} bytes (limit ${PEAK_RSS})`);
  return out;
}

const describeError = (e: unknown) =>
  `${(e as Error)?.constructor?.name ?? typeof e}: ${String((e as Error)?.message ?? e).slice(0, 200)}`;
const hexOf = (d: ArrayBufferView) => {
  const f = d instanceof Float64Array ? Float32Array.from(d) : d; // a float64 CPU backend: compare as stored
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('hex');
};

function wholeModel(kind: string): Sequential {
  setSeed(kind.length * 31);
  const L = nnLayers;
  if (kind === 'mlp')
    return sequential([
      L.dense({ units: 5, inputShape: [6], activation: 'relu' }),
      L.dropout({ rate: 0.25 }),
      L.dense({ units: 3, activation: 'softmax' }),
    ]);
  if (kind === 'cnn') {
    return sequential([
      L.conv2d({ filters: 2, kernelSize: 3, inputShape: [6, 6, 1], activation: 'relu' }),
      L.batchNormalization(),
      L.maxPool2d({ poolSize: 2 }),
      L.flatten(),
      L.dense({ units: 3 }),
    ]);
  }
  return sequential([
    L.conv2d({ filters: 2, kernelSize: [2, 1], padding: 'same', inputShape: [5, 5, 2] }),
    L.avgPool2d({ poolSize: 2, strides: 1 }),
    L.globalAveragePooling2d(),
    L.activation({ activation: 'tanh' }),
    L.dense({ units: 2, useBias: false }),
  ]);
}
const WHOLE_KINDS = ['mlp', 'cnn', 'gap'] as const;
const WHOLE_OPTS: Record<(typeof WHOLE_KINDS)[number], () => Optimizer> = {
  mlp: () => adam(0.01),
  cnn: () => sgd({ lr: 0.05, momentum: 0.9 }),
  gap: () => rmsprop({ lr: 0.01, centered: true }),
};

/** A few steps of training on seeded data, so weights, batch-norm statistics, optimizer state and RNGs are not initial. */
async function wholeTrain(m: Sequential, opt: Optimizer, seed: number): Promise<void> {
  m.compile({ optimizer: opt, loss: 'sparseCategoricalCrossentropy' });
  const shape = m.layers[0]!.knownInputShape!;
  const r = new Rng(seed);
  const n = 8;
  const x = Float32Array.from({ length: n * shape.reduce((a, d) => a * d, 1) }, () => r.uniform(-1, 1));
  const y = Int32Array.from({ length: n }, () => r.int(0, 2));
  await m.fit({ data: x, shape: [n, ...shape] }, { data: y, shape: [n] }, { batchSize: 4, seed, verbose: 0 });
}

/** JSON with object keys sorted, at every depth. */
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );

/** Everything a resume may change, as sorted lines (weights by name, optimizer slots and steps, step count, RNGs). */
async function wholeSnapshot(m: Sequential, opt: Optimizer): Promise<string[]> {
  const out = await Promise.all(m.namedTensors().map(async ([n, t]) => `model.${n} ${hexOf(await t.data())}`));
  const st = opt.state(m.parameters());
  for (const [i, ps] of st.params.entries()) {
    out.push(`step ${i} ${ps?.step ?? null}`);
    for (const [k, t] of Object.entries(ps?.slots ?? {})) out.push(`optim.${i}.${k} ${hexOf(await t.data())}`);
    for (const t of Object.values(ps?.slots ?? {})) t.dispose();
  }
  out.push(`stepCount ${st.stepCount}`, `rngs ${m.layers.map((l) => l.rng.state).join(',')}`);
  return out.sort();
}

/** The same lines, read from a checkpoint file apart from the engine's reader (parseSafetensors and JSON.parse). */
function wholeExpected(bytes: Uint8Array): string[] {
  const p = parseSafetensors(bytes);
  const s = JSON.parse(p.metadata.state!) as {
    optimizer: { stepCount: number; steps: (number | null)[] };
    rngs: number[];
  };
  const out = [...p.tensors].map(([n, t]) => `${n} ${hexOf(t.data)}`);
  s.optimizer.steps.forEach((step, i) => out.push(`step ${i} ${step}`));
  out.push(`stepCount ${s.optimizer.stepCount}`, `rngs ${s.rngs.join(',')}`);
  return out.sort();
}

describe(`whole model files and checkpoints fuzz (seed ${SEED})`, () => {
  const cpuBackend = new CpuBackend();
  beforeAll(() => setDefaultBackend(cpuBackend));
  afterAll(() => setDefaultBackend(undefined));

  it('the seeds: taken apart and put together, a file comes back byte for byte; a resealed checkpoint is unchanged', async () => {
    for (const kind of WHOLE_KINDS) {
      const m = wholeModel(kind);
      const opt = WHOLE_OPTS[kind]();
      await wholeTrain(m, opt, 1);
      const file = await m.save();
      const ck = await m.saveCheckpoint(undefined, opt, { epoch: 1, batch: 1 });
      expect(wholeBuild(wholeTake(file))).toEqual(file);
      expect(wholeBuild(wholeTake(ck))).toEqual(ck);
      expect(wholeReseal(ck)).toEqual(ck);
      opt.dispose();
      m.dispose();
    }
  });

  it(`model files: ${WHOLE_CASES.model} seeded mutations load as a working model holding the file's tensors, or throw a WgnnError`, async () => {
    const t = new WholeTally('model files');
    // a raw error out of load or the first run, or tensors leaked by a refused load or a failed run
    const later = (what: string, kind: string, detail: string) => t.fail(what, `${kind}: ${detail}`);
    const seeds = [];
    for (const kind of WHOLE_KINDS) {
      const m = wholeModel(kind);
      const opt = WHOLE_OPTS[kind]();
      await wholeTrain(m, opt, 2);
      const bytes = await m.save();
      seeds.push({ kind, bytes, taken: wholeTake(bytes) });
      opt.dispose();
      m.dispose();
    }
    for (let i = 0; i < WHOLE_CASES.model; i++) {
      const s = seeds[i % seeds.length]!;
      const c = wholeCase(s.bytes, s.taken, ['layers', 'inputShape'], 0x30de1, i, false);
      const what = `seed ${SEED} model case ${i} (${s.kind}, ${c.kind})`;
      const live = memory(cpuBackend).liveTensors;
      const r = await wholeRun(t, what, c.kind, async (): Promise<{ bad?: string; later?: [string, unknown] }> => {
        let m: Sequential;
        try {
          m = await Sequential.load(c.bytes);
        } catch (e) {
          if (e instanceof WgnnError) throw e;
          return { later: [`Sequential.load threw ${(e as Error)?.constructor?.name}`, e] };
        }
        try {
          // It holds exactly the file's tensors, and it runs on one sample of its input shape.
          const file = [...parseSafetensors(c.bytes).tensors]
            .map(([n, x]) => `${n} ${x.dtype}[${x.shape}] ${hexOf(x.data)}`)
            .sort();
          const mine = (
            await Promise.all(
              m.namedTensors().map(async ([n, x]) => `${n} ${x.dtype}[${x.shape}] ${hexOf(await x.data())}`),
            )
          ).sort();
          if (JSON.stringify(mine) !== JSON.stringify(file))
            return { bad: `loaded, but its tensors are not the file's: ${mine.length} vs ${file.length}` };
          // every weight and buffer of these layers is float32: an int32 one was loaded from an I32/U8/I64 tensor
          const int = m.namedTensors().find(([, x]) => x.dtype !== 'float32');
          if (int) return { bad: `loaded ${int[0]} as ${int[1].dtype}${fmtShape(int[1].shape)}` };
          const shape = m.layers[0]?.knownInputShape;
          if (!shape) return m.layers.length ? { bad: 'loaded with no input shape' } : {};
          try {
            (
              await m.predict({ data: new Float32Array(shape.reduce((a, d) => a * d, 1)), shape: [1, ...shape] })
            ).dispose();
          } catch (e) {
            return { later: [`a loaded model threw ${(e as Error)?.constructor?.name} when run`, e] };
          }
          return {};
        } finally {
          m.dispose();
        }
      });
      if (r.error !== undefined) {
        if (r.error instanceof WgnnError) t.refused++;
        else t.fail(what, `threw ${describeError(r.error)}`);
      } else if (r.value?.later) {
        later(what, r.value.later[0], describeError(r.value.later[1]));
      } else {
        t.ok++;
        if (r.value?.bad) t.fail(what, r.value.bad);
      }
      const leaked = memory(cpuBackend).liveTensors - live;
      if (leaked > 0) {
        if (r.error !== undefined || r.value?.later)
          later(what, 'tensors leaked by a refused load or a failed run', `${leaked} tensors`);
        else t.fail(what, `${leaked} tensors left alive`);
      }
    }
    console.log(t.summary());
    expect(
      t.failures,
      `${t.failures.length}${t.failures.length === 25 ? '+' : ''} failing cases (seed ${SEED}; WGNN_FUZZ_SEED sets another)`,
    ).toEqual([]);
    expect(t.ok).toBeGreaterThan(WHOLE_CASES.model / 50);
    expect(t.refused).toBeGreaterThan(WHOLE_CASES.model / 2);
  });

  it(`checkpoints: ${WHOLE_CASES.checkpoint} seeded mutations resume to exactly the file's state, or are a ParseError that changes nothing`, async () => {
    const t = new WholeTally('checkpoints');
    const live = memory(cpuBackend).liveTensors;
    let fromStale = 0;
    const seeds = [];
    for (const kind of WHOLE_KINDS) {
      // the checkpoint, from a trained model
      const a = wholeModel(kind);
      const aOpt = WHOLE_OPTS[kind]();
      await wholeTrain(a, aOpt, 3);
      const bytes = await a.saveCheckpoint(undefined, aOpt, { epoch: 1, batch: 1 });
      aOpt.dispose();
      a.dispose();
      // the model resuming: its own weights and optimizer state, kept as a checkpoint to go back to after a success
      const m = wholeModel(kind);
      const opt = WHOLE_OPTS[kind]();
      await wholeTrain(m, opt, 4);
      const home = await m.saveCheckpoint(undefined, opt, { epoch: 0, batch: 0 });
      seeds.push({ kind, bytes, taken: wholeTake(bytes), m, opt, home, before: await wholeSnapshot(m, opt) });
    }
    for (let i = 0; i < WHOLE_CASES.checkpoint; i++) {
      const s = seeds[i % seeds.length]!;
      const c = wholeCase(s.bytes, s.taken, ['state'], 0xc4ec, i, true);
      const what = `seed ${SEED} checkpoint case ${i} (${s.kind}, ${c.kind}${c.resealed ? ', resealed' : ''})`;
      const r = await wholeRun(t, what, c.kind, () => s.m.loadCheckpoint(c.bytes, s.opt));
      const now = await wholeSnapshot(s.m, s.opt);
      if (r.error !== undefined) {
        if (r.error instanceof ParseError) t.refused++;
        else t.fail(what, `threw ${describeError(r.error)}`);
        if (JSON.stringify(now) !== JSON.stringify(s.before))
          t.fail(what, `refused (${describeError(r.error)}), but the model or optimizer changed`);
        continue;
      }
      t.ok++;
      const same = c.bytes.length === s.bytes.length && c.bytes.every((x, k) => x === s.bytes[k]);
      if (!c.resealed && !same) {
        fromStale++;
        t.fail(what, 'resumed from changed bytes under a stale checksum');
      }
      const state = JSON.parse(parseSafetensors(c.bytes).metadata.state!) as {
        cursor: unknown;
        layers: unknown;
        optimizer: { name: unknown };
      };
      const stack = s.m.layers.map((l) => ({ class: l.kind, config: l.config() }));
      if (canonical(state.layers) !== canonical(stack))
        t.fail(what, `resumed a checkpoint of another layer stack: ${canonical(state.layers).slice(0, 200)}`);
      if (state.optimizer.name !== s.opt.name)
        t.fail(what, `resumed ${s.opt.name} from a checkpoint of ${JSON.stringify(state.optimizer.name)}`);
      if (JSON.stringify(now) !== JSON.stringify(wholeExpected(c.bytes)))
        t.fail(what, "resumed, but the model or optimizer does not hold the file's state");
      if (JSON.stringify(r.value) !== JSON.stringify(state.cursor))
        t.fail(what, `resumed at ${JSON.stringify(r.value)}, the file says ${JSON.stringify(state.cursor)}`);
      await s.m.loadCheckpoint(s.home, s.opt);
      if (JSON.stringify(await wholeSnapshot(s.m, s.opt)) !== JSON.stringify(s.before))
        t.fail(what, "could not go back to the model's own checkpoint");
    }
    for (const s of seeds) {
      s.opt.dispose();
      s.m.dispose();
    }
    console.log(t.summary());
    expect(
      t.failures,
      `${t.failures.length}${t.failures.length === 25 ? '+' : ''} failing cases (seed ${SEED}; WGNN_FUZZ_SEED sets another)`,
    ).toEqual([]);
    expect(fromStale).toBe(0);
    expect(memory(cpuBackend).liveTensors, 'tensors left alive').toBe(live);
    // Resealed edits that keep a checkpoint consistent (a value, a cursor) resume; the rest is refused.
    expect(t.ok).toBeGreaterThan(WHOLE_CASES.checkpoint / 100);
    expect(t.refused).toBeGreaterThan(WHOLE_CASES.checkpoint * 0.8);
  });
});

function report(t: Tally): void {
  console.log(t.summary());
  expect(
    t.failures,
    `${t.failures.length}${t.failures.length === 25 ? '+' : ''} failing cases (seed ${SEED}; WGNN_FUZZ_SEED sets another)`,
  ).toEqual([]);
}

describe(`hostile-file fuzz (seed ${SEED})`, () => {
  it("the allocation counter sees the parsers' copies (or the memory bounds below would prove nothing)", () => {
    const f32 = stSeed('counter', [{ name: 'w', dtype: 'F32', shape: [1000] }], undefined);
    const a = measure(() => parseSafetensors(f32.bytes), false);
    expect(a.error).toBeUndefined();
    expect(a.bytes).toBeGreaterThanOrEqual(4000);
    const idx = encodeIdx([500], new Float64Array(500));
    const b = measure(() => decodeIdx(idx), false);
    expect(b.value!.data).toBeInstanceOf(Float64Array);
    expect(b.bytes).toBe(4000);
    expect(measure(() => new Uint8Array(new ArrayBuffer(64)), false).bytes, 'a view allocates nothing').toBe(0);
    expect(measure(() => Int32Array.from([1, 2, 3]), false).bytes).toBe(12);
  });

  it('the seed files are valid and parse to their bytes', () => {
    const t = new Tally('seeds');
    const s2 = stSerialized();
    expect(stBuild(s2)).toEqual(s2.bytes); // taken apart and put together, the serializer's bytes come back
    for (const s of ST_SEEDS) stCase(t, s.name, 'none', s.bytes, 'ok', true);
    for (const s of IDX_SEEDS) idxCase(t, s.name, 'none', s.bytes, undefined, true);
    expect(t.failures).toEqual([]);
    expect(t.parsed).toBe(ST_SEEDS.length + IDX_SEEDS.length);
    expect(ST_SEEDS.map((s) => s.bytes.length)).toSatisfy(
      (ls: number[]) => ls.some((l) => l > 1000) && ls.every((l) => l < 4096),
    );
  });

  it('safetensors: every truncation of every seed is a ParseError', () => {
    const t = new Tally('safetensors truncations');
    for (const s of ST_SEEDS) {
      for (let n = 0; n < s.bytes.length; n++)
        stCase(t, `${s.name} cut to ${n} bytes`, 'truncation', s.bytes.subarray(0, n), 'error', n % 256 === 0);
    }
    report(t);
    expect(t.parsed).toBe(0);
  });

  it('IDX: every truncation of every seed (raw and gzipped) is a ParseError', () => {
    const t = new Tally('idx truncations');
    for (const s of IDX_SEEDS)
      for (let n = 0; n < s.bytes.length; n++)
        idxCase(t, `${s.name} cut to ${n} bytes`, 'truncation', s.bytes.subarray(0, n), undefined, n % 256 === 0);
    report(t);
    expect(t.parsed).toBe(0);
  });

  it(`safetensors: ${MUTATIONS} seeded mutations give a result or ParseError, each within ${LIMIT_MS} ms and 2x the file in memory`, () => {
    const t = new Tally('safetensors');
    let predictedValid = 0;
    for (let i = 0; i < MUTATIONS; i++) {
      const r = caseRng(0x5afe, i);
      const s = pick(r, ST_SEEDS);
      let m: Mutant | undefined;
      let name = '';
      while (!m) {
        const [n, f] = pick(r, ST_MUTATORS); // again when it does not apply to this seed
        [name, m] = [n, f(s, r)];
      }
      if (r.next() < 1 / 8) {
        // a second, byte-level mutation on top: anything may come of it
        const [second, f] = pick(r, BYTE_MUTATORS);
        const bytes = f(m.bytes, r);
        if (bytes) [name, m] = [`${name} + ${second}`, { bytes, expect: 'any', huge: m.huge }];
      }
      if (m.expect === 'ok') predictedValid++;
      stCase(
        t,
        `seed ${SEED} case ${i} (${s.name}, ${name})`,
        name.split(' + ')[0]!,
        m.bytes,
        m.expect,
        i % 1000 === 0 || !!m.huge,
      );
    }
    report(t);
    // Each mutator ran, and the mix holds both outcomes in number: a parser that refused everything would fail above.
    for (const [name] of ST_MUTATORS)
      expect(t.perMutator.get(name) ?? 0, name).toBeGreaterThan(MUTATIONS / ST_MUTATORS.length / 3);
    expect(predictedValid).toBeGreaterThan(MUTATIONS / 10);
    expect(t.parsed).toBeGreaterThan(MUTATIONS / 10);
    expect(t.parseErrors).toBeGreaterThan(MUTATIONS / 2);
  });

  it(`IDX: ${MUTATIONS} seeded mutations (raw and gzipped) give a result or ParseError, each within ${LIMIT_MS} ms and 2x the file in memory`, () => {
    const t = new Tally('idx');
    for (let i = 0; i < MUTATIONS; i++) {
      const r = caseRng(0x1d8, i);
      const s = pick(r, IDX_SEEDS);
      let bytes: Uint8Array | undefined;
      let name = '';
      let huge = false;
      while (!bytes) {
        if (s.gz) {
          const [n, f] = pick(r, GZ_MUTATORS);
          [name, bytes] = [n, f(s, r)];
        } else {
          const [n, f] = pick(r, IDX_RAW_MUTATORS);
          const m = f(s.raw, r);
          [name, bytes, huge] = [n, m?.bytes, !!m?.huge];
        }
      }
      // now and then a cap of the caller's choosing, around the payload's size
      const maxBytes = r.next() < 1 / 8 ? r.int(0, 2 * s.raw.length) : undefined;
      idxCase(
        t,
        `seed ${SEED} case ${i} (${s.name}, ${name}${maxBytes === undefined ? '' : `, maxBytes ${maxBytes}`})`,
        name,
        bytes,
        maxBytes,
        i % 1000 === 0 || huge,
      );
    }
    report(t);
    for (const [name] of [...IDX_RAW_MUTATORS, ...GZ_MUTATORS])
      expect(t.perMutator.get(name) ?? 0, name).toBeGreaterThan(1000);
    expect(t.parsed).toBeGreaterThan(MUTATIONS / 20);
    expect(t.parseErrors).toBeGreaterThan(MUTATIONS / 2);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
// Data folders (issue "Reliability II", class 5): a valid folder of four IDX files (raw or gzipped, LeCun's names or
// dotted ones) with one mutation each: counts that disagree, a label out of range, a gzip near the size cap that
// matches, overruns or underruns its header, wrong types, ranks and shapes, a file that is /dev/zero or a folder or
// missing, limits at their edge, and bytes mutated. loadIdxDataset must return a dataset that holds what the files hold
// or throw a WgnnError (a ParseError where a file is at fault), as predicted apart from the loader, within 2 s and
// 64 MiB of arrayBuffers each.

const FOLDER_CASES = 500;
const FOLDER_LIMIT_MS = 2000;
const FOLDER_MEM = 64 << 20;
const folderRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'wgnn-fuzz-folders-'));
afterAll(() => fs.rmSync(folderRoot, { recursive: true, force: true }));

type FileKey = 'train-images' | 'train-labels' | 't10k-images' | 't10k-labels';
interface FileSpec {
  dims: number[];
  data: IdxData;
  gz: boolean;
  /** The file's bytes, when a mutation wrote them itself. */
  bytes?: Uint8Array;
  special?: 'dev-zero' | 'folder' | 'missing';
}
interface Folder {
  files: Record<FileKey, FileSpec>;
  dotted: boolean;
  classes: number;
  opts: IdxDatasetOptions;
}
interface FolderExpect {
  kind: Expect;
  match?: RegExp;
  classes?: number;
}

const FILE_KEYS: FileKey[] = ['train-images', 'train-labels', 't10k-images', 't10k-labels'];
const LABEL_TYPES = [Uint8Array, Int8Array, Int16Array, Int32Array] as const;
const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A valid folder: train 1..6 and test 1..4 images [N,H,W] or [N,H,W,C] of random pixels, labels in 0..classes-1. */
function validFolder(r: Rng): Folder {
  const [h, w] = [r.int(1, 5), r.int(1, 5)];
  const c = pick(r, [undefined, 1, 3]);
  const classes = r.int(1, 13);
  const Labels = pick(r, LABEL_TYPES);
  const split = (n: number): [FileSpec, FileSpec] => {
    const dims = c === undefined ? [n, h, w] : [n, h, w, c];
    const pixels = randomBytes(
      r,
      dims.reduce((a, d) => a * d, 1),
    );
    const labels = new Labels(n);
    for (let i = 0; i < n; i++) labels[i] = r.int(0, classes);
    return [
      { dims, data: pixels, gz: r.next() < 0.5 },
      { dims: [n], data: labels, gz: r.next() < 0.5 },
    ];
  };
  const [ti, tl] = split(r.int(1, 7));
  const [vi, vl] = split(r.int(1, 5));
  return {
    files: { 'train-images': ti, 'train-labels': tl, 't10k-images': vi, 't10k-labels': vl },
    dotted: r.next() < 0.25,
    classes,
    opts: {},
  };
}

const fileName = (f: Folder, key: FileKey) => {
  const [stem, kind] = [key.startsWith('train') ? 'train' : 't10k', key.endsWith('images') ? 'images' : 'labels'];
  const base = `${stem}-${kind}${f.dotted ? '.' : '-'}${kind === 'images' ? 'idx3' : 'idx1'}-ubyte`;
  return f.files[key].gz ? `${base}.gz` : base;
};
const fileBytes = (s: FileSpec) =>
  s.bytes ??
  (s.gz ? new Uint8Array(zlib.gzipSync(encodeIdx(s.dims, s.data), { level: 1 })) : encodeIdx(s.dims, s.data));

function writeFolder(dir: string, f: Folder): void {
  fs.mkdirSync(dir);
  for (const key of FILE_KEYS) {
    const s = f.files[key];
    const file = path.join(dir, fileName(f, key));
    if (s.special === 'missing') continue;
    if (s.special === 'dev-zero') fs.symlinkSync('/dev/zero', file);
    else if (s.special === 'folder') fs.mkdirSync(file);
    else fs.writeFileSync(file, fileBytes(s));
  }
}

/** The labels of both splits checked as the loader must (train, then test): the first bad one, or the class count. */
function labelOutcome(f: Folder): FolderExpect {
  const declared = f.opts.classes;
  const max = declared ?? f.opts.maxClasses ?? 10_000;
  let classes = 0;
  for (const key of ['train-labels', 't10k-labels'] as const) {
    const y = f.files[key].data;
    for (let i = 0; i < y.length; i++) {
      const v = y[i]!;
      if (v < 0 || v >= max)
        return { kind: 'error', match: new RegExp(`${reEscape(fileName(f, key))}: label ${v} at index ${i} `) };
      classes = Math.max(classes, v + 1);
    }
  }
  return { kind: 'ok', classes: declared ?? classes };
}

const items = (s: FileSpec) => s.dims.reduce((a, d) => a * d, 1);
const other = (key: FileKey): FileKey =>
  key.startsWith('train') ? (key.replace('train', 't10k') as FileKey) : (key.replace('t10k', 'train') as FileKey);

/** Builds a gzip of `bytes` whose trailer (ISIZE) says `isize`: a forged trailer, as a hostile file may have. */
const withIsize = (gz: Uint8Array, isize: number) =>
  idxBytes(gz, (c, dv) => dv.setUint32(c.length - 4, isize % 2 ** 32, true));

const FOLDER_MUTATORS: [string, (f: Folder, r: Rng) => FolderExpect][] = [
  ['none', (f) => labelOutcome(f)],
  [
    'counts mismatched',
    (f, r) => {
      const key = pick(r, ['train-labels', 't10k-labels'] as const);
      const s = f.files[key];
      const n = s.dims[0]!;
      const m = Math.max(0, n + pick(r, [-3, -2, -1, 1, 2, 3]));
      if (m === n) return labelOutcome(f);
      s.data = (s.data.constructor as typeof Uint8Array).from({ length: m }, () => r.int(0, f.classes));
      s.dims = [m];
      const images = fileName(f, key.replace('labels', 'images') as FileKey);
      return {
        kind: 'error',
        match: new RegExp(`${reEscape(images)} has ${n} images but ${reEscape(fileName(f, key))} has ${m} labels`),
      };
    },
  ],
  [
    'label out of range',
    (f, r) => {
      const key = pick(r, ['train-labels', 't10k-labels'] as const);
      const y = f.files[key].data;
      const range = {
        Uint8Array: [0, 255],
        Int8Array: [-128, 127],
        Int16Array: [-32768, 32767],
        Int32Array: [-(2 ** 31), 2 ** 31 - 1],
      }[y.constructor.name]!;
      const v = pick(
        r,
        [-1, range[0]!, range[1]!, f.classes, f.classes + 1, 9_999, 10_000, 5_000_000, 2 ** 31 - 1].filter(
          (x) => x >= range[0]! && x <= range[1]!,
        ),
      );
      y[r.int(0, y.length)] = v;
      const kind = r.int(0, 3);
      if (kind === 1) f.opts.classes = pick(r, [f.classes, f.classes + 1, Math.max(1, v)]);
      if (kind === 2)
        f.opts.maxClasses = pick(r, [f.classes, 10_000, Math.max(1, v), Math.max(1, Math.min(2 ** 31 - 1, v + 1))]);
      return labelOutcome(f);
    },
  ],
  [
    'gzip near the size cap (match, overrun, underrun, forged trailer)',
    (f, r) => {
      const cap = pick(r, [4096, 65_536, 1 << 20]);
      const n = cap + pick(r, [-2, -1, 0, 0, 0, 1, 2]);
      f.opts.maxBytes = cap;
      const key = pick(r, ['train-images', 't10k-images'] as const);
      const s = f.files[key];
      const [, h, w, c] = s.dims;
      // images [n,1,1] keep the other split's shape only when it is [.,1,1]: give both splits that shape
      for (const k of [key, other(key)])
        f.files[k].dims = c === undefined ? [f.files[k].dims[0]!, 1, 1] : [f.files[k].dims[0]!, 1, 1, 1];
      f.files[other(key)].data = randomBytes(r, f.files[other(key)].dims[0]!);
      s.dims = c === undefined ? [n, 1, 1] : [n, 1, 1, 1];
      s.data = new Uint8Array(n).fill(h! * w!);
      const labels = f.files[key.replace('images', 'labels') as FileKey];
      labels.dims = [n];
      labels.data = Uint8Array.from({ length: n }, (_, i) => i % f.classes);
      labels.gz = true; // small whatever n
      s.gz = true;
      const raw = encodeIdx(s.dims, s.data);
      const stream = pick(r, ['match', 'overrun', 'underrun', 'forged trailer']);
      const k = r.int(1, 100);
      if (stream === 'match') s.bytes = new Uint8Array(zlib.gzipSync(raw, { level: 1 }));
      if (stream === 'overrun') s.bytes = new Uint8Array(zlib.gzipSync(concat(raw, randomBytes(r, k)), { level: 1 }));
      if (stream === 'underrun') s.bytes = new Uint8Array(zlib.gzipSync(raw.subarray(0, raw.length - k), { level: 1 }));
      if (stream === 'forged trailer')
        s.bytes = withIsize(new Uint8Array(zlib.gzipSync(concat(raw, randomBytes(r, k)), { level: 1 })), raw.length);
      if (n > cap) return { kind: 'error', match: /exceed the cap of \d+ bytes \(the maxBytes option raises it\)/ };
      if (stream === 'match') return labelOutcome(f);
      return { kind: 'error', match: stream === 'underrun' ? /bytes short/ : /inflates to more/ };
    },
  ],
  [
    'images: wrong type or rank',
    (f, r) => {
      const key = pick(r, ['train-images', 't10k-images'] as const);
      const s = f.files[key];
      if (r.next() < 0.5) s.data = Int16Array.from(s.data);
      else s.dims = [s.dims[0]!, items(s) / s.dims[0]!];
      return { kind: 'error', match: /images must be ubyte \[N,H,W\] or \[N,H,W,C\]/ };
    },
  ],
  [
    'labels: float or rank 2',
    (f, r) => {
      const key = pick(r, ['train-labels', 't10k-labels'] as const);
      const s = f.files[key];
      if (r.next() < 0.5) s.data = Float32Array.from(s.data);
      else s.dims = [s.dims[0]!, 1];
      return { kind: 'error', match: /labels must be integers \[N\]/ };
    },
  ],
  [
    'train and test shapes differ',
    (f, r) => {
      const s = f.files[pick(r, ['train-images', 't10k-images'] as const)];
      s.dims = [...s.dims];
      s.dims[1]! += 1;
      s.data = randomBytes(r, items(s));
      return { kind: 'error', match: /train images are \[.*\] but test images are \[.*\]/ };
    },
  ],
  [
    'a file is /dev/zero, a folder or missing',
    (f, r) => {
      const special = pick(r, ['dev-zero', 'folder', 'missing'] as const);
      f.files[pick(r, FILE_KEYS)].special = special;
      return { kind: 'error', match: special === 'missing' ? /loadIdxDataset: no / : /not a regular file/ };
    },
  ],
  [
    'maxElements at the edge',
    (f, r) => {
      const most = Math.max(items(f.files['train-images']), items(f.files['t10k-images']));
      const d = pick(r, [-1, 0, 1]);
      if (most + d < 1) return labelOutcome(f);
      f.opts.maxElements = most + d;
      return d < 0
        ? { kind: 'error', match: /over the limit of \d+ \(\d+ bytes as float32\); the maxElements option/ }
        : labelOutcome(f);
    },
  ],
  [
    'a file truncated',
    (f, r) => {
      const s = f.files[pick(r, FILE_KEYS)];
      const b = fileBytes(s);
      s.bytes = b.subarray(0, r.int(0, b.length));
      return { kind: 'error' };
    },
  ],
  [
    "a file's bytes mutated",
    (f, r) => {
      const s = f.files[pick(r, FILE_KEYS)];
      const [, mutate] = pick(r, BYTE_MUTATORS);
      s.bytes = mutate(fileBytes(s), r) ?? fileBytes(s);
      return { kind: 'any' };
    },
  ],
];

/** What a loaded dataset must be: shapes, values in range, and (for a predicted success) the files' data exactly. */
function folderCheck(f: Folder, e: FolderExpect, d: ImageDataset): string | undefined {
  const limit = f.opts.classes ?? f.opts.maxClasses ?? 10_000;
  if (!(Number.isInteger(d.classes) && d.classes >= 1 && d.classes <= limit))
    return `${d.classes} classes (limit ${limit})`;
  if (e.classes !== undefined && d.classes !== e.classes) return `${d.classes} classes, expected ${e.classes}`;
  for (const [set, stem] of [
    [d.train, 'train'],
    [d.test, 't10k'],
  ] as const) {
    const [n, h, w, c] = set.xShape;
    if (set.x.length !== n! * h! * w! * c! || set.y.length !== n)
      return `${stem}: x ${set.x.length} values for [${set.xShape}], y ${set.y.length}`;
    for (let i = 0; i < set.y.length; i++)
      if (!(set.y[i]! >= 0 && set.y[i]! < d.classes))
        return `${stem}: label ${set.y[i]} at ${i} outside 0..${d.classes - 1}`;
    for (let i = 0; i < set.x.length; i++)
      if (!(set.x[i]! >= 0 && set.x[i]! <= 1)) return `${stem}: pixel ${set.x[i]} at ${i}`;
    if (e.kind !== 'ok') continue;
    const images = f.files[`${stem}-images`];
    const labels = f.files[`${stem}-labels`];
    if (n !== images.dims[0] || h !== images.dims[1] || w !== images.dims[2] || c !== (images.dims[3] ?? 1))
      return `${stem}: x [${set.xShape}] for images [${images.dims}]`;
    for (let i = 0; i < set.x.length; i++)
      if (set.x[i] !== Math.fround(images.data[i]! / 255))
        return `${stem}: pixel ${i} is ${set.x[i]}, the file holds ${images.data[i]}`;
    for (let i = 0; i < set.y.length; i++)
      if (set.y[i] !== labels.data[i]) return `${stem}: label ${i} is ${set.y[i]}, the file holds ${labels.data[i]}`;
  }
  return undefined;
}

describe(`data-folder fuzz (seed ${SEED})`, () => {
  it(`${FOLDER_CASES} mutated IDX folders load what the files hold or give a typed error, each within ${FOLDER_LIMIT_MS} ms and ${FOLDER_MEM >> 20} MiB`, () => {
    const failures: string[] = [];
    const per = new Map<string, { cases: number; ok: number; errors: number }>();
    let slowest = { ms: 0, what: '' };
    for (let i = 0; i < FOLDER_CASES; i++) {
      const r = caseRng(0xf01d, i);
      const f = validFolder(r);
      const [name, mutate] = pick(r, FOLDER_MUTATORS);
      const e = mutate(f, r);
      const what = `seed ${SEED} case ${i} (${name}; options ${JSON.stringify(f.opts)})`;
      const dir = path.join(folderRoot, `case-${i}`);
      writeFolder(dir, f);
      const before = process.memoryUsage().arrayBuffers;
      const t0 = performance.now();
      let d: ImageDataset | undefined;
      let err: unknown;
      try {
        d = loadIdxDataset(dir, f.opts);
      } catch (x) {
        err = x;
      }
      const ms = performance.now() - t0;
      const grew = process.memoryUsage().arrayBuffers - before;
      fs.rmSync(dir, { recursive: true, force: true });
      const tally = per.get(name) ?? { cases: 0, ok: 0, errors: 0 };
      per.set(name, tally);
      tally.cases++;
      if (ms > slowest.ms) slowest = { ms, what };
      const fail = (why: string) => failures.length < 25 && failures.push(`${what}: ${why}`);
      if (err !== undefined) {
        tally.errors++;
        const msg = String((err as Error)?.message ?? err);
        if (!(err instanceof WgnnError))
          fail(`threw ${(err as Error)?.constructor?.name} instead of a WgnnError: ${msg.slice(0, 300)}`);
        else if (e.kind === 'ok') fail(`${err.constructor.name} on a folder that is valid: ${msg.slice(0, 300)}`);
        else if (e.match && !e.match.test(msg))
          fail(`${err.constructor.name} "${msg.slice(0, 300)}" does not match ${e.match}`);
      } else {
        tally.ok++;
        if (e.kind === 'error') fail(`loaded a folder that is invalid${e.match ? ` (expected ${e.match})` : ''}`);
        const bad = folderCheck(f, e, d!);
        if (bad) fail(`loaded, but ${bad}`);
      }
      if (ms > FOLDER_LIMIT_MS) fail(`took ${ms.toFixed(0)} ms`);
      if (grew > FOLDER_MEM) fail(`arrayBuffers grew by ${grew} bytes`);
    }
    const rows = [...per].map(([n, t]) => `  ${n}: ${t.cases} cases, ${t.ok} loaded, ${t.errors} errors`);
    console.log(
      `fuzz data folders: ${FOLDER_CASES} cases, slowest ${slowest.ms.toFixed(1)} ms (${slowest.what})\n${rows.join('\n')}`,
    );
    expect(
      failures,
      `${failures.length}${failures.length === 25 ? '+' : ''} failing cases (WGNN_FUZZ_SEED sets another seed)`,
    ).toEqual([]);
    for (const [name] of FOLDER_MUTATORS)
      expect(per.get(name)?.cases ?? 0, name).toBeGreaterThan(FOLDER_CASES / FOLDER_MUTATORS.length / 3);
    const loaded = [...per.values()].reduce((a, t) => a + t.ok, 0);
    expect(loaded).toBeGreaterThan(FOLDER_CASES / 10);
    expect(loaded).toBeLessThan(FOLDER_CASES * 0.7);
  });

  it('gzip near the default 1 GiB cap: a 1 MB file declaring just under, at or over it is refused from its header, quickly and without allocating it', () => {
    // 2^30 bytes of zeros in ~1 MB: deflated once per 1 MiB piece, each piece ending byte-aligned (a sync flush)
    const gzipZeros = (head: Uint8Array, zeros: number) => {
      const piece = zlib.deflateRawSync(new Uint8Array(1 << 20), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      const parts = [
        Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
        zlib.deflateRawSync(head, { finishFlush: zlib.constants.Z_SYNC_FLUSH }),
      ];
      for (let left = zeros; left > 0; left -= 1 << 20) parts.push(piece); // whole pieces: zeros is a multiple of 1 MiB
      parts.push(zlib.deflateRawSync(new Uint8Array(0)), new Uint8Array(8)); // the last block, a trailer (its CRC wrong)
      return concat(...parts);
    };
    const header = (dims: number[]) => {
      const h = new Uint8Array(4 + 4 * dims.length);
      h[2] = 0x08;
      h[3] = dims.length;
      dims.forEach((d, i) => new DataView(h.buffer).setUint32(4 + 4 * i, d));
      return h;
    };
    const cases: [string, number[], IdxDatasetOptions, RegExp][] = [
      [
        'just under the cap: over maxElements as float32',
        [2 ** 30 - 16, 1, 1],
        {},
        /\[1073741808,1,1\] images hold 1073741808 values, over the limit of 268435456 \(1073741824 bytes as float32\)/,
      ],
      [
        'at the cap, maxElements raised: the labels disagree',
        [2 ** 30, 1, 1],
        { maxElements: 2 ** 30 },
        /has 1073741824 images but train-labels-idx1-ubyte has 3 labels/,
      ],
      [
        'just over the cap',
        [2 ** 30 + 1, 1, 1],
        {},
        /dim 0 = 1073741825 at offset 4: .* exceed the cap of 1073741824 bytes/,
      ],
    ];
    for (const [what, dims, opts, match] of cases) {
      const r = new Rng(1);
      const f = validFolder(r);
      f.files['train-images'].gz = true;
      f.files['train-images'].bytes = gzipZeros(header(dims), 2 ** 30);
      f.files['train-labels'].dims = [3];
      f.files['train-labels'].data = Uint8Array.of(0, 0, 0);
      f.files['train-labels'].gz = false;
      f.dotted = false;
      const dir = path.join(folderRoot, `near-cap-${dims[0]}`);
      writeFolder(dir, f);
      const before = process.memoryUsage().arrayBuffers;
      const t0 = performance.now();
      let err: unknown;
      try {
        loadIdxDataset(dir, opts);
      } catch (x) {
        err = x;
      }
      const ms = performance.now() - t0;
      fs.rmSync(dir, { recursive: true, force: true });
      expect(err, what).toBeInstanceOf(ParseError);
      expect((err as Error).message, what).toMatch(match);
      expect(ms, what).toBeLessThan(1000);
      expect(process.memoryUsage().arrayBuffers - before, what).toBeLessThan(16 << 20);
    }
  });
});
