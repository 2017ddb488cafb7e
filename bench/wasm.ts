// The CPU suite (`npm run bench -- --backend wasm`): wgnn's WASM backend against the CPU peers, jax-js on its wasm
// device and TF.js on @tensorflow/tfjs-backend-wasm, with wgnn on the WebGPU adapter (lavapipe here) in the same run:
// matmul 1024² GFLOP/s and the seed MLP and CNN training steps (batch 64), ms. Engines take turns, round by round,
// in an order that rotates (a noisy neighbour slows all alike); medians. Writes the run as JSON (suite "wasm").
import { availableParallelism, cpus } from 'node:os';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as wg from '../src/index.js';
import { WasmBackend, setDefaultBackend } from '../src/internal.js';
import { emptyRow, type EngineResult, type Row } from './harness.js';
import { jaxTrainer } from './peers/jax-train.js';
import type { Jax, JaxArray } from './peers/jax.js';
import { msg } from './peers/peer.js';
import type { Tf } from './peers/tfjs.js';
import { tfjsTrainer } from './peers/tfjs-train.js';
import { derive, type Report, type RunInfo } from './report.js';
import { stats } from './timer.js';
import {
  batchesOf,
  initialWeights,
  learns,
  rotate,
  summarize,
  timingOf,
  profileStep,
  trainCases,
  type Plan,
  type Profile,
  type Stepper,
  type TrainSpec,
} from './train.js';

/** The suite's engines: the Engine keys the report derives ratios from (wgnn = wasm; tfjs, jax = their WASM
 * backends), wgnn's wasm backend on one thread, and wgnn on the WebGPU adapter. */
type Key = 'wgnn' | 'tfjs' | 'jax' | 'wgnn1' | 'webgpu';
const NAMES: Record<Key, string> = {
  wgnn: 'wgnn wasm',
  wgnn1: 'wgnn wasm 1 thread',
  webgpu: 'wgnn webgpu',
  tfjs: 'TF.js WASM',
  jax: 'jax-js WASM',
};
const PEERS = ['tfjs', 'jax'] as const;
type WasmRow = Omit<Row, 'engines'> & { engines: Partial<Record<Key, EngineResult>> };

/** The suite's results file: the usual report (rows with derived ratios vs the best CPU peer), and what ran. */
export type WasmReport = Report & {
  suite: 'wasm';
  /** wgnn's backends in the run, described. */
  wgnn: Record<'wgnn' | 'wgnn1' | 'webgpu', string>;
  cpu: { model: string; logicalCores: number };
};

/** One engine's computation: `run` does one and waits for it. */
interface Timed {
  run(): Promise<void> | void;
  dispose(): void;
}

const N = 1024;

/** jax-js on its wasm device (one thread in Node: it has no global Worker to start). */
async function loadJaxWasm(): Promise<Jax> {
  const jax = await import('@jax-js/jax');
  if (!(await jax.init('wasm')).includes('wasm')) throw new Error('jax.init("wasm") found no wasm device');
  jax.defaultDevice('wasm');
  return jax;
}

/**
 * TF.js on tfjs-backend-wasm 4.22 (XNNPACK, SIMD), its .wasm files from node_modules. In Node it runs on one thread:
 * the package reports no multithread support under Node (WASM_HAS_MULTITHREAD_SUPPORT is false when IS_NODE,
 * tfjs issue 3830); forcing the flag on makes the backend fail to initialize.
 */
async function loadTfWasm(): Promise<Tf> {
  const tf = await import('@tensorflow/tfjs-core');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const main = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(`${dirname(main)}/`);
  if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") failed');
  await tf.ready();
  tf.enableProdMode();
  return tf;
}

/** A few entries of a @ b in float64 on the host; the largest error of `got` against them (inputs in [-1, 1]). */
function matmulError(a: Float32Array, b: Float32Array, got: ArrayLike<number>): number {
  const rng = new wg.Rng(7);
  let worst = 0;
  for (let t = 0; t < 64; t++) {
    const [i, j] = [rng.int(0, N), rng.int(0, N)];
    let s = 0;
    for (let k = 0; k < N; k++) s += a[i * N + k]! * b[k * N + j]!;
    worst = Math.max(worst, Math.abs(got[i * N + j]! - s) / (1e-3 + 1e-4 * Math.abs(s)));
  }
  return worst; // ≤ 1 passes
}

type Engines = {
  wasm: WasmBackend;
  wasm1: WasmBackend;
  gpu: wg.WebGpuBackend;
  tf: Tf | string;
  jax: Jax | string;
};

