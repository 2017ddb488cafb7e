// The kernel benchmark suite: `npm run bench -- [family ...] [--quick] [--sizes 256,512] [--batch n] [--no-peers]
// [--json [path]] [--suite name] [--timer wall] [--only family/id,...] [--list] [--jsonl path] [--merge path]
// [--profile]`.
// Validates every case against wgnn's CPU reference, then times wgnn and its peers (TF.js, jax-js) on the same
// adapter, prints one table per family and writes the run as JSON. Exits non-zero on any wgnn validation failure.
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createWebGpuBackend, type WebGpuBackend } from '../src/index.js';
import { FAMILIES, type Family } from './families.js';
import { runCase, type Env, type FamilyOpts, type Row } from './harness.js';
import { loadJax } from './peers/jax.js';
import { msg } from './peers/peer.js';
import { loadTfjs } from './peers/tfjs.js';
import { adapterSlug, installNavigator, isSoftwareAdapter } from './platform.js';
import {
  buildReport,
  computeCeiling,
  failures,
  printFamily,
  printPreamble,
  suiteName,
  type RunInfo,
} from './report.js';
import { calibrationMatmul, measureCopy, type Roofline } from './roofline.js';
import { runWasmSuite } from './wasm.js';
import type { TimingOpts } from './timer.js';

const USAGE = `usage: bench [${FAMILIES.map((f) => f.name).join('|')} ...] [--quick] [--sizes n,n,...] [--batch n]
             [--no-peers | --peers tfjs,jax] [--timer auto|wall] [--json [path]] [--no-json] [--suite name]
             [--only family[/case],...] [--list] [--jsonl path] [--merge path] [--gpu-sizes] [--profile]
       bench --backend wasm [--quick] [--json path]
  --help        this text
  --backend wasm  the CPU suite instead of the kernel families: wgnn's WASM backend, jax-js's and TF.js's WASM
                backends and wgnn on the WebGPU adapter: matmul 1024², seed MLP and CNN steps (b64); JSON to
                bench/results/wasm-<adapter>.json
  --quick       small sizes and few trials: validates every kernel in well under two minutes (CI)
  --json [path] write the run as JSON (default bench/results/<adapter>.json for a run of every family, else
                bench/results/<suite>-<adapter>.json; a path ending in / is a folder for that name). Full runs write
                it by default, partial, --quick and --only runs only when asked; --no-json never
  --suite name  the run's suite in the JSON and the default file name (default: 'kernel' for every family, else the
                families run joined by '+'); the results page marks an older file superseded by a newer one of the
                same adapter that ran every case of it
  --only        run only these families or family/case ids (see --list; 'roofline' is the copy-bandwidth case)
  --list        print every case id, one per line (for running each in its own process)
  --jsonl path  append each result as a JSON line as soon as it is measured
  --merge path  read such JSON lines (from one process per case) and print the tables and JSON of the whole run
  --gpu-sizes   a GPU's sizes even on lavapipe (to try the device run's cases here; slow)
  --profile     transformer: GPU time of each dispatch of one replayed step, by op (timestamp queries)`;

interface Args {
  families: string[];
  fam: Omit<FamilyOpts, 'software'>;
  peers: ('tfjs' | 'jax')[];
  timer: 'auto' | 'wall';
  json?: string | true;
  noJson: boolean;
  suite?: string;
  only?: string[];
  list: boolean;
  /** Use a GPU's sizes even on a software adapter (to try the device run's cases here). */
  gpuSizes: boolean;
  jsonl?: string;
  merge?: string;
  help: boolean;
  /** 'wasm': the CPU suite (bench/wasm.ts). */
  backend: 'webgpu' | 'wasm';
}

