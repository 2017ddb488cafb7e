// The bench page: matmul at n = 128, 256, 512 on this browser's backend (and, if ticked, TensorFlow.js's WebGPU
// backend on the same inputs), each size validated against wgnn's CPU reference backend on a few rows first, then
// timed with one readback per trial; plots GFLOP/s against n. On a software adapter (a CPU emulating WebGPU) it says
// the figures are not a GPU's. `?n=128` runs only the sizes listed; `?tfjs=0` starts with TF.js unticked.
import * as wg from '../src/index.js';
import { openBackend, showError } from './backend.js';
import { Chart } from './charts.js';
import { fmtRate, fmtTime } from './format.js';
import type { BenchHook, BenchRow } from './hook.js';

const params = new URLSearchParams(location.search);
const ALL_SIZES = [128, 256, 512];
const asked = params.get('n')?.split(',').map(Number);
const SIZES = asked ? ALL_SIZES.filter((n) => asked.includes(n)) : ALL_SIZES;
/** Rows of the product recomputed on the CPU backend: first, middle, last. */
const CHECK_ROWS = (n: number) => [0, n >> 1, n - 1];
/** Aim for this much time per trial, so one readback's latency stays small next to it. */
const TRIAL_MS = 250;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** What the bench needs of an engine: upload, a queued matmul, a readback that waits for it, free. */
interface Engine<T> {
  name: string;
  upload(data: Float32Array, n: number): T;
  matmul(a: T, b: T): T;
  read(t: T): Promise<Float32Array>;
  free(t: T): void;
}

const wgnn: Engine<wg.Tensor> = {
  name: 'wgnn',
  upload: (data, n) => wg.tensor(data, [n, n]),
  matmul: (a, b) => wg.matmul(a, b),
  read: async (t) => (await t.data()) as Float32Array,
  free: (t) => t.dispose(),
};

/** TensorFlow.js with its WebGPU backend, loaded only when asked for (it is a large download). */
async function tfjs(): Promise<Engine<import('@tensorflow/tfjs-core').Tensor2D>> {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  // NOTE: without this TF.js runs small inputs on the CPU (WEBGPU_CPU_FORWARD), which is not its GPU kernel.
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js: tf.setBackend("webgpu") failed');
  tf.enableProdMode();
  return {
    name: `TF.js ${tf.version_core}`,
    upload: (data, n) => tf.tensor2d(data, [n, n]),
    matmul: (a, b) => tf.matMul(a, b),
    read: async (t) => (await t.data()) as Float32Array,
    free: (t) => t.dispose(),
  };
}

/** Checks y = a @ b on CHECK_ROWS against the CPU backend: |y − e| ≤ atol + rtol·|e|, atol growing as √n. */
async function validate(who: string, n: number, A: Float32Array, B: Float32Array, Y: Float32Array): Promise<number> {
  const cpu = new wg.CpuBackend();
  const rows = CHECK_ROWS(n);
  const aRows = new Float32Array(rows.length * n);
  rows.forEach((r, i) => aRows.set(A.subarray(r * n, (r + 1) * n), i * n));
  const want = await wg
    .matmul(wg.tensor(aRows, [rows.length, n], { backend: cpu }), wg.tensor(B, [n, n], { backend: cpu }))
    .data();
  cpu.destroy();
  // The op's tolerance covers K <= 300 (its samples); f32 rounding error grows like sqrt(K), so atol does too.
  const { atol, rtol } = wg.OPS.matmul.tol;
  const tolA = atol * Math.max(1, Math.sqrt(n / 300));
  let maxErr = 0;
  rows.forEach((r, i) => {
    for (let j = 0; j < n; j++) {
      const [got, exp] = [Y[r * n + j]!, want[i * n + j]!];
      const err = Math.abs(got - exp);
      if (!(err <= tolA + rtol * Math.abs(exp)))
        throw new Error(`${who} matmul ${n}: y[${r},${j}] = ${got}; the CPU backend says ${exp}`);
      maxErr = Math.max(maxErr, err);
    }
  });
  return maxErr;
}

/**
 * The adapter's name when it is a software one (a CPU emulating WebGPU: SwiftShader, Mesa's llvmpipe/lavapipe, or any
 * the browser calls a fallback adapter), else undefined.
 */
async function softwareAdapter(b: wg.Backend): Promise<string | undefined> {
  if (!(b instanceof wg.WebGpuBackend)) return undefined;
  const i = b.info;
  if (/swiftshader|llvmpipe|lavapipe/i.test(`${i.vendor} ${i.architecture} ${i.device} ${i.description}`))
    return b.description;
  // isFallbackAdapter is on the adapter's info in current browsers, on the adapter itself in older ones.
  type Fallback = { isFallbackAdapter?: boolean };
  const a = (await navigator.gpu?.requestAdapter()) as (GPUAdapter & Fallback) | null | undefined;
  return a?.isFallbackAdapter || (a?.info as Fallback | undefined)?.isFallbackAdapter ? b.description : undefined;
}

