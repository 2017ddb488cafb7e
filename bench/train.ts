// The training-step benchmark (`npm run bench -- train`): ms per step of the seed CNN and MLP (sparse cross-entropy,
// Adam 1e-3) on MNIST batches, for wgnn eager, wgnn replayed (compileStep) and the peers' own training steps, with
// the JavaScript time, dispatches and submits of each step, and where the replayed step's GPU time goes; for wgnn also
// the loss read every step (a plain loop), every 16 steps and never, with submits and maps per step.
import * as wg from '../src/index.js';
import { setDefaultBackend } from '../src/internal.js';
import {
  ENGINE_NAMES,
  emptyRow,
  type Case,
  type Engine,
  type EngineResult,
  type Env,
  type FamilyOpts,
  type HostTensor,
  type Row,
} from './harness.js';
import { jaxTrainer } from './peers/jax-train.js';
import { msg } from './peers/peer.js';
import { tfjsTrainer } from './peers/tfjs-train.js';
import { stats, type Stats } from './timer.js';

/** One batch in every layout the engines take: x [B,28,28,1] (also jax-js's NCHW, since C = 1), y [B], y one-hot [B,10]. */
export interface StepBatch {
  x: Float32Array;
  y: Int32Array;
  onehot: Float32Array;
}

/** What a peer needs to build the same model: wgnn's initial weights (wgnn layouts) and the batches, cycled. */
export interface TrainSpec {
  model: 'mlp' | 'cnn';
  batch: number;
  /** cnn: conv [3,3,1,32], [32], dense [5408,64], [64], [64,10], [10]; mlp: [784,128], [128], [128,10], [10]. */
  weights: HostTensor[];
  batches: StepBatch[];
}

/** A peer's training step: `launch` is the JavaScript part (upload, encode, submit); `read` waits for the loss. */
export interface PeerTrainer {
  kernel: string;
  note?: string;
  launch(batch: number): void;
  read(): Promise<number>;
  dispose(): void;
}

/** Timings of one engine (or wgnn mode) over its timed steps. */
export interface ModeStats {
  /** Wall time per step with the loss read back every step (launch to loss on the host), over `ms.n` steps. */
  ms: Stats & { n: number };
  /**
   * Wall time per step with the loss read every 16 steps (wgnn only): median over blocks of 16; submits and buffer
   * maps per step (the block's one read included).
   */
  ms16?: { median: number; blocks: number; submits?: number; maps?: number };
  /**
   * wgnn only, the per-step-read protocol: a plain loop that runs a step and awaits its loss, as a PyTorch loop that
   * prints every loss (no flush of its own; eager and replay take turns step by step). Median wall ms per step, from
   * the run to the loss on the host; submits and buffer maps per step, the read included.
   */
  perStepRead?: { median: number; steps: number; submits: number; maps: number };
  /** wgnn only: blocks of 16 steps never read (a block ends when the GPU is done with it), as ms16. */
  never?: { median: number; blocks: number; submits: number; maps: number };
  /**
   * Process CPU time (user + system) of the JavaScript part of a step, median: upload, encoding and submit, not the
   * wait. NOTE: on a CPU implementation of WebGPU (lavapipe) the threads running the submitted work count too.
   */
  jsCpuMs: number;
  /** Wall time of the same JavaScript part, median; and of the part of it spent inside queue.submit. */
  jsWallMs: number;
  submitMs: number;
  /** Per step, counted over the JavaScript part (the loss readback adds one copy and one submit). */
  dispatches: number;
  submits: number;
  /** Loss of every step read one by one: the check steps, then the timed ones. */
  losses: number[];
}

export interface KernelShare {
  op: string;
  dispatches: number;
  ms: number;
  pct: number;
}

/** The replayed step's dispatch list timed one compute pass per dispatch (GPU timestamps). */
export interface Profile {
  dispatches: number;
  /** Sum of the dispatches' GPU time, ms (each dispatch's least time over a few runs of the list). */
  gpuMs: number;
  byOp: KernelShare[];
}

export interface TrainResult extends EngineResult {
  train?: ModeStats & { eager?: ModeStats; profile?: Profile | string };
}

const SEED = 1234;
const CLASSES = 10;
const SIDE = 28;

