import { it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { WasmBackend } from '../src/backend/wasm/wasm.js';
import { loadMnist } from '../src/data/mnist.js';
import { setSeed } from '../src/nn/index.js';
import { seedModel } from '../src/nn/models.js';
import { adam } from '../src/optim/index.js';
import { setDefaultBackend } from '../src/tensor.js';
import { cpu, gpuBackend } from './helpers.js';

async function stepMs(b: Backend, steps: number): Promise<number> {
  setDefaultBackend(b);
  setSeed(1);
  const { train } = loadMnist();
  const part = train.slice(0, 64 * steps);
  const m = seedModel('mlp', [28, 28, 1], 10);
  const opt = adam(1e-3);
  m.compile({ optimizer: opt, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const fit = () => m.fit({ data: part.x, shape: part.xShape }, { data: part.y, shape: part.yShape }, { epochs: 1, batchSize: 64, verbose: 0 });
  await fit();
  const t0 = performance.now();
  await fit();
  const ms = (performance.now() - t0) / steps;
  opt.dispose();
  m.dispose();
  setDefaultBackend(undefined);
  return ms;
}

it('per-op time on wasm', async () => {
  const b = await WasmBackend.create({ threads: 1 });
  const t: Record<string, number> = {};
  const wrap = (k: 'run' | 'runInPlace') => {
    const f = (b as any)[k].bind(b);
    (b as any)[k] = (op: { name: string }, ...rest: unknown[]) => {
      const t0 = performance.now();
      const r = f(op, ...rest);
      t[op.name] = (t[op.name] ?? 0) + performance.now() - t0;
      return r;
    };
  };
  wrap('run');
  wrap('runInPlace');
  const ms = await stepMs(b, 40);
  for (const k of Object.keys(t)) t[k] = +(t[k]! / 80).toFixed(3);
  console.log('wasm 1t step', ms.toFixed(2), 'ms; per op ms/step', JSON.stringify(t));
  b.destroy();
}, 600000);

it.skip('MLP b64 step', async () => {
  const gpu = await gpuBackend();
  const w1 = await WasmBackend.create({ threads: 1 });
  const w2 = await WasmBackend.create({ threads: 2 });
  for (const round of [1, 2]) {
    const r: Record<string, string> = {};
    for (const [name, b, steps] of [['wasm-1t', w1, 40], ['wasm-2t', w2, 40], ['webgpu-lavapipe', gpu, 40], ['cpu-ref', cpu, 10]] as const) {
      r[name] = (await stepMs(b, steps)).toFixed(2);
    }
    console.log(`round ${round}: MLP b64 ms/step`, JSON.stringify(r));
  }
  w1.destroy();
  w2.destroy();
}, 600000);
