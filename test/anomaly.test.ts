// Anomaly mode: with setAnomalyMode(true) every op's output is checked for NaN/Inf where it is computed (a kernel on
// the GPU, the host on the CPU), and checkAnomalies() names the FIRST op that produced one, forward or backward,
// with its shapes; a clean run passes; off, an op costs no extra dispatch. Run once per backend.
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { compileStep } from '../src/autograd/step.js';
import '../src/autograd/tape.js';
import { checkAnomalies, setAnomalyMode } from '../src/debug/anomaly.js';
import { AnomalyError } from '../src/errors.js';
import { createWebGpuBackend } from '../src/init.js';
import { exp, log, matmul, relu, sqrt, sub, sum } from '../src/ops/index.js';
import { tensor, tidy } from '../src/tensor.js';
import { cpu, gpuBackend } from './helpers.js';

let gpu: WebGpuBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
});
afterEach(() => setAnomalyMode(false));

/** What checkAnomalies() rejects with (undefined when it passes). */
async function anomaly(): Promise<AnomalyError | undefined> {
  try {
    await checkAnomalies();
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(AnomalyError);
    return e as AnomalyError;
  }
}

describe.each(['cpu', 'webgpu'] as const)('anomaly mode [%s]', (name) => {
  const be = (): Backend => (name === 'cpu' ? cpu : gpu);

  it('a chain where log of a negative number appears in the middle: checkAnomalies names log and its shapes; then a clean run passes', async () => {
    setAnomalyMode(true);
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3], { backend: be() });
    const w = tensor([1, 0, 0, 1, 1, 1], [3, 2], { backend: be() });
    // h = x @ w - 6 has negatives; log(h) has NaNs, and exp and sum carry them to the end.
    const run = (shift: number) => tidy(() => sum(exp(log(sub(matmul(x, w), shift)))));
    const bad = run(6);
    const err = await anomaly();
    console.log(`[${name}] ${String(err)}`);
    expect(err?.op).toBe('log');
    expect(err?.inputShapes).toEqual([[2, 2]]);
    expect(err?.outputShape).toEqual([2, 2]);
    expect(err?.gradEnabled).toBe(true);
    expect(err?.message).toMatch(
      /^log: produced a non-finite value \(NaN or Inf\), the first of the \d+ ops checked .*; inputs \[2,2\] -> output \[2,2\], in forward, recording gradients$/,
    );
    expect(Number.isNaN((await bad.data())[0])).toBe(true); // the check reports; it does not change results
    const good = run(-1);
    expect(await anomaly(), 'a clean run after the report').toBeUndefined();
    expect((await good.data())[0]).toBeCloseTo(5 + 6 + 11 + 12, 3); // log then exp of x @ w + 1
    for (const t of [x, w, bad, good]) t.dispose();
  });

  it('an Inf first produced in backward (sqrt at 0: dy / 2√x) is named as in backward', async () => {
    setAnomalyMode(true);
    const x = tensor([0, 1, 4], [3], { backend: be() }).variable();
    const loss = tidy(() => sum(sqrt(x)));
    expect(await anomaly(), 'the forward pass is finite').toBeUndefined();
    loss.backward();
    const err = await anomaly();
    console.log(`[${name}] ${String(err)}`);
    expect(err?.op).toBe('sqrt_bwd_x');
    expect(err?.gradEnabled).toBe(false);
    expect(err?.message).toMatch(/in backward$/);
    expect(Array.from(await x.grad!.data())).toEqual([Infinity, 0.5, 0.25]);
    x.grad!.dispose();
    loss.dispose();
    x.dispose();
  });

  it('a compiled step: the NaN of a later step is reported with the op that made it (captured and replayed on the GPU)', async () => {
    setAnomalyMode(true);
    const step = compileStep((a) => ({ loss: sum(log(a)) }));
    const run = (v: number) => {
      const a = tensor([v, 2, 3], [3], { backend: be() });
      step.run(a);
      a.dispose();
    };
    run(1);
    run(2);
    expect(await anomaly(), 'two finite steps').toBeUndefined();
    run(-1);
    const err = await anomaly();
    console.log(`[${name}] after ${step.captures} capture(s), ${step.replays} replay(s): ${String(err)}`);
    expect(err?.op).toBe('log');
    expect(err?.inputShapes).toEqual([[3]]);
    if (name === 'webgpu') expect(step.replays).toBe(2);
    step.dispose();
  });

  it('off, an op costs no check; on, one check per op', async () => {
    const x = tensor([1, -2, 3], [3], { backend: be() });
    const dispatches = () => (name === 'webgpu' ? gpu.dispatches : 0);
    let d0 = dispatches();
    relu(x).dispose();
    const off = dispatches() - d0;
    setAnomalyMode(true);
    d0 = dispatches();
    relu(x).dispose();
    const on = dispatches() - d0;
    if (name === 'webgpu') {
      console.log(`[webgpu] dispatches for one relu: ${off} with anomaly mode off, ${on} on`);
      expect([off, on]).toEqual([1, 2]);
    }
    expect(await anomaly()).toBeUndefined();
    x.dispose();
  });
});

describe('anomaly mode and a lost device [webgpu]', () => {
  it('checkAnomalies forgets a backend whose device was lost (as after a new init()) and still checks the others', async () => {
    setAnomalyMode(true);
    const b = (await createWebGpuBackend())!;
    const x = tensor([-1], [1], { backend: b });
    log(x).dispose();
    b.device.destroy();
    await vi.waitFor(() => expect(b.isLost).toBe(true));
    const y = tensor([-1], [1], { backend: cpu });
    sqrt(y).dispose();
    expect((await anomaly())?.op, 'the CPU backend is still checked').toBe('sqrt');
    expect(await anomaly()).toBeUndefined();
    x.dispose();
    y.dispose();
  });
});
