// The demo page: trains the seed MLP or CNN on the embedded MNIST in this tab (WebGPU, or the CPU with a banner),
// with live charts and honest stats (finished steps only), a drawing pad the model being trained classifies, an
// evaluation on the test digits (confusion matrix, per-class accuracy, its mistakes) and its first layer drawn.
import * as wg from '../src/index.js';
import { openBackend, showError, softwareAdapter } from './backend.js';
import { Chart } from './charts.js';
import { DrawPad } from './draw.js';
import { evaluate, EvaluationView, type Evaluation } from './evaluation.js';
import type { DemoState } from './hook.js';
import { Inside } from './inside.js';
import { loadMnist, SIDE, type Split } from './mnist.js';
import { OPTIMIZERS, seedModel, type ModelKind } from './models.js';
import { Trainer, type Status } from './trainer.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const num = (id: string) => Number($<HTMLInputElement>(id).value);
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
const fmtRate = (r: number) => (r >= 100 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toFixed(2));
const fmtTime = (s: number) =>
  s < 90
    ? `${s.toFixed(s < 10 ? 1 : 0)} s`
    : `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, '0')} s`;

// NOTE: ?train=N&test=M train on N digits and evaluate on M (8,000 and the other 2,000 by default): a quicker run
// on a slow adapter, and short epochs for the browser tests.
const params = new URLSearchParams(location.search);
const TRAIN_SIZE = Number(params.get('train') ?? 8000);
const TEST_SIZE = Number(params.get('test') ?? Infinity);

/** Exponential moving average weight of the smoothed curves. */
const EMA = 0.8;
/** While training, the drawing is re-predicted (and the first layer redrawn) at most this often. */
const PREDICT_EVERY_MS = 250;
/** The note under the controls when nothing has just changed. */
const CONTROLS_NOTE =
  'Optimizer and learning rate apply to the model you have (pause to change the optimizer); model, batch size and seed start a new one.';

const stepChart = new Chart($('chart-steps'), {
  x: 'step',
  y: 'loss',
  y2: 'accuracy',
  y2Range: [0, 1],
  lines: [
    { label: 'loss', stroke: '#f4a3a3', width: 1 },
    { label: 'loss (smoothed)', stroke: '#c62828', width: 2 },
    { label: 'accuracy', stroke: '#a5c8f5', width: 1, scale: 'y2' },
    { label: 'accuracy (smoothed)', stroke: '#1d4ed8', width: 2, scale: 'y2' },
  ],
});
const epochChart = new Chart($('chart-epochs'), {
  x: 'epoch',
  y: 'loss',
  y2: 'accuracy',
  y2Range: [0, 1],
  points: true,
  height: 170,
  lines: [
    { label: 'train loss', stroke: '#c62828' },
    { label: 'val loss', stroke: '#c62828', dash: [5, 4] },
    { label: 'train accuracy', stroke: '#1d4ed8', scale: 'y2' },
    { label: 'val accuracy', stroke: '#1d4ed8', scale: 'y2', dash: [5, 4] },
  ],
});

// The page's state: the current run, its curves, and what the tests read through window.wgnnDemo.
let backend: wg.Backend;
let data: { train: Split; test: Split } | undefined;
let trainer: Trainer | undefined;
/** The loss and accuracy at each of fit's reads (the batches since the previous read), raw and smoothed. */
let curve = {
  step: [] as number[],
  loss: [] as number[],
  acc: [] as number[],
  lossEma: [] as number[],
  accEma: [] as number[],
};
let epochs: wg.nn.Logs[] = [];
let dirty = true;
/** The class probabilities for the pad's digit; empty while the pad is blank or before the first prediction. */
let probs: number[] = [];
let predictions = 0;
let lastPredict = 0;
// Predictions on the pad's digit run one at a time; a change while one runs asks for one more after it.
let wanted = false;
let predicting: Promise<void> = Promise.resolve();
let busy = false;
/** The test digit on the pad, if the pad shows one (undefined once the user draws). */
let shownDigit: { index: number; label: number } | undefined;
let evaluation: Evaluation | undefined;
let evaluations = 0;
let evaluating: Promise<void> = Promise.resolve();

