// Checkpoints verified whole (issue 18, classes 2 and 3): a checksum of the entire file, the state against its schema
// and the checkpoint against the model it resumes, all before anything is assigned, so a refused checkpoint leaves
// model, optimizer and file as they were; a writer that refuses non-finite tensors; the checkpoint path's folder
// checked before training. On the CPU reference backend and on WebGPU.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { FileError, ParseError, WgnnError } from '../src/errors.js';
import { saveCheckpoint } from '../src/io/checkpoint.js';
import { parseSafetensors, serializeSafetensors, type SafetensorsEntry } from '../src/io/safetensors.js';
import { layers, sequential, setSeed, type Sequential } from '../src/nn/index.js';
import { adam, rmsprop, sgd, type Optimizer } from '../src/optim/index.js';
import { Rng } from '../src/rng.js';
import { memory, setDefaultBackend, tensor, type Tensor } from '../src/tensor.js';
import { cpu, gpuBackend } from './helpers.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'wgnn-ckpt-'));
});
afterAll(async () => {
  setDefaultBackend(undefined);
  await rm(root, { recursive: true, force: true });
});

// 24 rows of 6 features, 3 classes: 3 steps an epoch at batch 8.
const rng = new Rng(17);
const X = { data: Float32Array.from({ length: 24 * 6 }, () => rng.uniform(-1, 1)), shape: [24, 6] };
const Y = { data: Int32Array.from({ length: 24 }, () => rng.int(0, 3)), shape: [24] };

interface Net {
  m: Sequential;
  opt: Optimizer;
}
/** A 2-layer MLP (4 tensors); `units` of the hidden layer and the optimizer vary for the mismatch tests. */
function net(seed: number, o: { units?: number; opt?: () => Optimizer; inputShape?: boolean } = {}): Net {
  setSeed(seed);
  const m = sequential([
    layers.dense({ units: o.units ?? 5, activation: 'relu', ...(o.inputShape === false ? {} : { inputShape: [6] }) }),
    layers.dense({ units: 3, activation: 'softmax' }),
  ]);
  const opt = (o.opt ?? (() => adam(0.01)))();
  m.compile({ optimizer: opt, loss: 'sparseCategoricalCrossentropy' });
  return { m, opt };
}
const free = (...ns: Net[]) => ns.forEach((n) => (n.opt.dispose(), n.m.dispose()));

/** Everything a resume may change, as bytes: weights and buffers, optimizer state and steps, RNGs. */
async function snapshot({ m, opt }: Net): Promise<string[]> {
  const hex = (d: ArrayBufferView) => Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('hex');
  const out = await Promise.all(m.namedTensors().map(async ([n, t]) => `${n} ${hex(await t.data())}`));
  const st = opt.state(m.parameters());
  for (const [i, ps] of st.params.entries()) {
    for (const [k, t] of Object.entries(ps?.slots ?? {}))
      out.push(`optim ${i} ${k} ${ps!.step} ${hex(await t.data())}`);
    for (const t of Object.values(ps?.slots ?? {})) t.dispose();
  }
  out.push(`stepCount ${st.stepCount}`, `rngs ${m.layers.map((l) => l.rng.state).join(',')}`);
  return out;
}

/** A trained net (one epoch: 3 steps) and its checkpoint's bytes (cursor: epoch 1, batch 0). */
async function trained(seed = 1, o: Parameters<typeof net>[1] = {}): Promise<Net & { bytes: Uint8Array }> {
  const n = net(seed, o);
  await n.m.fit(X, Y, { epochs: 1, batchSize: 8, seed: 3, verbose: 0 });
  return { ...n, bytes: await n.m.saveCheckpoint(undefined, n.opt, { epoch: 1, batch: 0 }) };
}

/** A net with its own weights and optimizer state (one step), to resume into: a failed resume must leave all of it. */
async function target(seed = 99, o: Parameters<typeof net>[1] = {}): Promise<Net> {
  const n = net(seed, o);
  await n.m.fit(
    { data: X.data.slice(0, 48), shape: [8, 6] },
    { data: Y.data.slice(0, 8), shape: [8] },
    { batchSize: 8, verbose: 0 },
  );
  return n;
}

