// The GPT page: trains a character-level GPT on Debian's fortunes (or a text file picked or dropped) in this tab (WebGPU,
// or the CPU with a banner), with the loss curve, tokens/s, memory and samples as it learns, a prompt box that streams
// a continuation from the model being trained, and its weights saved to and loaded from a file.
import * as wg from '../src/index.js';
import { openBackend, showError } from './backend.js';
import { Chart } from './charts.js';
import { GptRun, type GptSettings, type LiveSettings, type RunStatus } from './gpt-run.js';
import type { GptState } from './hook.js';
import { gunzip } from './mnist.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const num = (id: string) => Number($<HTMLInputElement>(id).value);
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
/** The controls that shape a run: changing one builds a new model. */
const SHAPE = ['layers', 'heads', 'dim', 'block', 'batch', 'lr', 'warmup', 'steps', 'seed'];

const chart = new Chart($('chart-loss'), {
  x: 'step',
  y: 'loss',
  lines: [
    { label: 'train loss', stroke: '#c62828' },
    { label: 'val loss', stroke: '#1d4ed8', width: 2, points: true, spanGaps: true },
  ],
});

// The page's state: the text, the run, its curves, and what the tests read through window.wgnnGpt.
let backend: wg.Backend;
let text: { name: string; text: string } | undefined;
let run: GptRun | undefined;
let curve = { step: [] as number[], loss: [] as number[] };
let val = { step: [] as number[], loss: [] as number[] };
let samples: { step: number; text: string }[] = [];
let generation = { text: '', tokens: 0, running: false };
let generating: Promise<void> = Promise.resolve();
let loads = 0;
let dirty = true;

async function fetchFortunes(): Promise<string> {
  const res = await fetch(new URL('fortunes.txt.gz', document.baseURI));
  if (!res.ok)
    throw new Error(
      `fortunes.txt.gz: HTTP ${res.status} (the server has no Debian fortunes: apt-get install fortunes, or pick a text file)`,
    );
  let bytes: Uint8Array<ArrayBuffer> = new Uint8Array(await res.arrayBuffer());
  // NOTE: a server may already have undone the gzip (Content-Encoding), so the magic decides, not the name.
  if (wg.data.isGzip(bytes)) bytes = await gunzip(bytes);
  return wg.data.decodeText(bytes, 'fortunes.txt.gz');
}

function settings(): GptSettings {
  return {
    layers: num('layers'),
    heads: num('heads'),
    dim: num('dim'),
    blockSize: num('block'),
    batchSize: num('batch'),
    lr: num('lr'),
    warmup: num('warmup'),
    steps: num('steps'),
    seed: num('seed'),
  };
}

function live(): LiveSettings {
  return {
    readEvery: Math.max(1, num('read-every')),
    evalEvery: Math.max(0, num('eval-every')),
    sampleTokens: Math.max(0, num('sample-tokens')),
  };
}

/** A new run from the controls (or on a loaded model, whose shape then sets the controls); the old one freed. */
async function newRun(loaded?: wg.GPT): Promise<void> {
  const old = run;
  run = undefined;
  await generating;
  await old?.dispose();
  curve = { step: [], loss: [] };
  val = { step: [], loss: [] };
  samples = [];
  dirty = true;
  if (!text) return;
  if (loaded) {
    const c = loaded.config;
    for (const [id, v] of [
      ['layers', c.layers],
      ['heads', c.heads],
      ['dim', c.dim],
      ['block', c.blockSize],
    ] as const)
      $<HTMLInputElement>(id).value = String(v);
  }
  const s = settings();
  let model = loaded;
  try {
    if (s.warmup >= s.steps) throw new wg.ArgumentError(`warmup ${s.warmup}: expected fewer than steps ${s.steps}`);
    const tokenizer = loaded?.tokenizer as wg.data.CharTokenizer | undefined;
    const corpus = wg.data.textDataset(text.text, { blockSize: s.blockSize, ...(tokenizer ? { tokenizer } : {}) });
    if (!model) {
      wg.setSeed(s.seed);
      const { layers, heads, dim, blockSize } = s;
      model = wg.gpt({
        vocabSize: corpus.tokenizer.vocabSize,
        blockSize,
        layers,
        heads,
        dim,
        dropout: 0,
        seed: s.seed,
      });
      model.tokenizer = corpus.tokenizer;
    }
    run = new GptRun(model, corpus, s, live(), {
      read: (step, loss) => {
        curve.step.push(step);
        curve.loss.push(loss);
        dirty = true;
      },
      evaluated: (step, loss, sample) => {
        val.step.push(step);
        val.loss.push(loss);
        samples.unshift({ step, text: sample });
        showSamples();
        dirty = true;
      },
      status: showStatus,
    });
  } catch (e) {
    model?.dispose();
    throw e;
  }
  const c = model.config;
  const params = model.parameters().reduce((n, p) => n + p.size, 0);
  $('params').textContent =
    `${c.layers} layers · ${c.heads} heads · d ${c.dim} · T ${c.blockSize} · vocabulary ${c.vocabSize} · ` +
    `${(params / 1e6).toFixed(2)} M parameters`;
  $('corpus').textContent =
    `${text.name}: ${text.text.length.toLocaleString('en')} characters, ` +
    `${run.corpus.train.length.toLocaleString('en')} training and ${run.corpus.val.length.toLocaleString('en')} validation tokens`;
  showSamples();
  showStatus('ready');
}

