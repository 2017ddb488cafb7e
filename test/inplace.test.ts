// Walks the in-place kernel table (INPLACE): for every kernel and every sample, the WebGPU kernel leaves each target
// as the CPU reference does (|a − e| ≤ atol + rtol·|e|, NaN and ±Inf where expected), and inputs are left as they were.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Backend, TypedArray } from '../src/backend/backend.js';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { applyInPlace } from '../src/ops/apply.js';
import type { InPlaceDef, InPlaceName, InPlaceSample } from '../src/ops/inplace.js';
import { INPLACE } from '../src/optim/registry.js';
import { Rng } from '../src/rng.js';
import { cpu, expectClose, gpuBackend, sampleData, upload } from './helpers.js';

let gpu: WebGpuBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
});

const seedOf = (s: string): number => [...s].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7);

/** Runs the kernel on one backend; returns the targets after it, and the inputs before and after. */
async function runOn(b: Backend, k: InPlaceDef<unknown>, s: InPlaceSample<unknown>, seed: number) {
  const rng = new Rng(seed);
  const targets = s.targets.map((inp) => upload(b, sampleData(inp, rng), inp.shape));
  const inputData = s.inputs.map((inp) => sampleData(inp, rng));
  const inputs = inputData.map((d, i) => upload(b, d, s.inputs[i]!.shape));
  applyInPlace(k, targets, inputs, s.attrs);
  const out = await Promise.all(targets.map((t) => t.data()));
  const inputsAfter = await Promise.all(inputs.map((t) => t.data()));
  for (const t of [...targets, ...inputs]) t.dispose();
  return { out, inputData, inputsAfter };
}

const entries = Object.entries(INPLACE) as [InPlaceName, InPlaceDef<unknown>][];

describe.each(entries.map(([key, k]) => ({ key, k, name: k.name })))('$name', ({ key, k }) => {
  const samples = [...k.samples()];

  it(`${key}: listed under its own name, with at least 7 samples`, () => {
    expect(k.name).toBe(key);
    expect(samples.length).toBeGreaterThanOrEqual(7);
  });

  it.each(samples.map((s, i) => ({ s, i, label: s.name })))(`${key} $label [webgpu] gpu≈cpu`, async ({ s, i }) => {
    const seed = seedOf(`${key}#${i}`);
    const want = await runOn(cpu, k, s, seed);
    const got = await runOn(gpu, k, s, seed);
    want.out.forEach((e: TypedArray, j) =>
      expectClose(got.out[j]!, e, k.tol, `${key} ${s.name}: target ${j} (seed ${seed})`),
    );
    got.inputsAfter.forEach((a, j) =>
      expectClose(a, got.inputData[j]!, { atol: 0, rtol: 0 }, `${key} ${s.name}: input ${j} is unchanged`),
    );
  });
});