// NOTE: floating-point operations of a step, counting only the work the step needs (no input gradient for the first
// layer); a multiply-add is 2. cnn: conv 2·676·32·9 forward + the same for its filter gradient; dense 5408→64 and
// 64→10 three times (forward, dx, dw). mlp: dense 784→128 twice (forward, dw), 128→10 three times.
const FLOPS_PER_SAMPLE = { cnn: 2 * 389_376 + 3 * 692_224 + 3 * 1280, mlp: 2 * 200_704 + 3 * 2560 };

export interface Plan {
  /** Steps read one by one before timing: the first captures; their losses are compared bitwise (eager vs replay). */
  check: number;
  /**
   * Timed rounds: each runs one step of every engine, read every step, in an order that rotates by round (so a
   * noisy neighbour on a shared machine slows all engines alike); at least min, at most max, until budgetMs. The
   * per-step-read loop of the two wgnn modes runs as many rounds, under the same budget.
   */
  min: number;
  max: number;
  budgetMs: number;
  /**
   * Rounds of one block of 16 steps read once, and one block of 16 never read, per wgnn mode, between these counts,
   * until blockBudgetMs.
   */
  blocks: [number, number];
  blockBudgetMs: number;
  /** Runs of the replayed dispatch list, one pass per dispatch, for the profile (CompiledStep.profile). */
  profileRuns: number;
}

function plan(quick: boolean, software: boolean): Plan {
  if (quick) return { check: 3, min: 3, max: 3, budgetMs: 0, blocks: [1, 1], blockBudgetMs: 0, profileRuns: 3 };
  return software
    ? { check: 4, min: 6, max: 40, budgetMs: 12_000, blocks: [1, 8], blockBudgetMs: 6000, profileRuns: 5 }
    : { check: 4, min: 30, max: 300, budgetMs: 5000, blocks: [3, 12], blockBudgetMs: 2000, profileRuns: 8 };
}

export function trainCases(o: FamilyOpts): Case[] {
  const batches = o.batch ? [o.batch] : o.quick ? [64] : [64, 512];
  const cases: Case[] = [];
  for (const batch of batches) {
    for (const model of ['cnn', 'mlp'] as const) {
      const steps = plan(o.quick, o.software);
      cases.push({
        family: 'train',
        id: `${model}-b${batch}`,
        label: `${model} b${batch}`,
        bound: 'compute',
        flops: FLOPS_PER_SAMPLE[model] * batch,
        bytes: 0,
        meta: { model, batch, plan: steps },
        // NOTE: a train case runs through runTrain (the family's `run`), not the harness's one-op runCase.
        inputs: () => [],
        check: () => {
          throw new Error('train cases run through bench/train.ts runTrain');
        },
        wgnn: () => {
          throw new Error('train cases run through bench/train.ts runTrain');
        },
        tfjs: 'runs through bench/train.ts',
        jax: 'runs through bench/train.ts',
      });
    }
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------------------------
// Data: the embedded MNIST digits, or (where the `mnist` package is missing, as on the bare device machine) noise
// with a bright 7×7 patch whose place is the label, so the loss can still fall.

let data: { batches: Map<number, StepBatch[]>; source: string } | undefined;

export function batchesOf(B: number): { batches: StepBatch[]; source: string } {
  data ??= { batches: new Map(), source: '' };
  const have = data.batches.get(B);
  if (have) return { batches: have, source: data.source };
  let x: Float32Array;
  let y: Int32Array;
  const n = Math.min(16, Math.max(1, Math.floor(8000 / B))) * B;
  try {
    const { train } = wg.data.loadMnist();
    const m = Math.min(n, train.length - (train.length % B));
    x = train.x.slice(0, m * SIDE * SIDE);
    y = (train.y as Int32Array).slice(0, m);
    data.source = 'embedded MNIST (src/data/mnist.ts)';
  } catch (e) {
    const rng = new wg.Rng(SEED);
    x = new Float32Array(n * SIDE * SIDE);
    y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const label = rng.int(0, CLASSES);
      y[i] = label;
      const [r0, c0] = [7 * Math.floor(label / 4), 7 * (label % 4)];
      for (let p = 0; p < SIDE * SIDE; p++) {
        const [r, c] = [Math.floor(p / SIDE), p % SIDE];
        x[i * SIDE * SIDE + p] = rng.uniform(0, 0.5) + (r >= r0 && r < r0 + 7 && c >= c0 && c < c0 + 7 ? 0.5 : 0);
      }
    }
    data.source = `synthetic (noise + a patch at the label's place; MNIST unavailable: ${msg(e).split('\n')[0]})`;
  }
  const batches: StepBatch[] = [];
  for (let b = 0; b * B < y.length; b++) {
    const yb = y.slice(b * B, (b + 1) * B);
    const onehot = new Float32Array(B * CLASSES);
    yb.forEach((label, i) => (onehot[i * CLASSES + label] = 1));
    batches.push({ x: x.slice(b * B * SIDE * SIDE, (b + 1) * B * SIDE * SIDE), y: yb, onehot });
  }
  data.batches.set(B, batches);
  return { batches, source: data.source };
}

// ---------------------------------------------------------------------------------------------------------------
// wgnn

/** The seed model (seeded), Adam and the step `fit` trains with (nn/train.ts), without the accuracy metric. */
function wgnnModel(kind: 'mlp' | 'cnn', replay: boolean) {
  wg.setSeed(SEED);
  const model = wg.nn.seedModel(kind, [SIDE, SIDE, 1], CLASSES);
  const opt = wg.optim.adam(1e-3);
  const step = wg.nn.trainStep(model, { optimizer: opt, loss: 'sparseCategoricalCrossentropy', replay });
  return { model, opt, step };
}

/** The weights of a freshly seeded model, in layer order (kernel, bias), for the peers. */
export async function initialWeights(kind: 'mlp' | 'cnn'): Promise<HostTensor[]> {
  wg.setSeed(SEED);
  const model = wg.nn.seedModel(kind, [SIDE, SIDE, 1], CLASSES);
  // namedParameters builds the weights; its order is the layers' and, in a layer, its fields' (kernel, then bias).
  const ps = model.namedParameters();
  const out: HostTensor[] = [];
  for (const [name, t] of ps) {
    if (!/^layers\.\d+\.(kernel|bias)$/.test(name)) throw new Error(`seed model: unexpected parameter ${name}`);
    out.push({ data: (await t.data()) as Float32Array, shape: [...t.shape] });
  }
  model.dispose();
  return out;
}

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};
const median = (xs: number[]): number => stats(xs).median;

