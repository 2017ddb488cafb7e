// What the demo pages expose on `window` for the browser tests (test/e2e/): their state as plain data, and the
// few actions a test cannot do through the page's controls deterministically.
import type { Backend, MemoryInfo } from '../src/index.js';
import type { GptSettings, LiveSettings } from './gpt-run.js';

export interface DemoState {
  /** Data loaded and a model built: the controls work. */
  ready: boolean;
  backend: Backend['name'];
  adapter: string;
  /** The WebGPU adapter is a software one (SwiftShader, llvmpipe, lavapipe): the page says so in a banner. */
  software: boolean;
  /** The model chosen: 'mlp' or 'cnn'. */
  model: string;
  status: string;
  /** Steps queued, and steps known to have finished (read back): the speed counts only the latter. */
  step: number;
  stepsDone: number;
  /** Epochs finished over the model's life (runs continued after 'done' add to it). */
  epochsDone: number;
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
  /** Evaluations of this model on the test digits shown so far, and the latest one's counts (undefined before the first). */
  evaluations: number;
  evaluation: { total: number; correct: number; step: number } | undefined;
}

export interface DemoHook {
  state(): DemoState;
  testSize: number;
  /** Puts test digit i on the pad (as the "Random test digit" button does) and waits for its prediction. */
  loadTestDigit(i: number): Promise<{ label: number; probs: number[] }>;
  /** Resolves once the latest drawing's prediction is shown. */
  predicted(): Promise<number[]>;
  /** Resolves once the evaluations asked for so far are shown. */
  evaluated(): Promise<void>;
  /** Resolves once the changes of the controls so far are done (a new model built, an optimizer swapped) and the pad's digit is predicted. */
  settled(): Promise<void>;
}

/** The GPT page's state (gpt.html). */
export interface GptState {
  /** The corpus loaded and a model built: the controls work. */
  ready: boolean;
  backend: Backend['name'];
  adapter: string;
  status: 'loading' | 'ready' | 'running' | 'paused' | 'done';
  /** The run's model and schedule, and its read/evaluation intervals (null while loading). */
  settings: (GptSettings & LiveSettings) | null;
  /** The page's clock (performance.now(), ms) when this state was taken. */
  time: number;
  /** Training steps queued on the device. */
  step: number;
  /** Steps whose loss has been read back (so completed), and their tokens (batch × block size each). */
  stepsRead: number;
  tokensRead: number;
  /** The tokens/s the page shows: completed tokens over wall time in its window (0 before two reads). */
  tokensPerSecond: number;
  /** At each read: the step, and the mean training loss of the steps since the previous read. */
  curve: { step: number[]; loss: number[] };
  /** At each evaluation: the step and the validation loss. */
  val: { step: number[]; loss: number[] };
  /** The sample generated at each evaluation. */
  samples: { step: number; text: string }[];
  /** The tokenizer's vocabulary, one character per token. */
  vocab: string;
  memory: MemoryInfo;
  /** The prompt box's latest continuation: its text so far, onToken calls seen, and whether it is still going. */
  generation: { text: string; tokens: number; running: boolean };
  /** Models read from a file by "Load weights". */
  loads: number;
}

export interface GptHook {
  state(): GptState;
  /** Resolves when the prompt box's generation in progress (if any) has finished, with its text. */
  generated(): Promise<string>;
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
    wgnnGpt?: GptHook;
  }
}