const inside = new Inside($('weights'), $('maps'), $('weights-label'), $('maps-label'), $('inside-caption'));
const pad = new DrawPad($<HTMLCanvasElement>('pad'), $<HTMLCanvasElement>('seen'), () => requestPrediction());
const evalView = new EvaluationView(
  $('eval-summary'),
  $<HTMLTableElement>('confusion'),
  $('mistakes'),
  (i) => void loadTestDigit(i).catch(showError),
);

// Probability bars, one row per class.
const bars = Array.from({ length: 10 }, (_, c) => {
  const row = document.createElement('div');
  row.className = 'prob';
  row.dataset.class = String(c);
  row.innerHTML = `<span>${c}</span><div><div class="bar"></div></div><span></span>`;
  $('probs').append(row);
  return row;
});

const blank = () => !pad.input.some((v) => v > 0);

/** The bars of `p`; with no probabilities, empty bars, no class marked, and a word why. */
function showProbs(p: number[]): void {
  const top = p.length ? p.indexOf(Math.max(...p)) : -1;
  bars.forEach((row, c) => {
    row.classList.toggle('top', c === top);
    const v = p.length ? `${(100 * p[c]!).toFixed(1)}%` : '';
    (row.querySelector('.bar') as HTMLElement).style.width = v || '0';
    row.lastElementChild!.textContent = v;
  });
  $('probs').classList.toggle('empty', !p.length);
  $('probs-note').textContent = p.length
    ? ''
    : trainer?.step
      ? 'Draw a digit on the pad, or pick a test digit: the model’s probabilities show here.'
      : 'No prediction yet: start training, then draw a digit (an untrained model only guesses).';
  markDigit();
}

/** The test digit's label, and whether the model's top class is right. */
function markDigit(): void {
  const el = $('digit-label');
  if (!shownDigit) {
    el.textContent = '';
    delete el.dataset.correct;
    return;
  }
  const { index, label } = shownDigit;
  if (!probs.length) {
    el.textContent = `test digit #${index}: label ${label}`;
    return;
  }
  const said = probs.indexOf(Math.max(...probs));
  const right = said === label;
  el.textContent = `test digit #${index}: label ${label} · said ${said} ${right ? '✓ right' : '✗ wrong'}`;
  el.dataset.correct = String(right);
}

function requestPrediction(): void {
  wanted = true;
  if (!busy && trainer) predicting = predictLoop().catch(showError);
}

async function predictLoop(): Promise<void> {
  busy = true;
  try {
    while (wanted && trainer) {
      wanted = false;
      lastPredict = performance.now();
      const model = trainer.model;
      if (blank()) {
        // Nothing to classify: no bars, no feature maps (the weights still show).
        probs = [];
        await inside.update(model, undefined);
        showProbs(probs);
        continue;
      }
      const x = wg.tensor(pad.input, [1, SIDE, SIDE, 1]);
      try {
        // NOTE: forward under noGrad rather than predict(): predict() puts the model in eval mode, which would
        // carry on into the rest of fit's epoch (no difference for these layers, but not ours to change).
        const y = wg.noGrad(() => wg.tidy(() => model.forward(x)));
        try {
          const [p] = await Promise.all([y.data(), inside.update(model, x)]);
          probs = Array.from(p);
        } finally {
          y.dispose();
        }
      } finally {
        x.dispose();
      }
      predictions++;
      showProbs(probs);
    }
  } finally {
    busy = false;
  }
}

/** Evaluates the model as it is now on the test digits and shows it (one evaluation at a time). */
function requestEvaluation(epochEnd = false): Promise<void> {
  evaluating = evaluating.then(async () => {
    const t = trainer;
    if (!t || !data) return;
    const ev = await evaluate(t.model, data.test, { step: t.step, ...(epochEnd ? { epoch: t.epochsDone } : {}) });
    if (trainer !== t) return; // the model was replaced meanwhile
    evaluation = ev;
    evaluations++;
    evalView.show(ev, data.test);
  });
  return evaluating;
}

