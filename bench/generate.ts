// The generation benchmark (`npm run bench -- generate`): ms per generated token of a GPT at several prefix lengths,
// with the key/value cache and with full recomputation of the context per token, greedy, so both must give the same
// tokens (checked on every run). The cached time should not grow with the prefix; the full one does.
import * as wg from '../src/index.js';
import { setDefaultBackend } from '../src/internal.js';
import { emptyRow, type Case, type Engine, type EngineResult, type Env, type FamilyOpts, type Row } from './harness.js';
import { msg } from './peers/peer.js';
import { PassTimer, stats, type Stats } from './timer.js';

interface Model {
  vocabSize: number;
  blockSize: number;
  layers: number;
  heads: number;
  dim: number;
}

interface Plan {
  /**
   * Prompt lengths; a run generates `tokens` + 1 tokens after one, its first timed apart (it also runs the whole
   * prompt). prefix + tokens <= blockSize: the cache never fills, so no token recomputes a cropped context.
   */
  prefixes: number[];
  tokens: number;
  /** Timed rounds after one warm-up round (every shape compiled): at least min, at most max, until budgetMs. */
  min: number;
  max: number;
  budgetMs: number;
}

/** Per-token times of one mode at one prefix over every timed run, ms; `n` tokens. */
export type TokenStats = Stats & { n: number };

/** One mode at one prefix: wall and (where the device has timestamp-query) GPU time per token, the first token's. */
export interface ModeResult {
  wall: TokenStats;
  /** The summed compute-pass time of each token (PassTimer), without the dispatch, submit and readback latency. */
  gpu?: TokenStats;
  /** The first token of a run (the whole prompt in one forward, then a token): wall ms, median. */
  firstMs: number;
}

export interface PrefixResult {
  prefix: number;
  /** Tokens 2..k+1 of each run: the context holds prefix + 1 .. prefix + k tokens as each is made. */
  cached: ModeResult;
  full: ModeResult;
  /** full / cached, wall medians. */
  ratio: number;
}

export interface GenerateResult extends EngineResult {
  generate?: {
    prefixes: PrefixResult[];
    /** Cached wall median ms/token at the longest prefix / at the shortest (flat: near 1); and of GPU time. */
    flat: number;
    flatGpu?: number;
    /** The same for full recomputation (grows with the prefix). */
    fullGrowth: number;
    /** Timed runs of each mode at each prefix. */
    runs: number;
  };
}

const SEED = 1234;
// NOTE: σ 0.2 instead of nanoGPT's 0.02: a random model's logits at 0.02 lie within rounding of each other, so a
// greedy pick could flip between the cached and the full path (different kernels, different sums) without a bug.
// The time per token does not depend on the weights' values.
const INIT_STD = 0.2;
/** The fortunes corpus' character vocabulary. */
const VOCAB = 113;

function setup(o: FamilyOpts): { model: Model; plan: Plan } {
  if (o.quick)
    return {
      model: { vocabSize: VOCAB, blockSize: 32, layers: 2, heads: 2, dim: 32 },
      plan: { prefixes: [4, 12, 24], tokens: 6, min: 2, max: 2, budgetMs: 0 },
    };
  if (o.software)
    return {
      model: { vocabSize: VOCAB, blockSize: 128, layers: 4, heads: 4, dim: 128 },
      plan: { prefixes: [8, 32, 64, 120], tokens: 8, min: 3, max: 20, budgetMs: 60_000 },
    };
  return {
    model: { vocabSize: VOCAB, blockSize: 256, layers: 4, heads: 4, dim: 128 },
    plan: { prefixes: [8, 32, 64, 128, 240], tokens: 16, min: 5, max: 50, budgetMs: 20_000 },
  };
}

/** The least floating-point operations of one cached token with `ctx` tokens in the context (a multiply-add is 2). */
function tokenFlops(m: Model, ctx: number): number {
  // Per block: QKV 3D², output D², MLP 2·4D² (24D² flops), scores and weighted values 2·ctx·D each; then the head.
  return m.layers * (24 * m.dim * m.dim + 4 * ctx * m.dim) + 2 * m.dim * m.vocabSize;
}