/** A bad command line: printed with the usage, without a stack. */
class UsageError extends Error {}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    families: [],
    fam: { quick: false },
    peers: ['tfjs', 'jax'],
    timer: 'auto',
    noJson: false,
    list: false,
    gpuSizes: false,
    help: false,
    backend: 'webgpu',
  };
  const names = new Set(FAMILIES.map((f) => f.name));
  const value = (i: number, flag: string): string => {
    const v = argv[i];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') a.fam.quick = true;
    else if (arg === '--profile') a.fam.profile = true;
    else if (arg === '--no-peers') a.peers = [];
    else if (arg === '--peers') a.peers = value(++i, arg).split(',').filter(Boolean) as Args['peers'];
    else if (arg === '--timer') a.timer = value(++i, arg) === 'wall' ? 'wall' : 'auto';
    else if (arg === '--no-json') a.noJson = true;
    else if (arg === '--list') a.list = true;
    else if (arg === '--gpu-sizes') a.gpuSizes = true;
    else if (arg === '--jsonl') a.jsonl = value(++i, arg);
    else if (arg === '--merge') a.merge = value(++i, arg);
    else if (arg === '--suite') a.suite = value(++i, arg);
    else if (arg === '--only') a.only = value(++i, arg).split(',').filter(Boolean);
    else if (arg === '--backend') {
      const b = value(++i, arg);
      if (b !== 'webgpu' && b !== 'wasm') throw new UsageError(`--backend: '${b}' (webgpu, wasm)`);
      a.backend = b;
    } else if (arg === '--json') {
      const next = argv[i + 1];
      a.json = next !== undefined && !next.startsWith('--') && !names.has(next) ? argv[++i]! : true;
    } else if (arg === '--batch') {
      a.fam.batch = Number(value(++i, arg));
      if (!Number.isInteger(a.fam.batch) || a.fam.batch <= 0) throw new UsageError(`--batch: bad size '${argv[i]}'`);
    } else if (arg === '--sizes') {
      a.fam.sizes = value(++i, arg).split(',').map(Number);
      if (!a.fam.sizes.every((n) => Number.isInteger(n) && n > 0))
        throw new UsageError(`--sizes: bad list '${argv[i]}'`);
    } else if (names.has(arg)) a.families.push(arg);
    else if (arg === '--help' || arg === '-h') a.help = true;
    else throw new UsageError(`unknown argument '${arg}'`);
  }
  for (const p of a.peers)
    if (p !== 'tfjs' && p !== 'jax') throw new UsageError(`--peers: unknown peer '${p}' (tfjs, jax)`);
  return a;
}

const selected = (a: Args): Family[] => FAMILIES.filter((f) => a.families.length === 0 || a.families.includes(f.name));

/** Whether `--only` (if given) selects this case (or family). */
const wanted = (a: Args, family: string, id?: string): boolean =>
  !a.only || a.only.some((s) => s === family || (id !== undefined && s === `${family}/${id}`));

const log = (s: string): void => console.log(s);
const progress = (s: string): void => void process.stderr.write(`${s}\n`);

async function openGpu(): Promise<WebGpuBackend> {
  await installNavigator();
  const gpu = await createWebGpuBackend();
  if (!gpu)
    throw new Error('no WebGPU adapter (on Linux without a GPU: bash scripts/setup-machine.sh for Mesa lavapipe)');
  return gpu;
}

/** The suite of a run that ran `families`: --suite, or suiteName(). */
const suiteOf = (a: Args, families: Iterable<string>): string =>
  a.suite ??
  suiteName(
    families,
    FAMILIES.map((f) => f.name),
  );

function runInfo(gpu: WebGpuBackend, a: Args, software: boolean, peers: RunInfo['peers'], families: string[]): RunInfo {
  const limits: Record<string, number> = {};
  for (const k of [
    'maxBufferSize',
    'maxStorageBufferBindingSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
  ] as const) {
    limits[k] = gpu.limits[k];
  }
  return {
    suite: suiteOf(a, families),
    adapter: { ...gpu.info, slug: adapterSlug(gpu.info), software, features: [...gpu.features].sort(), limits },
    date: new Date().toISOString(),
    node: process.version,
    options: {
      quick: a.fam.quick,
      sizes: a.fam.sizes,
      batch: a.fam.batch,
      profile: a.fam.profile,
      timer: a.timer,
      peers: a.peers,
      only: a.only,
    },
    peers,
  };
}

function timingOpts(quick: boolean, software: boolean): TimingOpts {
  if (quick) return { trialMs: 25, trials: 3, maxReps: 50 };
  return software ? { trialMs: 100, trials: 5, maxReps: 100 } : { trialMs: 100, trials: 7, maxReps: 400 };
}

function writeJson(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(data, null, 1));
  log(`\nwrote ${path}`);
}

/** Where the run's JSON goes: `<adapter>.json` for a run of every family, `<suite>-<adapter>.json` for a partial one. */
function jsonPath(a: Args, info: RunInfo, byDefault: boolean): string | undefined {
  if (a.noJson) return undefined;
  const slug = info.adapter.slug;
  const name = info.suite === 'kernel' ? `${slug}.json` : `${info.suite.replace(/[^a-z0-9-]+/gi, '-')}-${slug}.json`;
  if (typeof a.json === 'string') return a.json.endsWith('/') ? `${a.json}${name}` : a.json;
  return a.json || byDefault ? `bench/results/${name}` : undefined;
}