/** A new model and optimizer from the controls (the old ones freed), empty curves, and why, if one was dropped. */
async function newRun(why?: string): Promise<void> {
  const old = trainer;
  trainer = undefined;
  await predicting;
  await evaluating.catch(() => undefined);
  await old?.dispose();
  const seed = num('seed');
  data = await loadMnist(seed, TRAIN_SIZE, TEST_SIZE);
  wg.setSeed(seed);
  const kind = $<HTMLSelectElement>('model').value as ModelKind;
  const model = seedModel(kind);
  const opt = OPTIMIZERS[$<HTMLSelectElement>('optimizer').value]!.make(num('lr'));
  trainer = new Trainer(model, opt, {
    step: () => {
      dirty = true;
      if (performance.now() - lastPredict > PREDICT_EVERY_MS) requestPrediction();
    },
    read: (step, loss, acc) => {
      const n = curve.step.length;
      curve.step.push(step);
      curve.loss.push(loss);
      curve.acc.push(acc);
      curve.lossEma.push(n ? EMA * curve.lossEma[n - 1]! + (1 - EMA) * loss : loss);
      curve.accEma.push(n ? EMA * curve.accEma[n - 1]! + (1 - EMA) * acc : acc);
    },
    epoch: async (_, logs) => {
      epochs.push(logs);
      dirty = true;
      await requestEvaluation(true);
    },
    status: (s) => showStatus(s),
  });
  curve = { step: [], loss: [], acc: [], lossEma: [], accEma: [] };
  epochs = [];
  evaluation = undefined;
  evaluations = 0;
  evalView.clear();
  dirty = true;
  showSummary(model, $<HTMLSelectElement>('model').selectedOptions[0]!.text);
  const step = old?.step ?? 0;
  $('controls-note').textContent =
    why && step > 0
      ? `${why}: a new ${kind.toUpperCase()}; the trained one (${step} steps) was dropped.`
      : CONTROLS_NOTE;
  showStatus('ready');
  requestPrediction();
}

/** The model's layers, shapes and parameter count (Sequential.summary). */
function showSummary(model: wg.Sequential, label: string): void {
  const table = model.summary(() => undefined);
  const params = model.layers.reduce((a, l) => a + l.countParams(), 0);
  $('summary-line').textContent = `${label} · ${params.toLocaleString('en-US')} parameters`;
  $('summary-line').dataset.params = String(params);
  $('summary-table').textContent = table;
}

/** Which controls work in which state: model, batch and seed start over; the optimizer swaps while paused. */
function showStatus(s: Status): void {
  const running = s === 'running';
  $<HTMLButtonElement>('start').disabled = running;
  $('start').textContent =
    s === 'paused'
      ? 'Resume'
      : s === 'done'
        ? `Train ${num('epochs')} more epoch${num('epochs') === 1 ? '' : 's'}`
        : 'Start';
  $<HTMLButtonElement>('pause').disabled = !running;
  $<HTMLButtonElement>('reset').disabled = false;
  for (const id of ['model', 'optimizer', 'batch', 'seed']) $<HTMLInputElement>(id).disabled = running;
  for (const id of ['epochs', 'read-every']) $<HTMLInputElement>(id).disabled = running || s === 'paused';
  dirty = true;
  renderStats();
}

/**
 * The status line: while the first step has not finished, that the kernels compile (how many of the step's pipelines
 * exist, while some are still being created, and for how long).
 */
function statusText(): string {
  const t = trainer;
  if (!t) return 'loading…';
  if (t.status === 'running' && t.firstStepAt === undefined && t.startedAt !== undefined) {
    const s = Math.floor((performance.now() - t.startedAt) / 1000);
    if (backend.name !== 'webgpu') return `starting… ${s} s`;
    const { compiled, pending } = wg.pipelineStats();
    return `compiling GPU kernels${pending > 0 ? ` (${compiled} of ${compiled + pending})` : ''}… ${s} s`;
  }
  if (t.status === 'done') return `done: ${t.epochsDone} epochs`;
  return t.status;
}

