// The benchmark harness. A case is host inputs (a few sets, rotated while timing), a check built from wgnn's CPU
// reference, and one runner per engine. runCase validates every engine's result against the check first, then times
// it (timer.ts), into one Row. A wgnn validation failure prints the index and both values and fails the run.
import { CpuBackend, Rng, tensor, type Tensor, type WebGpuBackend } from '../src/index.js';
import { apply, type AnyOp, type Tol } from '../src/internal.js';
import type { JaxPeer } from './peers/jax.js';
import { msg, type HostTensor, type Peer, type Runner } from './peers/peer.js';
import type { TfjsPeer } from './peers/tfjs.js';
import { PassTimer, measure, type Timing, type TimingOpts } from './timer.js';

export type { HostTensor, Runner };
export type Engine = 'wgnn' | 'tfjs' | 'jax';
export const ENGINES: Engine[] = ['wgnn', 'tfjs', 'jax'];
export const ENGINE_NAMES: Record<Engine, string> = { wgnn: 'wgnn', tfjs: 'TF.js', jax: 'jax-js' };

/** How a family sizes its cases for this run (bench/families.ts: each family's `cases(o)`). */
export interface FamilyOpts {
  /** Small sizes, few trials: validates every kernel in seconds (CI). */
  quick: boolean;
  /** A CPU implementation of WebGPU (lavapipe): sizes that finish in minutes. */
  software: boolean;
  /** Square matmul sizes, overriding the defaults. */
  sizes?: number[] | undefined;
  /** Batch size of the conv, pool and MLP-shaped cases, overriding the defaults. */
  batch?: number | undefined;
  /** Time the replayed training step's dispatches one by one, by op (transformer: `--profile`). */
  profile?: boolean | undefined;
}

/** A peer's runner, or why the peer has none for this case. */
type PeerBuild<P> = ((peer: P, sets: HostTensor[][]) => Runner) | string;

export interface Case {
  family: string;
  /** Unique within the family, no spaces ('square-1024'); `family/id` selects it on the command line. */
  id: string;
  /** What a person reads in the table. */
  label: string;
  /** Which ceiling applies: the best matmul GFLOP/s, or the copy bandwidth. */
  bound: 'compute' | 'memory';
  /** Floating-point operations per run (compute-bound cases). */
  flops?: number;
  /** Bytes read + written per run, each tensor once (the least traffic the op needs). */
  bytes: number;
  /** Shapes and attributes, for the JSON. */
  meta?: Record<string, unknown>;
  /** Decides on this device whether to skip the case (e.g. over a time budget): resolves to why, or undefined to run it. */
  prepare?: ((gpu: WebGpuBackend) => Promise<string | undefined>) | undefined;
  /** Input sets to rotate through while timing (default 3). */
  sets?: number;
  /** Host inputs of set i (deterministic; never all zeros). */
  inputs(set: number): HostTensor[];
  /** The reference for set 0's result (in wgnn's layout). */
  check(inputs: HostTensor[]): Check | Promise<Check>;
  wgnn(gpu: WebGpuBackend, sets: HostTensor[][]): Runner;
  tfjs: PeerBuild<TfjsPeer>;
  jax: PeerBuild<JaxPeer>;
}

export interface CheckResult {
  ok: boolean;
  /** Largest |result - reference| over the checked entries. */
  maxErr: number;
  checked: number;
  error?: string;
}

export interface Check {
  /** How the reference was made, for messages and the JSON ('cpu reference': wgnn's CPU backend, same inputs). */
  how: string;
  compare(got: ArrayLike<number>, who: string): CheckResult;
}

export interface EngineResult {
  /** ok: validated and timed; fail: wrong values; error: threw; n/a: the engine has no such op or is unavailable. */
  status: 'ok' | 'fail' | 'error' | 'n/a';
  why?: string;
  kernel?: string;
  note?: string;
  check?: { how: string; maxErr: number; checked: number };
  timing?: Timing;
  /** Wall time spent on this engine for the case: build, validate (first run compiles), time. */
  spentMs?: number;
}

export interface Row {
  family: string;
  id: string;
  label: string;
  bound: 'compute' | 'memory';
  flops?: number;
  bytes: number;
  meta?: Record<string, unknown>;
  skipped?: string;
  engines: Partial<Record<Engine, EngineResult>>;
}

