// The `wgnn` command line, run in-process through main(): bad options, data folders and model files, as a careless
// or hostile user would try them. Each is refused fast with a non-zero exit code and one line on stderr that starts
// with commander's `error:` (usage errors) or a WgnnError subclass's name, never a raw TypeError, RangeError or
// SyntaxError or a stack trace; and a tiny valid train-then-eval run still succeeds. CPU backend, and WebGPU once.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { encodeIdx } from '../src/data/idx.js';
import * as errors from '../src/errors.js';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors.js';

/** The names a refusal line may start with: every WgnnError subclass, and commander's usage errors. */
const NAMES = new Set([
  'error',
  ...Object.values(errors)
    .filter((v) => typeof v === 'function' && (v === errors.WgnnError || v.prototype instanceof errors.WgnnError))
    .map((v) => v.name),
]);
/** A refusal must come well within this (the slowest, a WebGPU device on lavapipe, takes about a second). */
const FAST_MS = 5000;

interface Run {
  code: number;
  out: string[];
  err: string[];
  ms: number;
}
async function cli(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const t0 = performance.now();
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err, ms: performance.now() - t0 };
}

/** `argv` exits non-zero, fast, with a first stderr line `<name>: ...` naming the problem (`problem`). */
async function expectRefused(argv: string[], problem: string | RegExp): Promise<Run> {
  const r = await cli(...argv);
  const what = `wgnn ${argv.join(' ')}\nstderr:\n${r.err.join('\n')}`;
  expect(r.code, what).not.toBe(0);
  const first = r.err[0] ?? '';
  const name = /^(\w+): /.exec(first)?.[1];
  expect(NAMES.has(name ?? ''), `${what}\nfirst line must start with a WgnnError subclass or "error:"`).toBe(true);
  if (typeof problem === 'string') expect(first, what).toContain(problem);
  else expect(first, what).toMatch(problem);
  const all = r.err.join('\n');
  expect(all, `${what}\n(a stack trace)`).not.toMatch(/^\s+at (?:\S+ \()?(?:file:|node:|\/)/m);
  expect(all, what).not.toMatch(/\b(TypeError|RangeError|SyntaxError|ReferenceError)\b/);
  expect(r.ms, `${what}\n(took ${r.ms.toFixed(0)} ms)`).toBeLessThan(FAST_MS);
  return r;
}

const H = 8;
const W = 8;
const CLASSES = 3;
/** Writes a folder of the four MNIST-format IDX files: `n` training and `nTest` test images of h x w. */
function writeData(
  dir: string,
  opts: { n?: number; nTest?: number; h?: number; testH?: number; labels?: (i: number) => number; nLabels?: number },
): string {
  const { n = 64, nTest = 16, h = H, testH = h, labels = (i) => i % CLASSES, nLabels = n } = opts;
  mkdirSync(dir, { recursive: true });
  const images = (count: number, rows: number) =>
    encodeIdx(
      [count, rows, W],
      Uint8Array.from({ length: count * rows * W }, (_, i) => (i * 37) % 256),
    );
  const ys = (count: number) =>
    encodeIdx(
      [count],
      Int32Array.from({ length: count }, (_, i) => labels(i)),
    );
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), images(n, h));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), ys(nLabels));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), images(nTest, testH));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), ys(nTest));
  return dir;
}

/** `file` with its safetensors metadata entry `key` replaced by `value`. */
function withMetadata(file: string, key: string, value: string): Uint8Array {
  const { tensors, metadata } = parseSafetensors(new Uint8Array(readFileSync(file)));
  const entries = [...tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.data }));
  return serializeSafetensors(entries, { ...metadata, [key]: value });
}

