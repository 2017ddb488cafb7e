// The GPT step for step with PyTorch (scripts/gpt_torch.py, Debian's python3-torch through /usr/bin/python3): a
// 2-layer, 2-head, d = 32, T = 16 character GPT on the fortunes corpus, batch 4, AdamW with weight decay, warmup +
// cosine and gradient clipping, 50 steps from the same initial weights on the same batches, on the CPU backend and on
// WebGPU. Every step's loss within 1e-4 relative of PyTorch float32's; the final weights, per tensor, within 10x of
// PyTorch float32's own distance from a float64 PyTorch run (relative Frobenius norm); the logits of an init with
// std 0.1 within 1e-5 of float64 PyTorch's (the GELU form and the epsilons); the trained model's saved file loaded
// into PyTorch gives the logits wgnn gives.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { readFortunes, textDataset } from '../src/data/text.js';
import { parseSafetensors, saveTensors } from '../src/io/safetensors.js';
import { GPT, gpt } from '../src/nn/index.js';
import { StepMeter, trainStep } from '../src/nn/train.js';
import { adamw } from '../src/optim/index.js';
import { warmupCosine } from '../src/optim/schedules.js';
import { setDefaultBackend, tensor } from '../src/tensor.js';
import { cpu, gpuBackend } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, '..', 'scripts', 'gpt_torch.py');
const [STEPS, B, T] = [50, 4, 16];
const OPTIM = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, clip: 1 };
const lr = warmupCosine({ peak: 3e-3, warmupSteps: 5, decaySteps: STEPS - 5, min: 3e-4 });

/** Runs the oracle script and returns its JSON answer. */
function torch(...args: string[]): Record<string, unknown> {
  const out = execFileSync(PYTHON, [SCRIPT, '--threads', '2', ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out) as Record<string, unknown>;
}

/** The float32 tensors of a safetensors file (F64 rounded to float32), by name. */
function weights(bytes: Uint8Array): Map<string, Float32Array> {
  const file = parseSafetensors(bytes);
  return new Map([...file.tensors].map(([n, t]) => [n, Float32Array.from(t.data as ArrayLike<number>)]));
}

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));
/** ‖a − e‖ / ‖e‖ (the distance to zero when e is zero). */
function relDist(a: ArrayLike<number>, e: ArrayLike<number>): number {
  const d = Array.from(a, (v, i) => v - e[i]!);
  const n = norm(e);
  return n > 0 ? norm(d) / n : norm(d);
}

