// The transformer benchmark (`npm run bench -- transformer [--profile]`): tokens/s of one AdamW training step of a
// nanoGPT-shaped GPT in wgnn (trainStep, replayed) and the same GPT written for TF.js and jax-js, from wgnn's initial
// weights on the same batches, each peer's loss checked against wgnn's at every step; --profile times the replayed
// step's dispatches one by one and groups them by op.
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
import { jaxGptTrainer } from './peers/jax-gpt.js';
import { msg } from './peers/peer.js';
import { tfjsGptTrainer } from './peers/tfjs-gpt.js';
import {
  countOn,
  learns,
  peerStepper,
  profileStep,
  disposeSteppers,
  rotate,
  summarize,
  timingOf,
  type ModeStats,
  type Plan,
  type Profile,
  type Stepper,
} from './train.js';

/** The GPT's shape (wg.gpt's options); batches are full windows, T = blockSize. */
export interface GptShape {
  vocabSize: number;
  blockSize: number;
  layers: number;
  heads: number;
  dim: number;
}

/** AdamW's hyperparameters, as torch.optim.AdamW takes them (every parameter decayed, as wgnn's AdamW). */
export interface AdamWSpec {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** What a peer needs to train the same GPT: the shape, wgnn's initial weights, the batches and the optimizer. */
export interface GptSpec {
  model: GptShape;
  /** The layer norms' epsilon; the MLP's GELU is the tanh approximation (wgnn's default, GPT-2's). */
  epsilon: number;
  batch: number;
  /**
   * wgnn's initial weights by name and layout (docs/gpt-pytorch.md: `layers.0.tokens` [V,D], `layers.{i}.attn.qkv
   * .kernel` [D,3D] with columns [q | k | v], ...); the head is tied to `layers.0.tokens` (no kernel of its own).
   */
  weights: Map<string, HostTensor>;
  /** x, y int32 [B·T] row-major (y: x shifted by one token), cycled. */
  batches: { x: Int32Array; y: Int32Array }[];
  adamw: AdamWSpec;
}

export interface TransformerResult extends EngineResult {
  train?: ModeStats & { tokensPerSec: number; profile?: Profile | string };
}

const SEED = 1234;
const ADAMW: AdamWSpec = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
const EPSILON = 1e-5;
/** Debian's fortunes have 113 distinct characters: the char GPT's vocabulary. */
const CHAR_VOCAB = 113;

// NOTE: the peers' losses against wgnn's, step by step (every engine runs the same steps on the same batches, from
// the same weights). Measured on lavapipe, char GPT: |peer − wgnn| / wgnn was 1e-7 on the first step (the forward
// alone: about 1 ulp of the loss, float32 sums in another order), growing by ~1e-7 a step (7.7e-7 after 7 AdamW
// steps) as the rounding differences pass through the updates. Allowed: 2e-6, plus 1e-6 per step since the first: 10×
// that drift, room for other GPUs' reduction orders, and a peer without weight decay already fails by step 3 (5.5e-6
// on the tiny GPT). The first step alone cannot tell GELU's tanh form from erf's: at nanoGPT's initialisation the
// pre-activations are too small for the two to differ in float32.
const FIRST_RTOL = 2e-6;
const DRIFT_RTOL = 1e-6;

interface GptCase {
  model: GptShape;
  batch: number;
  plan: Plan;
  /** Why the peers do not run this case (the 124M shape). */
  noPeers?: string;
  profile: boolean;
}

function cases(o: FamilyOpts): { id: string; model: GptShape; batch: number; plan: Plan; noPeers?: string }[] {
  const char: GptShape = { vocabSize: CHAR_VOCAB, blockSize: 128, layers: 4, heads: 4, dim: 128 };
  const base = { blocks: [0, 0] as [number, number], blockBudgetMs: 0 };
  if (o.quick)
    return [
      {
        id: 'gpt-tiny',
        model: { vocabSize: CHAR_VOCAB, blockSize: 16, layers: 2, heads: 2, dim: 32 },
        batch: 4,
        plan: { ...base, check: 3, min: 2, max: 2, budgetMs: 0, profileRuns: 2 },
      },
    ];
  if (o.software)
    return [
      {
        id: 'char-gpt',
        model: char,
        batch: o.batch ?? 16,
        plan: { ...base, check: 3, min: 4, max: 12, budgetMs: 60_000, profileRuns: 2 },
      },
    ];
  return [
    {
      id: 'char-gpt',
      model: char,
      batch: o.batch ?? 16,
      plan: { ...base, check: 3, min: 10, max: 200, budgetMs: 10_000, profileRuns: 5 },
    },
    {
      // GPT-2 small (124M parameters), the shape scripts/bench-device.sh also runs in PyTorch eager.
      id: 'gpt2-124m',
      model: { vocabSize: 50257, blockSize: 1024, layers: 12, heads: 12, dim: 768 },
      batch: o.batch ?? 8,
      // NOTE: at least 3 timed steps (not more: a slow step must still fit bench-device.sh's 120 s per case)
      plan: { ...base, check: 2, min: 3, max: 30, budgetMs: 20_000, profileRuns: 2 },
      noPeers:
        'not run at the GPT-2 124M shape: its reference is PyTorch eager in scripts/bench-device.sh; the peers run the char GPT',
    },
  ];
}

/** Parameters a step trains, without the position table (nanoGPT's count; the tied head counts once). */
function paramCount(m: GptShape): number {
  const D = m.dim;
  return m.vocabSize * D + m.layers * (12 * D * D + 13 * D) + 2 * D;
}

/**
 * Floating-point operations of a step, nanoGPT's estimate (PaLM, appendix B): 6 per parameter per token (forward and
 * backward, a multiply-add being 2) plus 12·L·T·D per token for attention's two products (causal masking not taken off).
 */
function stepFlops(m: GptShape, batch: number): number {
  return (6 * paramCount(m) + 12 * m.layers * m.blockSize * m.dim) * batch * m.blockSize;
}

export function transformerCases(o: FamilyOpts): Case[] {
  return cases(o).map((c) => {
    const m = c.model;
    // A GPU run (rare: the device machine) always profiles; elsewhere --profile asks for it.
    const meta: GptCase = { model: m, batch: c.batch, plan: c.plan, profile: !!o.profile || (!o.software && !o.quick) };
    if (c.noPeers) meta.noPeers = c.noPeers;
    const run = (): never => {
      throw new Error('transformer cases run through bench/transformer.ts runTransformer');
    };
    return {
      family: 'transformer',
      id: c.id,
      label: `gpt L${m.layers} H${m.heads} d${m.dim} T${m.blockSize} V${m.vocabSize} b${c.batch}`,
      bound: 'compute',
      flops: stepFlops(m, c.batch),
      bytes: 0,
      meta: meta as unknown as Record<string, unknown>,
      inputs: () => [],
      check: run,
      wgnn: run,
      tfjs: c.noPeers ?? 'runs through bench/transformer.ts',
      jax: c.noPeers ?? 'runs through bench/transformer.ts',
    };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Data: windows of Debian's fortunes (wgnn's char tokenizer; nanoGPT's sampling, seeded), or where they are missing
// (the bare device machine) token ids drawn skewed towards small ones (u³), so the loss can still fall.

let fortunes: Promise<string | Error> | undefined;

async function batchesOf(m: GptShape, B: number, n: number): Promise<{ batches: GptSpec['batches']; source: string }> {
  fortunes ??= wg.data.readFortunes().catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  const text = await fortunes;
  const T = m.blockSize;
  if (typeof text === 'string') {
    const { tokenizer, train } = wg.data.textDataset(text, { blockSize: T });
    if (tokenizer.vocabSize <= m.vocabSize) {
      const batches = Array.from({ length: n }, (_, i) => {
        const b = train.batchAt(B, SEED, i);
        return { x: b.x, y: b.y };
      });
      return { batches, source: `Debian fortunes, ${tokenizer.vocabSize} characters, random windows (seed ${SEED})` };
    }
  }
  const rng = new wg.Rng(SEED);
  const top = Math.min(m.vocabSize, 256);
  const batches = Array.from({ length: n }, () => {
    const seq = Int32Array.from({ length: B * (T + 1) }, () => Math.floor(top * rng.next() ** 3));
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      x.set(seq.subarray(b * (T + 1), b * (T + 1) + T), b * T);
      y.set(seq.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
    }
    return { x, y };
  });
  const why = typeof text === 'string' ? 'its vocabulary is larger than the model' : text.message.split('\n')[0];
  return { batches, source: `synthetic ids floor(${top}·u³) (fortunes not used: ${why})` };
}

// ---------------------------------------------------------------------------------------------------------------
// wgnn

/** The GPT (seeded), AdamW and its replayed training step, as a stepper; and the step, for the profile. */
function wgnnStepper(gpu: wg.WebGpuBackend, model: wg.GPT, spec: GptSpec) {
  const { lr, beta1, beta2, eps, weightDecay } = spec.adamw;
  const opt = wg.optim.adamw({ lr, betas: [beta1, beta2], eps, weightDecay });
  const step = wg.nn.trainStep(model, { optimizer: opt, loss: 'sparseCategoricalCrossentropy' });
  const meter = new wg.nn.StepMeter(step);
  const [B, T] = [spec.batch, spec.model.blockSize];
  const stepper: Stepper = {
    name: 'wgnn',
    launch: (i) => {
      const b = spec.batches[i % spec.batches.length]!;
      step.run({ data: b.x, shape: [B, T] }, { data: b.y, shape: [B, T] });
      meter.ran(B);
      gpu.flush(); // the first (captured) step's work waits in wgnn's encoder until a read: submit it with the step
    },
    read: async () => (await meter.read()).loss!,
    counts: () => ({ dispatches: gpu.dispatches, submits: gpu.submits, submitMs: countOn(gpu.device).submitMs }),
    dispose: () => {
      step.dispose();
      opt.dispose();
      model.dispose();
    },
  };
  return { stepper, step };
}

/** wgnn's GPT for this case (seeded) and, when peers run it, its initial weights by name. */
async function wgnnModel(m: GptShape, peers: boolean): Promise<{ model: wg.GPT; weights: Map<string, HostTensor> }> {
  const model = wg.gpt({ ...m, dropout: 0, epsilon: EPSILON, activation: 'gelu_tanh', tieWeights: true, seed: SEED });
  const weights = new Map<string, HostTensor>();
  const named = model.namedParameters(); // builds the weights
  if (peers)
    for (const [name, t] of named) weights.set(name, { data: (await t.data()) as Float32Array, shape: [...t.shape] });
  return { model, weights };
}

// ---------------------------------------------------------------------------------------------------------------

/** Each step's |peer − wgnn| against its allowance (FIRST_RTOL, plus DRIFT_RTOL per step): why it fails. */
function lossCheck(peer: number[], ours: number[]): { maxErr: number; why?: string } {
  let maxErr = 0;
  for (let i = 0; i < Math.min(peer.length, ours.length); i++) {
    const err = Math.abs(peer[i]! - ours[i]!);
    maxErr = Math.max(maxErr, err);
    const allowed = (FIRST_RTOL + i * DRIFT_RTOL) * Math.abs(ours[i]!);
    if (!(err <= allowed))
      return {
        maxErr,
        why: `loss of step ${i + 1} ${peer[i]}, wgnn ${ours[i]} (|err| ${err.toExponential(2)} > ${allowed.toExponential(2)}; same weights and batches)`,
      };
  }
  return { maxErr };
}

/** Runs one transformer case on every engine, taking turns step by step. Never throws: failures are in the row. */
export async function runTransformer(c: Case, env: Env): Promise<Row> {
  const meta = c.meta as unknown as GptCase;
  const row = emptyRow(c);
  const p = meta.plan;
  const gpu = env.gpu;
  const t0 = performance.now();
  setDefaultBackend(gpu);
  const steppers: Stepper[] = [];
  const at: Partial<Record<Engine, { i: number; kernel?: string; note?: string }>> = {};
  let step: wg.CompiledStep | undefined;
  let spec: GptSpec;
  try {
    const { batches, source } = await batchesOf(meta.model, meta.batch, Math.max(8, p.check + 2));
    const { model, weights } = await wgnnModel(meta.model, !meta.noPeers);
    spec = { model: meta.model, epsilon: EPSILON, batch: meta.batch, weights, batches, adamw: ADAMW };
    row.meta = { ...row.meta, data: source, distinctBatches: batches.length, seed: SEED, adamw: ADAMW };
    const w = wgnnStepper(gpu, model, spec);
    step = w.step;
    at.wgnn = { i: steppers.push(w.stepper) - 1 };
  } catch (e) {
    row.engines.wgnn = { status: 'error', why: `data or model: ${msg(e)}` };
    setDefaultBackend(undefined);
    return row;
  }
  for (const e of ['tfjs', 'jax'] as const) {
    const peer = env[e];
    if (peer === undefined) continue;
    if (typeof peer === 'string' || meta.noPeers) {
      row.engines[e] = { status: 'n/a', why: meta.noPeers ?? (peer as string) };
      continue;
    }
    try {
      const t = e === 'tfjs' ? await tfjsGptTrainer(env.tfjs as never, spec) : jaxGptTrainer(env.jax as never, spec);
      at[e] = {
        i: steppers.push(peerStepper(ENGINE_NAMES[e], t, peer.device)) - 1,
        kernel: t.kernel,
        ...(t.note ? { note: t.note } : {}),
      };
    } catch (err) {
      row.engines[e] = { status: 'error', why: msg(err) };
    }
  }
  const tokens = meta.batch * meta.model.blockSize;
  try {
    const ms = await rotate(steppers, p);
    const ours = ms[at.wgnn!.i]!;
    for (const e of ['wgnn', 'tfjs', 'jax'] as const) {
      const b = at[e];
      if (!b) continue;
      const m = ms[b.i]!;
      const kernel = b.kernel ?? (e === 'wgnn' ? 'trainStep (replayed)' : undefined);
      if (m.error) {
        row.engines[e] = { status: 'error', why: m.error, ...(kernel ? { kernel } : {}) };
        continue;
      }
      const st = summarize(m);
      const r: TransformerResult = {
        status: 'ok',
        ...(kernel ? { kernel } : {}),
        ...(b.note ? { note: b.note } : {}),
        timing: timingOf(st),
        train: { ...st, tokensPerSec: (1000 * tokens) / st.ms.median },
      };
      const why: string[] = [];
      const l = learns(st.losses);
      if (l) why.push(l);
      if (e === 'wgnn') {
        if (step!.captures !== 1 || step!.replays < p.check - 1)
          why.push(`replay: ${step!.captures} captures, ${step!.replays} replays`);
        r.check = { how: 'the loss falls; one capture, then replays', maxErr: 0, checked: st.losses.length };
      } else if (!ours.error) {
        const chk = lossCheck(m.losses, ours.losses);
        if (chk.why) why.push(chk.why);
        r.check = {
          how: `every step's loss vs wgnn's (same weights, batches, AdamW): step 1 within ${FIRST_RTOL} relative, then +${DRIFT_RTOL} per step`,
          maxErr: chk.maxErr,
          checked: Math.min(m.losses.length, ours.losses.length),
        };
      }
      if (why.length) Object.assign(r, { status: 'fail', why: why.join('; ') });
      row.engines[e] = r;
    }
    const w = row.engines.wgnn as TransformerResult | undefined;
    if (meta.profile && w?.train && step)
      w.train.profile = await profileStep(step, p.profileRuns).catch((e: unknown) => `not profiled: ${msg(e)}`);
  } catch (e) {
    row.engines.wgnn ??= { status: 'error', why: msg(e) };
  } finally {
    disposeSteppers(steppers);
    setDefaultBackend(undefined);
  }
  if (row.engines.wgnn) row.engines.wgnn.spentMs = Math.round(performance.now() - t0);
  return row;
}

// ---------------------------------------------------------------------------------------------------------------
// The table.

const f = (x: number | undefined): string =>
  x === undefined || Number.isNaN(x)
    ? '—'
    : x >= 100
      ? x.toFixed(0)
      : x >= 10
        ? x.toFixed(1)
        : x >= 1
          ? x.toFixed(2)
          : x.toFixed(3);

export function printTransformer(rows: Row[], peers: Partial<Record<Engine, string>>, log: (s: string) => void): void {
  log('');
  log(
    '== transformer == one AdamW training step of a nanoGPT-shaped GPT (pre-LN, GELU-tanh, tied head, lr 1e-3, weight decay 0.1),',
  );
  log(
    '   same initial weights and batches in every engine; ms/step: wall, launch to loss on the host, median (loss read every step);',
  );
  log(
    "   tokens/s = B·T / ms/step; GFLOP/s = nanoGPT's flops estimate (6·params + 12·L·T·D per token) / ms/step; JS ms: CPU/wall time",
  );
  log('   of the JavaScript part of a step (upload + encode + submit)');
  const W = [34, 7, 9, 7, 10, 8, 14, 10, 8, 15];
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i < 2 ? c.padEnd(W[i]!) : c.padStart(W[i]!))).join(' ');
  for (const r of rows) {
    const m = r.meta as { data?: string } | undefined;
    log(`   ${r.label}: ${m?.data ?? ''}`);
  }
  log(
    line([
      'case',
      'engine',
      'ms/step',
      'spread',
      'tokens/s',
      'GFLOP/s',
      'JS ms cpu/wall',
      'dispatches',
      'submits',
      'loss first→last',
    ]),
  );
  for (const r of rows) {
    let first = true;
    for (const e of ['wgnn', 'tfjs', 'jax'] as const) {
      const x = r.engines[e] as TransformerResult | undefined;
      if (!x) continue;
      const label = first ? r.label : '';
      first = false;
      const s = x.train;
      if (!s) {
        log(line([label, ENGINE_NAMES[e], x.status === 'n/a' ? 'n/a' : 'ERROR', '', '', '', '', '', '', '']));
        const global = e !== 'wgnn' && x.why !== undefined && peers[e] === `unavailable: ${x.why}`;
        if (x.why && !global) log(`    ${ENGINE_NAMES[e]}: ${x.why}`);
        continue;
      }
      const ls = s.losses;
      log(
        line([
          label,
          ENGINE_NAMES[e],
          `${f(s.ms.median)}${x.status === 'fail' ? '!' : ''}`,
          `${((100 * (s.ms.max - s.ms.min)) / s.ms.median).toFixed(0)}%`,
          f(s.tokensPerSec),
          f(r.flops ? r.flops / (s.ms.median * 1e6) : undefined),
          `${f(s.jsCpuMs)}/${f(s.jsWallMs)}`,
          s.dispatches.toFixed(0),
          s.submits.toFixed(1),
          `${ls[0]!.toFixed(3)}→${ls[ls.length - 1]!.toFixed(3)}`,
        ]),
      );
    }
    for (const e of ['wgnn', 'tfjs', 'jax'] as const) {
      const x = r.engines[e];
      if (x?.status === 'fail') log(`    ${ENGINE_NAMES[e]} FAILED its check: ${x.why}`);
      else if (x?.status === 'error') log(`    ${ENGINE_NAMES[e]} ERROR: ${x.why}`);
      else if (x?.status === 'ok' && e !== 'wgnn')
        log(`    ${ENGINE_NAMES[e]}: ${x.kernel}${x.note ? `; ${x.note}` : ''}`);
    }
    const tps = (e: Engine): number | undefined =>
      r.engines[e]?.status === 'ok' ? (r.engines[e] as TransformerResult).train?.tokensPerSec : undefined;
    const w = tps('wgnn');
    const best = (['tfjs', 'jax'] as const)
      .map((e) => [e, tps(e)] as const)
      .filter((x): x is readonly ['tfjs' | 'jax', number] => x[1] !== undefined)
      .sort((a, b) => b[1] - a[1])[0];
    if (w !== undefined && best)
      log(
        `    ratio: wgnn ${f(w)} tokens/s vs the best peer (${ENGINE_NAMES[best[0]]}) ${f(best[1])}: ${(w / best[1]).toFixed(2)}×`,
      );
    const prof = (r.engines.wgnn as TransformerResult | undefined)?.train?.profile;
    if (prof && typeof prof !== 'string') {
      log(
        `    replayed step on the GPU, one compute pass per dispatch (GPU timestamps, least of a few runs): ${f(prof.gpuMs)} ms in ${prof.dispatches} dispatches`,
      );
      log(`      ${'op'.padEnd(28)} ${'dispatches'.padStart(10)} ${'ms'.padStart(9)} ${'share'.padStart(6)}`);
      for (const k of prof.byOp)
        log(
          `      ${k.op.padEnd(28)} ${String(k.dispatches).padStart(10)} ${f(k.ms).padStart(9)} ${`${k.pct.toFixed(1)}%`.padStart(6)}`,
        );
    } else if (prof) log(`    replayed step: ${prof}`);
  }
}
