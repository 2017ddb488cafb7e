// The time-to-first-training-step benchmark (`npm run bench -- ttfs`): in a fresh Node process, from `init()` to the
// first loss on the host (`fit` on one batch of 64) for the seed MLP and CNN on WebGPU: cold (Mesa's shader cache off,
// so the driver compiles every kernel) and warm (a second process on a cache the first one filled). Each run is a
// process of its own: `node dist/bench/ttfs.js <mlp|cnn>` prints one JSON line.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as wg from '../src/index.js';
import { emptyRow, type Case, type Engine, type FamilyOpts, type Row } from './harness.js';
import { msg } from './peers/peer.js';
import { stats } from './timer.js';

const BATCH = 64;
const SIDE = 28;

/** What one child process measured, ms from the process's time origin on. */
export interface TtfsRun {
  model: 'mlp' | 'cnn';
  /** Node's start-up and the imports (before `init()`). */
  importMs: number;
  /** `init({ backend: 'webgpu' })`: adapter and device. */
  initMs: number;
  /** From `init()` returning to the first loss on the host: build, compile, `fit` on one batch (its kernels compile here). */
  stepMs: number;
  /** init() to the first loss: what the row times. */
  totalMs: number;
  /**
   * CPU time of the process (all threads: lavapipe compiles and runs kernels in its own) over the same span; on a
   * shared machine the steadier figure, since other processes stretch the wall time but not this.
   */
  cpuMs: number;
  loss: number;
  /** Pipelines compiled, and still pending, at the first loss. */
  pipelines: { compiled: number; pending: number };
}

/** The child: one cold or warm start, as a user's script would do it. */
async function child(model: 'mlp' | 'cnn'): Promise<TtfsRun> {
  const importMs = performance.now();
  // The batch is made before the clock starts: the data is not the engine's start-up.
  const x = new Float32Array(BATCH * SIDE * SIDE);
  const y = new Int32Array(BATCH);
  try {
    const { train } = wg.data.loadMnist();
    x.set(train.x.subarray(0, x.length));
    y.set((train.y as Int32Array).subarray(0, BATCH));
  } catch {
    // no `mnist` package (the bare device machine): a deterministic pattern; compile time does not depend on it
    x.forEach((_, i) => (x[i] = ((i * 7919) % 256) / 255));
    y.forEach((_, i) => (y[i] = i % 10));
  }
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await wg.init({ backend: 'webgpu', quiet: true });
  const t1 = performance.now();
  wg.setSeed(1234);
  const net = wg.nn.seedModel(model, [SIDE, SIDE, 1], 10);
  net.compile({ optimizer: wg.optim.adam(1e-3), loss: 'sparseCategoricalCrossentropy' });
  const h = await net.fit(
    { data: x, shape: [BATCH, SIDE, SIDE, 1] },
    { data: y, shape: [BATCH] },
    { epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0 },
  );
  const t2 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const loss = h.history.loss?.[0] ?? NaN;
  const pipelines = wg.pipelineStats();
  wg.shutdown();
  return {
    model,
    importMs,
    initMs: t1 - t0,
    stepMs: t2 - t1,
    totalMs: t2 - t0,
    cpuMs: (cpu.user + cpu.system) / 1000,
    loss,
    pipelines,
  };
}

/** Runs the child in a new process with `env` added; resolves to what it printed. */
function runChild(model: string, env: Record<string, string>): Promise<TtfsRun> {
  const script = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [script, model], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) {
        reject(
          new Error(`ttfs child (${model}) exited ${code}: ${(err.trim().split('\n').pop() ?? '').slice(0, 300)}`),
        );
        return;
      }
      resolve(JSON.parse(line) as TtfsRun);
    });
  });
}

export function ttfsCases(o: FamilyOpts): Case[] {
  const runs = o.quick ? 1 : 2;
  const cases: Case[] = [];
  for (const model of ['mlp', 'cnn'] as const) {
    for (const cache of ['cold', 'warm'] as const) {
      cases.push({
        family: 'ttfs',
        id: `${model}-${cache}`,
        label: `${model} ${cache}`,
        bound: 'memory',
        bytes: 0,
        meta: { model, cache, batch: BATCH, runs },
        inputs: () => [],
        check: () => {
          throw new Error('ttfs cases run through bench/ttfs.ts runTtfs');
        },
        wgnn: () => {
          throw new Error('ttfs cases run through bench/ttfs.ts runTtfs');
        },
        tfjs: 'not measured (wgnn start-up only)',
        jax: 'not measured (wgnn start-up only)',
      });
    }
  }
  return cases;
}

