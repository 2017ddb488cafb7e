// The time-to-first-training-step benchmark (`npm run bench -- ttfs`): from `init()` to the first loss on the host
// (`fit` on one batch of 64, bench/ttfs-step.ts) for the seed MLP and CNN on WebGPU, cold and warm, each run a fresh
// process: in Node (`node dist/bench/ttfs.js <mlp|cnn>` prints one JSON line; cold: Mesa's shader cache off, so the
// driver compiles every kernel; warm: a second process on a cache the first one filled) and in Chromium (bench/
// ttfs.html on SwiftShader's WebGPU; cold: a fresh profile, its GPU disk cache off; warm: a second launch on a profile
// the first one filled).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as wg from '../src/index.js';
import type { BrowserContext } from 'playwright';
import type { ServedPage } from './browser.js';
import { emptyRow, type Case, type Engine, type FamilyOpts, type Row } from './harness.js';
import { msg } from './peers/peer.js';
import { stats } from './timer.js';
import { BATCH, SIDE, firstStep, patternBatch, type TtfsModel, type TtfsRun } from './ttfs-step.js';

export type { TtfsRun };

/** Where a row's runs start: a Node process, or a Chromium process opening bench/ttfs.html. */
type Where = 'node' | 'browser';
/** A browser run that has not reported by then has hung (SwiftShader's cold CNN takes tens of seconds). */
const BROWSER_TIMEOUT_MS = 300_000;

/** The child: one cold or warm start in a fresh Node process, on MNIST's first batch where the package is there. */
async function child(model: TtfsModel): Promise<TtfsRun> {
  const importMs = performance.now();
  // The batch is made before the clock starts: the data is not the engine's start-up.
  let batch = patternBatch();
  try {
    const { train } = wg.data.loadMnist();
    const x = new Float32Array(BATCH * SIDE * SIDE);
    x.set(train.x.subarray(0, x.length));
    batch = { x, y: Int32Array.from((train.y as Int32Array).subarray(0, BATCH)) };
  } catch {
    // no `mnist` package (the bare device machine): the pattern; compile time does not depend on the data
  }
  return firstStep(model, batch, importMs, () => {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  });
}

