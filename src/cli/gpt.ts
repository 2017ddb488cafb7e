// `wgnn train --model gpt` and `wgnn sample`: a character-level GPT on a text corpus (Debian's fortunes, or any text
// file), trained as nanoGPT trains (random windows, AdamW, linear warmup then cosine decay, gradient clipping), with
// the validation loss and a generated sample at each evaluation; and text generated from a saved model.
import { Presets, SingleBar } from 'cli-progress';
import { readFortunes, readText, textDataset, type TokenBatch, type TokenDataset } from '../data/text.js';
import { ArgumentError, ParseError } from '../errors.js';
import { init } from '../init.js';
import { GPT, gpt, setSeed } from '../nn/index.js';
import { StepMeter, trainStep } from '../nn/train.js';
import { adamw } from '../optim/adam.js';
import { warmupCosine } from '../optim/schedules.js';
import { saveTensors } from '../io/safetensors.js';
import { checkWritable } from '../platform/fs.js';
import { saveOrRescue } from './save.js';
import { tensor } from '../tensor.js';

/** What `wgnn train --model gpt` takes (commander's parsed options). */
export interface GptTrainOptions {
  data: string;
  text?: string;
  backend: 'webgpu' | 'wasm' | 'cpu' | 'auto';
  seed: number;
  batchSize: number;
  blockSize: number;
  layers: number;
  heads: number;
  dim: number;
  dropout: number;
  steps: number;
  lr: number;
  minLr?: number;
  warmup: number;
  weightDecay: number;
  clip: number;
  evalInterval: number;
  evalBatches: number;
  sampleTokens: number;
  oracleDir?: string;
  out?: string;
}

export interface GptSampleOptions {
  modelPath: string;
  prompt: string;
  tokens: number;
  temperature: number;
  topK?: number;
  seed: number;
  backend: 'webgpu' | 'wasm' | 'cpu' | 'auto';
}

interface Io {
  out: (line: string) => void;
}

/** The corpus: `--text FILE` (any UTF-8 text) or `--data fortunes` (Debian's fortunes). */
async function corpus(o: GptTrainOptions): Promise<{ name: string; text: string }> {
  if (o.text) return { name: o.text, text: await readText(o.text) };
  if (o.data === 'fortunes') return { name: 'fortunes', text: await readFortunes() };
  throw new ArgumentError(`--data ${o.data} holds images; --model gpt trains on text: --data fortunes or --text FILE`);
}

/** Mean loss over fixed validation batches (one evaluate over their rows, in eval mode; training mode after). */
async function valLoss(model: GPT, batches: readonly TokenBatch[]): Promise<number> {
  const [B, T] = batches[0]!.shape;
  const cat = (k: 'x' | 'y') => {
    const a = new Int32Array(batches.length * B * T);
    batches.forEach((b, i) => a.set(b[k], i * B * T));
    return { data: a, shape: [batches.length * B, T] };
  };
  const logs = await model.evaluate(cat('x'), cat('y'), { batchSize: B });
  model.train();
  return logs.loss!;
}

/**
 * Writes what PyTorch needs to replay this run (scripts/gpt_torch.py): the initial weights (init.safetensors) and
 * every step's batch with its learning rate, plus the validation batches (batches.safetensors).
 */
async function writeOracle(
  dir: string,
  model: GPT,
  train: TokenDataset,
  val: readonly TokenBatch[],
  o: GptTrainOptions,
  lr: (step: number) => number,
): Promise<void> {
  await model.save(`${dir}/init.safetensors`);
  const [B, T] = [o.batchSize, o.blockSize];
  const x = new Int32Array(o.steps * B * T);
  const y = new Int32Array(o.steps * B * T);
  let s = 0;
  for (const b of train.batches(B, { seed: o.seed, steps: o.steps })) {
    x.set(b.x, s * B * T);
    y.set(b.y, s * B * T);
    s++;
  }
  const vx = new Int32Array(val.length * B * T);
  const vy = new Int32Array(val.length * B * T);
  val.forEach((b, i) => (vx.set(b.x, i * B * T), vy.set(b.y, i * B * T)));
  const t = (a: Int32Array | Float32Array, shape: number[]) =>
    tensor(a, shape, { dtype: a instanceof Int32Array ? 'int32' : 'float32' });
  const tensors = {
    x: t(x, [o.steps, B, T]),
    y: t(y, [o.steps, B, T]),
    lr: t(
      Float32Array.from({ length: o.steps }, (_, i) => lr(i)),
      [o.steps],
    ),
    val_x: t(vx, [val.length, B, T]),
    val_y: t(vy, [val.length, B, T]),
  };
  await saveTensors(`${dir}/batches.safetensors`, tensors, {
    optim: JSON.stringify({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: o.weightDecay, clip: o.clip }),
  });
  for (const v of Object.values(tensors)) v.dispose();
}