/** matmul [1024,1024] @ [1024,1024] on every engine, validated on sampled entries, then timed in rotation. */
async function matmulRow(e: Engines, rounds: Plan): Promise<WasmRow> {
  const rng = new wg.Rng(1);
  const [a, b] = [0, 1].map(() => Float32Array.from({ length: N * N }, () => rng.uniform(-1, 1))) as [
    Float32Array,
    Float32Array,
  ];
  const row: WasmRow = {
    family: 'matmul',
    id: `square-${N}`,
    label: `matmul ${N}²`,
    bound: 'compute',
    flops: 2 * N ** 3,
    bytes: 3 * 4 * N * N,
    meta: { M: N, N, K: N },
    engines: {},
  };
  const built: [Key, Timed, () => Promise<ArrayLike<number>>][] = [];
  const wgnnOn = (k: Key, backend: wg.Backend, sync: () => Promise<void> | void) => {
    const [x, y] = [a, b].map((d) => wg.tensor(d, [N, N], { backend }));
    const once = () => wg.matmul(x!, y!);
    built.push([
      k,
      {
        run: () => {
          once().dispose();
          return sync();
        },
        dispose: () => [x, y].forEach((t) => t!.dispose()),
      },
      async () => {
        const z = once();
        const d = await z.data();
        z.dispose();
        return d;
      },
    ]);
  };
  wgnnOn('wgnn', e.wasm, () => {});
  wgnnOn('wgnn1', e.wasm1, () => {});
  wgnnOn('webgpu', e.gpu, () => e.gpu.sync());
  if (typeof e.tf !== 'string') {
    const tf = e.tf;
    const [x, y] = [a, b].map((d) => tf.tensor2d(d, [N, N]));
    built.push([
      'tfjs',
      { run: () => tf.matMul(x!, y!).dispose(), dispose: () => [x, y].forEach((t) => t!.dispose()) },
      async () => tf.matMul(x!, y!).dataSync(),
    ]);
  }
  if (typeof e.jax !== 'string') {
    const np = e.jax.numpy;
    const [x, y] = [a, b].map((d) => np.array(d, { shape: [N, N] }));
    const f = e.jax.jit((p: JaxArray, q: JaxArray) => np.matmul(p, q));
    built.push([
      'jax',
      {
        run: async () => void (await f(x!.ref, y!.ref).blockUntilReady()).dispose(),
        dispose: () => [x, y].forEach((t) => t!.dispose()),
      },
      async () => f(x!.ref, y!.ref).dataSync(),
    ]);
  }
  const ok: [Key, Timed][] = [];
  for (const [k, t, result] of built) {
    try {
      const err = matmulError(a, b, await result());
      if (err > 1) row.engines[k] = { status: 'fail', why: `sampled entries off by ${err.toFixed(1)}× the tolerance` };
      else ok.push([k, t]);
    } catch (x) {
      row.engines[k] = { status: 'error', why: msg(x) };
    }
  }
  const walls = new Map<Key, number[]>(ok.map(([k]) => [k, []]));
  const t0 = performance.now();
  for (let r = 0; r < rounds.max && (r < rounds.min || performance.now() - t0 < rounds.budgetMs); r++) {
    for (let j = 0; j < ok.length; j++) {
      const [k, t] = ok[(r + j) % ok.length]!;
      const w = performance.now();
      await t.run();
      walls.get(k)!.push(performance.now() - w);
    }
  }
  for (const [k, t] of ok) {
    const ms = walls.get(k)!;
    row.engines[k] = {
      status: 'ok',
      check: { how: '64 sampled entries vs float64 on the host', maxErr: 0, checked: 64 },
      timing: { reps: 1, trials: ms.length, wall: stats(ms) },
    };
    t.dispose();
  }
  for (const [, t] of built.filter(([k]) => !ok.some(([o]) => o === k))) t.dispose();
  return row;
}

/** wgnn's replayed training step (trainStep, Adam 1e-3) of the seed model on `backend`. */
function wgnnStepper(name: string, backend: wg.Backend, spec: TrainSpec, flush: () => void) {
  setDefaultBackend(backend);
  wg.setSeed(1234);
  const model = wg.nn.seedModel(spec.model, [28, 28, 1], 10);
  const opt = wg.optim.adam(1e-3);
  const step = wg.nn.trainStep(model, { optimizer: opt, loss: 'sparseCategoricalCrossentropy' });
  const meter = new wg.nn.StepMeter(step);
  const B = spec.batch;
  // The model builds its weights at its first step, on the default backend: each engine's own, set at every call.
  const stepper: Stepper & { step: wg.CompiledStep } = {
    name,
    step,
    launch: (i) => {
      setDefaultBackend(backend);
      const b = spec.batches[i % spec.batches.length]!;
      step.run({ data: b.x, shape: [B, 28, 28, 1] }, { data: b.y, shape: [B] });
      meter.ran(B);
      flush();
    },
    read: async () => (await meter.read()).loss!,
    counts: () => ({ dispatches: 0, submits: 0, submitMs: 0 }),
    dispose: () => {
      setDefaultBackend(backend);
      step.dispose();
      opt.dispose();
      model.dispose();
      setDefaultBackend(undefined);
    },
  };
  return stepper;
}

