// The slow tier of the ONNX fuzz (issue 17 asks 10⁴ seeded mutations of the test models): 6000 mutations under another
// seed than the 4000 of test/interop-onnx.test.ts. Each mutation that still parses runs its graph once on the CPU
// reference backend (loadOnnx's dry run), which is what takes the time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memory, setDefaultBackend } from '../src/tensor.js';
import { cpu } from './helpers.js';
import { fuzzOnnx, makeOnnxModels, onnxFile, removeOnnxModels } from './onnx-fuzz.js';

let dir: string;
beforeAll(() => {
  dir = makeOnnxModels().dir;
  setDefaultBackend(cpu);
}, 120_000);
afterAll(() => removeOnnxModels(dir));

describe('fuzz, slow tier: hostile bytes give a typed error or a model, never a crash, a hang or a huge allocation', () => {
  it('6000 more seeded byte mutations of the four models (10⁴ with the main file)', () => {
    const cpu0 = process.cpuUsage().user;
    const names = ['mlp', 'resnet', 'gpt', 'cnn'] as const;
    const models = Object.fromEntries(names.map((n) => [n, onnxFile(dir, n)]));
    const counts = fuzzOnnx(models, { mlp: 1500, resnet: 1500, gpt: 1500, cnn: 1500 }, 18, false);
    expect(counts.ok + counts.error).toBe(6000);
    expect(counts.error, JSON.stringify(counts)).toBeGreaterThan(300);
    expect(counts.ok, JSON.stringify(counts)).toBeGreaterThan(300);
    expect(memory(cpu).liveTensors).toBe(0);
    // CPU time, not wall time: a hang shows either way, a loaded CI machine only in the second.
    const cpuMs = (process.cpuUsage().user - cpu0) / 1000;
    console.log(`onnx fuzz, slow tier: ${JSON.stringify(counts)} in ${(cpuMs / 1000).toFixed(1)} s of CPU`);
    expect(cpuMs).toBeLessThan(300_000);
  }, 900_000);
});