interface Counts {
  dispatches: number;
  submits: number;
  /** Wall time spent inside queue.submit, ms. */
  submitMs: number;
}

/** One engine (or wgnn mode) in the rotation: its step, split into the JavaScript part and the wait for the loss. */
export interface Stepper {
  name: string;
  launch(i: number): void;
  read(): Promise<number>;
  /** Dispatches, submits and time in submit so far. */
  counts(): Counts;
  /** After the check steps (wgnn: keeps the weights for the eager/replay comparison). */
  afterCheck?(): Promise<void>;
  dispose(): void;
}

/** What one stepper measured; `error` once it threw (it then leaves the rotation). */
interface Measured {
  check: number[];
  walls: number[];
  cpus: number[];
  jsWalls: number[];
  inSubmit: number[];
  dispatches: number;
  submits: number;
  losses: number[];
  steps: number;
  error?: string;
}

const newMeasured = (): Measured => ({
  check: [],
  walls: [],
  cpus: [],
  jsWalls: [],
  inSubmit: [],
  dispatches: 0,
  submits: 0,
  losses: [],
  steps: 0,
});

/** One step read back, with its JavaScript part (launch) measured apart from the wait. */
async function timedStep(s: Stepper, m: Measured): Promise<void> {
  const c0 = s.counts();
  const u = process.cpuUsage();
  const w = performance.now();
  s.launch(m.steps++);
  const js = performance.now() - w;
  m.cpus.push(cpuMs(u));
  m.jsWalls.push(js);
  const c1 = s.counts();
  m.dispatches += c1.dispatches - c0.dispatches;
  m.submits += c1.submits - c0.submits;
  m.inSubmit.push(c1.submitMs - c0.submitMs);
  m.losses.push(await s.read());
  m.walls.push(performance.now() - w);
}

/** Check steps for each stepper, then timed rounds over all of them; a stepper that throws leaves with its error. */
/** Disposes every stepper of a case, even after a failure (one that failed half-way may not dispose cleanly). */
export function disposeSteppers(steppers: readonly Stepper[]): void {
  for (const s of steppers) {
    try {
      s.dispose();
    } catch {
      // the row already says why the case failed
    }
  }
}

