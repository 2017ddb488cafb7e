// Square f32 matmul [n,n] @ [n,n] on the WebGPU backend: validated against float64 dot products of the same
// inputs, then timed (median over trials of R back-to-back matmuls, one sync per trial).
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { matmul, matmulOps } from '../src/ops/matmul.js';
import { Rng } from '../src/rng.js';
import { tensor } from '../src/tensor.js';

export interface MatmulRow {
  n: number;
  /** Median milliseconds per matmul. */
  ms: number;
  gflops: number;
  reps: number;
  trials: number;
  /** Largest |gpu - float64| over the checked entries. */
  maxErr: number;
  checked: number;
}

const DEFAULT_SIZES = [256, 512, 1024, 2048];
const QUICK_SIZES = [128, 256];
/** Up to this size every output entry is checked; above it, CHECK_SAMPLES random entries. */
const FULL_CHECK = 256;
const CHECK_SAMPLES = 256;
/** Aim for this much GPU time per trial so one sync's latency stays small next to it. */
const TRIAL_MS = 400;

export async function benchMatmul(gpu: WebGpuBackend, opts: { sizes?: number[]; quick?: boolean }): Promise<MatmulRow[]> {
  const rows: MatmulRow[] = [];
  console.log('matmul f32 [n,n] @ [n,n], inputs uniform in [-1,1]; GFLOP/s = 2n³ / time');
  console.log(`${'n'.padStart(6)} ${'ms'.padStart(10)} ${'GFLOP/s'.padStart(9)} ${'reps×trials'.padStart(12)} ${'max |err|'.padStart(10)}`);
  for (const n of opts.sizes ?? (opts.quick ? QUICK_SIZES : DEFAULT_SIZES)) {
    const row = await benchOne(gpu, n);
    rows.push(row);
    console.log(
      `${String(n).padStart(6)} ${row.ms.toFixed(3).padStart(10)} ${row.gflops.toFixed(2).padStart(9)} ` +
        `${`${row.reps}×${row.trials}`.padStart(12)} ${row.maxErr.toExponential(1).padStart(10)}`,
    );
  }
  return rows;
}

async function benchOne(gpu: WebGpuBackend, n: number): Promise<MatmulRow> {
  const rng = new Rng(n);
  const host = () => Float32Array.from({ length: n * n }, () => rng.uniform(-1, 1));
  const A = host();
  const B = host();
  const a = tensor(A, [n, n], { backend: gpu });
  const b = tensor(B, [n, n], { backend: gpu });

  // Validate first: the first run also compiles the pipeline.
  const y = matmul(a, b);
  const Y = (await y.data()) as Float32Array;
  y.dispose();
  const { maxErr, checked } = validate(n, A, B, Y, rng);

  const once = (): void => matmul(a, b).dispose();
  let t0 = performance.now();
  once();
  await gpu.sync();
  const estimate = performance.now() - t0;
  const reps = Math.max(1, Math.min(100, Math.round(TRIAL_MS / Math.max(estimate, 1e-3))));
  const trials = estimate > 2000 ? 2 : 5;
  const perMatmul: number[] = [];
  for (let t = 0; t < trials; t++) {
    t0 = performance.now();
    for (let r = 0; r < reps; r++) once();
    await gpu.sync();
    perMatmul.push((performance.now() - t0) / reps);
  }
  a.dispose();
  b.dispose();
  const ms = median(perMatmul);
  return { n, ms, gflops: (2 * n ** 3) / (ms * 1e6), reps, trials, maxErr, checked };
}

/**
 * Compares y [n,n] with float64 dot products of the same f32 inputs: every entry up to FULL_CHECK, else
 * CHECK_SAMPLES random ones. Throws on any entry out of tolerance.
 */
function validate(n: number, A: Float32Array, B: Float32Array, Y: Float32Array, rng: Rng): { maxErr: number; checked: number } {
  // The op's tolerance covers K <= 300 (its samples); f32 rounding error grows like sqrt(K), so atol does too.
  const tol = matmulOps.matmul.tol;
  const atol = tol.atol * Math.max(1, Math.sqrt(n / 300));
  const entries =
    n <= FULL_CHECK
      ? Array.from({ length: n * n }, (_, i) => i)
      : Array.from({ length: CHECK_SAMPLES }, () => rng.int(0, n * n));
  let maxErr = 0;
  for (const idx of entries) {
    const i = Math.floor(idx / n);
    const j = idx % n;
    let want = 0;
    for (let k = 0; k < n; k++) want += A[i * n + k]! * B[k * n + j]!;
    const got = Y[idx]!;
    const err = Math.abs(got - want);
    if (!(err <= atol + tol.rtol * Math.abs(want))) {
      throw new Error(`matmul ${n}: y[${i},${j}] = ${got}, expected ${want} (atol ${atol}, rtol ${tol.rtol}, seed ${n})`);
    }
    maxErr = Math.max(maxErr, err);
  }
  return { maxErr, checked: entries.length };
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}