export function generateCases(o: FamilyOpts): Case[] {
  const { model, plan } = setup(o);
  const longest = Math.max(...plan.prefixes);
  if (longest + plan.tokens > model.blockSize)
    throw new Error(`generate: prefix ${longest} + ${plan.tokens} tokens passes the block size ${model.blockSize}`);
  const run = (): never => {
    throw new Error('generate cases run through bench/generate.ts runGenerate');
  };
  return [
    {
      family: 'generate',
      id: `gpt-L${model.layers}-d${model.dim}-T${model.blockSize}`,
      label: `gpt L${model.layers} H${model.heads} d${model.dim} T${model.blockSize}`,
      bound: 'compute',
      // The row's rate: one cached token at the longest prefix (the least context of its tokens).
      flops: tokenFlops(model, longest + 1),
      bytes: 0,
      meta: { model, plan, initStd: INIT_STD, seed: SEED },
      inputs: () => [],
      check: run,
      wgnn: run,
      tfjs: 'no peer: TF.js has no GPT generation to compare with',
      jax: 'no peer: jax-js has no GPT generation to compare with',
    },
  ];
}

/** What one mode measured at one prefix over the timed runs. */
interface Samples {
  wall: number[];
  gpu: number[];
  first: number[];
}

/**
 * A greedy run of k + 1 tokens after `prompt`: its tokens, the wall time of each (the first from the call), and the
 * GPU time of each (timer: a window per token, read and reopened in onToken, outside the wall intervals).
 */
async function timedRun(
  model: wg.GPT,
  prompt: Int32Array,
  k: number,
  cache: boolean,
  timer: PassTimer | undefined,
): Promise<{ ids: Int32Array; wall: number[]; gpu: (number | undefined)[] }> {
  const wall: number[] = [];
  const gpu: (number | undefined)[] = [];
  let since = performance.now();
  timer?.start();
  const ids = await model.generate(prompt, {
    maxTokens: k + 1,
    temperature: 0,
    cache,
    onToken: async () => {
      wall.push(performance.now() - since);
      if (timer) {
        gpu.push(await timer.stop());
        timer.start();
      }
      since = performance.now();
    },
  });
  await timer?.stop();
  return { ids, wall, gpu };
}

const withN = (xs: number[]): TokenStats => ({ ...stats(xs), n: xs.length });

/** Runs the generate case: both modes at every prefix, interleaved. Never throws: failures are in the row. */
export async function runGenerate(c: Case, env: Env): Promise<Row> {
  const { model: m, plan: p } = c.meta as { model: Model; plan: Plan };
  const row = emptyRow(c);
  for (const e of ['tfjs', 'jax'] as const)
    if (env[e] !== undefined) row.engines[e] = { status: 'n/a', why: c[e] as string };
  const t0 = performance.now();
  setDefaultBackend(env.gpu);
  let model: wg.GPT | undefined;
  const r: GenerateResult = { status: 'error', kernel: 'GPT.generate' };
  try {
    model = wg.gpt({ ...m, dropout: 0, initStd: INIT_STD, seed: SEED });
    const timer = env.timer === 'wall' ? undefined : PassTimer.on(env.gpu.device);
    const rng = new wg.Rng(SEED);
    const prompts = p.prefixes.map((n) => Int32Array.from({ length: n }, () => rng.int(0, m.vocabSize)));
    const samples = p.prefixes.map(() => ({
      cached: { wall: [], gpu: [], first: [] } as Samples,
      full: { wall: [], gpu: [], first: [] } as Samples,
    }));
    let runs = 0;
    const mismatch: string[] = [];
    const t1 = performance.now();
    // Round 0 warms up (compiles every shape); each round visits the prefixes in a rotated order and alternates
    // which mode goes first, so a noisy neighbour on a shared machine slows every cell alike.
    for (let round = 0; round <= p.max && (round <= p.min || performance.now() - t1 < p.budgetMs); round++) {
      for (let j = 0; j < p.prefixes.length; j++) {
        const i = (round + j) % p.prefixes.length;
        const order = round % 2 ? (['full', 'cached'] as const) : (['cached', 'full'] as const);
        const got: Partial<Record<'cached' | 'full', Awaited<ReturnType<typeof timedRun>>>> = {};
        for (const mode of order) got[mode] = await timedRun(model, prompts[i]!, p.tokens, mode === 'cached', timer);
        const [cached, full] = [got.cached!, got.full!];
        const d = cached.ids.findIndex((id, n) => id !== full.ids[n]);
        if (d >= 0)
          mismatch.push(
            `prefix ${p.prefixes[i]}: token ${d} is ${cached.ids[d]} with the cache, ${full.ids[d]} by full recomputation`,
          );
        if (round === 0) continue;
        for (const mode of order) {
          const [s, x] = [samples[i]![mode], got[mode]!];
          s.first.push(x.wall[0]!);
          s.wall.push(...x.wall.slice(1));
          s.gpu.push(...x.gpu.slice(1).filter((g): g is number => g !== undefined));
        }
      }
      if (round > 0) runs++;
    }
    const result = (s: Samples): ModeResult => ({
      wall: withN(s.wall),
      ...(s.gpu.length === s.wall.length ? { gpu: withN(s.gpu) } : {}),
      firstMs: stats(s.first).median,
    });
    const prefixes = p.prefixes.map((prefix, i): PrefixResult => {
      const [cached, full] = [result(samples[i]!.cached), result(samples[i]!.full)];
      return { prefix, cached, full, ratio: full.wall.median / cached.wall.median };
    });
    const [lo, hi] = [prefixes[0]!, prefixes[prefixes.length - 1]!];
    r.generate = {
      prefixes,
      flat: hi.cached.wall.median / lo.cached.wall.median,
      ...(hi.cached.gpu && lo.cached.gpu ? { flatGpu: hi.cached.gpu.median / lo.cached.gpu.median } : {}),
      fullGrowth: hi.full.wall.median / lo.full.wall.median,
      runs,
    };
    // The row's time: a cached token at the longest prefix (its flops are the case's).
    r.timing = {
      reps: 1,
      trials: hi.cached.wall.n,
      wall: hi.cached.wall,
      ...(hi.cached.gpu ? { gpu: hi.cached.gpu } : {}),
    };
    r.note = `greedy, ${p.tokens} tokens per run after the first, ${runs} timed runs per mode and prefix`;
    r.check = {
      how: 'cached tokens = full-recomputation tokens, every run',
      maxErr: 0,
      checked: (runs + 1) * p.prefixes.length,
    };
    Object.assign(r, mismatch.length ? { status: 'fail', why: mismatch.slice(0, 3).join('; ') } : { status: 'ok' });
  } catch (e) {
    Object.assign(r, { status: 'error', why: msg(e) });
  } finally {
    model?.dispose();
    setDefaultBackend(undefined);
  }
  r.spentMs = Math.round(performance.now() - t0);
  row.engines.wgnn = r;
  return row;
}