export async function rotate(steppers: Stepper[], p: Plan): Promise<Measured[]> {
  const ms = steppers.map(newMeasured);
  const guard = async (i: number, fn: () => Promise<void>): Promise<void> => {
    if (ms[i]!.error) return;
    try {
      await fn();
    } catch (e) {
      ms[i]!.error = msg(e);
    }
  };
  for (let i = 0; i < steppers.length; i++) {
    const s = steppers[i]!;
    const m = ms[i]!;
    await guard(i, async () => {
      for (let k = 0; k < p.check; k++) {
        s.launch(m.steps++);
        m.check.push(await s.read());
      }
      m.losses.push(...m.check);
      await s.afterCheck?.();
    });
  }
  const t0 = performance.now();
  for (let r = 0; r < p.max && (r < p.min || performance.now() - t0 < p.budgetMs); r++) {
    for (let j = 0; j < steppers.length; j++) {
      const i = (r + j) % steppers.length;
      await guard(i, () => timedStep(steppers[i]!, ms[i]!));
    }
  }
  return ms;
}

export function summarize(m: Measured): ModeStats {
  const n = m.walls.length;
  return {
    ms: { ...stats(m.walls), n },
    jsCpuMs: median(m.cpus),
    jsWallMs: median(m.jsWalls),
    submitMs: median(m.inSubmit),
    dispatches: m.dispatches / n,
    submits: m.submits / n,
    losses: m.losses,
  };
}

/** A step or a block of steps of one wgnn mode: wall ms, submits and buffer maps, per step. */
interface Looped {
  ms: number;
  submits: number;
  maps: number;
}

/** wgnn in one mode as a stepper; `run` runs a step without reading, for the blocks of 16 and the per-step-read loop. */
function wgnnStepper(gpu: wg.WebGpuBackend, spec: TrainSpec, replay: boolean) {
  const { model, opt, step } = wgnnModel(spec.model, replay);
  const meter = new wg.nn.StepMeter(step);
  const B = spec.batch;
  let next = 0;
  const run = (i: number): void => {
    const b = spec.batches[i % spec.batches.length]!;
    step.run({ data: b.x, shape: [B, SIDE, SIDE, 1] }, { data: b.y, shape: [B] });
    meter.ran(B);
    next = i + 1;
  };
  const state = { params: [] as Float32Array[] };
  const stepper: Stepper = {
    name: replay ? 'wgnn replay' : 'wgnn eager',
    launch: (i) => {
      run(i);
      gpu.flush(); // eager work waits in wgnn's encoder until a read: submit it as part of the step (after a replay: nothing to do)
    },
    read: async () => (await meter.read()).loss!,
    // wgnn's own counters; the time in submit from the device's wrapper.
    counts: () => ({ dispatches: gpu.dispatches, submits: gpu.submits, submitMs: countOn(gpu.device).submitMs }),
    // The weights after the check steps, to compare eager with replay bitwise.
    afterCheck: async () => {
      state.params = await Promise.all(model.parameters().map(async (t) => (await t.data()) as Float32Array));
    },
    dispose: () => {
      step.dispose();
      opt.dispose();
      model.dispose();
    },
  };
  const counted = async (steps: number, fn: () => Promise<void>): Promise<Looped> => {
    const [s0, m0] = [gpu.submits, gpu.maps];
    const w = performance.now();
    await fn();
    return { ms: (performance.now() - w) / steps, submits: (gpu.submits - s0) / steps, maps: (gpu.maps - m0) / steps };
  };
  /** A block of 16 steps with one read (`read`), or none: the block ends when the GPU has finished it. */
  const block = (read: boolean): Promise<Looped> =>
    counted(16, async () => {
      for (let j = 0; j < 16; j++) run(next);
      await (read ? meter.read() : gpu.sync());
    });
  /** One step of the per-step-read loop: run, then await the loss (no flush between: wgnn decides when to submit). */
  const loopStep = (): Promise<Looped> =>
    counted(1, async () => {
      run(next);
      await meter.read();
    });
  return { stepper, step, state, block, loopStep };
}

/**
 * The step's latest capture timed one dispatch per compute pass (CompiledStep.profile: GPU timestamps, the least time
 * of each dispatch over a few runs of the list), summed by the op that launched each dispatch. The runs execute the
 * step as a replay does (they update the weights again).
 */
