// What a run reports: one aligned table per family (median ms, spread, rate, % of the device's ceiling, peers, ratio),
// and the whole run as JSON (adapter, date, ceilings, every row with its derived numbers).
import type { AdapterInfo } from '../src/internal.js';
import type { Family } from './families.js';
import { ENGINES, ENGINE_NAMES, type Engine, type EngineResult, type Row } from './harness.js';
import type { Roofline } from './roofline.js';
import type { Stats } from './timer.js';

export interface RunInfo {
  /**
   * What the run covered, so the results page can label files and tell which newer file supersedes one: `--suite`
   * if given, else {@link suiteName} of the families run ('kernel' for every family, else e.g. 'train' or
   * 'matmul+conv').
   */
  suite: string;
  adapter: AdapterInfo & { slug: string; software: boolean; features: string[]; limits: Record<string, number> };
  /** When the run started: ISO 8601 in UTC, as `new Date().toISOString()` gives ('2026-11-26T21:16:43.141Z'). */
  date: string;
  node: string;
  options: Record<string, unknown>;
  /** Each peer asked for: its description, or 'unavailable: why'. */
  peers: Partial<Record<Engine, string>>;
  /** Display names of the run's engine keys where they are not ENGINE_NAMES' (a CPU suite's 'tfjs' is TF.js WASM). */
  names?: Record<string, string>;
}

/** Keys of wgnn's own engines in a row: wgnn, wgnn1 (the wasm backend on one thread), webgpu (beside a CPU suite). */
const OWN = /^(wgnn|webgpu)/;
/** Peers that are not in ENGINES (a family's own): their names. */
const OTHER_NAMES: Record<string, string> = { ort: 'onnxruntime' };

/** The name the page and the tables give an engine key of `run`. */
export const engineName = (run: Pick<RunInfo, 'names'>, key: string): string =>
  run.names?.[key] ?? ENGINE_NAMES[key as Engine] ?? OTHER_NAMES[key] ?? key;

/** A row's engine keys: ENGINES' first, in their order, then any other a family wrote, in the row's order. */
export const engineKeys = (row: Pick<Row, 'engines'>): string[] => {
  const keys = Object.keys(row.engines);
  return [...ENGINES.filter((e) => keys.includes(e)), ...keys.filter((k) => !ENGINES.includes(k as Engine))];
};

export interface Report extends RunInfo {
  roofline: Roofline & { computeGFLOPs?: number; computeFrom?: string };
  rows: (Row & { derived?: Derived })[];
}

/**
 * A run's suite from the families it ran (`all`: every family there is, in order): 'kernel' when it ran all of them,
 * else their names joined by '+' in `all`'s order ('roofline' when none: the copy bandwidth alone).
 */
export function suiteName(ran: Iterable<string>, all: string[]): string {
  const set = new Set(ran);
  const names = all.filter((f) => set.has(f));
  if (names.length === all.length) return 'kernel';
  return names.join('+') || 'roofline';
}

/** Numbers computed from a row for the table and the JSON. */
export interface Derived {
  /** Which timer the row's ms come from: GPU timestamps when every timed engine has them, else wall clock. */
  timer: 'gpu' | 'wall';
  /** Median ms of each timed engine key (ENGINES', and a family's own, such as wgnn1 or ort). */
  ms: Partial<Record<string, number>>;
  /** wgnn's GFLOP/s (compute-bound) or GB/s (memory-bound). */
  rate?: number;
  /** wgnn's rate as a % of the ceiling that applies. */
  pctOfCeiling?: number;
  /** Fastest peer's ms / wgnn's ms (> 1: wgnn faster), on the row's timer. */
  ratio?: number;
}

const statsOf = (e: EngineResult | undefined, timer: 'gpu' | 'wall'): Stats | undefined =>
  e?.status === 'ok' ? e.timing?.[timer] : undefined;