const headerLength = (b: Uint8Array) => Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
const headerText = (b: Uint8Array) => dec.decode(b.subarray(8, 8 + headerLength(b)));

/** Replaces `from` by `to` (same length) in the header, in place in a copy: a raw edit, the checksum left as it was. */
function rawEdit(b: Uint8Array, from: string, to: string): Uint8Array {
  expect(to.length).toBe(from.length);
  const at = headerText(b).indexOf(from);
  expect(at, `'${from}' in the header`).toBeGreaterThanOrEqual(0);
  const out = b.slice();
  out.set(enc.encode(to), 8 + at);
  return out;
}

/**
 * Recomputes the checksum of a file (as a buggy writer or a deliberate editor would), with zlib's CRC-32 as the
 * oracle: every byte but the 8 hex digits after `"checksum":"crc32:` at the head of the header.
 */
function reseal(b: Uint8Array): Uint8Array {
  const key = '{"__metadata__":{"checksum":"crc32:';
  expect(headerText(b).startsWith(key)).toBe(true);
  const at = 8 + key.length;
  const crc = zlib.crc32(b.subarray(at + 8), zlib.crc32(b.subarray(0, at)));
  const out = b.slice();
  out.set(enc.encode(crc.toString(16).padStart(8, '0')), at);
  return out;
}

/** Takes a checkpoint apart (entries in file order, state as JSON), lets `edit` change it, puts it back and reseals. */
function rebuild(
  b: Uint8Array,
  edit: (entries: SafetensorsEntry[], state: Record<string, unknown>) => SafetensorsEntry[] | void,
): Uint8Array {
  const p = parseSafetensors(b);
  let entries: SafetensorsEntry[] = [...p.tensors].map(([name, t]) => ({
    name,
    dtype: t.dtype,
    shape: t.shape,
    data: t.data,
  }));
  const state = JSON.parse(p.metadata.state!) as Record<string, unknown>;
  entries = edit(entries, state) ?? entries;
  // DEEP stands for an array nested 10,000 deep, which JSON.parse takes and JSON.stringify cannot write.
  const text = JSON.stringify(state).replace(`"${DEEP}"`, `${'['.repeat(10_000)}${']'.repeat(10_000)}`);
  return reseal(serializeSafetensors(entries, { ...p.metadata, state: text }));
}
const DEEP = '(an array nested 10,000 deep)';

const rename = (from: string, to: string) => (es: SafetensorsEntry[]) =>
  es.map((e) => (e.name === from ? { ...e, name: to } : e));

