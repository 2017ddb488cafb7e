// The `wgnn` command line: `wgnn train` trains the seed MLP or CNN on MNIST-format data and saves it;
// `wgnn eval` loads a saved model and reports its test loss and accuracy.
import { parseArgs } from 'node:util';
import type { ImageDataset } from '../data/dataset.js';
import { loadIdxDataset } from '../data/fashion.js';
import { FASHION_MNIST_DIR } from '../data/fashion.js';
import { loadMnist } from '../data/mnist.js';
import { WgnnError } from '../errors.js';
import { init, shutdown } from '../init.js';
import { layers, sequential, Sequential, setSeed } from '../nn/index.js';
import * as optim from '../optim/index.js';
import type { Optimizer } from '../optim/optimizer.js';
import { memory } from '../tensor.js';

const USAGE = `usage:
  wgnn train [--model mlp|cnn] [--data mnist|fashion-mnist] [--data-dir DIR] [--epochs N] [--batch-size N]
             [--optimizer sgd|momentum|adam|adamw|rmsprop|adagrad] [--lr X] [--backend webgpu|cpu] [--seed N] [--out FILE]
  wgnn eval  --model-path FILE [--data mnist|fashion-mnist] [--data-dir DIR] [--backend webgpu|cpu] [--batch-size N]`;