describe('wgnn CLI', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'wgnn-cli-'));
  const data = join(tmp, 'data');
  const model = join(tmp, 'model.safetensors');
  const cpu = ['--backend', 'cpu'];
  const train = (...more: string[]) => [
    ...'train --model mlp --epochs 1 --backend cpu --data-dir'.split(' '),
    data,
    ...more,
  ];
  const evalOn = (dir: string) => ['eval', '--model-path', model, ...cpu, '--data-dir', dir];
  let trained: Run;

  beforeAll(async () => {
    writeData(data, {});
    trained = await cli(...train('--out', model));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('trains a tiny MLP (64 images of 8x8, 3 classes), writes the file, and eval loads it', async () => {
    expect(trained.code, trained.err.join('\n')).toBe(0);
    expect(trained.err).toEqual([]);
    expect(trained.out.join('\n')).toContain(`weights written to ${model}`);
    expect(existsSync(model)).toBe(true);
    const r = await cli(...evalOn(data));
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(r.out.at(-1)).toMatch(new RegExp(`^${model}: test loss \\d+\\.\\d+, accuracy \\d\\.\\d+ on 16 images$`));
  });

  it('exports the trained model for PyTorch: model.safetensors with torch names, model.py; refuses a bad target or file', async () => {
    const out = join(tmp, 'torch');
    const r = await cli('export', model, out, '--to', 'pytorch');
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(r.out.at(-1)).toBe(
      `${model} -> ${out}/model.safetensors, ${out}/model.py (from model import load; m = load('${out}'))`,
    );
    const names = [...parseSafetensors(readFileSync(join(out, 'model.safetensors'))).tensors.keys()];
    expect(names.sort()).toEqual(['layers.1.bias', 'layers.1.weight', 'layers.3.bias', 'layers.3.weight']);
    expect(readFileSync(join(out, 'model.py'), 'utf8')).toMatch(/^class Model\(nn\.Module\):/m);
    await expectRefused(['export', model, out, '--to', 'onnx'], /--to/);
    await expectRefused(['export', model, out], /--to/);
    await expectRefused(['export', join(tmp, 'nope.safetensors'), out, '--to', 'pytorch'], 'nope.safetensors');
  });

  it('refuses bad options with a usage error naming the option', async () => {
    const out = ['--out', join(tmp, 'unused.safetensors')];
    const cases: [string[], string][] = [
      [['--epochs', '-1'], '--epochs -1'],
      [['--epochs', '0'], '--epochs 0'],
      [['--epochs', '1.5'], '--epochs 1.5'],
      [['--epochs', 'abc'], '--epochs abc'],
      [['--batch-size', '0'], '--batch-size 0'],
      [['--batch-size', '1e400'], '--batch-size 1e400'],
      [['--lr', 'NaN'], '--lr NaN'],
      [['--lr', '-1'], '--lr -1'],
      [['--lr', 'Infinity'], '--lr Infinity'],
      [['--optimizer', 'constructor'], "'--optimizer <name>' argument 'constructor'"],
      [['--optimizer', '__proto__'], "'--optimizer <name>' argument '__proto__'"],
      [['--optimizer', 'toString'], "'--optimizer <name>' argument 'toString'"],
      [['--model', 'x'], "'--model <kind>' argument 'x'"],
      [['--model', 'constructor'], "'--model <kind>' argument 'constructor'"],
      [['--data', 'x'], "'--data <name>' argument 'x'"],
      [['--schedule', 'x'], "'--schedule <kind>' argument 'x'"],
      [['--schedule', '__proto__'], "'--schedule <kind>' argument '__proto__'"],
      [['--backend', 'x'], "'--backend <name>' argument 'x'"],
      [['--shift', '-1'], '--shift -1'],
      [['--seed', 'x'], '--seed x'],
      [['--seed', '1.5'], '--seed 1.5'],
      [['--seed', '99999999999999999999'], '--seed 99999999999999999999'],
      [['--batch-size', '9007199254740993'], '--batch-size 9007199254740993'],
      [['--out', ''], "--out '': expected a path"],
      [['--data-dir', ''], "--data-dir '': expected a path"],
      [['--epochs'], "option '--epochs <n>' argument missing"],
      [['--nope'], "unknown option '--nope'"],
    ];
    for (const [args, problem] of cases) await expectRefused(train(...out, ...args), problem);
    await expectRefused(['nope'], "unknown command 'nope'");
    await expectRefused(['eval', ...cpu], "required option '--model-path <file>' not specified");
    await expectRefused(['eval', '--model-path', model, '--batch-size', '-3'], '--batch-size -3');
    await expectRefused(['eval', '--model-path', ''], "--model-path '': expected a path");
    // a shift as large as the 8x8 images would move every pixel out
    const r = await expectRefused(train(...out, '--shift', '8'), /^ArgumentError: --shift 8: .*8x8.*at most 7/);
    expect(r.out.join('\n')).not.toContain('training:');
    expect(readdirSync(tmp).filter((f) => f.endsWith('.safetensors'))).toEqual(['model.safetensors']);
  });

  it('refuses a missing, empty, corrupted or mismatched data folder, and an absurd label', async () => {
    const out = join(tmp, 'never.safetensors');
    const refuse = (dir: string, problem: string | RegExp) =>
      expectRefused(train('--out', out, '--data-dir', dir), problem);
    await refuse(join(tmp, 'missing'), /^WgnnError: .*no folder .*missing/);
    mkdirSync(join(tmp, 'empty'));
    await refuse(join(tmp, 'empty'), /^WgnnError: .*no train-images-idx3-ubyte/);
    const corrupted = writeData(join(tmp, 'corrupted'), {});
    writeFileSync(
      join(corrupted, 'train-images-idx3-ubyte'),
      Uint8Array.from({ length: 100 }, (_, i) => i * 7),
    );
    await refuse(corrupted, /^ParseError: .*train-images-idx3-ubyte/);
    const truncated = writeData(join(tmp, 'truncated'), {});
    const full = readFileSync(join(truncated, 't10k-images-idx3-ubyte'));
    writeFileSync(join(truncated, 't10k-images-idx3-ubyte'), full.subarray(0, full.length - 5));
    await refuse(truncated, /^ParseError: .*t10k-images-idx3-ubyte/);
    await refuse(writeData(join(tmp, 'counts'), { nLabels: 63 }), /^ParseError: .*64 images but .* 63 labels/);
    await refuse(
      writeData(join(tmp, 'sizes'), { testH: 7 }),
      /^ParseError: .*train images are \[8,8\] but test images are \[7,8\]/,
    );
    await refuse(
      writeData(join(tmp, 'huge-label'), { labels: (i) => (i === 5 ? 1e9 : 0) }),
      /^ParseError: .*label 1000000000 at index 5/,
    );
    await refuse(
      writeData(join(tmp, 'negative-label'), { labels: (i) => (i === 2 ? -1 : 0) }),
      /^ParseError: .*label -1 at index 2/,
    );
    await refuse(writeData(join(tmp, 'no-train'), { n: 0 }), /^ArgumentError: .*training split has no images/);
    expect(existsSync(out), 'no weights from a refused run').toBe(false);
  });

  it('refuses an --out it cannot write before training, and writes nothing', async () => {
    for (const out of [join(tmp, 'missing-dir', 'm.safetensors'), data, join(model, 'm.safetensors')]) {
      const r = await expectRefused(train('--out', out), /^FileError: .*cannot be written/);
      expect(r.out.join('\n'), 'refused before the backend starts').not.toContain('backend:');
      expect(existsSync(join(tmp, 'missing-dir')), 'no folder made').toBe(false);
    }
    expect(readdirSync(data).sort()).toEqual([
      't10k-images-idx3-ubyte',
      't10k-labels-idx1-ubyte',
      'train-images-idx3-ubyte',
      'train-labels-idx1-ubyte',
    ]);
  });

  it('reports a diverging run, writes no weights and leaves no timer running (the process would not exit)', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const out = join(tmp, 'diverged.safetensors');
    await expectRefused(train('--out', out, '--lr', '1e30'), /^NonFiniteError: fit: .*diverged/);
    expect(existsSync(out)).toBe(false);
    expect(timers(), 'timers left running (the progress bar)').toBe(before);
  });

  it('refuses missing, corrupted and hostile model files, and data the model does not fit', async () => {
    const file = (name: string, bytes: Uint8Array | string) => {
      writeFileSync(join(tmp, name), bytes);
      return join(tmp, name);
    };
    const evalFile = (path: string, problem: string | RegExp) =>
      expectRefused(['eval', '--model-path', path, ...cpu, '--data-dir', data], problem);
    await evalFile(join(tmp, 'missing.safetensors'), /^FileError: .*missing\.safetensors/);
    await evalFile(data, /^FileError: .*not a regular file/);
    symlinkSync('/dev/zero', join(tmp, 'zero.safetensors'));
    await evalFile(join(tmp, 'zero.safetensors'), /^FileError: .*zero\.safetensors: not a regular file/);
    await evalFile(
      file(
        'garbage.safetensors',
        Uint8Array.from({ length: 64 }, (_, i) => i * 11),
      ),
      /^ParseError: /,
    );
    await evalFile(file('empty.safetensors', new Uint8Array(0)), /^ParseError: /);
    const bytes = readFileSync(model);
    await evalFile(file('truncated.safetensors', bytes.subarray(0, bytes.length - 4)), /^ParseError: /);
    await evalFile(
      file('text.safetensors', withMetadata(model, 'layers', '{not json')),
      /^ParseError: .*"layers" is not JSON/,
    );
    await evalFile(file('object.safetensors', withMetadata(model, 'layers', '{}')), /^ParseError: .*"layers"/);
    const spec = JSON.parse(parseSafetensors(new Uint8Array(bytes)).metadata.layers!) as { class: string }[];
    for (const cls of ['constructor', '__proto__', 'toString']) {
      const hostile = JSON.stringify(spec.map((l, i) => (i === 0 ? { ...l, class: cls } : l)));
      await evalFile(
        file(`${cls}.safetensors`, withMetadata(model, 'layers', hostile)),
        `unknown layer class "${cls}"`,
      );
    }
    // the model has 3 classes; this folder's labels reach 4
    const wide = writeData(join(tmp, 'wide'), { labels: (i) => i % 5 });
    await expectRefused(evalOn(wide), /^ArgumentError: evaluate: label y\[3\] is 3; the model has 3 classes/);
    // the model takes 8x8 images
    await expectRefused(evalOn(writeData(join(tmp, 'small'), { h: 7 })), /^ShapeError: .*\[8,8,1\].*\[7,8,1\]/);
  });

  it('refuses out-of-range labels on WebGPU too', async () => {
    const wide = writeData(join(tmp, 'wide-gpu'), { labels: (i) => (i === 9 ? 3 : i % CLASSES) });
    const argv = ['eval', '--model-path', model, '--backend', 'webgpu', '--data-dir', wide];
    const r = await expectRefused(argv, /^ArgumentError: evaluate: label y\[9\] is 3; the model has 3 classes/);
    expect(r.out[0]).toMatch(/^backend: webgpu /);
  });
});