export interface Env {
  gpu: WebGpuBackend;
  /** Each peer, or why it is unavailable (undefined: not asked for). */
  tfjs?: TfjsPeer | string;
  jax?: JaxPeer | string;
  timing: TimingOpts;
  /** 'wall' ignores GPU timestamps even where the device has them. */
  timer: 'auto' | 'wall';
}

// ---------------------------------------------------------------------------------------------------------------
// Checks. One comparison rule everywhere (STYLE.md): |a − e| ≤ atol + rtol·|e|, with atol grown like sqrt(length)
// past the ~300-term reductions the op tolerances were set on (f32 rounding error of a sum grows like sqrt(n)).

const TOL_LENGTH = 300;
export const allowed = (tol: Tol, length: number, want: number): number =>
  tol.atol * Math.max(1, Math.sqrt(length / TOL_LENGTH)) + tol.rtol * Math.abs(want);

/**
 * A check against `want`; `at[i]` maps entry i of want to the index in the engine's result (default: the same index),
 * `length` is the reduction length behind each entry.
 */
export function checkAgainst(
  how: string,
  name: string,
  want: ArrayLike<number>,
  tol: Tol,
  seed: number,
  opts: { at?: ArrayLike<number>; length?: number | ((i: number) => number) } = {},
): Check {
  const len = opts.length ?? 1;
  return {
    how,
    compare: (got, who) => {
      if (!opts.at && got.length < want.length) {
        return {
          ok: false,
          maxErr: NaN,
          checked: 0,
          error: `${who} ${name}: ${got.length} values, expected at least ${want.length}`,
        };
      }
      let maxErr = 0;
      for (let i = 0; i < want.length; i++) {
        const j = opts.at ? opts.at[i]! : i;
        const w = want[i]!;
        const g = got[j]!;
        const err = Math.abs(g - w);
        const both = Number.isNaN(g) && Number.isNaN(w);
        if (!both && !(err <= allowed(tol, typeof len === 'number' ? len : len(i), w))) {
          return {
            ok: false,
            maxErr: err,
            checked: i + 1,
            error: `${who} ${name}[${j}] = ${g}, ${how} ${w}, |err| ${err.toExponential(2)} (atol ${tol.atol}, rtol ${tol.rtol}, seed ${seed})`,
          };
        }
        if (!both) maxErr = Math.max(maxErr, err);
      }
      return { ok: true, maxErr, checked: want.length };
    },
  };
}

/** Runs `op` on wgnn's CPU reference backend (plain loops, float64 sums) and returns its output data. */
export async function cpuRun(op: AnyOp, inputs: HostTensor[], attrs: object): Promise<Float32Array | Int32Array> {
  const cpu = new CpuBackend();
  const ts = inputs.map((h) => tensor(h.data, h.shape, { backend: cpu }));
  try {
    const y = apply(op, ts, attrs);
    const d = (await y.data()) as Float32Array | Int32Array;
    y.dispose();
    return d;
  } finally {
    ts.forEach((t) => t.dispose());
  }
}