let rebuilding: Promise<void> = Promise.resolve();
/** newRun after any in progress, so that quick changes to the controls build one model each, in turn. */
function rebuild(loaded?: wg.GPT): Promise<void> {
  rebuilding = rebuilding.then(() => newRun(loaded)).catch(showError);
  return rebuilding;
}

function showStatus(s: RunStatus): void {
  $('status').textContent = s;
  $<HTMLButtonElement>('start').disabled = s === 'running' || s === 'done';
  $('start').textContent = s === 'paused' ? 'Resume' : 'Start';
  $<HTMLButtonElement>('pause').disabled = s !== 'running';
  for (const id of ['reset', 'save', 'load-file']) $<HTMLButtonElement>(id).disabled = false;
  $<HTMLButtonElement>('generate').disabled = generation.running;
  for (const id of [...SHAPE, 'text', 'text-file']) $<HTMLInputElement>(id).disabled = s !== 'ready';
  dirty = true;
}

function showSamples(): void {
  $('samples').replaceChildren(
    ...samples.map((s) => {
      const el = document.createElement('pre');
      el.className = 'text';
      el.dataset.step = String(s.step);
      el.textContent = `step ${s.step}\n${s.text}`;
      return el;
    }),
  );
}

/** Streams a continuation of the prompt box's text into #continuation, token by token. */
function generate(): void {
  const r = run;
  if (!r || generation.running) return;
  const prompt = $<HTMLTextAreaElement>('prompt').value;
  const out = $('continuation');
  out.textContent = prompt;
  generation = { text: '', tokens: 0, running: true };
  $<HTMLButtonElement>('generate').disabled = true;
  const topK = num('top-k');
  const opts = { maxTokens: num('gen-tokens'), temperature: num('temperature'), seed: num('gen-seed') };
  generating = r
    .generate(prompt, topK > 0 ? { ...opts, topK } : opts, (t) => {
      generation.text += t;
      generation.tokens++;
      out.append(t);
    })
    .then(
      () => undefined,
      (e: unknown) => {
        // A character the model has never seen is the prompt's fault, said beside it; anything else is an error.
        if (e instanceof wg.VocabularyError) out.textContent = e.message;
        else showError(e);
      },
    )
    .finally(() => {
      generation.running = false;
      $<HTMLButtonElement>('generate').disabled = false;
    });
}

