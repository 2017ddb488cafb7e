// The ONNX inference benchmark (`npm run bench -- onnx`): the seed CNN and the char GPT as scripts/onnx_models.py
// exports them from PyTorch, loaded by wgnn's loadOnnx on its WebGPU backend beside onnxruntime-web's WebGPU execution
// provider (same Dawn instance, same adapter), and on wgnn's WASM backend beside onnxruntime-node (CPU). Every engine's
// output is checked within 1e-4 of onnxruntime-node's before it is timed; a run goes host to host (upload, graph,
// read-back), as a user calls either library; the two engines of a row alternate trial by trial.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as wg from '../src/index.js';
import { setDefaultBackend } from '../src/internal.js';
import {
  checkAgainst,
  emptyRow,
  type Case,
  type Check,
  type Engine,
  type EngineResult,
  type Env,
  type FamilyOpts,
  type HostTensor,
  type Row,
} from './harness.js';
import { loadOrtNode, loadOrtWeb, type OrtPeer, type OrtSession } from './peers/onnxruntime.js';
import { msg } from './peers/peer.js';
import { stats } from './timer.js';

type ModelName = 'cnn' | 'gpt';
type Device = 'webgpu' | 'cpu';

/** The two models of scripts/onnx_models.py timed here: per-sample input, and forward flops per sample. */
const MODELS: Record<ModelName, { what: string; sample: number[]; vocab: number; out: number[]; flops: number }> = {
  cnn: {
    what: 'seed CNN',
    sample: [1, 28, 28],
    vocab: 0,
    out: [10],
    // conv 3x3 1->32 on 26², conv 3x3 32->64 on 11², dense 1600->128, dense 128->10 (pooling and relu not counted).
    flops: 2 * (26 * 26 * 32 * 9 + 11 * 11 * 64 * 9 * 32 + 1600 * 128 + 128 * 10),
  },
  gpt: {
    what: 'char GPT',
    sample: [16],
    vocab: 29,
    out: [16, 29],
    // T 16, d 32, 2 blocks: per block qkv 3d², attention 2·T·d, projection d², MLP 8d² per token; head d·V per token.
    flops: 2 * 16 * (2 * (3 * 32 * 32 + 2 * 16 * 32 + 32 * 32 + 8 * 32 * 32) + 32 * 29),
  },
};

const TOL = { atol: 1e-4, rtol: 0 };
/** The peer of each device, and its name in the table. */
const PEER: Record<Device, { name: string; wgnn: string }> = {
  webgpu: { name: 'onnxruntime-web (webgpu EP)', wgnn: 'wgnn (WebGPU)' },
  cpu: { name: 'onnxruntime-node (cpu EP)', wgnn: 'wgnn (WASM backend)' },
};

interface OnnxCase {
  model: ModelName;
  batch: number;
  device: Device;
}