/** One training step of the seed model on every engine; a peer without a kernel it needs is 'n/a' (not supported). */
async function trainRow(e: Engines, model: 'mlp' | 'cnn', p: Plan): Promise<WasmRow> {
  const c = trainCases({ quick: false, software: true, batch: 64 }).find((x) => x.id === `${model}-b64`)!;
  const row: WasmRow = { ...emptyRow(c), meta: { model, batch: 64 } };
  setDefaultBackend(e.wasm);
  const spec: TrainSpec = { model, batch: 64, weights: await initialWeights(model), batches: batchesOf(64).batches };
  setDefaultBackend(undefined);
  const [wasm, wasm1] = [
    wgnnStepper('wgnn wasm', e.wasm, spec, () => {}),
    wgnnStepper('wgnn wasm 1t', e.wasm1, spec, () => {}),
  ];
  const steppers: [Key, Stepper][] = [
    ['wgnn', wasm],
    ['wgnn1', wasm1],
    ['webgpu', wgnnStepper('wgnn webgpu', e.gpu, spec, () => e.gpu.flush())],
  ];
  const peer = (k: 'tfjs' | 'jax', t: { launch(i: number): void; read(): Promise<number>; dispose(): void }) =>
    steppers.push([k, { name: NAMES[k], ...t, counts: () => ({ dispatches: 0, submits: 0, submitMs: 0 }) }]);
  if (typeof e.tf !== 'string') peer('tfjs', await tfjsTrainer({ tf: e.tf }, spec));
  if (typeof e.jax !== 'string')
    peer(
      'jax',
      jaxTrainer({ jax: e.jax }, spec, (l) => void l.dataSync()),
    );
  try {
    const ms = await rotate(
      steppers.map(([, s]) => s),
      p,
    );
    const first = ms[0]!.check[0];
    steppers.forEach(([k], i) => {
      const m = ms[i]!;
      if (m.error) {
        const unsupported = /not registered|not (yet )?(implemented|supported)/i.test(m.error);
        row.engines[k] = unsupported
          ? { status: 'n/a', why: `not supported: ${m.error}` }
          : { status: 'error', why: m.error };
        return;
      }
      const st = summarize(m);
      const why = [learns(st.losses)];
      const f0 = m.check[0]!;
      if (first !== undefined && !(Math.abs(f0 - first) <= 1e-4 + 1e-4 * Math.abs(first)))
        why.push(`first loss ${f0}, wgnn wasm ${first} (same weights and batch)`);
      const bad = why.filter(Boolean).join('; ');
      row.engines[k] = {
        status: bad ? 'fail' : 'ok',
        ...(bad ? { why: bad } : {}),
        check: { how: "first loss vs wgnn wasm's (same weights and batch); the loss falls", maxErr: 0, checked: 1 },
        timing: timingOf(st),
      };
    });
    // Where a replayed step's time goes: each kernel call's least time over a few replays, by op (vs the wall ms).
    row.meta!.kernels = Object.fromEntries(
      await Promise.all(
        (
          [
            ['wgnn', wasm],
            ['wgnn1', wasm1],
          ] as const
        ).map(async ([k, s]) => [k, await profileStep(s.step, 5)]),
      ),
    );
  } finally {
    for (const [, s] of steppers) s.dispose();
  }
  return row;
}