async function save(): Promise<void> {
  if (!run) return;
  const { bytes, step } = await run.save();
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `wgnn-gpt-step${step}.safetensors`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function load(file: File): Promise<void> {
  const model = await wg.GPT.load(new Uint8Array(await file.arrayBuffer()));
  if (!model.tokenizer) {
    model.dispose();
    throw new wg.ParseError(
      `${file.name}: the model has no tokenizer saved with it; expected a GPT saved by this page`,
    );
  }
  await rebuild(model);
  if (run?.model === model) {
    loads++;
    $('status').textContent = `ready: weights from ${file.name} (AdamW's moments start at zero)`;
  }
}

async function useFile(file: File): Promise<void> {
  text = { name: file.name, text: wg.data.decodeText(new Uint8Array(await file.arrayBuffer()), file.name) };
  const select = $<HTMLSelectElement>('text');
  select.options[1]!.disabled = false;
  select.value = 'file';
  await rebuild();
}

// Charts and stats are redrawn at most once a frame, whatever the step rate.
function render(): void {
  if (dirty) {
    dirty = false;
    const at = new Map(val.step.map((s, i) => [s, val.loss[i]!]));
    chart.setData(curve.step, [curve.loss, curve.step.map((s) => at.get(s) ?? null)]);
    $('step').textContent = String(run?.stepsRun ?? 0);
    const n = curve.loss.length;
    $('loss').textContent = n ? curve.loss[n - 1]!.toFixed(4) : '–';
    $('val-loss').textContent = val.loss.length ? val.loss[val.loss.length - 1]!.toFixed(4) : '–';
    $('tps').textContent = run?.tokensPerSecond ? run.tokensPerSecond.toFixed(0) : '–';
    const m = wg.memory();
    $('memory').textContent = `${mb(m.liveBytes)} live · ${mb(m.pooledBytes)} pool`;
    $('memory').title =
      `${m.liveTensors} tensors alive; peak ${mb(m.peakBytes)}; ${m.buffersCreated} buffers created, ${m.poolHits} pool hits`;
  }
  requestAnimationFrame(render);
}

function state(): GptState {
  return {
    ready: run !== undefined,
    backend: backend.name,
    adapter: backend.description,
    status: run?.status ?? 'loading',
    settings: run ? { ...run.settings, ...run.live } : null,
    time: performance.now(),
    step: run?.stepsRun ?? 0,
    stepsRead: run?.stepsRead ?? 0,
    tokensRead: run?.tokensRead ?? 0,
    tokensPerSecond: run?.tokensPerSecond ?? 0,
    curve,
    val,
    samples,
    vocab: run?.corpus.tokenizer.chars ?? '',
    memory: wg.memory(),
    generation: { ...generation },
    loads,
  };
}

function wire(): void {
  for (const id of SHAPE) $(id).addEventListener('change', () => void rebuild());
  for (const id of ['read-every', 'eval-every', 'sample-tokens'])
    $(id).addEventListener('change', () => run && Object.assign(run.live, live()));
  $('start').addEventListener('click', () => {
    if (!run) return;
    if (run.status === 'paused') return run.resumeRun();
    run.start().catch(showError);
  });
  $('pause').addEventListener('click', () => {
    $<HTMLButtonElement>('pause').disabled = true;
    run?.pause();
  });
  $('reset').addEventListener('click', () => void rebuild());
  $('save').addEventListener('click', () => save().catch(showError));
  $('load-file').addEventListener('change', (e) => {
    const input = e.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = '';
    if (file) load(file).catch(showError);
  });
  $('generate').addEventListener('click', generate);
  $('text-file').addEventListener('change', (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) useFile(file).catch(showError);
  });
  $('text').addEventListener('change', () => {
    if ($<HTMLSelectElement>('text').value !== 'fortunes') return;
    fetchFortunes()
      .then((t) => ((text = { name: "Debian's fortunes", text: t }), rebuild()))
      .catch(showError);
  });
  // A text file dropped anywhere on the page becomes the corpus (while no run is going).
  document.addEventListener('dragover', (e) => e.preventDefault());
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    const file = e.dataTransfer?.files[0];
    if (file && (!run || run.status === 'ready')) useFile(file).catch(showError);
  });
}

async function main(): Promise<void> {
  backend = await openBackend();
  $('memory-label').textContent = backend.name === 'webgpu' ? 'GPU memory' : 'memory (CPU)';
  wire();
  window.wgnnGpt = {
    state,
    generated: async () => {
      await generating;
      return generation.text;
    },
  };
  requestAnimationFrame(render);
  try {
    text = { name: "Debian's fortunes", text: await fetchFortunes() };
  } catch (e) {
    $('status').textContent = 'no text: pick or drop a text file';
    throw e;
  }
  await rebuild();
}

main().catch(showError);
