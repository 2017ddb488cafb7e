// Training in a tab: Sequential.fit driven through its callbacks, which hand the page a turn of the event loop
// after every step (input, painting, predictions on the drawing), wait while paused, and throw to stop on reset.
// fit reads the loss back every `readEvery` steps; the curves get a point at each read, and the speed counts only
// steps known to have finished (read back, or the first step's work done), never steps merely queued.
import * as wg from '../src/index.js';
import type { Split } from './mnist.js';

export type Status = 'ready' | 'running' | 'paused' | 'done';

export interface TrainerEvents {
  /** An optimizer step was queued (steps count from 1 over the model's life). */
  step(step: number): void;
  /** fit read the loss back after `step`: the mean loss and accuracy of the batches since its previous read. */
  read(step: number, loss: number, acc: number): void;
  /** Epoch `epoch` (counted from 0 over the model's life) ended; awaited before training goes on. */
  epoch(epoch: number, logs: wg.nn.Logs): void | Promise<void>;
  status(s: Status): void;
}

export interface RunOptions {
  /** Epochs to train from here (Start after a finished run trains this many more). */
  epochs: number;
  batchSize: number;
  seed: number;
  /** Read the loss and accuracy back every this many steps (1: a GPU sync per step, the finest curves). */
  readEvery: number;
}

/** A count of finished steps at a time (performance.now(), ms). */
export interface Completion {
  t: number;
  steps: number;
}

/** The speed is measured over the finished steps of about the last this many ms. */
const RATE_WINDOW_MS = 5000;

/** Thrown from a callback to end `fit` early; it leaves no tensors behind (the batch's are freed before). */
class Stopped extends Error {}

/** Resolves once the work queued so far has finished: on WebGPU the queue drains; the CPU backends run in line. */
async function queuedWorkDone(): Promise<void> {
  const b = wg.backend();
  b.flush();
  if (b instanceof wg.WebGpuBackend) await b.device.queue.onSubmittedWorkDone();
}

export class Trainer {
  status: Status = 'ready';
  /** Optimizer steps queued over the model's life. */
  step = 0;
  /** Steps known to have finished (their loss read back, or all work queued with them done). */
  stepsDone = 0;
  /** Epochs finished, and the epochs the current run trains to (Start after 'done' raises it). */
  epochsDone = 0;
  epochsTarget = 0;
  /** Batches per epoch of the current run (0 before the first Start). */
  batchesPerEpoch = 0;
  /** When Start was pressed and when its first step had finished (ms; undefined until then). */
  startedAt: number | undefined;
  firstStepAt: number | undefined;
  /** Finished-step counts over about the last RATE_WINDOW_MS of running, oldest first. */
  completions: Completion[] = [];
  private resume: (() => void) | undefined;
  private pausing = false;
  /** Why the fit in progress is being ended: the page drops the model, or swaps the optimizer while paused. */
  private stopping: 'dispose' | 'swap' | undefined;
  private active = false;
  private finished: Promise<void> = Promise.resolve();
  private runs = 0;
  private probing = false;
  private last: { train: Split; test: Split; o: RunOptions } | undefined;
  private readonly channel = new MessageChannel();

  constructor(
    readonly model: wg.Sequential,
    public optimizer: wg.optim.Optimizer,
    private readonly on: TrainerEvents,
  ) {
    model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  }

  /**
   * Steps per second over the last RATE_WINDOW_MS of finished steps (the count at the window's start interpolated
   * between the two completions around it; a shorter history is taken whole), 0 before two completions.
   */
  get stepsPerSecond(): number {
    const c = this.completions;
    const [a, b, last] = [c[0], c[1], c[c.length - 1]];
    if (!a || !b || !last || last.t <= a.t) return 0;
    const from = last.t - RATE_WINDOW_MS;
    if (a.t >= from) return (1000 * (last.steps - a.steps)) / (last.t - a.t);
    const atFrom = a.steps + ((b.steps - a.steps) * (from - a.t)) / (b.t - a.t);
    return (1000 * (last.steps - atFrom)) / RATE_WINDOW_MS;
  }

  /** Steps of this run still to train, from the finished ones. */
  get stepsLeft(): number {
    const inEpoch = Math.max(0, this.stepsDone - this.epochStart);
    return Math.max(0, (this.epochsTarget - this.epochsDone) * this.batchesPerEpoch - inEpoch);
  }

  private epochStart = 0;

  /**
   * Trains `o.epochs` epochs on from where the model is (a new model, or one a finished run left), until they are
   * done, `dispose()` is called, or fit throws (rethrown).
   */
  start(train: Split, test: Split, o: RunOptions): Promise<void> {
    this.last = { train, test, o };
    this.epochsTarget = this.epochsDone + o.epochs;
    this.startedAt = performance.now();
    this.firstStepAt = undefined;
    return this.run();
  }