describe('wgnn CLI: the GPT (train --model gpt, sample)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'wgnn-cli-gpt-'));
  const text = join(tmp, 'corpus.txt');
  const model = join(tmp, 'gpt.safetensors');
  const oracle = join(tmp, 'oracle');
  // A tiny GPT, a few steps: what the options do, not how well it learns (the README's run shows that).
  const tiny = '--backend cpu --steps 6 --warmup 2 --block-size 8 --layers 1 --heads 2 --dim 8 --batch-size 4'.split(
    ' ',
  );
  const trainText = (...more: string[]) => ['train', '--model', 'gpt', '--text', text, ...tiny, ...more];
  let trained: Run;

  beforeAll(async () => {
    writeFileSync(text, 'the quick brown fox jumps over the lazy dog.\n'.repeat(20));
    mkdirSync(oracle);
    trained = await cli(
      ...trainText('--eval-interval', '3', '--eval-batches', '2', '--sample-tokens', '5', '--oracle-dir', oracle),
      '--out',
      model,
    );
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('trains on a text file: val loss and a sample at each evaluation, the model with its tokenizer, the oracle files', async () => {
    expect(trained.code, trained.err.join('\n')).toBe(0);
    const out = trained.out.join('\n');
    expect(out).toMatch(/vocabulary 29, /);
    expect(out).toMatch(/^step 3: train loss \d+\.\d+ val loss \d+\.\d+ \(\d+ tokens\/s\)$/m);
    expect(out).toMatch(/^step 6: train loss/m);
    expect(out).toContain('sample at step 6:');
    const { tensors, metadata } = parseSafetensors(new Uint8Array(readFileSync(model)));
    expect(JSON.parse(metadata.tokenizer!)).toEqual({
      kind: 'char',
      chars: ' .abcdefghijklmnopqrstuvwxyz\n'.split('').sort().join(''),
    });
    expect(JSON.parse(metadata.gpt!)).toMatchObject({ vocabSize: 29, blockSize: 8, layers: 1, heads: 2, dim: 8 });
    expect(tensors.get('layers.0.tokens')!.shape).toEqual([29, 8]);
    const batches = parseSafetensors(new Uint8Array(readFileSync(join(oracle, 'batches.safetensors'))));
    expect(batches.tensors.get('x')!.shape).toEqual([6, 4, 8]);
    expect(batches.tensors.get('val_x')!.shape).toEqual([2, 4, 8]);
    expect(existsSync(join(oracle, 'init.safetensors'))).toBe(true);
  });

  it('samples from the saved model: the prompt, then the generated text; the same seed gives the same text', async () => {
    const argv = ['sample', '--model-path', model, '--prompt', 'the ', '--tokens', '12', '--backend', 'cpu'];
    const a = await cli(...argv);
    expect(a.code, a.err.join('\n')).toBe(0);
    expect(a.out.at(-1)!.startsWith('the ')).toBe(true);
    expect([...a.out.at(-1)!].length).toBe(4 + 12);
    expect((await cli(...argv)).out.at(-1)).toBe(a.out.at(-1));
  });

  it('refuses bad text, bad prompts, a model without a tokenizer, and options of the wrong model', async () => {
    const bin = join(tmp, 'bin.txt');
    writeFileSync(bin, new Uint8Array([104, 105, 0, 1, 2]));
    const empty = join(tmp, 'empty.txt');
    writeFileSync(empty, '');
    const short = join(tmp, 'short.txt');
    writeFileSync(short, 'hello');
    const out = ['--out', join(tmp, 'unused.safetensors')];
    await expectRefused(['train', '--model', 'gpt', '--text', bin, ...tiny, ...out], /^ParseError: .*bin\.txt/);
    await expectRefused(['train', '--model', 'gpt', '--text', empty, ...tiny, ...out], /^ParseError: .*empty/);
    await expectRefused(['train', '--model', 'gpt', '--text', short, ...tiny, ...out], /^ArgumentError: .*blockSize/);
    await expectRefused(['train', '--model', 'gpt', '--text', join(tmp, 'none.txt'), ...tiny, ...out], /^FileError/);
    await expectRefused(['train', '--model', 'gpt', '--data', 'mnist', ...tiny, ...out], /--model gpt trains on text/);
    await expectRefused(['train', '--model', 'cnn', '--data', 'fortunes', ...out], /--data fortunes is text/);
    await expectRefused(['train', '--model', 'mlp', '--steps', '5', ...out], /--steps is an option of --model gpt/);
    await expectRefused(trainText('--heads', '3', ...out), /multiple of heads/);
    await expectRefused(trainText('--warmup', '6', ...out), /--warmup 6: expected fewer than --steps 6/);
    const sample = ['sample', '--model-path', model, '--backend', 'cpu', '--tokens', '3'];
    await expectRefused([...sample, '--prompt', 'ZZ'], /^VocabularyError: .*'Z'/);
    const noTok = join(tmp, 'no-tokenizer.safetensors');
    const { tensors, metadata } = parseSafetensors(new Uint8Array(readFileSync(model)));
    const { tokenizer: _drop, ...rest } = metadata;
    writeFileSync(
      noTok,
      serializeSafetensors(
        [...tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.data })),
        rest,
      ),
    );
    await expectRefused(['sample', '--model-path', noTok, '--backend', 'cpu'], /^ParseError: .*no tokenizer/);
    await expectRefused(['sample', '--model-path', join(tmp, 'missing.safetensors')], /^FileError/);
  });
});