export async function profileStep(step: wg.CompiledStep, runs: number): Promise<Profile | string> {
  const ds = step.dispatches();
  if (!ds.length) return 'not profiled: the step has no capture';
  const per = await step.profile(runs);
  if (!per) return 'not profiled: the device has no timestamp-query';
  const gpuMs = per.reduce((a, b) => a + b, 0);
  const byOp = new Map<string, { dispatches: number; ms: number }>();
  per.forEach((ms, i) => {
    const e = byOp.get(ds[i]!.op) ?? { dispatches: 0, ms: 0 };
    e.dispatches++;
    e.ms += ms;
    byOp.set(ds[i]!.op, e);
  });
  return {
    dispatches: ds.length,
    gpuMs,
    byOp: [...byOp.entries()].map(([op, e]) => ({ op, ...e, pct: (100 * e.ms) / gpuMs })).sort((a, b) => b.ms - a.ms),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Peers: their own steps on the same weights and batches. Every engine's device is wrapped to count dispatches and
// submits and to time queue.submit (wgnn's counts come from its backend's own counters).

const deviceCounts = new WeakMap<GPUDevice, Counts>();

export function countOn(device: GPUDevice): Counts {
  let c = deviceCounts.get(device);
  if (c) return c;
  const n: Counts = { dispatches: 0, submits: 0, submitMs: 0 };
  c = n;
  deviceCounts.set(device, n);
  const q = device.queue;
  const submit = q.submit.bind(q);
  q.submit = (bufs: Iterable<GPUCommandBuffer>) => {
    n.submits++;
    const t = performance.now();
    submit(bufs);
    n.submitMs += performance.now() - t;
  };
  const create = device.createCommandEncoder.bind(device);
  device.createCommandEncoder = (desc?: GPUCommandEncoderDescriptor): GPUCommandEncoder => {
    const enc = create(desc);
    const begin = enc.beginComputePass.bind(enc);
    enc.beginComputePass = (pd?: GPUComputePassDescriptor): GPUComputePassEncoder => {
      const pass = begin(pd);
      const dispatch = pass.dispatchWorkgroups.bind(pass);
      pass.dispatchWorkgroups = (x: number, y?: number, z?: number) => {
        n.dispatches++;
        dispatch(x, y, z);
      };
      return pass;
    };
    return enc;
  };
  return n;
}

/** A peer's trainer as a stepper, its counts from the wrapper on its device. */
export function peerStepper(name: string, t: PeerTrainer, device: GPUDevice): Stepper {
  const c = countOn(device);
  return {
    name,
    launch: (i) => t.launch(i),
    read: () => t.read(),
    counts: () => ({ ...c }),
    dispose: () => t.dispose(),
  };
}

// ---------------------------------------------------------------------------------------------------------------

const sameBits = (a: ArrayLike<number>, b: ArrayLike<number>): boolean => bitDiff(a, b) === undefined;

/** How many entries differ (bitwise) and by how much at most; undefined when none do. */
function bitDiff(a: ArrayLike<number>, b: ArrayLike<number>): { count: number; max: number } | undefined {
  if (a.length !== b.length) return { count: Math.max(a.length, b.length), max: NaN };
  let count = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i])) continue;
    count++;
    max = Math.max(max, Math.abs(a[i]! - b[i]!));
  }
  return count ? { count, max } : undefined;
}

/** The loss falls: the mean of the last 3 steps' losses is below the first step's. */
export function learns(losses: number[]): string | undefined {
  const last = losses.slice(-3);
  const m = last.reduce((a, b) => a + b, 0) / last.length;
  return Number.isFinite(m) && m < losses[0]!
    ? undefined
    : `the loss did not fall: first ${losses[0]}, mean of the last 3 ${m}`;
}

export const timingOf = (s: ModeStats) => ({ reps: 1, trials: s.ms.n, wall: s.ms });

