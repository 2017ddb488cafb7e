// The demo page: trains the seed MLP or CNN on the embedded MNIST in this tab (WebGPU, or the CPU with a banner),
// with live charts and stats, a drawing pad the model being trained classifies, and its first layer drawn.
import * as wg from '../src/index.js';
import { openBackend, showError } from './backend.js';
import { Chart } from './charts.js';
import { DrawPad } from './draw.js';
import type { DemoState } from './hook.js';
import { Inside } from './inside.js';
import { loadMnist, SIDE, type Split } from './mnist.js';
import { OPTIMIZERS, seedModel, type ModelKind } from './models.js';
import { Trainer, type Status } from './trainer.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const num = (id: string) => Number($<HTMLInputElement>(id).value);
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

/** Exponential moving average weight of the smoothed curves. */
const EMA = 0.8;
/** While training, the drawing is re-predicted (and the first layer redrawn) at most this often. */
const PREDICT_EVERY_MS = 250;

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
let stepTimes: number[] = [];
let dirty = true;
let probs: number[] = [];
let predictions = 0;
let lastPredict = 0;
// Predictions on the pad's digit run one at a time; a change while one runs asks for one more after it.
let wanted = false;
let predicting: Promise<void> = Promise.resolve();
let busy = false;

const inside = new Inside($('weights'), $('maps'), $('inside-caption'));
const pad = new DrawPad($<HTMLCanvasElement>('pad'), $<HTMLCanvasElement>('seen'), () => requestPrediction());

// Probability bars, one row per class.
const bars = Array.from({ length: 10 }, (_, c) => {
  const row = document.createElement('div');
  row.className = 'prob';
  row.dataset.class = String(c);
  row.innerHTML = `<span>${c}</span><div><div class="bar"></div></div><span></span>`;
  $('probs').append(row);
  return row;
});