const printOne = (
  f: Family,
  rows: Row[],
  ceil: { gflops?: number; gbs?: number; from?: string },
  peers: RunInfo['peers'],
): void => (f.print ? f.print(rows, peers, log) : printFamily(f, rows, ceil, peers, log));

/** Prints the tables and writes the JSON of a whole run; returns the number of wgnn failures. */
function finish(
  a: Args,
  info: RunInfo,
  roof: Roofline,
  rows: Row[],
  families: Family[],
  printTables: boolean,
  byDefault: boolean,
): number {
  const report = buildReport(info, roof, rows);
  if (printTables) {
    printPreamble(info, roof, log);
    const c = computeCeiling(rows, roof);
    const ceil = {
      ...(c.gflops ? { gflops: c.gflops, from: c.from! } : {}),
      ...(roof.copy ? { gbs: roof.copy.gbs } : {}),
    };
    for (const f of families) {
      const rs = rows.filter((r) => r.family === f.name);
      if (rs.length) printOne(f, rs, ceil, info.peers);
    }
  }
  const bad = failures(rows);
  log('');
  log(
    `validation: ${rows.filter((r) => r.engines.wgnn?.status === 'ok').length} cases ok, ${rows.filter((r) => r.skipped).length} skipped, ${bad.length} failed`,
  );
  for (const r of bad) log(`  FAILED ${r.family}/${r.id}: ${r.engines.wgnn!.why}`);
  const path = jsonPath(a, info, byDefault);
  if (path) writeJson(path, report);
  return bad.length;
}