/** Runs one train case on every engine. Never throws: failures are in the row. */
export async function runTrain(c: Case, env: Env): Promise<Row> {
  const meta = c.meta as { model: 'mlp' | 'cnn'; batch: number; plan: Plan };
  const row = emptyRow(c);
  delete row.meta; // set below, with the data it trained on
  const p = meta.plan;
  const gpu = env.gpu;
  const t0 = performance.now();
  setDefaultBackend(gpu);
  let spec: TrainSpec;
  try {
    const { batches, source } = batchesOf(meta.batch);
    spec = { model: meta.model, batch: meta.batch, weights: await initialWeights(meta.model), batches };
    row.meta = { ...meta, data: source, distinctBatches: batches.length, seed: SEED };
  } catch (e) {
    row.engines.wgnn = { status: 'error', why: `data or model: ${msg(e)}` };
    return row;
  }

  // Every engine is built first, then they take turns (rotate): wgnn eager, wgnn replayed, TF.js, jax-js.
  const steppers: Stepper[] = [];
  const built: Partial<Record<'eager' | 'replay' | Engine, { at: number; kernel?: string; note?: string }>> = {};
  let eager: ReturnType<typeof wgnnStepper> | undefined;
  let replay: ReturnType<typeof wgnnStepper> | undefined;
  try {
    eager = wgnnStepper(gpu, spec, false);
    replay = wgnnStepper(gpu, spec, true);
    built.eager = { at: steppers.push(eager.stepper) - 1 };
    built.replay = { at: steppers.push(replay.stepper) - 1 };
  } catch (e) {
    row.engines.wgnn = { status: 'error', why: msg(e) };
  }
  for (const e of ['tfjs', 'jax'] as const) {
    const peer = env[e];
    if (peer === undefined) continue;
    if (typeof peer === 'string') {
      row.engines[e] = { status: 'n/a', why: peer };
      continue;
    }
    try {
      const t = e === 'tfjs' ? await tfjsTrainer(env.tfjs as never, spec) : jaxTrainer(env.jax as never, spec);
      built[e] = {
        at: steppers.push(peerStepper(ENGINE_NAMES[e], t, peer.device)) - 1,
        kernel: t.kernel,
        ...(t.note ? { note: t.note } : {}),
      };
    } catch (err) {
      row.engines[e] = { status: 'error', why: msg(err) };
    }
  }

  try {
    const ms = await rotate(steppers, p);
    // wgnn: the replayed check steps must match the eager ones bit for bit, losses and weights.
    if (eager && replay && built.eager && built.replay) {
      const [me, mr] = [ms[built.eager.at]!, ms[built.replay.at]!];
      if (me.error || mr.error)
        row.engines.wgnn = {
          status: 'error',
          why: `${me.error ? `eager: ${me.error}` : ''}${me.error && mr.error ? '; ' : ''}${mr.error ? `replay: ${mr.error}` : ''}`,
        };
      else {
        // Blocks of 16 steps with one read, and never read, the two modes taking turns (the first alternating by round).
        const modes = [eager, replay] as const;
        const order = (round: number) => (round % 2 ? ([1, 0] as const) : ([0, 1] as const));
        const b16: [Looped[], Looped[]] = [[], []];
        const b0: [Looped[], Looped[]] = [[], []];
        const tb = performance.now();
        for (let b = 0; b < p.blocks[1] && (b < p.blocks[0] || performance.now() - tb < p.blockBudgetMs); b++) {
          for (const k of order(b)) b16[k].push(await modes[k].block(true));
          for (const k of order(b)) b0[k].push(await modes[k].block(false));
        }
        // The per-step-read loop: one step of each mode a round.
        const loop: [Looped[], Looped[]] = [[], []];
        const tl = performance.now();
        for (let r = 0; r < p.max && (r < p.min || performance.now() - tl < p.budgetMs); r++) {
          for (const k of order(r)) loop[k].push(await modes[k].loopStep());
        }
        const [se, sr] = [summarize(me), summarize(mr)];
        const mean = (xs: Looped[], key: 'submits' | 'maps') => xs.reduce((a, x) => a + x[key], 0) / xs.length;
        const sum = (xs: Looped[]) => ({
          median: median(xs.map((x) => x.ms)),
          submits: mean(xs, 'submits'),
          maps: mean(xs, 'maps'),
        });
        ([se, sr] as const).forEach((st, k) => {
          st.ms16 = { ...sum(b16[k]), blocks: b16[k].length };
          st.never = { ...sum(b0[k]), blocks: b0[k].length };
          st.perStepRead = { ...sum(loop[k]), steps: loop[k].length };
        });
        const profile = await profileStep(replay.step, p.profileRuns).catch((e: unknown) => `not profiled: ${msg(e)}`);
        const r: TrainResult = {
          status: 'ok',
          kernel: 'compileStep replay',
          note: `${sr.dispatches.toFixed(0)} dispatches replayed in ${sr.submits.toFixed(0)} submit`,
          timing: timingOf(sr),
          train: { ...sr, eager: se, profile },
        };
        const why: string[] = [];
        if (replay.step.captures !== 1 || replay.step.replays < p.check - 1)
          why.push(`replay: ${replay.step.captures} captures, ${replay.step.replays} replays`);
        if (!sameBits(me.check, mr.check))
          why.push(`replayed losses ${mr.check.join(', ')} differ from eager ${me.check.join(', ')}`);
        eager.state.params.forEach((w, i) => {
          const d = bitDiff(w, replay!.state.params[i]!);
          if (d)
            why.push(
              `parameter ${i} ${spec.weights[i]!.shape.join('×')} after ${p.check} steps: ${d.count} entries differ between eager and replay (largest ${d.max.toExponential(2)})`,
            );
        });
        for (const [mode, st] of [
          ['eager', se],
          ['replay', sr],
        ] as const) {
          const l = learns(st.losses);
          if (l) why.push(`${mode}: ${l}`);
        }
        r.check = { how: `eager vs replay, ${p.check} steps, losses and weights bitwise`, maxErr: 0, checked: p.check };
        if (why.length) Object.assign(r, { status: 'fail', why: why.join('; ') });
        row.engines.wgnn = r;
      }
    }
    // Peers: same weights and first batch, so the first loss (before any update) must agree with wgnn's; and it falls.
    const wgnnFirst = built.eager ? ms[built.eager.at]!.check[0] : undefined;
    for (const e of ['tfjs', 'jax'] as const) {
      const b = built[e];
      if (!b) continue;
      const m = ms[b.at]!;
      if (m.error) {
        row.engines[e] = { status: 'error', why: m.error, ...(b.kernel ? { kernel: b.kernel } : {}) };
        continue;
      }
      const st = summarize(m);
      const res: TrainResult = {
        status: 'ok',
        ...(b.kernel ? { kernel: b.kernel } : {}),
        ...(b.note ? { note: b.note } : {}),
        timing: timingOf(st),
        train: st,
      };
      const why: string[] = [];
      const first = m.check[0]!;
      if (wgnnFirst !== undefined && !(Math.abs(first - wgnnFirst) <= 1e-4 + 1e-4 * Math.abs(wgnnFirst))) {
        why.push(`first loss ${first}, wgnn ${wgnnFirst} (same weights and batch)`);
      }
      const l = learns(st.losses);
      if (l) why.push(l);
      res.check = {
        how: 'first loss vs wgnn (same weights, same batch); the loss falls',
        maxErr: wgnnFirst === undefined ? NaN : Math.abs(first - wgnnFirst),
        checked: 1,
      };
      if (why.length) Object.assign(res, { status: 'fail', why: why.join('; ') });
      row.engines[e] = res;
    }
  } catch (e) {
    row.engines.wgnn ??= { status: 'error', why: msg(e) };
  } finally {
    disposeSteppers(steppers);
    setDefaultBackend(undefined);
  }
  // The engines took turns: the whole case's time goes on wgnn's result.
  if (row.engines.wgnn) row.engines.wgnn.spentMs = Math.round(performance.now() - t0);
  return row;
}