describe('GPT parity with PyTorch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wgnn-parity-'));
  const path = (f: string) => join(dir, f);
  let init: Uint8Array;
  let xs: Int32Array;
  let ys: Int32Array;
  let losses32: number[];
  let final32: Map<string, Float32Array>;
  let final64: Map<string, Float32Array>;
  let vocab: number;

  beforeAll(async () => {
    setDefaultBackend(cpu);
    const { tokenizer, train } = textDataset(await readFortunes(), { blockSize: T });
    vocab = tokenizer.vocabSize;
    const model = gpt({ vocabSize: vocab, blockSize: T, layers: 2, heads: 2, dim: 32, dropout: 0, seed: 11 });
    init = await model.save(path('init.safetensors'));
    model.dispose();
    [xs, ys] = [new Int32Array(STEPS * B * T), new Int32Array(STEPS * B * T)];
    let s = 0;
    for (const b of train.batches(B, { seed: 5, steps: STEPS })) {
      xs.set(b.x, s * B * T);
      ys.set(b.y, s * B * T);
      s++;
    }
    const batches = {
      x: tensor(xs, [STEPS, B, T], { dtype: 'int32' }),
      y: tensor(ys, [STEPS, B, T], { dtype: 'int32' }),
      lr: tensor(
        Float32Array.from({ length: STEPS }, (_, i) => lr(i)),
        [STEPS],
      ),
    };
    await saveTensors(path('batches.safetensors'), batches);
    const train32 = torch(
      'train',
      ...['--model', path('init.safetensors'), '--batches', path('batches.safetensors'), '--lr-from-file'],
      ...['--beta1', '0.9', '--beta2', '0.999', '--eps', '1e-8', '--weight-decay', '0.1', '--clip', '1'],
      ...['--dtype', 'float32', '--out', path('torch32.safetensors')],
    );
    torch(
      'train',
      ...['--model', path('init.safetensors'), '--batches', path('batches.safetensors'), '--lr-from-file'],
      ...['--beta1', '0.9', '--beta2', '0.999', '--eps', '1e-8', '--weight-decay', '0.1', '--clip', '1'],
      ...['--dtype', 'float64', '--out', path('torch64.safetensors')],
    );
    losses32 = train32.losses as number[];
    final32 = weights(new Uint8Array(readFileSync(path('torch32.safetensors'))));
    final64 = weights(new Uint8Array(readFileSync(path('torch64.safetensors'))));
    setDefaultBackend(undefined);
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe.each(['cpu', 'webgpu'] as const)('[%s]', (name) => {
    let backend: Backend;
    beforeAll(async () => {
      backend = name === 'cpu' ? cpu : await gpuBackend();
      setDefaultBackend(backend);
    });
    afterAll(() => setDefaultBackend(undefined));

    it('50 AdamW steps (weight decay, warmup + cosine, clipping): losses and final weights as PyTorch', async () => {
      const model = await GPT.load(init);
      const optimizer = adamw({ lr, weightDecay: OPTIM.weightDecay, eps: OPTIM.eps, globalClipnorm: OPTIM.clip });
      const step = trainStep(model, { optimizer, loss: 'sparseCategoricalCrossentropy' });
      const meter = new StepMeter(step);
      const losses: number[] = [];
      for (let s = 0; s < STEPS; s++) {
        const at = (a: Int32Array) => ({ data: a.slice(s * B * T, (s + 1) * B * T), shape: [B, T] });
        step.run(at(xs), at(ys));
        meter.ran(B);
        losses.push((await meter.read()).loss!);
      }
      const worst = Math.max(...losses.map((l, s) => Math.abs(l - losses32[s]!) / Math.abs(losses32[s]!)));
      console.log(
        `[${name}] losses: step 1 ${losses[0]!.toFixed(6)} (torch ${losses32[0]!.toFixed(6)}), step ${STEPS} ` +
          `${losses[STEPS - 1]!.toFixed(6)} (torch ${losses32[STEPS - 1]!.toFixed(6)}); worst relative gap ${worst.toExponential(2)}`,
      );
      losses.forEach((l, s) =>
        expect(Math.abs(l - losses32[s]!), `step ${s + 1}: wgnn ${l}, torch ${losses32[s]}`).toBeLessThanOrEqual(
          1e-4 * Math.abs(losses32[s]!),
        ),
      );
      const mine = weights(await model.save());
      let worstRatio = 0;
      for (const [n, w64] of final64) {
        const own = relDist(final32.get(n)!, w64); // PyTorch float32's own error
        const ours = relDist(mine.get(n)!, w64);
        // NOTE: a floor of 1e-6 (a few float32 roundings) where PyTorch float32 happens to land closer still.
        expect(
          ours,
          `${n}: wgnn ${ours.toExponential(2)} vs torch float32 ${own.toExponential(2)}`,
        ).toBeLessThanOrEqual(Math.max(10 * own, 1e-6));
        worstRatio = Math.max(worstRatio, ours / Math.max(own, 1e-12));
      }
      console.log(
        `[${name}] final weights: worst (wgnn error / torch float32 error) over tensors ${worstRatio.toFixed(2)}`,
      );
      // The trained model's file, loaded into PyTorch (float64), gives wgnn's logits.
      const x = { data: xs.slice(0, B * T), shape: [B, T] };
      writeFileSync(path(`trained-${name}.safetensors`), await model.save());
      await saveTensors(path('x.safetensors'), { x: tensor(x.data, x.shape, { dtype: 'int32' }) });
      const logits = await model.logits(tensor(x.data, x.shape, { dtype: 'int32' })).data();
      torch(
        'logits',
        '--model',
        path(`trained-${name}.safetensors`),
        '--x',
        path('x.safetensors'),
        '--dtype',
        'float64',
        '--out',
        path('l.safetensors'),
      );
      const want = weights(new Uint8Array(readFileSync(path('l.safetensors')))).get('logits')!;
      expect(relDist(logits, want)).toBeLessThanOrEqual(1e-5);
      step.dispose();
      optimizer.dispose();
      model.dispose();
    }, 300_000);

    it('logits of an init with std 0.1 within 1e-5 of float64 PyTorch (GELU tanh and exact, LN epsilons)', async () => {
      for (const [activation, epsilon] of [
        ['gelu_tanh', 1e-5],
        ['gelu', 1e-3],
      ] as const) {
        const model = gpt({
          vocabSize: vocab,
          blockSize: T,
          layers: 2,
          heads: 2,
          dim: 32,
          initStd: 0.1,
          seed: 3,
          activation,
          epsilon,
          tieWeights: activation === 'gelu',
        });
        const file = path(`std01-${name}-${activation}.safetensors`);
        await model.save(file);
        const x = tensor(xs.slice(0, B * T), [B, T], { dtype: 'int32' });
        await saveTensors(path('x01.safetensors'), { x });
        const got = await model.logits(x).data();
        torch(
          'logits',
          '--model',
          file,
          '--x',
          path('x01.safetensors'),
          '--dtype',
          'float64',
          '--out',
          path('l01.safetensors'),
        );
        const want = weights(new Uint8Array(readFileSync(path('l01.safetensors')))).get('logits')!;
        const scale = Math.max(...Array.from(want, Math.abs));
        const gap = Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i]!)));
        console.log(
          `[${name}] ${activation} eps ${epsilon}: logits max |wgnn − torch64| ${gap.toExponential(2)} (max |logit| ${scale.toFixed(2)})`,
        );
        expect(relDist(got, want), activation).toBeLessThanOrEqual(1e-5);
        expect(gap, activation).toBeLessThanOrEqual(1e-5 * scale);
        model.dispose();
      }
    }, 120_000);
  });
});