// The stats change every frame (the start-up clock); the charts only when there is something new.
function renderStats(): void {
  const t = trainer;
  const status = $('status');
  status.textContent = statusText();
  status.dataset.startup = String(t?.status === 'running' && t.firstStepAt === undefined);
  $('step').textContent = String(t?.step ?? 0);
  const target = t?.epochsTarget || num('epochs');
  const e = !t
    ? 0
    : t.status === 'running' || t.status === 'paused'
      ? Math.min(t.epochsDone + 1, target)
      : t.epochsDone;
  $('epoch').textContent = `${e} / ${target}`;
  const rate = t?.stepsPerSecond ?? 0;
  const r = $('rate');
  r.textContent = rate > 0 ? fmtRate(rate) : '–';
  // For the tests: finished steps and when the last finished, on the page's clock (performance.now(), ms).
  r.dataset.rate = String(rate);
  r.dataset.stepsDone = String(t?.stepsDone ?? 0);
  r.dataset.doneAt = String(t?.completions.at(-1)?.t ?? 0);
  $('epoch-time').textContent = rate > 0 && t ? fmtTime(t.batchesPerEpoch / rate) : '–';
  $('eta').textContent = rate > 0 && t?.status === 'running' ? fmtTime(t.stepsLeft / rate) : '–';
}

// Charts and stats are redrawn at most once a frame, whatever the step rate.
function render(): void {
  renderStats();
  if (dirty) {
    dirty = false;
    stepChart.setData(curve.step, [curve.loss, curve.lossEma, curve.acc, curve.accEma]);
    const col = (k: string) => epochs.map((l) => l[k] ?? null);
    epochChart.setData(
      epochs.map((_, i) => i + 1),
      [col('loss'), col('val_loss'), col('acc'), col('val_acc')],
    );
    const last = epochs[epochs.length - 1];
    const n = curve.step.length;
    $('loss').textContent = n ? curve.loss[n - 1]!.toFixed(4) : '–';
    $('acc').textContent = n ? `${(100 * curve.acc[n - 1]!).toFixed(1)}%` : '–';
    $('valacc').textContent = last?.val_acc !== undefined ? `${(100 * last.val_acc).toFixed(1)}%` : '–';
    const m = wg.memory();
    $('memory').textContent = `${mb(m.liveBytes)} live · ${mb(m.pooledBytes)} pool`;
    $('memory').title =
      `${m.liveTensors} tensors alive; peak ${mb(m.peakBytes)}; ${m.buffersCreated} buffers created, ${m.poolHits} pool hits`;
  }
  requestAnimationFrame(render);
}

function state(): DemoState {
  return {
    ready: trainer !== undefined,
    backend: backend.name,
    adapter: backend.description,
    software: softwareAdapter(backend) !== undefined,
    model: $<HTMLSelectElement>('model').value,
    status: trainer?.status ?? 'loading',
    step: trainer?.step ?? 0,
    stepsDone: trainer?.stepsDone ?? 0,
    epochsDone: trainer?.epochsDone ?? 0,
    curve: { step: curve.step, loss: curve.loss, acc: curve.acc },
    epochs,
    stepsPerSecond: trainer?.stepsPerSecond ?? 0,
    memory: wg.memory(),
    inputInk: pad.input.reduce((a, v) => a + v, 0),
    probs,
    predictions,
    evaluations,
    evaluation: evaluation && { total: evaluation.total, correct: evaluation.correct, step: evaluation.step },
  };
}

async function loadTestDigit(i: number): Promise<{ label: number; probs: number[] }> {
  const { x, y } = data!.test;
  const px = SIDE * SIDE;
  shownDigit = { index: i, label: y.data[i]! };
  pad.showDigit(x.data.subarray(i * px, (i + 1) * px));
  markDigit();
  await predicting;
  return { label: y.data[i]!, probs };
}

let rebuilding: Promise<void> = Promise.resolve();
/** newRun after any in progress, so that quick changes to the controls build one model each, in turn. */
function rebuild(why?: string): void {
  rebuilding = rebuilding.then(() => newRun(why)).catch(showError);
}