  private run(): Promise<void> {
    const { train, test, o } = this.last!;
    const n = train.x.shape[0]!;
    const k = o.readEvery;
    this.batchesPerEpoch = Math.ceil(n / o.batchSize);
    this.completions = [];
    this.probing = false;
    // fit reports each epoch's running means, updated at its reads: after batch b when (b + 1) is a multiple of
    // readEvery, they cover min((b + 1)·batchSize, n) rows, so the batches since the previous read come back out
    // of consecutive means. (Its last read of an epoch, after the loop, shows only in the epoch's logs.)
    let prev = { seen: 0, loss: 0, acc: 0 };
    this.set('running');
    this.active = true;
    // NOTE: each fit starts its epochs at 0, and an epoch's shuffle depends only on (seed, epoch): a run that goes
    // on after another gets its own seed, so it does not repeat the first run's batches. The first run uses the
    // page's seed as is, as `wgnn train --seed` does.
    const seed = o.seed + this.runs++;
    this.finished = this.model
      .fit(train.x, train.y, {
        epochs: this.epochsTarget - this.epochsDone,
        batchSize: o.batchSize,
        seed,
        validationData: [test.x, test.y],
        verbose: 0,
        readEvery: k,
        callbacks: {
          onEpochBegin: () => {
            prev = { seen: 0, loss: 0, acc: 0 };
            this.epochStart = this.step;
          },
          onBatchEnd: async (batch, logs) => {
            this.step = this.epochStart + batch + 1;
            this.on.step(this.step);
            if (this.firstStepAt === undefined && !this.probing) {
              // The first step waits on kernel compilation: its end is awaited apart, not at the first read.
              this.probing = true;
              const first = this.step;
              void queuedWorkDone().then(
                () => this.finishedThrough(first),
                () => undefined,
              );
            }
            if ((batch + 1) % k === 0) {
              this.finishedThrough(this.step);
              const seen = Math.min((batch + 1) * o.batchSize, n);
              const sums = { loss: logs.loss! * seen, acc: logs.acc! * seen };
              const rows = seen - prev.seen;
              this.on.read(this.step, (sums.loss - prev.loss) / rows, (sums.acc - prev.acc) / rows);
              prev = { seen, ...sums };
            }
            await this.between();
          },
          onEpochEnd: async (_, logs) => {
            // fit has read the epoch's last steps back and run the validation before this.
            this.finishedThrough(this.step);
            this.epochsDone++;
            this.epochStart = this.step;
            await this.on.epoch(this.epochsDone - 1, logs);
            await this.between();
          },
        },
      })
      .then(
        () => this.ended(),
        (e: unknown) => {
          this.ended();
          if (!(e instanceof Stopped)) throw e;
        },
      );
    return this.finished;
  }

  private ended(): void {
    this.active = false;
    // A swap of the optimizer ends the fit while paused; the run goes on (from the start of its epoch) on Resume.
    if (this.stopping !== 'swap') this.set('done');
  }

  /** All steps up to `step` have finished: a point for the speed, and the end of the start-up. */
  private finishedThrough(step: number): void {
    if (step <= this.stepsDone) return;
    const t = performance.now();
    this.stepsDone = step;
    this.firstStepAt ??= t;
    const c = this.completions;
    c.push({ t, steps: step });
    // Keep the newest point at or before the window's start, so the window spans about RATE_WINDOW_MS.
    while (c.length > 2 && c[1]!.t <= t - RATE_WINDOW_MS) c.shift();
  }

  /** Pauses at the next step boundary: the step in flight finishes first, then the status turns 'paused'. */
  pause(): void {
    if (this.status === 'running') this.pausing = true;
  }

  /**
   * Goes on after a pause: the same fit, or (after `setOptimizer`) a new one over the epochs left, whose promise it
   * returns (it rejects as `start`'s does).
   */
  resumeRun(): Promise<void> | undefined {
    this.pausing = false;
    if (this.status !== 'paused') return undefined;
    // The time paused is not training time: the speed starts over.
    this.completions = [];
    if (!this.active) {
      // A new captured step with the new optimizer's kernels: the start-up shows again.
      this.startedAt = performance.now();
      this.firstStepAt = undefined;
      return this.run();
    }
    this.set('running');
    this.resume?.();
    return undefined;
  }

  /**
   * Trains on with `opt` and keeps the weights (not while running: pause first). A paused fit ends here (its
   * captured step holds the old optimizer), and Resume starts the epoch in progress over with the new one.
   */
  async setOptimizer(opt: wg.optim.Optimizer): Promise<void> {
    if (this.status === 'running') throw new Error('setOptimizer: pause training first');
    if (this.active) {
      this.stopping = 'swap';
      this.resume?.();
      await this.finished.catch(() => undefined);
      this.stopping = undefined;
    }
    this.optimizer.dispose();
    this.optimizer = opt;
    this.model.compile({ optimizer: opt, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  }

  /** Ends the run at the next step boundary and frees the model and the optimizer's state. */
  async dispose(): Promise<void> {
    this.stopping = 'dispose';
    this.resume?.();
    await this.finished.catch(() => undefined);
    this.model.dispose();
    this.optimizer.dispose();
  }

  // NOTE: a task posted on a MessageChannel between steps, not a frame nor a timer: a hidden tab gets no frames and
  // only throttled timers, and training should go on there. The browser paints and handles input between tasks.
  private async between(): Promise<void> {
    await new Promise<void>((r) => {
      this.channel.port1.onmessage = () => r();
      this.channel.port2.postMessage(null);
    });
    if (this.pausing && !this.stopping) {
      this.set('paused');
      await new Promise<void>((r) => (this.resume = r));
      this.resume = undefined;
    }
    if (this.stopping) throw new Stopped();
  }

  private set(s: Status): void {
    this.status = s;
    this.on.status(s);
  }
}