function showProbs(p: number[]): void {
  const top = p.indexOf(Math.max(...p));
  bars.forEach((row, c) => {
    row.classList.toggle('top', c === top);
    (row.querySelector('.bar') as HTMLElement).style.width = `${(100 * p[c]!).toFixed(1)}%`;
    row.lastElementChild!.textContent = `${(100 * p[c]!).toFixed(1)}%`;
  });
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

/** A new model and optimizer from the controls (the old ones freed), and empty curves. */
async function newRun(): Promise<void> {
  const old = trainer;
  trainer = undefined;
  await predicting;
  await old?.dispose();
  const seed = num('seed');
  data = await loadMnist(seed);
  wg.setSeed(seed);
  const model = seedModel($<HTMLSelectElement>('model').value as ModelKind);
  const opt = OPTIMIZERS[$<HTMLSelectElement>('optimizer').value]!.make(num('lr'));
  trainer = new Trainer(model, opt, {
    step: () => {
      const now = performance.now();
      stepTimes.push(now);
      while (stepTimes.length > 2 && now - stepTimes[0]! > 2000) stepTimes.shift();
      dirty = true;
      if (now - lastPredict > PREDICT_EVERY_MS) requestPrediction();
    },
    read: (step, loss, acc) => {
      const n = curve.step.length;
      curve.step.push(step);
      curve.loss.push(loss);
      curve.acc.push(acc);
      curve.lossEma.push(n ? EMA * curve.lossEma[n - 1]! + (1 - EMA) * loss : loss);
      curve.accEma.push(n ? EMA * curve.accEma[n - 1]! + (1 - EMA) * acc : acc);
    },
    epoch: (_, logs) => {
      epochs.push(logs);
      dirty = true;
    },
    status: (s) => showStatus(s),
  });
  curve = { step: [], loss: [], acc: [], lossEma: [], accEma: [] };
  epochs = [];
  stepTimes = [];
  dirty = true;
  showStatus('ready');
  requestPrediction();
}

function showStatus(s: Status): void {
  $('status').textContent = s;
  const idle = s === 'ready';
  $<HTMLButtonElement>('start').disabled = s === 'running' || s === 'done';
  $('start').textContent = s === 'paused' ? 'Resume' : 'Start';
  $<HTMLButtonElement>('pause').disabled = s !== 'running';
  $<HTMLButtonElement>('reset').disabled = false;
  for (const id of ['model', 'optimizer', 'batch', 'epochs', 'seed', 'read-every'])
    $<HTMLInputElement>(id).disabled = !idle;
  if (s === 'done') stepTimes = [];
  dirty = true;
}

function stepsPerSecond(): number {
  const n = stepTimes.length;
  return n >= 2 ? (n - 1) / ((stepTimes[n - 1]! - stepTimes[0]!) / 1000) : 0;
}

// Charts and stats are redrawn at most once a frame, whatever the step rate.
function render(): void {
  if (dirty) {
    dirty = false;
    stepChart.setData(curve.step, [curve.loss, curve.lossEma, curve.acc, curve.accEma]);
    const col = (k: string) => epochs.map((l) => l[k] ?? null);
    epochChart.setData(
      epochs.map((_, i) => i + 1),
      [col('loss'), col('val_loss'), col('acc'), col('val_acc')],
    );
    const last = epochs[epochs.length - 1];
    $('step').textContent = String(trainer?.step ?? 0);
    $('epoch').textContent = `${epochs.length} / ${num('epochs')}`;
    const n = curve.step.length;
    $('loss').textContent = n ? curve.loss[n - 1]!.toFixed(4) : '–';
    $('acc').textContent = n ? `${(100 * curve.acc[n - 1]!).toFixed(1)}%` : '–';
    $('valacc').textContent = last?.val_acc !== undefined ? `${(100 * last.val_acc).toFixed(1)}%` : '–';
    $('rate').textContent = stepTimes.length >= 2 ? stepsPerSecond().toFixed(1) : '–';
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
    status: trainer?.status ?? 'loading',
    step: trainer?.step ?? 0,
    curve: { step: curve.step, loss: curve.loss, acc: curve.acc },
    epochs,
    stepsPerSecond: stepsPerSecond(),
    memory: wg.memory(),
    inputInk: pad.input.reduce((a, v) => a + v, 0),
    probs,
    predictions,
  };
}

async function loadTestDigit(i: number): Promise<{ label: number; probs: number[] }> {
  const { x, y } = data!.test;
  const px = SIDE * SIDE;
  pad.showDigit(x.data.subarray(i * px, (i + 1) * px));
  $('digit-label').textContent = `test digit #${i}: label ${y.data[i]}`;
  await predicting;
  return { label: y.data[i]!, probs };
}

let rebuilding: Promise<void> = Promise.resolve();
/** newRun after any in progress, so that quick changes to the controls build one model each, in turn. */
function rebuild(): void {
  rebuilding = rebuilding.then(newRun).catch(showError);
}

function wire(): void {
  const opt = $<HTMLSelectElement>('optimizer');
  opt.addEventListener('change', () => ($<HTMLInputElement>('lr').value = String(OPTIMIZERS[opt.value]!.lr)));
  for (const id of ['model', 'optimizer', 'batch', 'epochs', 'seed']) $(id).addEventListener('change', rebuild);
  // The learning rate also changes mid-run: the optimizer reads it at each step.
  $('lr').addEventListener('change', () => {
    if (!trainer || trainer.status === 'ready') return rebuild();
    try {
      trainer.optimizer.lr = num('lr');
    } catch (e) {
      showError(e);
    }
  });
  $('start').addEventListener('click', () => {
    if (!trainer || !data) return;
    if (trainer.status === 'paused') return trainer.resumeRun();
    const o = { epochs: num('epochs'), batchSize: num('batch'), seed: num('seed'), readEvery: num('read-every') };
    trainer.start(data.train, data.test, o).catch(showError);
  });
  $('pause').addEventListener('click', () => {
    $<HTMLButtonElement>('pause').disabled = true;
    trainer?.pause();
  });
  $('reset').addEventListener('click', rebuild);
  $('clear').addEventListener('click', () => {
    $('digit-label').textContent = '';
    pad.clear();
  });
  $('random').addEventListener('click', () => void loadTestDigit(Math.floor(Math.random() * data!.test.y.data.length)));
  $('pad').addEventListener('pointerdown', () => ($('digit-label').textContent = ''));
}

async function main(): Promise<void> {
  const opt = $<HTMLSelectElement>('optimizer');
  opt.append(...Object.keys(OPTIMIZERS).map((k) => new Option(k, k)));
  $<HTMLInputElement>('lr').value = String(OPTIMIZERS[opt.value]!.lr);
  backend = await openBackend();
  $('memory-label').textContent = backend.name === 'webgpu' ? 'GPU memory' : 'memory (CPU)';
  await newRun();
  wire();
  window.wgnnDemo = {
    state,
    testSize: data!.test.y.data.length,
    loadTestDigit,
    predicted: async () => {
      await predicting;
      return probs;
    },
  };
  $<HTMLButtonElement>('random').disabled = false;
  requestAnimationFrame(render);
}

main().catch(showError);
