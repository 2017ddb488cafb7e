// A char GPT trained in a tab, nanoGPT's way (seeded random windows, AdamW with warmup + cosine and clipping, the
// captured step replayed), one step at a time with a turn of the event loop between steps. The loss is read back every
// few steps, and tokens/s counts only steps whose loss came back. Evaluation, generation and saving take the model
// between two steps, one at a time, so a step is never queued while they read its weights.
import * as wg from '../src/index.js';

export interface GptSettings {
  layers: number;
  heads: number;
  dim: number;
  /** Context length T. */
  blockSize: number;
  batchSize: number;
  /** Peak learning rate, reached after `warmup` steps, then cosine down to a tenth of it at `steps`. */
  lr: number;
  warmup: number;
  steps: number;
  seed: number;
}

/** What may change while a run goes on. */
export interface LiveSettings {
  /** Read the loss back every this many steps (each read waits for the device). */
  readEvery: number;
  /** Validation loss and a sample every this many steps (0: only at the end). */
  evalEvery: number;
  /** Characters in each evaluation's sample. */
  sampleTokens: number;
}

export type RunStatus = 'ready' | 'running' | 'paused' | 'done';

export interface RunEvents {
  /** The loss came back after `step`: the mean over the steps since the previous read. */
  read(step: number, loss: number): void;
  evaluated(step: number, valLoss: number, sample: string): void;
  status(s: RunStatus): void;
}

export interface Corpus {
  tokenizer: wg.data.CharTokenizer;
  train: wg.data.TokenDataset;
  val: wg.data.TokenDataset;
}

const WEIGHT_DECAY = 0.1;
const CLIP = 1;
const EVAL_BATCHES = 4;
/** tokens/s is measured over the reads of (about) the last this many milliseconds. */
export const RATE_WINDOW_MS = 5000;

/** Thrown between steps to end the loop when the run is disposed. */
class Stopped extends Error {}

export class GptRun {
  status: RunStatus = 'ready';
  /** Steps queued on the device. */
  stepsRun = 0;
  /** Steps whose loss has been read back: completed work. */
  stepsRead = 0;
  /** Completed tokens per second over the last RATE_WINDOW_MS, computed at each read (0 before two). */
  tokensPerSecond = 0;
  readonly tokensPerStep: number;
  readonly optimizer: wg.optim.Optimizer;
  private readonly step: wg.nn.TrainStep;
  private meter: wg.nn.StepMeter;
  private readonly evalSet: wg.data.TokenBatch[];
  /** (time, completed tokens) at each read since the run started or resumed. */
  private marks: { t: number; tokens: number }[] = [];
  private pausing = false;
  private stopping = false;
  private resume: (() => void) | undefined;
  private finished: Promise<void> = Promise.resolve();
  private tail: Promise<unknown> = Promise.resolve();
  private readonly channel = new MessageChannel();

  constructor(
    readonly model: wg.GPT,
    readonly corpus: Corpus,
    readonly settings: GptSettings,
    readonly live: LiveSettings,
    private readonly on: RunEvents,
  ) {
    const { lr: peak, warmup, steps, batchSize } = settings;
    const lr = wg.optim.warmupCosine({ peak, warmupSteps: warmup, decaySteps: steps - warmup, min: peak / 10 });
    this.optimizer = wg.optim.adamw({ lr, weightDecay: WEIGHT_DECAY, globalClipnorm: CLIP });
    // compile for evaluate (the validation loss); training runs the step below, as `wgnn train --model gpt` does.
    model.compile({ optimizer: this.optimizer, loss: 'sparseCategoricalCrossentropy' });
    this.step = wg.nn.trainStep(model, { optimizer: this.optimizer, loss: 'sparseCategoricalCrossentropy' });
    this.meter = new wg.nn.StepMeter(this.step);
    this.evalSet = corpus.val.evalBatches(batchSize, EVAL_BATCHES, settings.seed + 1);
    this.tokensPerStep = batchSize * settings.blockSize;
  }

  get tokensRead(): number {
    return this.stepsRead * this.tokensPerStep;
  }

  /** Trains until `settings.steps`, `dispose()`, or an error (rethrown: a diverged loss is a NonFiniteError). */
  start(): Promise<void> {
    this.set('running');
    this.marks = [{ t: performance.now(), tokens: this.tokensRead }];
    this.finished = this.loop().catch((e: unknown) => {
      this.set('done');
      if (!(e instanceof Stopped)) throw e;
    });
    return this.finished;
  }

  /** Stops at the next step boundary, once every queued step's loss is read: the status then turns 'paused'. */
  pause(): void {
    if (this.status === 'running') this.pausing = true;
  }