// ---------------------------------------------------------------------------------------------------------------
// The table.

const f = (x: number | undefined, digits?: number): string =>
  x === undefined || Number.isNaN(x)
    ? '—'
    : digits !== undefined
      ? x.toFixed(digits)
      : x >= 100
        ? x.toFixed(0)
        : x >= 10
          ? x.toFixed(1)
          : x >= 1
            ? x.toFixed(2)
            : x.toFixed(3);

export function printTrain(rows: Row[], peers: Partial<Record<Engine, string>>, log: (s: string) => void): void {
  log('');
  log(
    '== train == one training step of the seed models (sparse cross-entropy, Adam 1e-3), batches cycled, same initial weights in every engine',
  );
  log(
    '   ms/step: wall, launch to loss on the host, median (read every step; wgnn also read every 16 steps); JS ms: process CPU time of',
  );
  log(
    '   the JavaScript part (upload + encode + submit; on a CPU WebGPU its threads running the work count too), its wall time, and the',
  );
  log(
    '   wall time inside queue.submit; dispatches and submits per step of that part (the loss readback adds one submit)',
  );
  const meta0 = rows.find((r) => r.meta)?.meta as { data?: string } | undefined;
  if (meta0?.data) log(`   data: ${meta0.data}`);
  const W = [10, 14, 9, 7, 9, 17, 10, 11, 8, 17];
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i < 2 ? c.padEnd(W[i]!) : c.padStart(W[i]!))).join(' ');
  log(
    line([
      'case',
      'engine/mode',
      'ms/step',
      'spread',
      'ms (÷16)',
      'JS ms cpu/wall',
      'in submit',
      'dispatches',
      'submits',
      'loss first→last',
    ]),
  );
  for (const r of rows) {
    const show = (name: string, e: TrainResult | undefined, s: ModeStats | undefined, first: boolean): void => {
      const label = first ? r.label : '';
      if (!e) return;
      if (!s) {
        log(line([label, name, e.status === 'n/a' ? 'n/a' : 'ERROR', '', '', '', '', '', '', '']));
        if (e.why && !(e.status === 'n/a' && peers[name === 'TF.js' ? 'tfjs' : 'jax']?.startsWith('unavailable')))
          log(`    ${name}: ${e.why}`);
        return;
      }
      const spread = `${((100 * (s.ms.max - s.ms.min)) / s.ms.median).toFixed(0)}%`;
      const ls = s.losses;
      log(
        line([
          label,
          name,
          `${f(s.ms.median)}${e.status === 'fail' ? '!' : ''}`,
          spread,
          f(s.ms16?.median),
          `${f(s.jsCpuMs)}/${f(s.jsWallMs)}`,
          f(s.submitMs),
          f(s.dispatches, 0),
          f(s.submits, 1),
          `${ls[0]!.toFixed(3)}→${ls[ls.length - 1]!.toFixed(3)}`,
        ]),
      );
    };
    const w = r.engines.wgnn as TrainResult | undefined;
    show('wgnn eager', w, w?.train?.eager, true);
    show('wgnn replay', w, w?.train, false);
    for (const e of ['tfjs', 'jax'] as const) {
      const x = r.engines[e] as TrainResult | undefined;
      show(ENGINE_NAMES[e], x, x?.train, false);
    }
    const [se, sr] = [w?.train?.eager, w?.train];
    if (se?.perStepRead && sr?.perStepRead) {
      // Replay against eager in each protocol, the same run: the per-step read is the one a PyTorch-style loop makes.
      type P = { median: number; submits?: number; maps?: number };
      const cost = (x: P) => `${f(x.median)} ms (${f(x.submits, 2)} submits, ${f(x.maps, 2)} maps/step)`;
      const vs = (what: string, e?: P, rp?: P) =>
        e && rp
          ? `${what}: replay ${cost(rp)} vs eager ${cost(e)}: ${rp.median <= e.median ? 'replay ≤ eager' : `replay ${(rp.median / e.median).toFixed(2)}× eager`}`
          : '';
      log(`    ${vs('loss read every step (run, await loss)', se.perStepRead, sr.perStepRead)}`);
      log(`    ${vs('read every 16', se.ms16, sr.ms16)}; ${vs('never read', se.never, sr.never)}`);
    }
    for (const e of ['wgnn', 'tfjs', 'jax'] as const) {
      const x = r.engines[e];
      if (x?.status === 'fail') log(`    ${ENGINE_NAMES[e]} FAILED its check: ${x.why}`);
      else if (x?.status === 'error') log(`    ${ENGINE_NAMES[e]} ERROR: ${x.why}`);
    }
    // The ratio of the replayed step to the faster peer, both read every step.
    const ms = (e: Engine, at: 'median' | 'min' = 'median'): number | undefined =>
      r.engines[e]?.status === 'ok' ? (r.engines[e] as TrainResult).train?.ms[at] : undefined;
    const peerMs = (['tfjs', 'jax'] as const)
      .map((e) => [e, ms(e)] as const)
      .filter((x): x is readonly ['tfjs' | 'jax', number] => x[1] !== undefined);
    const wm = ms('wgnn');
    if (wm !== undefined && peerMs.length) {
      const [best, bm] = peerMs.reduce((a, b) => (b[1] < a[1] ? b : a));
      const times = (ratio: number): string =>
        ratio >= 1 ? `${ratio.toFixed(2)}× faster` : `${(1 / ratio).toFixed(2)}× slower`;
      const [wMin, bMin] = [ms('wgnn', 'min')!, ms(best, 'min')!];
      log(
        `    replay vs the faster peer (${ENGINE_NAMES[best]}): ${times(bm / wm)} (median ${f(wm)} vs ${f(bm)} ms/step; fastest steps ${f(wMin)} vs ${f(bMin)}: ${times(bMin / wMin)})`,
      );
    }
    const prof = w?.train?.profile;
    if (prof && typeof prof !== 'string') {
      const top = prof.byOp.slice(0, 6).map((k) => `${k.op} ${k.pct.toFixed(0)}% (${f(k.ms)} ms, ${k.dispatches}×)`);
      log(
        `    replayed step on the GPU, one pass per dispatch: ${f(prof.gpuMs)} ms in ${prof.dispatches} dispatches: ${top.join(', ')}`,
      );
    } else if (prof) log(`    replayed step: ${prof}`);
  }
}