const OPTIONS = {
  model: { type: 'string', default: 'cnn' },
  data: { type: 'string', default: 'mnist' },
  'data-dir': { type: 'string' },
  epochs: { type: 'string', default: '3' },
  'batch-size': { type: 'string', default: '64' },
  optimizer: { type: 'string', default: 'adam' },
  lr: { type: 'string' },
  backend: { type: 'string' },
  seed: { type: 'string', default: '1' },
  out: { type: 'string' },
  'model-path': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The seed models: an MLP 784-128-10 and a small CNN, both ending in softmax over 10 classes. */
export function seedModel(kind: string, inputShape: number[], classes: number): Sequential {
  if (kind === 'mlp') {
    return sequential([
      layers.flatten({ inputShape }),
      layers.dense({ units: 128, activation: 'relu' }),
      layers.dense({ units: classes, activation: 'softmax' }),
    ]);
  }
  if (kind === 'cnn') {
    return sequential([
      layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', inputShape }),
      layers.maxPool2d({ poolSize: 2 }),
      layers.flatten(),
      layers.dense({ units: 64, activation: 'relu' }),
      layers.dense({ units: classes, activation: 'softmax' }),
    ]);
  }
  throw new WgnnError(`--model ${kind}: expected mlp or cnn`);
}

function makeOptimizer(name: string, lr: number | undefined): Optimizer {
  switch (name) {
    case 'sgd':
      return optim.sgd({ lr: lr ?? 0.05 });
    case 'momentum':
      return optim.sgd({ lr: lr ?? 0.02, momentum: 0.9, nesterov: true });
    case 'adam':
      return optim.adam({ lr: lr ?? 1e-3 });
    case 'adamw':
      return optim.adamw({ lr: lr ?? 1e-3 });
    case 'rmsprop':
      return optim.rmsprop({ lr: lr ?? 1e-3 });
    case 'adagrad':
      return optim.adagrad({ lr: lr ?? 0.05 });
    default:
      throw new WgnnError(`--optimizer ${name}: expected sgd, momentum, adam, adamw, rmsprop or adagrad`);
  }
}

function loadData(name: string, dir: string | undefined, seed: number): ImageDataset {
  if (dir) return loadIdxDataset(dir);
  if (name === 'mnist') return loadMnist({ seed });
  if (name === 'fashion-mnist') return loadIdxDataset(FASHION_MNIST_DIR);
  throw new WgnnError(`--data ${name}: expected mnist or fashion-mnist (or --data-dir with MNIST-format IDX files)`);
}

const int = (flag: string, v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new WgnnError(`--${flag} ${v}: expected a positive integer`);
  return n;
};

/** A one-line progress bar with ETA and live loss, redrawn in place on a terminal, every 10% otherwise. */
class Progress {
  private t0 = performance.now();
  private lastPct = -1;
  constructor(private readonly label: string, private readonly total: number) {}
  update(done: number, logs: Record<string, number>): void {
    const frac = done / this.total;
    const elapsed = (performance.now() - this.t0) / 1000;
    const eta = frac > 0 ? elapsed / frac - elapsed : 0;
    const width = 24;
    const fill = Math.round(frac * width);
    const metrics = Object.entries(logs).map(([k, v]) => `${k} ${v.toFixed(4)}`).join('  ');
    const line = `${this.label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${this.total}  ${elapsed.toFixed(1)}s ETA ${eta.toFixed(1)}s  ${metrics}`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}\x1b[K`);
    else {
      const pct = Math.floor(frac * 10);
      if (pct !== this.lastPct || done === this.total) {
        this.lastPct = pct;
        process.stderr.write(`${line}\n`);
      }
    }
  }
  end(): void {
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
}

async function train(v: Record<string, string | boolean | undefined>): Promise<void> {
  const seed = int('seed', String(v.seed));
  setSeed(seed);
  const backend = await init({ backend: (v.backend as 'webgpu' | 'cpu' | undefined) ?? 'auto' });
  console.log(`backend: ${backend.name} (${backend.description})`);
  const data = loadData(String(v.data), v['data-dir'] as string | undefined, seed);
  const { train: tr, test } = data;
  console.log(`data: ${v['data-dir'] ?? v.data}: ${tr.length} train, ${test.length} test, input ${tr.xShape.slice(1).join('x')}, ${data.classes} classes`);
  const model = seedModel(String(v.model), tr.xShape.slice(1), data.classes);
  model.summary();
  const opt = makeOptimizer(String(v.optimizer), v.lr === undefined ? undefined : Number(v.lr));
  model.compile({ optimizer: opt, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const epochs = int('epochs', String(v.epochs));
  const batchSize = int('batch-size', String(v['batch-size']));
  const steps = tr.numBatches(batchSize);
  let bar: Progress | undefined;
  const t0 = performance.now();
  await model.fit({ data: tr.x, shape: tr.xShape }, { data: tr.y, shape: tr.yShape }, {
    epochs,
    batchSize,
    seed,
    validationData: [
      { data: test.x, shape: test.xShape },
      { data: test.y, shape: test.yShape },
    ],
    verbose: 0,
    callbacks: {
      onEpochBegin: (e) => void (bar = new Progress(`epoch ${e + 1}/${epochs}`, steps)),
      onBatchEnd: (b, logs) => bar?.update(b + 1, logs),
      onEpochEnd: (e, logs) => {
        bar?.end();
        const ms = (logs.seconds! * 1000) / steps;
        console.log(
          `epoch ${e + 1}/${epochs}: loss ${logs.loss!.toFixed(4)} acc ${logs.acc!.toFixed(4)}  ` +
            `val_loss ${logs.val_loss!.toFixed(4)} val_acc ${logs.val_acc!.toFixed(4)}  ${logs.seconds!.toFixed(1)}s (${ms.toFixed(1)} ms/step)`,
        );
      },
    },
  });
  const out = (v.out as string | undefined) ?? `wgnn-${String(v.model)}-${String(v.data)}.safetensors`;
  await model.save(out);
  const mem = memory();
  console.log(`trained in ${((performance.now() - t0) / 1000).toFixed(1)}s; saved ${out}; GPU memory: ${mem.liveBytes} B live, ${mem.pooledBytes} B pooled, ${mem.buffersCreated} buffers created`);
  opt.dispose();
  model.dispose();
}

async function evaluate(v: Record<string, string | boolean | undefined>): Promise<void> {
  const path = v['model-path'] as string | undefined;
  if (!path) throw new WgnnError(`eval: --model-path is required\n${USAGE}`);
  const backend = await init({ backend: (v.backend as 'webgpu' | 'cpu' | undefined) ?? 'auto' });
  console.log(`backend: ${backend.name} (${backend.description})`);
  const { test } = loadData(String(v.data), v['data-dir'] as string | undefined, int('seed', String(v.seed)));
  const model = await Sequential.load(path);
  model.compile({ optimizer: optim.sgd(0), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const logs = await model.evaluate({ data: test.x, shape: test.xShape }, { data: test.y, shape: test.yShape }, { batchSize: int('batch-size', String(v['batch-size'])) });
  console.log(`${path}: test loss ${logs.loss!.toFixed(4)}, accuracy ${logs.acc!.toFixed(4)} on ${test.length} images`);
  model.dispose();
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const cmd = positionals[0];
  if (values.help || !cmd) {
    console.log(USAGE);
    return;
  }
  try {
    if (cmd === 'train') await train(values);
    else if (cmd === 'eval') await evaluate(values);
    else throw new WgnnError(`unknown command '${cmd}'\n${USAGE}`);
  } finally {
    shutdown();
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? `${e.name}: ${e.message}` : e);
  process.exitCode = 1;
});
