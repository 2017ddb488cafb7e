// The device's ceilings, once per run: copy bandwidth (a large buffer-to-buffer copy, repeated in one submit) for the
// memory-bound kernels; the compute ceiling is the best matmul GFLOP/s of the run (report.ts), or, when the matmul
// family is not in the run, a calibration matmul timed here.
import { matmul, tensor, type WebGpuBackend } from '../src/index.js';
import { hostUniform } from './harness.js';
import { stats, type Stats } from './timer.js';

export interface CopyResult {
  /** Bytes read + written per copy (2 × the buffer), as the kernels' GB/s count them. */
  bytes: number;
  /** GB/s = bytes / time, median over trials. */
  gbs: number;
  /** Per copy, ms (wall clock over reps copies in one submit). */
  ms: Stats;
  reps: number;
}

export interface Roofline {
  copy?: CopyResult;
  /** wgnn matmul at `n`², when the run has no matmul family. */
  calibration?: { n: number; gflops: number };
}

export async function measureCopy(gpu: WebGpuBackend, o: { quick: boolean; software: boolean }): Promise<CopyResult> {
  const device = gpu.device;
  const want = o.quick ? 16 << 20 : o.software ? 64 << 20 : 512 << 20;
  const size = Math.min(want, Math.floor(device.limits.maxBufferSize / 4 / 4) * 4);
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const src = device.createBuffer({ size, usage });
  const dst = device.createBuffer({ size, usage });
  try {
    // Random data (never zeros), 16 MiB at a time.
    const chunk = hostUniform(11, [Math.min(size, 16 << 20) / 4]).data;
    for (let off = 0; off < size; off += chunk.byteLength)
      device.queue.writeBuffer(src, off, chunk.buffer, 0, Math.min(chunk.byteLength, size - off));
    const copies = (n: number): void => {
      const enc = device.createCommandEncoder();
      for (let i = 0; i < n; i++) enc.copyBufferToBuffer(src, 0, dst, 0, size);
      device.queue.submit([enc.finish()]);
    };
    copies(2);
    await device.queue.onSubmittedWorkDone();
    let t0 = performance.now();
    copies(1);
    await device.queue.onSubmittedWorkDone();
    const est = performance.now() - t0;
    const reps = Math.max(1, Math.min(400, Math.round((o.quick ? 50 : 250) / Math.max(est, 1e-3))));
    const per: number[] = [];
    for (let t = 0; t < (o.quick ? 3 : 5); t++) {
      t0 = performance.now();
      copies(reps);
      await device.queue.onSubmittedWorkDone();
      per.push((performance.now() - t0) / reps);
    }
    const ms = stats(per);
    return { bytes: 2 * size, gbs: (2 * size) / (ms.median * 1e6), ms, reps };
  } finally {
    src.destroy();
    dst.destroy();
  }
}

/** GFLOP/s of wgnn's square matmul at n (median of 3 trials): the compute ceiling when no matmul family runs. */
export async function calibrationMatmul(gpu: WebGpuBackend, n: number): Promise<{ n: number; gflops: number }> {
  const a = tensor(hostUniform(21, [n, n]).data, [n, n], { backend: gpu });
  const b = tensor(hostUniform(22, [n, n]).data, [n, n], { backend: gpu });
  try {
    matmul(a, b).dispose();
    await gpu.sync();
    let t0 = performance.now();
    matmul(a, b).dispose();
    await gpu.sync();
    const reps = Math.max(1, Math.min(50, Math.round(200 / (performance.now() - t0))));
    const per: number[] = [];
    for (let t = 0; t < 3; t++) {
      t0 = performance.now();
      for (let r = 0; r < reps; r++) matmul(a, b).dispose();
      await gpu.sync();
      per.push((performance.now() - t0) / reps);
    }
    return { n, gflops: (2 * n ** 3) / (stats(per).median * 1e6) };
  } finally {
    a.dispose();
    b.dispose();
  }
}
