// Checkpoint and resume across processes: 2N steps straight, against N steps + checkpoint in one process and a
// fresh process resuming for N more. `node dist/examples/resume.js check` runs all three and compares the weights.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as wg from '../src/index.js';

const [mode = 'check', a = '', b = ''] = process.argv.slice(2);

async function train(epochs: number, checkpoint?: { path: string; everySteps: number; resume?: boolean }) {
  await wg.init({ backend: 'webgpu' });
  wg.setSeed(5);
  const part = wg.data.loadMnist().train.slice(0, 32 * 20); // 20 steps an epoch at batch 32
  const model = wg.nn.seedModel('mlp', [28, 28, 1], 10);
  model.compile({ optimizer: wg.optim.adam(1e-3), loss: 'sparseCategoricalCrossentropy' });
  await model.fit(
    { data: part.x, shape: part.xShape },
    { data: part.y, shape: part.yShape },
    { epochs, batchSize: 32, seed: 3, verbose: 0, ...(checkpoint ? { checkpoint } : {}) },
  );
  return model;
}

if (mode === 'straight') await (await train(2)).save(a);
else if (mode === 'first') await train(1, { path: a, everySteps: 20 });
else if (mode === 'second') await (await train(2, { path: a, everySteps: 1000, resume: true })).save(b);
else {
  const dir = mkdtempSync(join(tmpdir(), 'wgnn-resume-'));
  const self = fileURLToPath(import.meta.url);
  const run = (...args: string[]) => execFileSync(process.execPath, [self, ...args], { stdio: 'inherit' });
  const [straight, ck, resumed] = ['straight.safetensors', 'ck.safetensors', 'resumed.safetensors'].map((f) =>
    join(dir, f),
  );
  run('straight', straight!);
  run('first', ck!);
  run('second', ck!, resumed!);
  const [x, y] = [wg.parseSafetensors(readFileSync(straight!)), wg.parseSafetensors(readFileSync(resumed!))];
  let same = x.tensors.size === y.tensors.size;
  for (const [name, t] of x.tensors) {
    const u = y.tensors.get(name);
    same &&=
      !!u &&
      Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(
        Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength),
      );
  }
  rmSync(dir, { recursive: true, force: true });
  console.log(
    `resume across processes (40 steps straight vs 20 + checkpoint + 20 in a new process): ${same ? 'bitwise equal' : 'DIFFERENT'}`,
  );
  if (!same) process.exitCode = 1;
}
wg.shutdown();