/** Runs the child in a new process with `env` added; resolves to what it printed. */
function runChild(model: TtfsModel, env: Record<string, string>): Promise<TtfsRun> {
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

/** The rows: Node then the browser, each the MLP and the CNN, cold and warm. */
export function ttfsCases(o: FamilyOpts): Case[] {
  const runs = o.quick ? 1 : 2;
  const cases: Case[] = [];
  for (const where of ['node', 'browser'] as const) {
    for (const model of ['mlp', 'cnn'] as const) {
      for (const cache of ['cold', 'warm'] as const) {
        const name = `${where === 'browser' ? 'browser ' : ''}${model} ${cache}`;
        cases.push({
          family: 'ttfs',
          id: name.replaceAll(' ', '-'),
          label: name,
          bound: 'memory',
          bytes: 0,
          meta: { where, model, cache, batch: BATCH, runs },
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
  }
  return cases;
}

/** One fresh Chromium process on the profile in `dir`, opening the page for `model`; closed after. */
async function runBrowser(
  launch: (dir: string, args: string[]) => Promise<BrowserContext>,
  url: string,
  model: TtfsModel,
  dir: string,
  args: string[],
): Promise<TtfsRun> {
  const t0 = performance.now();
  const ctx = await launch(dir, args);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const tab = ctx.pages()[0] ?? (await ctx.newPage());
    await tab.goto(`${url}?model=${model}`);
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no result from the page in ${BROWSER_TIMEOUT_MS / 1000} s`)),
        BROWSER_TIMEOUT_MS,
      );
    });
    const r = await Promise.race([tab.evaluate(() => (window as unknown as { ttfs: Promise<TtfsRun> }).ttfs), hung]);
    return { ...r, launchMs: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
    await ctx.close();
  }
}

/**
 * Node: cold, `runs` processes with MESA_SHADER_CACHE_DISABLE=true; warm, a private shader cache (so other processes
 * on the machine neither fill nor evict it) filled by one process, then `runs` processes on it. Dawn in Node keeps no
 * pipeline cache of its own across processes, so Mesa's is the only one. Browser: cold, `runs` launches each on a
 * fresh profile with --disable-gpu-shader-disk-cache; warm, one profile filled by one launch, then `runs` launches
 * on it (Chromium keeps Dawn's compiled pipelines in the profile's GPU disk cache).
 */
export async function runTtfs(c: Case): Promise<Row> {
  const row = emptyRow(c);
  const { where, model, cache, runs } = c.meta as {
    where: Where;
    model: TtfsModel;
    cache: 'cold' | 'warm';
    runs: number;
  };
  const t0 = performance.now();
  const dirs: string[] = [];
  const tmp = (): string => {
    dirs.push(mkdtempSync(join(tmpdir(), 'wgnn-ttfs-')));
    return dirs.at(-1)!;
  };
  let served: ServedPage | undefined;
  try {
    let once: () => Promise<TtfsRun>;
    if (where === 'node') {
      const env: Record<string, string> =
        cache === 'warm'
          ? { MESA_SHADER_CACHE_DIR: tmp(), MESA_SHADER_CACHE_DISABLE: 'false' }
          : { MESA_SHADER_CACHE_DISABLE: 'true' };
      once = () => runChild(model, env);
    } else {
      // Loaded here, not at the top: the Node child imports this file, and Vite and Playwright are not its start-up.
      const { launchProfile, servePage } = await import('./browser.js');
      served = await servePage('ttfs');
      const url = served.url;
      const profile = cache === 'warm' ? tmp() : undefined;
      once = () =>
        profile
          ? runBrowser(launchProfile, url, model, profile, [])
          : runBrowser(launchProfile, url, model, tmp(), ['--disable-gpu-shader-disk-cache']);
    }
    if (cache === 'warm') await once(); // fills the cache
    const done: TtfsRun[] = [];
    for (let i = 0; i < runs; i++) done.push(await once());
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
    await served?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  return row;
}

/** The family's table: per row the medians of its runs' total, CPU, init, step and launch times. */
export function printTtfs(rows: Row[], _peers: Partial<Record<Engine, string>>, log: (s: string) => void): void {
  log('');
  log('== ttfs == time to first training step: init() to the first loss on the host (fit, one batch of 64), each run');
  log('   a fresh process. Node: cold = Mesa shader cache off, warm = a second process on the cache the first filled.');
  log('   browser (Chromium, SwiftShader): cold = a fresh profile, GPU disk cache off; warm = a second launch on the');
  log("   profile the first filled. Median of the runs; cpu: the Node process's CPU time over the same span (all");
  log('   threads: the steadier figure on a shared machine); init = adapter + device, step = build + compile + the');
  log('   step; launch: Chromium start to the result (browser start-up and page load included)');
  const line = (cells: string[]): string => cells.map((s, i) => (i < 1 ? s.padEnd(18) : s.padStart(10))).join(' ');
  log(line(['case', 'total ms', 'cpu ms', 'init ms', 'step ms', 'launch ms', 'pipelines', 'runs']));
  for (const r of rows) {
    const e = r.engines.wgnn;
    const res = (r.meta?.results ?? []) as TtfsRun[];
    if (!e || e.status === 'error' || res.length === 0) {
      log(line([r.label, `${e?.status ?? '?'}: ${e?.why ?? ''}`]));
      continue;
    }
    const med = (f: (x: TtfsRun) => number | undefined): string => {
      const v = res.map(f).filter((x): x is number => x !== undefined);
      return v.length ? stats(v).median.toFixed(0) : '–';
    };
    log(
      line([
        r.label,
        med((x) => x.totalMs),
        med((x) => x.cpuMs),
        med((x) => x.initMs),
        med((x) => x.stepMs),
        med((x) => x.launchMs),
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