const f = (x: number | undefined): string =>
  x === undefined || Number.isNaN(x) ? '—' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);

export function printGenerate(rows: Row[], _peers: Partial<Record<Engine, string>>, log: (s: string) => void): void {
  log('');
  log('== generate == ms per generated token of a random-init GPT (greedy), with the key/value cache and with full');
  log('   recomputation of the context per token. ms: wall time from one onToken to the next (forward, logits read');
  log('   back, pick), median over the tokens of every timed run; iqr = (q3 − q1) / median; GPU: the summed');
  log('   compute-pass time of a token, median. A run makes k+1 tokens after a prompt of `prefix` tokens; its first');
  log('   token (the prompt in one forward) is timed apart. No peers: neither TF.js nor jax-js has GPT generation.');
  for (const r of rows) {
    const w = r.engines.wgnn as GenerateResult | undefined;
    const meta = r.meta as { model: Model; plan: Plan } | undefined;
    const pl = meta?.plan;
    log(`${r.label}${meta ? `, vocab ${meta.model.vocabSize}` : ''}${pl ? `, k = ${pl.tokens} tokens per run` : ''}`);
    if (!w || w.status === 'error' || !w.generate) {
      log(`    ERROR: ${w?.why ?? 'not run'}`);
      continue;
    }
    if (w.status === 'fail') log(`    FAILED its check: ${w.why}`);
    const W = [7, 10, 5, 8, 10, 5, 8, 12, 18];
    const line = (cells: string[]): string => cells.map((c, i) => c.padStart(W[i]!)).join(' ');
    const iqr = (s: Stats) => `${((100 * (s.q3 - s.q1)) / s.median).toFixed(0)}%`;
    log(line(['prefix', 'cached ms', 'iqr', 'GPU ms', 'full ms', 'iqr', 'GPU ms', 'full/cached', 'first token c/f']));
    for (const x of w.generate.prefixes)
      log(
        line([
          String(x.prefix),
          f(x.cached.wall.median),
          iqr(x.cached.wall),
          f(x.cached.gpu?.median),
          f(x.full.wall.median),
          iqr(x.full.wall),
          f(x.full.gpu?.median),
          `${x.ratio.toFixed(2)}×`,
          `${f(x.cached.firstMs)}/${f(x.full.firstMs)}`,
        ]),
      );
    const g = w.generate;
    const [lo, hi] = [g.prefixes[0]!.prefix, g.prefixes[g.prefixes.length - 1]!.prefix];
    log(
      `    ms/token at prefix ${hi} / at prefix ${lo}: cached ${g.flat.toFixed(2)}${g.flatGpu === undefined ? '' : ` (GPU ${g.flatGpu.toFixed(2)})`} ` +
        `(flat ≈ 1), full ${g.fullGrowth.toFixed(2)}` +
        (w.status === 'ok' ? `; tokens: cached = full in all ${w.check?.checked ?? 0} pairs of runs` : ''),
    );
  }
}