async function benchOne<T>(e: Engine<T>, n: number): Promise<BenchRow> {
  const rng = new wg.Rng(n);
  const host = () => Float32Array.from({ length: n * n }, () => rng.uniform(-1, 1));
  const [A, B] = [host(), host()];
  const a = e.upload(A, n);
  const b = e.upload(B, n);
  // The first run also compiles the pipeline; it is the one validated.
  const y = e.matmul(a, b);
  const maxErr = await validate(e.name, n, A, B, await e.read(y));
  e.free(y);
  // R matmuls queued back to back and the last one read: that readback waits for all of them.
  const trial = async (reps: number): Promise<number> => {
    const t0 = performance.now();
    for (let r = 1; r < reps; r++) e.free(e.matmul(a, b));
    const last = e.matmul(a, b);
    await e.read(last);
    e.free(last);
    return (performance.now() - t0) / reps;
  };
  const estimate = await trial(1);
  const reps = Math.max(1, Math.min(100, Math.round(TRIAL_MS / Math.max(estimate, 1e-3))));
  // Five trials, or three where one matmul alone outlasts a trial (a slow software adapter).
  const trials = estimate > TRIAL_MS ? 3 : 5;
  const perMatmul: number[] = [];
  for (let t = 0; t < trials; t++) perMatmul.push(await trial(reps));
  e.free(a);
  e.free(b);
  const ms = median(perMatmul);
  return { engine: e.name, n, maxErr, ms, gflops: (2 * n ** 3) / (ms * 1e6) };
}

const chart = new Chart($('chart'), {
  x: 'n',
  y: 'GFLOP/s',
  yFromZero: true,
  points: true,
  log2x: true,
  height: 240,
  lines: [
    { label: 'wgnn', stroke: '#1d4ed8', width: 2 },
    { label: 'TF.js (WebGPU)', stroke: '#e67e22', width: 2, dash: [6, 4] },
  ],
});

async function run(backend: wg.Backend): Promise<void> {
  const hook: BenchHook = { done: false, backend: backend.name, rows: [], error: null };
  window.wgnnBench = hook;
  $<HTMLButtonElement>('rerun').disabled = true;
  $('rows').replaceChildren();
  const engines: Engine<unknown>[] = [wgnn as Engine<unknown>];
  try {
    if ($<HTMLInputElement>('with-tfjs').checked) {
      $('bench-status').textContent = 'loading TF.js…';
      engines.push((await tfjs()) as Engine<unknown>);
    }
    for (const e of engines) {
      for (const n of SIZES) {
        $('bench-status').textContent = `${e.name}, n = ${n}: checking against the CPU backend, then timing…`;
        const r = await benchOne(e, n);
        hook.rows.push(r);
        const tr = document.createElement('tr');
        tr.dataset.engine = e.name;
        tr.dataset.n = String(n);
        tr.innerHTML = [e.name, n, CHECK_ROWS(n).length, r.maxErr.toExponential(1), fmtTime(r.ms), fmtRate(r.gflops)]
          .map((v, i) => `<td${i === 4 ? ' class="time"' : i === 5 ? ' class="gflops"' : ''}>${v}</td>`)
          .join('');
        $('rows').append(tr);
        const of = (name: string) =>
          SIZES.map((m) => hook.rows.find((x) => x.engine === name && x.n === m)?.gflops ?? null);
        chart.setData(
          SIZES,
          engines.map((x) => of(x.name)).concat(engines.length === 1 ? [SIZES.map(() => null)] : []),
        );
      }
    }
    const emulated = $('software').hidden ? '' : ' (a CPU emulating WebGPU: not a GPU number)';
    $('bench-status').textContent =
      `done on ${backend.name}${backend.name === 'cpu' ? ' (the CPU reference backend: not a GPU number)' : emulated}.`;
  } catch (err) {
    hook.error = err instanceof Error ? err.message : String(err);
    showError(err);
  } finally {
    hook.done = true;
    $<HTMLButtonElement>('rerun').disabled = false;
  }
}

openBackend()
  .then(async (backend) => {
    // TF.js is only a WebGPU peer here: without an adapter there is nothing to compare.
    const withTfjs = $<HTMLInputElement>('with-tfjs');
    if (backend.name === 'cpu') [withTfjs.checked, withTfjs.disabled] = [false, true];
    if (params.get('tfjs') === '0') withTfjs.checked = false;
    const software = await softwareAdapter(backend);
    if (software) {
      $('software').hidden = false;
      $('software-name').textContent = software;
    }
    $('rerun').addEventListener('click', () => void run(backend));
    await run(backend);
  })
  .catch(showError);