export function onnxCases(o: FamilyOpts): Case[] {
  const batches = o.batch ? [o.batch] : [1, 64];
  const out: Case[] = [];
  for (const model of ['cnn', 'gpt'] as const)
    for (const batch of batches)
      for (const device of ['webgpu', 'cpu'] as const) {
        const m = MODELS[model];
        const meta: OnnxCase = { model, batch, device };
        const run = (): never => {
          throw new Error('onnx cases run through bench/onnx.ts runOnnx');
        };
        out.push({
          family: 'onnx',
          id: `${model}-b${batch}-${device}`,
          label: `${m.what} b${batch} ${device === 'webgpu' ? 'WebGPU' : 'CPU'}`,
          bound: 'compute',
          flops: m.flops * batch,
          bytes: 0,
          meta: meta as unknown as Record<string, unknown>,
          inputs: () => [],
          check: run,
          wgnn: run,
          tfjs: 'ONNX inference: onnxruntime is the peer here',
          jax: 'ONNX inference: onnxruntime is the peer here',
        });
      }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The models (made once per process by the committed script, as the tests make them) and the peers (loaded once).

let files: Promise<Record<ModelName, Uint8Array>> | undefined;
function modelFiles(): Promise<Record<ModelName, Uint8Array>> {
  files ??= Promise.resolve().then(() => {
    const dir = mkdtempSync(join(tmpdir(), 'wgnn-bench-onnx-'));
    try {
      execFileSync('/usr/bin/python3', [join('scripts', 'onnx_models.py'), dir], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const read = (n: string) => new Uint8Array(readFileSync(join(dir, `${n}.onnx`)));
      return { cnn: read('cnn'), gpt: read('gpt') };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  return files;
}

const peers: Partial<Record<Device, Promise<OrtPeer>>> = {};
const peerOf = (d: Device): Promise<OrtPeer> => (peers[d] ??= d === 'webgpu' ? loadOrtWeb() : loadOrtNode());

function inputs(model: ModelName, batch: number, set: number): HostTensor {
  const m = MODELS[model];
  const shape = [batch, ...m.sample];
  const n = shape.reduce((a, b) => a * b, 1);
  const r = new wg.Rng(1000 * set + batch + (model === 'gpt' ? 7 : 0));
  const data = m.vocab
    ? Int32Array.from({ length: n }, () => r.int(0, m.vocab))
    : Float32Array.from({ length: n }, () => r.uniform(0, 1));
  return { data, shape };
}

/** One engine of a row: host input in, host output out. */
interface Contender {
  who: 'wgnn' | 'ort';
  name: string;
  run(x: HostTensor): Promise<ArrayLike<number>>;
  dispose(): Promise<void> | void;
}

/** loadOnnx's model on `backend`, run in inference mode (no tape), its output read back. */
function wgnnContender(bytes: Uint8Array, backend: wg.Backend, name: string): Contender {
  setDefaultBackend(backend);
  const model = wg.interop.loadOnnx(bytes);
  model.eval();
  return {
    who: 'wgnn',
    name,
    run: async (x) => {
      const y = wg.noGrad(() => wg.tidy(() => model.forward(wg.tensor(x.data, x.shape, { backend }))));
      try {
        return await y.data();
      } finally {
        y.dispose();
      }
    },
    dispose: () => model.dispose(),
  };
}

async function ortContender(peer: OrtPeer, bytes: Uint8Array, name: string): Promise<Contender> {
  const s: OrtSession = await peer.open(bytes);
  return { who: 'ort', name, run: (x) => s.run(x), dispose: () => s.release() };
}

/** Long runs get fewer trials (as timer.ts's measure). */
const LONG_RUN_MS = 250;

/** Validates each contender on set 0, then times them, alternating trial by trial. */
async function validateAndTime(cs: Contender[], sets: HostTensor[], check: Check, env: Env): Promise<EngineResult[]> {
  const res: EngineResult[] = cs.map(() => ({ status: 'error' }));
  const live: number[] = [];
  const est: number[] = [];
  for (const [i, c] of cs.entries()) {
    const t0 = performance.now();
    try {
      const got = await c.run(sets[0]!); // the first run compiles
      const chk = check.compare(got, c.name);
      res[i] = { status: chk.ok ? 'ok' : 'fail', check: { how: check.how, maxErr: chk.maxErr, checked: chk.checked } };
      if (!chk.ok) res[i]!.why = chk.error!;
      else {
        const t1 = performance.now();
        for (const x of sets) await c.run(x);
        est.push((performance.now() - t1) / sets.length);
        live.push(i);
      }
    } catch (e) {
      res[i] = { status: 'error', why: msg(e) };
    }
    res[i]!.spentMs = Math.round(performance.now() - t0);
  }
  const o = env.timing;
  const reps = live.map((_, k) => Math.max(1, Math.min(o.maxReps, Math.round(o.trialMs / Math.max(est[k]!, 1e-3)))));
  const trials = Math.max(...est, 0) > LONG_RUN_MS ? Math.min(3, o.trials) : o.trials;
  const wall: number[][] = live.map(() => []);
  for (let t = 0; t < trials; t++)
    for (const [k, i] of live.entries()) {
      const t0 = performance.now();
      try {
        for (let r = 0; r < reps[k]!; r++) await cs[i]!.run(sets[(t * reps[k]! + r) % sets.length]!);
      } catch (e) {
        res[i] = { ...res[i]!, status: 'error', why: msg(e) };
      }
      wall[k]!.push((performance.now() - t0) / reps[k]!);
    }
  for (const [k, i] of live.entries())
    if (res[i]!.status === 'ok') res[i]!.timing = { reps: reps[k]!, trials, wall: stats(wall[k]!) };
  return res;
}

/** A row's engines: wgnn on the row's device, and the onnxruntime of that device under `ort`. */
type OnnxEngines = Row['engines'] & { ort?: EngineResult };

/** Runs one case: the models, the oracle's output, then wgnn and its onnxruntime peer. Never throws. */
export async function runOnnx(c: Case, env: Env): Promise<Row> {
  const meta = c.meta as unknown as OnnxCase;
  const row = emptyRow(c);
  const engines = row.engines as OnnxEngines;
  let bytes: Uint8Array;
  try {
    bytes = (await modelFiles())[meta.model];
  } catch (e) {
    return {
      ...row,
      skipped: `no test models (scripts/onnx_models.py needs python3-torch and python3-onnx): ${msg(e)}`,
    };
  }
  const sets = [0, 1, 2].map((s) => inputs(meta.model, meta.batch, s));
  let check: Check;
  try {
    const oracle = await (await peerOf('cpu')).open(bytes);
    const want = await oracle.run(sets[0]!);
    await oracle.release();
    check = checkAgainst('onnxruntime-node', `${meta.model} logits`, want, TOL, 0);
  } catch (e) {
    engines.wgnn = { status: 'error', why: `the reference (onnxruntime-node): ${msg(e)}` };
    return row;
  }
  let wasm: wg.Backend | undefined;
  const cs: Contender[] = [];
  const peerName = PEER[meta.device].name;
  let peer: OrtPeer | string;
  try {
    peer = await peerOf(meta.device);
  } catch (e) {
    peer = `unavailable: ${msg(e)}`;
  }
  try {
    try {
      const backend = meta.device === 'webgpu' ? env.gpu : (wasm = await wg.init({ backend: 'wasm', quiet: true }));
      cs.push(wgnnContender(bytes, backend, PEER[meta.device].wgnn));
    } catch (e) {
      engines.wgnn = { status: 'error', why: msg(e) };
    }
    if (typeof peer !== 'string') {
      try {
        cs.push(await ortContender(peer, bytes, peerName));
      } catch (e) {
        engines.ort = { status: 'error', why: msg(e) };
      }
    } else engines.ort = { status: 'n/a', why: peer };
    const res = await validateAndTime(cs, sets, check, env);
    cs.forEach((x, i) => (engines[x.who] = { ...res[i]!, kernel: x.name }));
  } finally {
    for (const x of cs) await x.dispose();
    setDefaultBackend(undefined);
    if (wasm) wg.shutdown();
  }
  row.meta = {
    ...row.meta,
    input: sets[0]!.shape,
    source: 'scripts/onnx_models.py (torch.onnx.export, opset 17)',
    reference: 'onnxruntime-node (cpu EP), |err| <= 1e-4',
    peer: typeof peer === 'string' ? peer : peer.description,
  };
  const w = engines.wgnn?.timing?.wall.median;
  const p = engines.ort?.timing?.wall.median;
  if (w && p) row.meta.peerMsOverWgnnMs = p / w;
  return row;
}

// ---------------------------------------------------------------------------------------------------------------
// The table.

const f = (x: number | undefined): string =>
  x === undefined ? '—' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3);

export function printOnnx(rows: Row[], _peers: Partial<Record<Engine, string>>, log: (s: string) => void): void {
  log('');
  log('== onnx == inference of ONNX files exported from PyTorch (scripts/onnx_models.py, opset 17), host to host:');
  log(
    '   ms per batch: wall, median over trials (engines alternating); outputs checked within 1e-4 of onnxruntime-node',
  );
  log('   first; ratio = onnxruntime ms / wgnn ms (> 1: wgnn faster); GFLOP/s = the forward pass flops / wgnn ms');
  const W = [22, 28, 9, 7, 9, 9, 8];
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i < 2 ? c.padEnd(W[i]!) : c.padStart(W[i]!))).join(' ');
  log(line(['case', 'engine', 'ms', 'spread', 'max|err|', 'GFLOP/s', 'ratio']));
  for (const r of rows) {
    if (r.skipped) {
      log(line([r.label, `skipped: ${r.skipped}`, '', '', '', '', '']));
      continue;
    }
    const e = r.engines as OnnxEngines;
    const ratio = (r.meta as { peerMsOverWgnnMs?: number } | undefined)?.peerMsOverWgnnMs;
    for (const who of ['wgnn', 'ort'] as const) {
      const x = e[who];
      if (!x) continue;
      const t = x.timing?.wall;
      const name = x.kernel ?? (who === 'wgnn' ? 'wgnn' : 'onnxruntime');
      log(
        line([
          who === 'wgnn' ? r.label : '',
          name,
          x.status === 'ok' ? f(t?.median) : x.status.toUpperCase(),
          t ? `${((100 * (t.max - t.min)) / t.median).toFixed(0)}%` : '',
          x.check ? x.check.maxErr.toExponential(1) : '',
          who === 'wgnn' && t && r.flops ? f(r.flops / (t.median * 1e6)) : '',
          who === 'ort' && ratio ? `${ratio.toFixed(2)}×` : '',
        ]),
      );
      if (x.status !== 'ok' && x.why) log(`    ${name}: ${x.why}`);
    }
  }
  const peer = rows.map((r) => (r.meta as { peer?: string } | undefined)?.peer).filter(Boolean);
  for (const p of new Set(peer)) log(`   peer: ${p}`);
}
