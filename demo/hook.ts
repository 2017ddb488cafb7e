// What the demo pages expose on `window` for the browser tests (test/e2e/): their state as plain data, and the
// few actions a test cannot do through the page's controls deterministically.
import type { Backend, MemoryInfo } from '../src/index.js';

export interface DemoState {
  /** Data loaded and a model built: the controls work. */
  ready: boolean;
  backend: Backend['name'];
  adapter: string;
  status: string;
  step: number;
  /** At each of fit's reads: the step, and the mean loss and accuracy of the batches since the previous read. */
  curve: { step: number[]; loss: number[]; acc: number[] };
  /** Each finished epoch's logs (loss, acc, val_loss, val_acc, seconds). */
  epochs: Record<string, number>[];
  stepsPerSecond: number;
  memory: MemoryInfo;
  /** The sum of the pad's 784 input pixels (0 when blank). */
  inputInk: number;
  /** The class probabilities for the current digit, and how many predictions have been shown. */
  probs: number[];
  predictions: number;
}

export interface DemoHook {
  state(): DemoState;
  testSize: number;
  /** Puts test digit i on the pad (as the "Random test digit" button does) and waits for its prediction. */
  loadTestDigit(i: number): Promise<{ label: number; probs: number[] }>;
  /** Resolves once the latest drawing's prediction is shown. */
  predicted(): Promise<number[]>;
}

export interface BenchRow {
  engine: string;
  n: number;
  maxErr: number;
  ms: number;
  gflops: number;
}

export interface BenchHook {
  done: boolean;
  backend: Backend['name'];
  rows: BenchRow[];
  error: string | null;
}

declare global {
  interface Window {
    wgnnDemo?: DemoHook;
    wgnnBench?: BenchHook;
  }
}