/** `wgnn train --model gpt`: trains a character-level GPT and saves it with its tokenizer. */
export async function trainGpt(o: GptTrainOptions, io: Io): Promise<void> {
  const out = o.out ?? `wgnn-gpt-${o.text ? 'text' : o.data}.safetensors`;
  checkWritable(out);
  if (o.oracleDir) checkWritable(`${o.oracleDir}/init.safetensors`);
  if (o.warmup >= o.steps) throw new ArgumentError(`--warmup ${o.warmup}: expected fewer than --steps ${o.steps}`);
  setSeed(o.seed);
  const backend = await init({ backend: o.backend });
  io.out(`backend: ${backend.name} (${backend.description})`);
  const { name, text } = await corpus(o);
  const { tokenizer, train, val } = textDataset(text, { blockSize: o.blockSize });
  io.out(
    `data: ${name}: ${text.length} characters, vocabulary ${tokenizer.vocabSize}, ${train.length} training and ${val.length} validation tokens`,
  );
  const model = gpt({
    vocabSize: tokenizer.vocabSize,
    blockSize: o.blockSize,
    layers: o.layers,
    heads: o.heads,
    dim: o.dim,
    dropout: o.dropout,
    seed: o.seed,
  });
  model.tokenizer = tokenizer;
  model.summary(io.out);
  const minLr = o.minLr ?? o.lr / 10;
  const lr = warmupCosine({ peak: o.lr, warmupSteps: o.warmup, decaySteps: o.steps - o.warmup, min: minLr });
  const optimizer = adamw({ lr, weightDecay: o.weightDecay, ...(o.clip > 0 ? { globalClipnorm: o.clip } : {}) });
  model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy' });
  const evalSet = val.evalBatches(o.batchSize, o.evalBatches, o.seed + 1);
  if (o.oracleDir) {
    await writeOracle(o.oracleDir, model, train, evalSet, o, lr);
    io.out(`oracle: initial weights and ${o.steps} batches written to ${o.oracleDir} (scripts/gpt_torch.py train)`);
  }
  io.out(
    `training: ${o.steps} steps of ${o.batchSize}x${o.blockSize} tokens, AdamW (weight decay ${o.weightDecay}, clip ${o.clip || 'off'}), ` +
      `learning rate ${o.warmup} warmup steps to ${o.lr}, cosine to ${minLr}`,
  );
  // Samples start from a newline (fortunes are lines of text), or the corpus's first character if it has none.
  const start = tokenizer.chars.includes('\n') ? '\n' : String.fromCodePoint(text.codePointAt(0)!);
  const sample = async (label: string) => {
    const s = await model.generate(start, { maxTokens: o.sampleTokens, temperature: 0.8, seed: o.seed });
    model.train();
    io.out(`${label}:\n${s}\n---`);
  };
  if (o.sampleTokens > 0) await sample('sample before training');
  io.out(`step 0: val loss ${(await valLoss(model, evalSet)).toFixed(4)}`);
  const step = trainStep(model, { optimizer, loss: 'sparseCategoricalCrossentropy' });
  const bar = new SingleBar(
    {
      format: 'step [{bar}] {value}/{total} | {duration}s, ETA {eta}s | loss {loss} | {tps} tokens/s',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      etaBuffer: 50,
    },
    Presets.legacy,
  );
  const tokens = o.batchSize * o.blockSize;
  const t0 = performance.now();
  // Tokens/s over the steps between two reads (each read waits for the GPU), evaluations left out.
  let [mark, markStep, tps] = [performance.now(), 0, '-'];
  let meter = new StepMeter(step, { op: 'train' });
  bar.start(o.steps, 0, { loss: '-', tps: '-' });
  try {
    let s = 0;
    for (const b of train.batches(o.batchSize, { seed: o.seed, steps: o.steps })) {
      step.run({ data: b.x, shape: b.shape }, { data: b.y, shape: b.shape });
      meter.ran(o.batchSize);
      s++;
      const evaluate = s % o.evalInterval === 0 || s === o.steps;
      if (s % 10 === 0 || evaluate) {
        await meter.read();
        const now = performance.now();
        tps = (((s - markStep) * tokens) / ((now - mark) / 1000)).toFixed(0);
        [mark, markStep] = [now, s];
      }
      bar.update(s, { loss: meter.logs().loss?.toFixed(4) ?? '-', tps });
      if (evaluate) {
        bar.stop();
        const logs = meter.logs();
        const v = await valLoss(model, evalSet);
        io.out(`step ${s}: train loss ${logs.loss!.toFixed(4)} val loss ${v.toFixed(4)} (${tps} tokens/s)`);
        if (o.sampleTokens > 0) await sample(`sample at step ${s}`);
        meter = new StepMeter(step, { op: 'train' });
        mark = performance.now();
        if (s < o.steps) bar.start(o.steps, s, { loss: '-', tps });
      }
    }
  } finally {
    bar.stop();
    step.dispose();
  }
  io.out(`trained ${o.steps} steps in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  saveOrRescue(out, await model.save(), 'gpt');
  io.out(`model and tokenizer written to ${out} (wgnn sample --model-path ${out} --prompt "...")`);
  optimizer.dispose();
  model.dispose();
}

/** `wgnn sample`: text from a saved GPT, streamed as it is generated (`io.write`) or printed at the end. */
export async function sampleGpt(o: GptSampleOptions, io: Io & { write?: (s: string) => void }): Promise<void> {
  await init({ backend: o.backend });
  const model = await GPT.load(o.modelPath);
  if (!model.tokenizer) {
    model.dispose();
    throw new ParseError(
      `--model-path ${o.modelPath}: the model has no tokenizer saved with it; expected a model written by wgnn train --model gpt`,
    );
  }
  let text = o.prompt;
  const write = io.write ?? ((s: string) => (text += s));
  if (io.write) io.write(o.prompt);
  await model
    .generate(o.prompt, {
      maxTokens: o.tokens,
      temperature: o.temperature,
      ...(o.topK !== undefined ? { topK: o.topK } : {}),
      seed: o.seed,
      onToken: (_id, t) => write(t ?? ''),
    })
    .finally(() => model.dispose());
  if (io.write) io.write('\n');
  else io.out(text);
}