  resumeRun(): void {
    this.pausing = false;
    if (this.status !== 'paused') return;
    // NOTE: the rate window starts again here: a pause is not time the device spent training.
    this.marks = [{ t: performance.now(), tokens: this.tokensRead }];
    this.set('running');
    this.resume?.();
  }

  /** Runs `f` with the model to itself: between two steps while training, at once otherwise (after earlier jobs). */
  exclusive<T>(f: () => Promise<T>): Promise<T> {
    const r = this.tail.then(f);
    this.tail = r.catch(() => undefined);
    return r;
  }

  /** Text after `prompt` from the model as it is now, each token handed to `onText` as it comes. */
  generate(prompt: string, opts: Omit<wg.nn.GenerateOptions, 'onToken'>, onText: (t: string) => void): Promise<string> {
    return this.exclusive(() => this.model.generate(prompt, { ...opts, onToken: (_id, t) => onText(t ?? '') }));
  }

  /** The model and its tokenizer as safetensors bytes (what `GPT.load` and `wgnn sample` read), and its step. */
  save(): Promise<{ bytes: Uint8Array; step: number }> {
    return this.exclusive(async () => ({ bytes: await this.model.save(), step: this.stepsRun }));
  }

  /** Ends the run at the next step boundary and frees the model, the optimizer's state and the captured step. */
  async dispose(): Promise<void> {
    this.stopping = true;
    this.resume?.();
    await this.finished.catch(() => undefined);
    await this.tail;
    this.step.dispose();
    this.optimizer.dispose();
    this.model.dispose();
  }

  private async loop(): Promise<void> {
    const { batchSize: B, seed, steps } = this.settings;
    while (this.stepsRun < steps) {
      await this.exclusive(async () => {
        const b = this.corpus.train.batchAt(B, seed, this.stepsRun);
        this.step.run({ data: b.x, shape: b.shape }, { data: b.y, shape: b.shape });
        this.meter.ran(B);
        const n = ++this.stepsRun;
        const { readEvery, evalEvery } = this.live;
        if (n % readEvery === 0 || n === steps) await this.readBack();
        if ((evalEvery > 0 && n % evalEvery === 0) || n === steps) await this.evaluate();
      });
      await this.between();
    }
    this.set('done');
  }

  /** Reads the loss of the steps queued since the last read (waiting for them), and updates tokens/s. */
  private async readBack(): Promise<void> {
    if (this.stepsRead === this.stepsRun) return;
    const logs = await this.meter.read();
    this.stepsRead = this.stepsRun;
    const now = performance.now();
    this.marks.push({ t: now, tokens: this.tokensRead });
    // Keep the latest mark at least RATE_WINDOW_MS old, and all after it.
    while (this.marks.length > 2 && now - this.marks[1]!.t >= RATE_WINDOW_MS) this.marks.shift();
    const first = this.marks[0]!;
    if (this.marks.length >= 2 && now > first.t)
      this.tokensPerSecond = ((this.tokensRead - first.tokens) * 1000) / (now - first.t);
    this.on.read(this.stepsRun, logs.loss!);
  }

  /** The validation loss on fixed batches and a sample from a newline (fortunes are lines), as the CLI does. */
  private async evaluate(): Promise<void> {
    await this.readBack();
    const [B, T] = [this.settings.batchSize, this.settings.blockSize];
    const cat = (k: 'x' | 'y') => {
      const a = new Int32Array(this.evalSet.length * B * T);
      this.evalSet.forEach((b, i) => a.set(b[k], i * B * T));
      return { data: a, shape: [this.evalSet.length * B, T] };
    };
    const logs = await this.model.evaluate(cat('x'), cat('y'), { batchSize: B });
    this.model.train();
    const { tokenizer } = this.corpus;
    const start = tokenizer.chars.includes('\n') ? '\n' : String.fromCodePoint(tokenizer.chars.codePointAt(0)!);
    const sample =
      this.live.sampleTokens > 0
        ? await this.model.generate(start, { maxTokens: this.live.sampleTokens, temperature: 0.8, seed: this.stepsRun })
        : '';
    this.on.evaluated(this.stepsRun, logs.loss!, sample);
  }

  // NOTE: a task posted on a MessageChannel between steps, not a frame nor a timer: a hidden tab gets no frames and
  // only throttled timers, and training should go on there. The browser paints and handles input between tasks.
  private async between(): Promise<void> {
    await new Promise<void>((r) => {
      this.channel.port1.onmessage = () => r();
      this.channel.port2.postMessage(null);
    });
    if (this.pausing && !this.stopping) {
      await this.exclusive(() => this.readBack());
      this.set('paused');
      await new Promise<void>((r) => (this.resume = r));
    }
    if (this.stopping) throw new Stopped();
  }

  private set(s: RunStatus): void {
    this.status = s;
    this.on.status(s);
  }
}