/** The chosen optimizer at the learning rate in the box, for the model as it is (its weights kept). */
async function swapOptimizer(): Promise<void> {
  const t = trainer;
  if (!t) return;
  const name = $<HTMLSelectElement>('optimizer').value;
  const paused = t.status === 'paused';
  await t.setOptimizer(OPTIMIZERS[name]!.make(num('lr')));
  $('controls-note').textContent =
    `Optimizer now ${name} (learning rate ${num('lr')}), the weights kept` +
    (paused ? '; Resume trains on (the epoch in progress starts over).' : '.');
}

function wire(): void {
  const opt = $<HTMLSelectElement>('optimizer');
  opt.addEventListener('change', () => {
    $<HTMLInputElement>('lr').value = String(OPTIMIZERS[opt.value]!.lr);
    rebuilding = rebuilding.then(swapOptimizer).catch(showError);
  });
  $('model').addEventListener('change', () => rebuild('Model changed'));
  $('batch').addEventListener('change', () => rebuild('Batch size changed'));
  $('seed').addEventListener('change', () => rebuild('Seed changed'));
  $('epochs').addEventListener('change', () => trainer && showStatus(trainer.status));
  // The learning rate changes at once, even mid-run: the optimizer reads it at each step.
  $('lr').addEventListener('change', () => {
    try {
      if (trainer) trainer.optimizer.lr = num('lr');
    } catch (e) {
      showError(e);
    }
  });
  $('start').addEventListener('click', () => {
    if (!trainer || !data) return;
    if (trainer.status === 'paused') return void trainer.resumeRun()?.catch(showError);
    const o = { epochs: num('epochs'), batchSize: num('batch'), seed: num('seed'), readEvery: num('read-every') };
    trainer.start(data.train, data.test, o).catch(showError);
  });
  $('pause').addEventListener('click', () => {
    $<HTMLButtonElement>('pause').disabled = true;
    trainer?.pause();
  });
  $('reset').addEventListener('click', () => rebuild('Reset'));
  $('evaluate').addEventListener('click', () => void requestEvaluation(false).catch(showError));
  $('clear').addEventListener('click', () => {
    shownDigit = undefined;
    pad.clear();
  });
  $('random').addEventListener(
    'click',
    () => void loadTestDigit(Math.floor(Math.random() * data!.test.y.data.length)).catch(showError),
  );
  $('pad').addEventListener('pointerdown', () => {
    shownDigit = undefined;
    markDigit();
  });
}

async function main(): Promise<void> {
  const opt = $<HTMLSelectElement>('optimizer');
  opt.append(...Object.keys(OPTIMIZERS).map((k) => new Option(k, k)));
  $<HTMLInputElement>('lr').value = String(OPTIMIZERS[opt.value]!.lr);
  backend = await openBackend();
  $('memory-label').textContent = backend.name === 'webgpu' ? 'GPU memory' : 'memory (CPU)';
  // The CNN where there is a GPU; on a CPU (an emulated adapter, or no WebGPU) the MLP, many times faster there.
  const soft = softwareAdapter(backend);
  $<HTMLSelectElement>('model').value = backend.name === 'webgpu' && !soft ? 'cnn' : 'mlp';
  if (soft) {
    const banner = $('software-banner');
    banner.hidden = false;
    banner.textContent =
      `This WebGPU adapter is a CPU emulator (${soft}), not a GPU: every kernel runs on the processor, so training ` +
      'is far slower than on a graphics card, and the CNN takes seconds a step. The MLP is selected for that ' +
      'reason; on a GPU the CNN trains quickly too.';
  }
  await newRun();
  const count = (n: number) => n.toLocaleString('en-US');
  $('train-size').textContent = count(data!.train.y.data.length);
  $('test-size').textContent = count(data!.test.y.data.length);
  wire();
  window.wgnnDemo = {
    state,
    testSize: data!.test.y.data.length,
    loadTestDigit,
    predicted: async () => {
      await predicting;
      return probs;
    },
    evaluated: () => evaluating,
    settled: async () => {
      await rebuilding;
      await predicting;
    },
  };
  $<HTMLButtonElement>('random').disabled = false;
  $<HTMLButtonElement>('evaluate').disabled = false;
  requestAnimationFrame(render);
}

main().catch(showError);