async function merge(a: Args): Promise<number> {
  let info: RunInfo | undefined;
  const roof: Roofline = {};
  const rows: Row[] = [];
  for (const line of readFileSync(a.merge!, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const rec = JSON.parse(line) as {
      type: string;
      info?: RunInfo;
      roofline?: Roofline;
      row?: Row;
      case?: string;
      why?: string;
    };
    if (rec.type === 'info') {
      // Each process wrote one; the roofline's loaded no peers, so take each peer's status from any that did.
      info ??= { ...rec.info!, peers: {} };
      for (const [e, d] of Object.entries(rec.info!.peers)) info.peers[e as keyof RunInfo['peers']] ??= d;
    } else if (rec.type === 'roofline') Object.assign(roof, rec.roofline);
    else if (rec.type === 'row') rows.push(rec.row!);
    else if (rec.type === 'crash' && rec.case !== 'roofline') {
      // A case whose process died or never started (scripts/bench-device.sh): a wgnn error row, so the run fails.
      const [family = '?', id = rec.case ?? '?'] = (rec.case ?? '').split('/');
      rows.push({
        family,
        id,
        label: rec.case ?? id,
        bound: 'memory',
        bytes: 0,
        engines: { wgnn: { status: 'error', why: rec.why ?? 'process died' } },
      });
    } else if (rec.type === 'crash') log(`roofline: ${rec.why}`);
  }
  if (!info) throw new Error(`${a.merge}: no 'info' record`);
  info.options = { ...info.options, only: undefined, merged: a.merge };
  // Each process's info names the suite of its own case; the merged run's is that of all its rows.
  info.suite = suiteOf(
    a,
    rows.map((r) => r.family),
  );
  return finish(a, info, roof, rows, FAMILIES, true, true);
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.help) {
    console.log(USAGE);
    return;
  }
  if (a.merge) {
    process.exitCode = (await merge(a)) > 0 ? 1 : 0;
    return;
  }
  const gpu = await openGpu();
  const software = isSoftwareAdapter(gpu.info) && !a.gpuSizes;
  if (a.backend === 'wasm') {
    try {
      const report = await runWasmSuite(gpu, runInfo(gpu, { ...a, suite: 'wasm' }, software, {}, []), a.fam.quick);
      const path = jsonPath(a, report, !a.fam.quick);
      if (path) writeJson(path, report);
      const bad = report.rows.flatMap((r) =>
        Object.entries(r.engines)
          .filter(([k, e]) => (k.startsWith('wgnn') || k === 'webgpu' ? e.status !== 'ok' : false))
          .map(([k, e]) => `${r.label} ${k}: ${e.status} ${e.why ?? ''}`),
      );
      for (const b of bad) log(`  FAILED ${b}`);
      process.exitCode = bad.length ? 1 : 0;
    } finally {
      gpu.destroy();
    }
    return;
  }
  const fam: FamilyOpts = { ...a.fam, software };
  const families = selected(a);
  if (a.list) {
    if (wanted(a, 'roofline')) log('roofline');
    for (const f of families) for (const c of f.cases(fam)) if (wanted(a, f.name, c.id)) log(`${f.name}/${c.id}`);
    gpu.destroy();
    return;
  }
  const jsonl = (rec: object): void => {
    if (a.jsonl) appendFileSync(a.jsonl, `${JSON.stringify(rec)}\n`);
  };

  const env: Env = { gpu, timing: timingOpts(a.fam.quick, software), timer: a.timer };
  const peers: RunInfo['peers'] = {};
  const casesOf = families
    .map((f) => ({ f, cases: f.cases(fam).filter((c) => wanted(a, f.name, c.id)) }))
    .filter((x) => x.cases.length);
  if (casesOf.length) {
    for (const p of a.peers) {
      try {
        const peer = p === 'tfjs' ? await loadTfjs() : await loadJax();
        env[p] = peer as never;
        peers[p] = peer.description;
      } catch (e) {
        env[p] = msg(e);
        peers[p] = `unavailable: ${msg(e)}`;
      }
    }
  }
  const info = runInfo(
    gpu,
    a,
    software,
    peers,
    casesOf.map((x) => x.f.name),
  );
  jsonl({ type: 'info', info });

  const roof: Roofline = {};
  const rows: Row[] = [];
  // One case per process (scripts/bench-device.sh): results go to --jsonl and `--merge` prints the tables; the copy
  // bandwidth is its own case ('roofline'), and the compute ceiling comes from the matmul rows.
  const perProcess = a.only !== undefined && a.jsonl !== undefined;
  try {
    if (!perProcess || a.only!.includes('roofline')) {
      roof.copy = await measureCopy(gpu, { quick: a.fam.quick, software });
      jsonl({ type: 'roofline', roofline: { copy: roof.copy } });
    }
    if (!perProcess) printPreamble(info, roof, log);
    const hasMatmul = casesOf.some((x) => x.f.name === 'matmul');
    const needsCompute = casesOf.some((x) => x.cases.some((c) => c.bound === 'compute'));
    if (!perProcess && !hasMatmul && needsCompute) {
      roof.calibration = await calibrationMatmul(gpu, a.fam.quick ? 256 : software ? 512 : 2048);
      jsonl({ type: 'roofline', roofline: { calibration: roof.calibration } });
    }
    for (const { f, cases } of casesOf) {
      const fr: Row[] = [];
      for (const c of cases) {
        const t0 = performance.now();
        const row = f.run ? await f.run(c, env) : await runCase(c, env);
        fr.push(row);
        rows.push(row);
        jsonl({ type: 'row', row });
        progress(`[${f.name}] ${c.id}: ${status(row)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      }
      if (!perProcess) {
        const comp = computeCeiling(rows, roof);
        printOne(
          f,
          fr,
          {
            ...(comp.gflops ? { gflops: comp.gflops, from: comp.from! } : {}),
            ...(roof.copy ? { gbs: roof.copy.gbs } : {}),
          },
          peers,
        );
      }
    }
  } finally {
    for (const p of ['tfjs', 'jax'] as const) {
      const peer = env[p];
      if (peer && typeof peer !== 'string') peer.close();
    }
    gpu.destroy();
  }
  // Only a full run of every family replaces bench/results/<adapter>.json by default; a partial one needs --json.
  const bad = finish(
    a,
    info,
    roof,
    rows,
    families,
    false,
    !a.fam.quick && a.only === undefined && a.families.length === 0,
  );
  process.exitCode = bad > 0 ? 1 : 0;
}

function status(row: Row): string {
  if (row.skipped) return 'skipped';
  return Object.entries(row.engines)
    .map(([e, r]) => `${e} ${r.status}${r.spentMs !== undefined ? ` ${(r.spentMs / 1000).toFixed(1)} s` : ''}`)
    .join(', ');
}

main().catch((e: unknown) => {
  console.error(e instanceof UsageError ? `${e.message}\n${USAGE}` : e instanceof Error ? (e.stack ?? e.message) : e);
  process.exitCode = 1;
});
