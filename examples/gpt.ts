// A character-level GPT on Debian's fortunes (bash scripts/setup-machine.sh installs them), nanoGPT-style: random
// windows, AdamW with warmup + cosine and clipping, one captured training step replayed; then text from the saved model.
// Run: npm run build && node dist/examples/gpt.js [steps] [dim]
import * as wg from '../src/index.js';

const steps = Number(process.argv[2] ?? 300);
const dim = Number(process.argv[3] ?? 128);
await wg.init();
const { tokenizer, train, val } = wg.data.textDataset(await wg.data.readFortunes(), { blockSize: 64 });
const model = wg.gpt({ vocabSize: tokenizer.vocabSize, blockSize: 64, layers: 2, heads: 4, dim, dropout: 0, seed: 1 });
model.tokenizer = tokenizer;
const lr = wg.optim.warmupCosine({ peak: 2e-3, warmupSteps: Math.ceil(steps / 10), decaySteps: steps, min: 2e-4 });
const optimizer = wg.optim.adamw({ lr, weightDecay: 0.1, globalClipnorm: 1 });
const step = wg.nn.trainStep(model, { optimizer, loss: 'sparseCategoricalCrossentropy' });
const meter = new wg.nn.StepMeter(step);
let n = 0;
for (const b of train.batches(16, { seed: 1, steps })) {
  step.run({ data: b.x, shape: b.shape }, { data: b.y, shape: b.shape });
  meter.ran(16);
  if (++n % 50 === 0 || n === steps) console.log(`step ${n}: loss ${(await meter.read()).loss!.toFixed(4)}`);
}
step.dispose();
// Validation loss through the Keras-style API: x and y are int32 token windows.
model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy' });
const evalSet = val.evalBatches(16, 4, 2);
const cat = (k: 'x' | 'y') => ({ data: Int32Array.from(evalSet.flatMap((b) => [...b[k]])), shape: [64, 64] });
console.log(`val loss ${(await model.evaluate(cat('x'), cat('y'))).loss!.toFixed(4)}`);
const bytes = await model.save();
const again = await wg.GPT.load(bytes);
const text = await again.generate('\n', { maxTokens: 120, temperature: 0.8, topK: 20, seed: 1 });
console.log(`sample:\n${text}`);
