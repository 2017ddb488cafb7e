// Shared test helpers: the two backends, sample tensors, and the one comparison rule.
import { afterAll, expect } from 'vitest';
import type { Backend, TypedArray } from '../src/backend/backend.js';
import { CpuBackend } from '../src/backend/cpu/cpu.js';
import { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { createWebGpuBackend } from '../src/init.js';
import type { SampleInput, Tol } from '../src/ops/op.js';
import { Rng } from '../src/rng.js';
import { sizeOf } from '../src/shape.js';
import { memory, tensor, type Tensor } from '../src/tensor.js';

export const cpu = new CpuBackend();

let gpuPromise: Promise<WebGpuBackend> | undefined;
/** The WebGPU backend for this test file; fails (never skips) when there is no adapter. */
export function gpuBackend(): Promise<WebGpuBackend> {
  gpuPromise ??= createWebGpuBackend().then((g) => {
    if (!g) throw new Error('no WebGPU adapter: GPU tests cannot run (see scripts/setup-machine.sh)');
    afterAll(() => {
      expect(g.errors, 'WebGPU errors reported by the device').toEqual([]);
      expect(memory(g).liveTensors, 'GPU tensors left alive by this file').toBe(0);
      g.destroy();
    });
    return g;
  });
  return gpuPromise;
}

/**
 * `gpu`'s device driven as a GPU adapter is: kernels that pick other tiles on a software adapter (lavapipe here:
 * matmul's 8x16 blocks, attention's 16-thread tiles) take a GPU's, so both stay checked on this machine.
 */
/**
 * A backend on the same device that takes it for a software adapter that says nothing of its subgroup sizes
 * (SwiftShader-like): the software tiles without subgroup reads, which lavapipe's own backend no longer runs.
 */
export function asSoftwareAdapter(gpu: WebGpuBackend): WebGpuBackend {
  const g = new WebGpuBackend(gpu.device, { vendor: 'test', architecture: '', device: '', description: 'llvmpipe' });
  expect([g.software, g.subgroupRows], 'software, without subgroup reads').toEqual([true, false]);
  return g;
}

export function asGpuAdapter(gpu: WebGpuBackend): WebGpuBackend {
  const g = new WebGpuBackend(gpu.device, { vendor: 'test', architecture: 'gpu', device: 'test', description: 'test' });
  expect(g.software, 'a backend on a GPU adapter is not a software one').toBe(false);
  return g;
}

/** Host data for a sample input: explicit values cycled, or seeded uniform values in its range. */
export function sampleData(inp: SampleInput, rng: Rng): TypedArray {
  const n = sizeOf(inp.shape);
  const [lo, hi] = inp.range ?? [-2, 2];
  const out = inp.dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = inp.values
      ? inp.values[i % inp.values.length]!
      : inp.dtype === 'int32'
        ? rng.int(lo, hi)
        : rng.uniform(lo, hi);
  }
  return out;
}

export function upload(b: Backend, data: TypedArray, shape: readonly number[]): Tensor {
  return tensor(data, shape, { backend: b, dtype: data instanceof Int32Array ? 'int32' : 'float32' });
}

/** `|a − e| ≤ atol + rtol·|e|` everywhere, NaN where NaN is expected, Inf with its sign. */
export function expectClose(actual: TypedArray, expected: TypedArray, tol: Tol, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let bad = 0;
  let first = '';
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const ok = Number.isNaN(e)
      ? Number.isNaN(a)
      : !Number.isFinite(e)
        ? a === e
        : Number.isFinite(a) && Math.abs(a - e) <= tol.atol + tol.rtol * Math.abs(e);
    if (!ok) {
      if (bad === 0) first = `index ${i}: got ${a}, expected ${e}`;
      bad++;
    }
  }
  expect(
    bad,
    `${what}: ${bad} of ${expected.length} elements out of tolerance (atol ${tol.atol}, rtol ${tol.rtol}); first at ${first}`,
  ).toBe(0);
}