export function derive(row: Row, ceil: { gflops?: number; gbs?: number }): Derived | undefined {
  if (row.skipped) return undefined;
  const engines = row.engines as Record<string, EngineResult | undefined>;
  const timed = engineKeys(row).filter((e) => engines[e]?.status === 'ok' && engines[e]?.timing);
  const timer = timed.length > 0 && timed.every((e) => engines[e]!.timing!.gpu) ? 'gpu' : 'wall';
  const ms: Partial<Record<string, number>> = {};
  for (const e of timed) ms[e] = engines[e]!.timing![timer]!.median;
  const d: Derived = { timer, ms };
  const w = ms.wgnn;
  if (w !== undefined) {
    d.rate = row.bound === 'compute' ? row.flops! / (w * 1e6) : row.bytes / (w * 1e6);
    const c = row.bound === 'compute' ? ceil.gflops : ceil.gbs;
    if (c) d.pctOfCeiling = (100 * d.rate) / c;
    const peers = timed.filter((e) => !OWN.test(e)).map((e) => ms[e]!);
    if (peers.length) d.ratio = Math.min(...peers) / w;
  }
  return d;
}

/** The compute ceiling: the best matmul GFLOP/s of any engine in the run (or the calibration matmul). */
export function computeCeiling(rows: Row[], roof: Roofline): { gflops?: number; from?: string } {
  let best: { gflops?: number; from?: string } = roof.calibration
    ? { gflops: roof.calibration.gflops, from: `wgnn [${roof.calibration.n}]² calibration matmul` }
    : {};
  for (const r of rows) {
    if (!(r.family === 'matmul' || r.family === 'matmul-tune') || r.skipped || !r.flops) continue;
    const d = derive(r, {});
    for (const e of ENGINES) {
      const ms = d?.ms[e];
      if (ms === undefined) continue;
      const g = r.flops / (ms * 1e6);
      if (g > (best.gflops ?? 0)) best = { gflops: g, from: `${ENGINE_NAMES[e]} ${r.label}` };
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------------------

const fmtMs = (x: number | undefined): string =>
  x === undefined
    ? '—'
    : x >= 100
      ? x.toFixed(0)
      : x >= 10
        ? x.toFixed(1)
        : x >= 1
          ? x.toFixed(2)
          : x >= 0.01
            ? x.toFixed(3)
            : x.toFixed(4);
const fmtRate = (x: number | undefined): string =>
  x === undefined ? '—' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);

function cell(e: EngineResult | undefined, ms: number | undefined): string {
  if (!e) return '—';
  if (e.status === 'ok') return fmtMs(ms);
  return e.status === 'n/a' ? 'n/a' : e.status === 'fail' ? 'FAIL' : 'ERROR';
}

/** Prints one family's table. `peers`: each peer's description or 'unavailable: why' (said once, not per row). */
export function printFamily(
  fam: Family,
  rows: Row[],
  ceil: { gflops?: number; gbs?: number; from?: string },
  peers: Partial<Record<Engine, string>>,
  log: (s: string) => void,
): void {
  // A peer gets a column where it ran at least one case of the family (matmul-tune has none).
  const shown = (['tfjs', 'jax'] as const).filter(
    (e) => peers[e] !== undefined && rows.some((r) => r.engines[e] && r.engines[e].status !== 'n/a'),
  );
  log('');
  log(`== ${fam.name} == ${fam.about}`);
  const ceilText =
    fam.unit === 'GFLOP/s'
      ? ceil.gflops
        ? `% = of the best matmul of the run, ${fmtRate(ceil.gflops)} GFLOP/s (${ceil.from})`
        : '% = — (no matmul in this run)'
      : ceil.gbs
        ? `% = of the copy bandwidth, ${fmtRate(ceil.gbs)} GB/s`
        : '% = — (no copy bandwidth measured)';
  log(`   ${ceilText}; ratio = fastest peer ms / wgnn ms (> 1: wgnn faster)`);
  const W = Math.max(40, ...rows.map((r) => r.label.length));
  const head =
    `${'case'.padEnd(W)} ${'check'.padEnd(5)} ${'wgnn ms'.padStart(9)} ${'spread'.padStart(6)} ${'wall ms'.padStart(9)} ${fam.unit.padStart(8)} ${'%'.padStart(5)}` +
    shown.map((e) => ` ${`${ENGINE_NAMES[e]} ms`.padStart(10)}`).join('') +
    (shown.length ? ` ${'ratio'.padStart(6)}` : '');
  log(head);
  for (const r of rows) {
    if (r.skipped) {
      log(`${r.label.padEnd(W)} ${r.skipped}`);
      continue;
    }
    const d = derive(r, ceil)!;
    const w = r.engines.wgnn;
    const ws = statsOf(w, d.timer);
    const spread = ws ? `${((100 * (ws.max - ws.min)) / ws.median).toFixed(0)}%` : '—';
    const check = w?.status === 'ok' ? 'ok' : w?.status === 'fail' ? 'FAIL' : w?.status === 'error' ? 'ERROR' : '—';
    const wgnnMs = w?.status === 'ok' ? `${fmtMs(d.ms.wgnn)}${d.timer === 'wall' ? '*' : ''}` : check;
    log(
      `${r.label.padEnd(W)} ${check.padEnd(5)} ${wgnnMs.padStart(9)} ${spread.padStart(6)} ${fmtMs(w?.timing?.wall.median).padStart(9)} ` +
        `${fmtRate(d.rate).padStart(8)} ${(d.pctOfCeiling === undefined ? '—' : d.pctOfCeiling.toFixed(d.pctOfCeiling < 10 ? 1 : 0)).padStart(5)}` +
        shown.map((e) => ` ${cell(r.engines[e], d.ms[e]).padStart(10)}`).join('') +
        (shown.length ? ` ${(d.ratio === undefined ? '—' : d.ratio.toFixed(2)).padStart(6)}` : ''),
    );
    for (const e of ENGINES) {
      const x = r.engines[e];
      if (!x || (e !== 'wgnn' && !shown.includes(e))) continue;
      const global = e !== 'wgnn' && x.why !== undefined && peers[e] === `unavailable: ${x.why}`;
      if (x.status !== 'ok' && x.why && !global)
        log(`    ${ENGINE_NAMES[e]}: ${x.status === 'n/a' ? 'n/a: ' : ''}${x.why}${x.note ? ` [${x.note}]` : ''}`);
      else if (x.status === 'ok' && x.note)
        log(`    ${ENGINE_NAMES[e]}: ${e === 'wgnn' ? '' : `${x.kernel ?? ''}: `}${x.note}`);
    }
  }
}

/** The lines above every table: adapter, timer, ceilings and the peers' status. */
export function printPreamble(info: RunInfo, roof: Roofline, log: (s: string) => void): void {
  log(`suite: ${info.suite}, started ${info.date}`);
  log(
    `adapter: ${info.adapter.description || info.adapter.slug}${info.adapter.software ? ' (a CPU implementation of WebGPU: sizes reduced)' : ''}`,
  );
  const ts = info.adapter.features.includes('timestamp-query') && info.options.timer !== 'wall';
  log(
    `timer: ${ts ? 'GPU timestamps (summed compute-pass time per run; rows marked * fell back to wall clock)' : 'wall clock (the device has no timestamp-query)'}; ` +
      'ms = median over trials, spread = (max − min) / median; wall ms = wgnn wall clock per run (enqueue + submit + wait, over the trial)',
  );
  if (roof.copy)
    log(
      `copy bandwidth: ${fmtRate(roof.copy.gbs)} GB/s (buffer-to-buffer copy of ${(roof.copy.bytes / 2 / 2 ** 20).toFixed(0)} MiB, read + write)`,
    );
  for (const e of ['tfjs', 'jax'] as const)
    if (info.peers[e] !== undefined) log(`peer ${ENGINE_NAMES[e]}: ${info.peers[e]}`);
}

/** Counts wgnn validation failures and errors (the run fails on any). */
export function failures(rows: Row[]): Row[] {
  return rows.filter((r) => r.engines.wgnn && (r.engines.wgnn.status === 'fail' || r.engines.wgnn.status === 'error'));
}

export function buildReport(info: RunInfo, roof: Roofline, rows: Row[]): Report {
  const c = computeCeiling(rows, roof);
  const ceil = { ...(c.gflops ? { gflops: c.gflops } : {}), ...(roof.copy ? { gbs: roof.copy.gbs } : {}) };
  return {
    ...info,
    roofline: { ...roof, ...(c.gflops ? { computeGFLOPs: c.gflops, computeFrom: c.from } : {}) },
    rows: rows.map((r) => {
      const d = derive(r, ceil);
      return d ? { ...r, derived: d } : r;
    }),
  };
}