/**
 * Cold: `runs` processes with MESA_SHADER_CACHE_DISABLE=true. Warm: a private shader cache (so other processes on
 * the machine neither fill nor evict it) filled by one process, then `runs` processes on it. Dawn in Node keeps no
 * pipeline cache of its own across processes, so Mesa's is the only one.
 */
export async function runTtfs(c: Case): Promise<Row> {
  const row = emptyRow(c);
  const { model, cache, runs } = c.meta as { model: 'mlp' | 'cnn'; cache: 'cold' | 'warm'; runs: number };
  const t0 = performance.now();
  const dir = cache === 'warm' ? mkdtempSync(join(tmpdir(), 'wgnn-ttfs-')) : undefined;
  try {
    const env: Record<string, string> = dir
      ? { MESA_SHADER_CACHE_DIR: dir, MESA_SHADER_CACHE_DISABLE: 'false' }
      : { MESA_SHADER_CACHE_DISABLE: 'true' };
    if (dir) await runChild(model, env); // fills the cache
    const done: TtfsRun[] = [];
    for (let i = 0; i < runs; i++) done.push(await runChild(model, env));
    const bad = done.find((r) => !(Math.abs(r.loss - Math.log(10)) < 1));
    const totals = done.map((r) => r.totalMs);
    row.meta = { ...row.meta, results: done };
    row.engines.wgnn = {
      status: bad ? 'fail' : 'ok',
      ...(bad ? { why: `first loss ${bad.loss}; expected about ln 10 = 2.30 (an untrained 10-class model)` } : {}),
      kernel: `fit, batch ${BATCH}, ${done[0]!.pipelines.compiled} pipelines`,
      timing: { reps: 1, trials: runs, wall: stats(totals) },
      spentMs: performance.now() - t0,
    };
  } catch (e) {
    row.engines.wgnn = { status: 'error', why: msg(e) };
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  return row;
}

export function printTtfs(rows: Row[], _peers: Partial<Record<Engine, string>>, log: (s: string) => void): void {
  log('');
  log('== ttfs == time to first training step: a fresh Node process, init() to the first loss on the host (fit, one');
  log(
    '   batch of 64); cold: Mesa shader cache off; warm: a second process on the cache the first filled. Median of the',
  );
  log(
    "   runs; cpu: the process's CPU time over the same span (all threads: the steadier figure on a shared machine);",
  );
  log('   init = adapter + device, step = build + compile + the step');
  const line = (cells: string[]): string => cells.map((s, i) => (i < 1 ? s.padEnd(12) : s.padStart(11))).join(' ');
  log(line(['case', 'total ms', 'cpu ms', 'init ms', 'step ms', 'pipelines', 'runs']));
  for (const r of rows) {
    const e = r.engines.wgnn;
    const res = (r.meta?.results ?? []) as TtfsRun[];
    if (!e || e.status === 'error' || res.length === 0) {
      log(line([r.label, `${e?.status ?? '?'}: ${e?.why ?? ''}`]));
      continue;
    }
    const med = (f: (x: TtfsRun) => number): string => stats(res.map(f)).median.toFixed(0);
    log(
      line([
        r.label,
        med((x) => x.totalMs),
        med((x) => x.cpuMs),
        med((x) => x.initMs),
        med((x) => x.stepMs),
        String(res[0]!.pipelines.compiled),
        `${res.length}${e.status === 'fail' ? ' FAIL' : ''}`,
      ]),
    );
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const model = process.argv[2];
  if (model !== 'mlp' && model !== 'cnn') {
    console.error('usage: node dist/bench/ttfs.js mlp|cnn');
    process.exitCode = 2;
  } else {
    child(model).then(
      (r) => console.log(JSON.stringify(r)),
      (e: unknown) => {
        console.error(e instanceof Error ? (e.stack ?? e.message) : e);
        process.exitCode = 1;
      },
    );
  }
}