/** The common case: the op on the CPU backend on the same inputs, every entry compared with the op's tolerance. */
export async function cpuCheck(
  op: AnyOp,
  inputs: HostTensor[],
  attrs: object,
  seed: number,
  length = 1,
  tol: Tol = op.tol,
): Promise<Check> {
  return checkAgainst('cpu reference', op.name, await cpuRun(op, inputs, attrs), tol, seed, { length });
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs and runners.

/** Uniform values in [lo, hi) (a range that excludes 0 where zeros would flatter: never time on zeros). */
export function uniform(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(lo, hi);
  return a;
}

export const sizeOfShape = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/** Host tensor of uniform values; the seed mixes the case and the input set, so every set differs. */
export function hostUniform(seed: number, shape: number[], lo = -1, hi = 1): HostTensor {
  return { data: uniform(new Rng(seed), sizeOfShape(shape), lo, hi), shape };
}

/** wgnn runner for one op of the table: its inputs uploaded once per set; every run's output disposed. */
export function opRunner(gpu: WebGpuBackend, op: AnyOp, sets: HostTensor[][], attrs: object): Runner {
  const ts: Tensor[][] = sets.map((s) => s.map((h) => tensor(h.data, h.shape, { backend: gpu })));
  return {
    kernel: op.name,
    enqueue: (i) => apply(op, ts[i]!, attrs).dispose(),
    result: async () => {
      const y = apply(op, ts[0]!, attrs);
      const d = (await y.data()) as Float32Array | Int32Array;
      y.dispose();
      return d;
    },
    dispose: () => ts.flat().forEach((t) => t.dispose()),
  };
}

// ---------------------------------------------------------------------------------------------------------------

/** A case's row before any engine ran: what it is, its flops, bytes and meta. */
export const emptyRow = (c: Case): Row => ({
  family: c.family,
  id: c.id,
  label: c.label,
  bound: c.bound,
  ...(c.flops !== undefined ? { flops: c.flops } : {}),
  bytes: c.bytes,
  ...(c.meta ? { meta: c.meta } : {}),
  engines: {},
});

/** Validates and times one case on every engine. Never throws: failures are in the row. */
export async function runCase(c: Case, env: Env): Promise<Row> {
  const row = emptyRow(c);
  let skip: string | undefined;
  try {
    skip = await c.prepare?.(env.gpu);
  } catch (e) {
    row.engines.wgnn = { status: 'error', why: `prepare: ${msg(e)}` };
    return row;
  }
  if (skip) return { ...row, skipped: skip };
  const nsets = c.sets ?? 3;
  let sets: HostTensor[][];
  let check: Check;
  try {
    sets = Array.from({ length: nsets }, (_, i) => c.inputs(i));
    check = await c.check(sets[0]!);
  } catch (e) {
    row.engines.wgnn = { status: 'error', why: `inputs or CPU reference: ${msg(e)}` };
    return row;
  }
  const gpu = env.gpu;
  row.engines.wgnn = await runEngine(
    'wgnn',
    () => c.wgnn(gpu, sets),
    gpu.device,
    () => gpu.sync(),
    check,
    nsets,
    env,
  );
  for (const e of ['tfjs', 'jax'] as const) {
    const peer = env[e];
    if (peer === undefined) continue;
    if (typeof peer === 'string') row.engines[e] = { status: 'n/a', why: peer };
    else {
      const build = c[e] as PeerBuild<Peer>;
      row.engines[e] =
        typeof build === 'string'
          ? { status: 'n/a', why: build }
          : await runEngine(
              e,
              () => build(peer, sets),
              peer.device,
              () => peer.sync(),
              check,
              nsets,
              env,
            );
    }
  }
  return row;
}

async function runEngine(
  who: Engine,
  make: () => Runner,
  device: GPUDevice,
  sync: () => Promise<void>,
  check: Check,
  nsets: number,
  env: Env,
): Promise<EngineResult> {
  const t0 = performance.now();
  const r = await validateAndTime(who, make, device, sync, check, nsets, env);
  return { ...r, spentMs: Math.round(performance.now() - t0) };
}

async function validateAndTime(
  who: Engine,
  make: () => Runner,
  device: GPUDevice,
  sync: () => Promise<void>,
  check: Check,
  nsets: number,
  env: Env,
): Promise<EngineResult> {
  let runner: Runner | undefined;
  let r: EngineResult = { status: 'error' };
  try {
    runner = make();
    r = {
      status: 'error',
      ...(runner.kernel ? { kernel: runner.kernel } : {}),
      ...(runner.note ? { note: runner.note } : {}),
    };
    const got = await runner.result();
    const chk = check.compare(got, ENGINE_NAMES[who]);
    r.check = { how: check.how, maxErr: chk.maxErr, checked: chk.checked };
    if (!chk.ok) return { ...r, status: 'fail', why: chk.error! };
    const go = runner;
    const timer = env.timer === 'wall' ? undefined : PassTimer.on(device);
    r.timing = await measure((s) => go.enqueue(s), sync, nsets, timer, env.timing);
    return { ...r, status: 'ok' };
  } catch (e) {
    return { ...r, status: 'error', why: msg(e) };
  } finally {
    try {
      runner?.dispose();
    } catch {
      // a runner that failed half-way may not dispose cleanly; the row already says why
    }
  }
}