/** Runs the suite; returns the report (rows with derived ratios) and prints its table. */
export async function runWasmSuite(gpu: wg.WebGpuBackend, info: RunInfo, quick: boolean): Promise<WasmReport> {
  const engines: Engines = {
    wasm: await WasmBackend.create(),
    wasm1: await WasmBackend.create({ threads: 1 }),
    gpu,
    tf: await loadTfWasm().catch((e: unknown) => `unavailable: ${msg(e)}`),
    jax: await loadJaxWasm().catch((e: unknown) => `unavailable: ${msg(e)}`),
  };
  info.peers = {
    tfjs:
      typeof engines.tf === 'string'
        ? engines.tf
        : `@tensorflow/tfjs-backend-wasm ${engines.tf.version_core} (XNNPACK, SIMD; 1 thread: no threads in Node)`,
    jax:
      typeof engines.jax === 'string'
        ? engines.jax
        : '@jax-js/jax 0.1.25 (jit) on its wasm device (1 thread: no Worker in Node)',
  };
  const plan = (min: number, max: number, budgetMs: number): Plan => ({
    check: quick ? 2 : 3,
    min: quick ? 2 : min,
    max: quick ? 2 : max,
    budgetMs: quick ? 0 : budgetMs,
    blocks: [0, 0],
    blockBudgetMs: 0,
    profileRuns: 0,
  });
  const rows: WasmRow[] = [];
  try {
    for (const [what, make] of [
      ['matmul', () => matmulRow(engines, plan(5, 20, 20_000))],
      ['mlp', () => trainRow(engines, 'mlp', plan(20, 300, 15_000))],
      ['cnn', () => trainRow(engines, 'cnn', plan(5, 40, 25_000))],
    ] as const) {
      const t0 = performance.now();
      rows.push(await make());
      process.stderr.write(`[wasm] ${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    }
  } finally {
    engines.wasm.destroy();
    engines.wasm1.destroy();
  }
  const report: WasmReport = {
    ...info,
    suite: 'wasm',
    names: NAMES,
    wgnn: { wgnn: engines.wasm.description, wgnn1: engines.wasm1.description, webgpu: gpu.description },
    cpu: { model: cpus()[0]?.model.trim() ?? 'unknown', logicalCores: availableParallelism() },
    roofline: {},
    // derive() reads the Engine keys (wgnn, tfjs, jax): its ratio is the best CPU peer's ms over wgnn wasm's.
    rows: rows.map((r) => ({ ...(r as Row), derived: derive(r as Row, {}) })),
  };
  printWasm(report, rows);
  return report;
}

function printWasm(report: WasmReport, rows: WasmRow[]): void {
  const log = (s: string) => console.log(s);
  const keys: Key[] = ['wgnn', 'wgnn1', 'webgpu', 'tfjs', 'jax'];
  log(`\n== wasm == CPU engines on ${report.cpu.model}, ${report.cpu.logicalCores} logical cores`);
  for (const k of keys) log(`   ${NAMES[k]}: ${k === 'tfjs' || k === 'jax' ? report.peers[k] : report.wgnn[k]}`);
  log('   matmul: GFLOP/s (higher is better); train: ms per step, loss read every step (lower is better); medians');
  const W = [14, 12, 12, 12, 12, 12, 16, 14];
  const line = (cells: string[]) => cells.map((c, i) => (i ? c.padStart(W[i]!) : c.padEnd(W[i]!))).join(' ');
  log(
    line([
      'case',
      ...keys.map((k) => NAMES[k].replace('wgnn ', '').replace(' 1 thread', ' 1t')),
      'vs best CPU peer',
      'vs webgpu',
    ]),
  );
  const ms = (r: WasmRow, k: Key) => (r.engines[k]?.status === 'ok' ? r.engines[k]!.timing!.wall.median : undefined);
  for (const r of rows) {
    const cell = (k: Key): string => {
      const m = ms(r, k);
      if (m === undefined) return r.engines[k] ? r.engines[k]!.status : '—';
      return r.family === 'matmul' ? (r.flops! / (m * 1e6)).toFixed(1) : m >= 10 ? m.toFixed(1) : m.toFixed(2);
    };
    const w = ms(r, 'wgnn');
    const peers = PEERS.map((k) => ms(r, k)).filter((x): x is number => x !== undefined);
    const gpu = ms(r, 'webgpu');
    const ratio = (other: number | undefined) => (w && other ? `${(other / w).toFixed(2)}×` : '—');
    log(line([r.label, ...keys.map(cell), ratio(peers.length ? Math.min(...peers) : undefined), ratio(gpu)]));
    for (const k of keys) if (r.engines[k]?.why) log(`    ${NAMES[k]}: ${r.engines[k]!.status}: ${r.engines[k]!.why}`);
    const kernels = (r.meta?.kernels ?? {}) as Record<string, Profile | string>;
    for (const [k, p] of Object.entries(kernels)) {
      if (typeof p === 'string') log(`    ${NAMES[k as Key]}: ${p}`);
      else {
        const top = p.byOp.slice(0, 4).map((o) => `${o.op} ${o.pct.toFixed(0)}%`);
        log(
          `    ${NAMES[k as Key]} replayed: kernels ${p.gpuMs.toFixed(2)} ms in ${p.dispatches} calls (${top.join(', ')})`,
        );
      }
    }
  }
}