async function refused(
  p: Promise<unknown>,
  pattern: RegExp,
  type: new (...a: never[]) => Error = ParseError,
): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${type.name} ${pattern}`).toBeInstanceOf(type);
  expect((err as Error).message).toMatch(pattern);
}

describe.each(['cpu', 'webgpu'] as const)('checkpoints [%s]', (which) => {
  let b: Backend;
  let dir: string;
  beforeAll(async () => {
    b = which === 'cpu' ? cpu : await gpuBackend();
  });
  beforeEach(async () => {
    setDefaultBackend(b);
    dir = await mkdtemp(join(root, `${which}-`));
  });

  it('a resume restores weights, optimizer state, steps, RNGs and cursor bitwise', async () => {
    const a = await trained();
    const t = await target();
    const cursor = await t.m.loadCheckpoint(a.bytes, t.opt);
    expect(cursor).toEqual({ epoch: 1, batch: 0 });
    expect(await snapshot(t)).toEqual(await snapshot(a));
    // and both go on alike
    for (const n of [a, t]) await n.m.fit(X, Y, { epochs: 1, batchSize: 8, seed: 5, verbose: 0 });
    expect(await snapshot(t)).toEqual(await snapshot(a));
    free(a, t);
  });

  it('a flipped bit in a tensor name is a ParseError, model and file untouched (was: that layer kept its fresh weights)', async () => {
    const a = await trained();
    const path = join(dir, 'ck.safetensors');
    // "model.layers.1.kernel" -> "model.layers.1.kernem": the last letter's lowest bit
    writeFileSync(path, rawEdit(a.bytes, '"model.layers.1.kernel"', '"model.layers.1.kernem"'));
    const onDisk = readFileSync(path);
    const t = await target();
    const before = await snapshot(t);
    let steps = 0;
    const fit = t.m.fit(X, Y, {
      epochs: 2,
      batchSize: 8,
      seed: 3,
      verbose: 0,
      checkpoint: { path, everySteps: 1, resume: true },
      callbacks: { onBatchEnd: () => void steps++ },
    });
    await refused(fit, /checksum/);
    expect(steps).toBe(0);
    expect(await snapshot(t)).toEqual(before);
    expect(readFileSync(path).equals(onDisk)).toBe(true);
    expect(readdirSync(dir)).toEqual(['ck.safetensors']);
    free(a, t);
  });

  it('an edited data cursor is a ParseError before any step (was: epochs skipped or repeated)', async () => {
    const a = await trained();
    const path = join(dir, 'ck.safetensors');
    writeFileSync(path, rawEdit(a.bytes, '\\"epoch\\":1', '\\"epoch\\":0'));
    const t = await target();
    const before = await snapshot(t);
    await refused(
      t.m.fit(X, Y, {
        epochs: 2,
        batchSize: 8,
        seed: 3,
        verbose: 0,
        checkpoint: { path, everySteps: 100, resume: true },
      }),
      /checksum/,
    );
    expect(await snapshot(t)).toEqual(before);
    free(a, t);
  });

  it('every single-bit flip anywhere in the file (length, header, padding, tensor bytes) is a ParseError; nothing changes', async () => {
    const a = await trained();
    const t = await target();
    const before = await snapshot(t);
    const r = new Rng(8);
    const every = which === 'cpu' ? 1 : 5; // the GPU run samples every 5th byte (each check reads the GPU weights)
    let tried = 0;
    for (let i = 0; i < a.bytes.length; i += every) {
      const bad = a.bytes.slice();
      bad[i]! ^= 1 << r.int(0, 8);
      await expect(t.m.loadCheckpoint(bad, t.opt), `bit flip in byte ${i} of ${a.bytes.length}`).rejects.toBeInstanceOf(
        ParseError,
      );
      tried++;
      if (i % 97 === 0) expect(await snapshot(t)).toEqual(before);
    }
    expect(tried).toBeGreaterThan(a.bytes.length / every - 1);
    expect(await snapshot(t)).toEqual(before);
    free(a, t);
  });

  it('an older checkpoint (its checksum covered only the tensor bytes) is a ParseError saying so', async () => {
    const a = await trained();
    const p = parseSafetensors(a.bytes);
    const entries = [...p.tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.data }));
    const old = serializeSafetensors(entries, {
      format: 'wgnn.checkpoint',
      state: p.metadata.state!,
      crc32: '01234567',
    });
    const t = await target();
    await refused(t.m.loadCheckpoint(old, t.opt), /older wgnn checkpoint, whose checksum covers only its tensor bytes/);
    await refused(
      t.m.loadCheckpoint(await a.m.save(), t.opt),
      /not a wgnn checkpoint \(metadata format 'wgnn\.sequential'/,
    );
    // a header that is JSON but not safetensors: the message must not call a toString the file defines
    const odd = serializeSafetensors([], { format: 'x' });
    const text = enc.encode(JSON.stringify({ __metadata__: { format: { toString: 'x' } } }).padEnd(32, ' '));
    const hostile = new Uint8Array(8 + text.length);
    new DataView(hostile.buffer).setBigUint64(0, BigInt(text.length), true);
    hostile.set(text, 8);
    await refused(t.m.loadCheckpoint(hostile, t.opt), /not a wgnn checkpoint \(metadata format ''/);
    await refused(t.m.loadCheckpoint(odd, t.opt), /not a wgnn checkpoint \(metadata format 'x'/);
    free(a, t);
  });

  // Edits that keep the checksum right (re-sealed), so the schema and the model checks must catch them on their own.
  const cases: [string, (es: SafetensorsEntry[], s: Record<string, unknown>) => SafetensorsEntry[] | void, RegExp][] = [
    [
      'an empty state',
      (_, s) => void Object.keys(s).forEach((k) => delete s[k]),
      /state\.cursor is undefined; expected an object/,
    ],
    [
      'cursor.epoch -1',
      (_, s) => void ((s.cursor as { epoch: number }).epoch = -1),
      /state\.cursor\.epoch is -1; expected an integer >= 0/,
    ],
    ['cursor.batch 1.5', (_, s) => void ((s.cursor as { batch: number }).batch = 1.5), /state\.cursor\.batch is 1\.5/],
    ['cursor.epoch "1"', (_, s) => void ((s.cursor as { epoch: unknown }).epoch = '1'), /state\.cursor\.epoch is "1"/],
    ['no rngs', (_, s) => void delete s.rngs, /state\.rngs is undefined/],
    [
      'one rng for two layers',
      (_, s) => void (s.rngs as number[]).pop(),
      /state\.rngs has 1 entries; expected one per layer \(2\)/,
    ],
    ['an rng of 2^32', (_, s) => void ((s.rngs as number[])[1] = 2 ** 32), /state\.rngs\[1\] is 4294967296/],
    ['no optimizer', (_, s) => void delete s.optimizer, /state\.optimizer is undefined/],
    [
      'optimizer.stepCount null',
      (_, s) => void ((s.optimizer as { stepCount: unknown }).stepCount = null),
      /state\.optimizer\.stepCount is null/,
    ],
    [
      'steps for 3 of 4 parameters',
      (_, s) => void (s.optimizer as { steps: unknown[] }).steps.pop(),
      /optimizer state for 3 parameters; the model has 4/,
    ],
    [
      'another optimizer',
      (_, s) => void ((s.optimizer as { name: string }).name = 'sgd'),
      /optimizer is "sgd"; this one is adam/,
    ],
    [
      'an extra field in a layer entry',
      (_, s) => void ((s.layers as Record<string, unknown>[])[0]!.name = 'dense'),
      /state\.layers\[0\]\.name is "dense"; expected no such field \(class, config only\)/,
    ],
    [
      'an extra cursor field',
      (_, s) => void ((s.cursor as Record<string, unknown>).step = 3),
      /state\.cursor\.step is 3; expected no such field/,
    ],
    [
      'an extra field',
      (_, s) => void (s.epochs = 3),
      /state\.epochs is 3; expected no such field \(cursor, layers, optimizer, rngs only\)/,
    ],
    [
      'the optimizer state dropped',
      (es) => es.filter((e) => !e.name.startsWith('optim.')),
      /parameter 0 has no 'exp_avg' state/,
    ],
    [
      'one slot dropped',
      (es) => es.filter((e) => e.name !== 'optim.2.exp_avg_sq'),
      /parameter 2 has no 'exp_avg_sq' state/,
    ],
    [
      'a slot it does not keep',
      (es) => [...es, { ...es.find((e) => e.name === 'optim.1.exp_avg')!, name: 'optim.1.momentum_buffer' }],
      /parameter 1 has 'momentum_buffer' state, which adam/,
    ],
    [
      'state for a parameter with step null',
      (_, s) => void ((s.optimizer as { steps: unknown[] }).steps[3] = null),
      /optim\.3\.exp_avg" is state of parameter 3, which the checkpoint says has none/,
    ],
    [
      'a parameter index past the model',
      (es) => rename('optim.3.exp_avg', 'optim.4.exp_avg')(es),
      /"optim\.4\.exp_avg" is not one of the model's/,
    ],
    [
      'a renamed weight',
      rename('model.layers.1.kernel', 'model.layers.1.kernem'),
      /"model\.layers\.1\.kernem" is not one of the model's/,
    ],
    [
      'a weight missing',
      (es) => es.filter((e) => e.name !== 'model.layers.0.bias'),
      /the model's layers\.0\.bias \[5\] is not in the checkpoint/,
    ],
    [
      'a transposed shape',
      (es) => es.map((e) => (e.name === 'model.layers.1.kernel' ? { ...e, shape: [3, 5] } : e)),
      /model\.layers\.1\.kernel is float32\[3,5\] in the checkpoint; the model's is float32\[5,3\]/,
    ],
    [
      'an int32 weight',
      (es) =>
        es.map((e) => (e.name === 'model.layers.1.bias' ? { ...e, dtype: 'int32', data: Int32Array.from(e.data) } : e)),
      /model\.layers\.1\.bias is int32\[3\]/,
    ],
    [
      'a NaN weight',
      (es) =>
        es.map((e) =>
          e.name === 'model.layers.0.kernel'
            ? { ...e, data: Float32Array.from(e.data, (v, i) => (i === 7 ? NaN : v)) }
            : e,
        ),
      /"model\.layers\.0\.kernel" holds NaN at index 7/,
    ],
    [
      'an Inf in the optimizer state',
      (es) =>
        es.map((e) =>
          e.name === 'optim.0.exp_avg_sq' ? { ...e, data: Float32Array.from(e.data, () => Infinity) } : e,
        ),
      /"optim\.0\.exp_avg_sq" holds Infinity at index 0/,
    ],
    [
      'units 5 -> 4 in the layer stack',
      (_, s) => void ((s.layers as { config: { units: number } }[])[0]!.config.units = 4),
      /layer 0 \(Dense\) has units 4 in the checkpoint, 5 in the model/,
    ],
    [
      'another activation',
      (_, s) => void ((s.layers as { config: { activation: string } }[])[1]!.config.activation = 'sigmoid'),
      /layer 1 \(Dense\) has activation "sigmoid" in the checkpoint, "softmax" in the model/,
    ],
    [
      'another layer class',
      (_, s) => void ((s.layers as { class: string }[])[1]!.class = 'Dropout'),
      /layer 1 is a "Dropout" in the checkpoint, a Dense in the model/,
    ],
    [
      'a layer class "__proto__"',
      (_, s) => void ((s.layers as { class: string }[])[0]!.class = '__proto__'),
      /layer 0 is a "__proto__"/,
    ],
    [
      'a config value nested 10,000 deep',
      (_, s) => void ((s.layers as { config: Record<string, unknown> }[])[0]!.config.units = DEEP),
      /layer 0 \(Dense\) has units \[\.\.\.\] in the checkpoint, 5 in the model/,
    ],
    [
      'a third layer',
      (_, s) => void ((s.layers as unknown[]).push({ class: 'Flatten', config: {} }), (s.rngs as number[]).push(0)),
      /of 3 layers, the model has 2/,
    ],
  ];
  it.each(cases)('re-sealed, %s: a ParseError naming it; model and optimizer untouched', async (_, edit, pattern) => {
    const a = await trained();
    const t = await target();
    const before = await snapshot(t);
    await refused(t.m.loadCheckpoint(rebuild(a.bytes, edit), t.opt), pattern);
    expect(await snapshot(t)).toEqual(before);
    free(a, t);
  });

  it('re-sealed, state that is not JSON: a ParseError', async () => {
    const a = await trained();
    const p = parseSafetensors(a.bytes);
    const entries = [...p.tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.data }));
    const t = await target();
    await refused(
      t.m.loadCheckpoint(reseal(serializeSafetensors(entries, { ...p.metadata, state: '{"cursor":' })), t.opt),
      /state is not valid JSON/,
    );
    free(a, t);
  });

  it('a checkpoint of another architecture or optimizer is a ParseError naming the difference; nothing changes', async () => {
    const mismatches: [Parameters<typeof net>[1], Parameters<typeof net>[1], RegExp][] = [
      [{ units: 5 }, { units: 7 }, /layer 0 \(Dense\) has units 5 in the checkpoint, 7 in the model/],
      [{}, { opt: () => sgd({ lr: 0.1, momentum: 0.9 }) }, /optimizer is "adam"; this one is sgd/],
      [
        { opt: () => rmsprop({ lr: 0.01, centered: true }) },
        { opt: () => rmsprop(0.01) },
        /parameter 0 has 'grad_avg' state, which rmsprop with these options does not keep/,
      ],
      [
        { opt: () => sgd(0.1) },
        { opt: () => sgd({ lr: 0.1, momentum: 0.9 }) },
        /parameter 0 has no 'momentum_buffer' state/,
      ],
    ];
    for (const [from, to, pattern] of mismatches) {
      const a = await trained(1, from);
      const t = await target(99, to);
      const before = await snapshot(t);
      await refused(t.m.loadCheckpoint(a.bytes, t.opt), pattern);
      expect(await snapshot(t)).toEqual(before);
      free(a, t);
    }
  });

  it('the writer refuses NaN and Inf (weights or optimizer state): WgnnError naming it, the last good file kept byte for byte', async () => {
    const a = await trained();
    const path = join(dir, 'ck.safetensors');
    await a.m.saveCheckpoint(path, a.opt, { epoch: 1, batch: 0 });
    const good = readFileSync(path);
    const dense = a.m.layers[1] as unknown as { bias: Tensor };
    const bias = dense.bias;
    dense.bias = tensor([0, NaN, 0]).variable();
    await refused(
      a.m.saveCheckpoint(path, a.opt, { epoch: 2, batch: 0 }),
      /tensor model\.layers\.1\.bias \[3\] holds NaN at index 1; a checkpoint is never written from a non-finite state/,
      WgnnError,
    );
    dense.bias.dispose();
    dense.bias = bias;
    // An Inf gradient makes Adam's second moment Inf.
    const [p0] = a.m.parameters();
    p0!.grad = tensor(new Float32Array(p0!.size).fill(Infinity), p0!.shape);
    a.opt.step([p0!]);
    a.opt.zeroGrad([p0!]);
    await refused(
      a.m.saveCheckpoint(path, a.opt, { epoch: 2, batch: 0 }),
      /holds (NaN|-?Infinity) at index 0/,
      WgnnError,
    );
    const w = tensor([1, -Infinity]);
    await refused(saveCheckpoint(path, { w }, {}), /tensor w \[2\] holds -Infinity at index 1/, WgnnError);
    w.dispose();
    expect(readFileSync(path).equals(good)).toBe(true);
    expect(readdirSync(dir)).toEqual(['ck.safetensors']);
    free(a);
  });

  it('a checkpoint cursor that is not a count is refused by the writer', async () => {
    const a = await trained();
    await refused(
      a.m.saveCheckpoint(undefined, a.opt, { epoch: -1, batch: 0 }),
      /state\.cursor\.epoch is -1/,
      WgnnError,
    );
    await refused(
      a.m.saveCheckpoint(undefined, a.opt, { epoch: 0, batch: NaN }),
      /state\.cursor\.batch is null/,
      WgnnError,
    );
    free(a);
  });

  it('a model without an inputShape resumes through fit: built from the data first (was: refused after a partial restore)', async () => {
    const straight = net(4, { inputShape: false });
    await straight.m.fit(X, Y, { epochs: 2, batchSize: 8, seed: 3, verbose: 0 });
    const path = join(dir, 'ck.safetensors');
    const first = net(4, { inputShape: false });
    await first.m.fit(X, Y, { epochs: 1, batchSize: 8, seed: 3, verbose: 0, checkpoint: { path, everySteps: 3 } });
    const second = net(5, { inputShape: false });
    await second.m.fit(X, Y, {
      epochs: 2,
      batchSize: 8,
      seed: 3,
      verbose: 0,
      checkpoint: { path, everySteps: 100, resume: true },
    });
    expect(await snapshot(second)).toEqual(await snapshot(straight));
    free(straight, first, second);
  });

  it('fit with a checkpoint in a missing folder is a FileError before the first step (was: at the first checkpoint)', async () => {
    const t = net(1);
    let steps = 0;
    const path = join(dir, 'no-such-folder', 'ck.safetensors');
    const fit = t.m.fit(X, Y, {
      epochs: 1,
      batchSize: 8,
      verbose: 0,
      checkpoint: { path, everySteps: 3 },
      callbacks: { onBatchEnd: () => void steps++ },
    });
    await refused(
      fit,
      /no-such-folder.ck\.safetensors cannot be written: the folder .*no-such-folder does not exist \(ENOENT\)/,
      FileError,
    );
    expect(steps).toBe(0);
    free(t);
  });

  it('leaves no tensors behind', () => {
    expect(memory(b).liveTensors).toBe(0);
  });
});
