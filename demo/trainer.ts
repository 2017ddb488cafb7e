// Training in a tab: Sequential.fit driven through its callbacks, which hand the page a turn of the event loop
// after every step (input, painting, predictions on the drawing), wait while paused, and throw to stop on reset.
// fit reads the loss back every `readEvery` steps; the curves get a point at each read.
import type * as wg from '../src/index.js';
import type { Split } from './mnist.js';

export type Status = 'ready' | 'running' | 'paused' | 'done';

export interface TrainerEvents {
  /** An optimizer step was queued (steps count from 1 over the run). */
  step(step: number): void;
  /** fit read the loss back after `step`: the mean loss and accuracy of the batches since its previous read. */
  read(step: number, loss: number, acc: number): void;
  epoch(epoch: number, logs: wg.nn.Logs): void;
  status(s: Status): void;
}

export interface RunOptions {
  epochs: number;
  batchSize: number;
  seed: number;
  /** Read the loss and accuracy back every this many steps (1: a GPU sync per step, the finest curves). */
  readEvery: number;
}

/** Thrown from a callback to end `fit` early; it leaves no tensors behind (the batch's are freed before). */
class Stopped extends Error {}

export class Trainer {
  status: Status = 'ready';
  /** Optimizer steps taken in this run. */
  step = 0;
  private resume: (() => void) | undefined;
  private pausing = false;
  private stopping = false;
  private finished: Promise<void> = Promise.resolve();
  private readonly channel = new MessageChannel();

  constructor(
    readonly model: wg.Sequential,
    readonly optimizer: wg.optim.Optimizer,
    private readonly on: TrainerEvents,
  ) {
    model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  }

  /** Trains until the epochs are done, `dispose()` is called, or fit throws (rethrown). */
  start(train: Split, test: Split, o: RunOptions): Promise<void> {
    const n = train.x.shape[0]!;
    const k = o.readEvery;
    // fit reports each epoch's running means, updated at its reads: after batch b when (b + 1) is a multiple of
    // readEvery, they cover min((b + 1)·batchSize, n) rows, so the batches since the previous read come back out
    // of consecutive means. (Its last read of an epoch, after the loop, shows only in the epoch's logs.)
    let prev = { seen: 0, loss: 0, acc: 0 };
    let before = 0;
    this.set('running');
    this.finished = this.model
      .fit(train.x, train.y, {
        epochs: o.epochs,
        batchSize: o.batchSize,
        seed: o.seed,
        validationData: [test.x, test.y],
        verbose: 0,
        readEvery: k,
        callbacks: {
          onEpochBegin: () => {
            prev = { seen: 0, loss: 0, acc: 0 };
            before = this.step;
          },
          onBatchEnd: async (batch, logs) => {
            this.step = before + batch + 1;
            this.on.step(this.step);
            if ((batch + 1) % k === 0) {
              const seen = Math.min((batch + 1) * o.batchSize, n);
              const sums = { loss: logs.loss! * seen, acc: logs.acc! * seen };
              const rows = seen - prev.seen;
              this.on.read(this.step, (sums.loss - prev.loss) / rows, (sums.acc - prev.acc) / rows);
              prev = { seen, ...sums };
            }
            await this.between();
          },
          onEpochEnd: async (epoch, logs) => {
            this.on.epoch(epoch, logs);
            await this.between();
          },
        },
      })
      .then(
        () => this.set('done'),
        (e: unknown) => {
          this.set('done');
          if (!(e instanceof Stopped)) throw e;
        },
      );
    return this.finished;
  }

  /** Pauses at the next step boundary: the step in flight finishes first, then the status turns 'paused'. */
  pause(): void {
    if (this.status === 'running') this.pausing = true;
  }

  resumeRun(): void {
    this.pausing = false;
    if (this.status !== 'paused') return;
    this.set('running');
    this.resume?.();
  }

  /** Ends the run at the next step boundary and frees the model and the optimizer's state. */
  async dispose(): Promise<void> {
    this.stopping = true;
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
    }
    if (this.stopping) throw new Stopped();
  }

  private set(s: Status): void {
    this.status = s;
    this.on.status(s);
  }
}
