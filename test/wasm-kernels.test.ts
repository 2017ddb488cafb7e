// The wasm backend's GEMM, convolution and pooling kernels (src/backend/wasm/assembly, compiled here with asc) on a
// minimal single-threaded context: every sample of their ops against the CPU reference within the op's tolerance,
// large shapes too, and the same bits whatever order the tasks run in (no task reads another's output; that tasks'
// scratch and outputs are disjoint under real threads is for the backend's 1/2/4-thread tests).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CpuInput, TensorSpec, TypedArray } from '../src/backend/kernel.js';
import type { WasmCtx, WasmKernel, WasmTensor } from '../src/backend/wasm/kernel.js';
import { convKernels } from '../src/backend/wasm/ops/conv.js';
import { matmulKernels } from '../src/backend/wasm/ops/matmul.js';
import { poolKernels } from '../src/backend/wasm/ops/pool.js';
import type { AnyOp, Sample } from '../src/ops/op.js';
import { OPS } from '../src/ops/registry.js';
import { Rng } from '../src/rng.js';
import { sizeOf } from '../src/shape.js';
import { expectClose, sampleData } from './helpers.js';

const KERNELS: Record<string, WasmKernel<object>> = { ...matmulKernels, ...convKernels, ...poolKernels } as Record<
  string,
  WasmKernel<object>
>;
const SOURCES = ['matmul.ts', 'conv.ts', 'pool.ts'];

let exports: Record<string, (...args: number[]) => void>;
let memory: WebAssembly.Memory;
let dir: string;

beforeAll(() => {
  // The flags of scripts/build-wasm.mjs (WASM_ABI.md).
  dir = mkdtempSync(join(tmpdir(), 'wgnn-wasm-'));
  const out = join(dir, 'kernels.wasm');
  const src = SOURCES.map((f) => resolve('src/backend/wasm/assembly', f));
  execFileSync(
    resolve('node_modules/.bin/asc'),
    [
      ...src,
      '-o',
      out,
      '-O3',
      '--runtime',
      'stub',
      '--importMemory',
      '--sharedMemory',
      '--maximumMemory',
      '65536',
    ].concat(['--enable', 'simd', '--enable', 'threads', '--noAssert']),
    { stdio: 'pipe' },
  );
  memory = new WebAssembly.Memory({ initial: 512, maximum: 65536, shared: true });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(out)), { env: { memory } });
  exports = inst.exports as unknown as typeof exports;
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Order = 'forward' | 'reverse' | 'shuffle';
/** Above the module's static data (AssemblyScript places it at the start of memory). */
const BASE = 1 << 20;

/** Runs `kernel` on host inputs: a bump allocator from BASE, tasks run one after another in `order`. */
function runWasm(
  kernel: WasmKernel<object>,
  inputs: CpuInput[],
  out: TensorSpec,
  aux: TensorSpec | undefined,
  attrs: object,
  order: Order,
): { out: TypedArray; aux?: TypedArray } {
  let top = BASE;
  const alloc = (bytes: number): number => {
    const p = Math.ceil(top / 16) * 16;
    top = p + bytes;
    const need = Math.ceil(top / 65536) - memory.buffer.byteLength / 65536;
    if (need > 0) memory.grow(need);
    // Garbage (NaN) where a kernel might wrongly rely on zeroed memory.
    new Float32Array(memory.buffer, p, Math.floor(bytes / 4)).fill(NaN);
    return p;
  };
  const put = (t: CpuInput): WasmTensor => {
    const ptr = alloc(4 * t.data.length);
    const view =
      t.dtype === 'int32'
        ? new Int32Array(memory.buffer, ptr, t.data.length)
        : new Float32Array(memory.buffer, ptr, t.data.length);
    view.set(t.data);
    return { ptr, shape: t.shape, dtype: t.dtype };
  };
  const tensor = (s: TensorSpec): WasmTensor => ({ ptr: alloc(4 * sizeOf(s.shape)), shape: s.shape, dtype: s.dtype });
  const rng = new Rng(5);
  const ctx: WasmCtx<object> = {
    inputs: inputs.map(put),
    out: tensor(out),
    aux: aux && tensor(aux),
    attrs,
    parallel(fn, args, tasks) {
      const f = exports[fn];
      if (!f) throw new Error(`no kernel export '${fn}'`);
      const ids = [...Array(tasks).keys()];
      if (order === 'reverse') ids.reverse();
      if (order === 'shuffle') {
        for (let i = ids.length - 1; i > 0; i--) {
          const j = rng.int(0, i + 1);
          [ids[i], ids[j]] = [ids[j]!, ids[i]!];
        }
      }
      for (const t of ids) f(...args, t, tasks);
    },
    ints(values) {
      const p = alloc(4 * values.length);
      new Int32Array(memory.buffer, p, values.length).set(values);
      return p;
    },
    scratch: alloc,
  };
  kernel(ctx);
  const read = (t: WasmTensor): TypedArray =>
    t.dtype === 'int32'
      ? new Int32Array(memory.buffer, t.ptr, sizeOf(t.shape)).slice()
      : new Float32Array(memory.buffer, t.ptr, sizeOf(t.shape)).slice();
  return ctx.aux ? { out: read(ctx.out), aux: read(ctx.aux) } : { out: read(ctx.out) };
}

const seedOf = (s: string): number => [...s].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7);

/** The op's CPU reference and the wasm kernel (tasks in each order) on the same inputs. */
function check(op: AnyOp, s: Sample<object>, seed: number, orders: Order[] = ['forward', 'reverse', 'shuffle']): void {
  const rng = new Rng(seed);
  const inputs: CpuInput[] = s.inputs.map((inp) => ({
    data: sampleData(inp, rng),
    shape: inp.shape,
    dtype: inp.dtype ?? 'float32',
  }));
  const attrs = { ...op.attrs, ...s.attrs };
  const out = op.infer(inputs, attrs);
  const aux = op.aux?.(inputs, attrs);
  const ref = op.cpu({ inputs, out, attrs, aux, alloc: (n) => new Float32Array(n) });
  const want = 'aux' in ref ? ref : { out: ref, aux: undefined };
  const what = `${op.name} ${s.name} (seed ${seed})`;
  const first = runWasm(KERNELS[op.name]!, inputs, out, aux, attrs, orders[0]!);
  expectClose(first.out, want.out, op.tol, what);
  if (want.aux) expect([...first.aux!], `${what}: argmax`).toEqual([...want.aux]);
  for (const order of orders.slice(1)) {
    const again = runWasm(KERNELS[op.name]!, inputs, out, aux, attrs, order);
    expect(
      Buffer.from(again.out.buffer).equals(Buffer.from(first.out.buffer)),
      `${what}: tasks ${order} give other bits`,
    ).toBe(true);
  }
}

describe.each(Object.keys(KERNELS))('%s', (name) => {
  const op = OPS[name as keyof typeof OPS] as unknown as AnyOp;
  const samples = [...op.samples(new Rng(seedOf(op.name)))] as Sample<object>[];
  it.each(samples.map((s, i) => ({ s, i, label: s.name })))(`${name} $label [wasm] ≈ cpu`, ({ s, i }) => {
    check(op, s, seedOf(`${op.name}#${i}`));
  });
});

function seedCnn(): [string, AnyOp, Sample<object>][] {
  const op = (name: keyof typeof OPS) => OPS[name] as unknown as AnyOp;
  const layers = [
    { x: [8, 28, 28, 1], w: [3, 3, 1, 32], y: [8, 26, 26, 32], attrs: {} },
    { x: [8, 14, 14, 32], w: [3, 3, 32, 64], y: [8, 14, 14, 64], attrs: { padding: 'same' } },
    { x: [8, 14, 14, 32], w: [3, 3, 32, 64], y: [8, 7, 7, 64], attrs: { padding: 'same', stride: 2 } },
  ];
  return layers.flatMap(({ x, w, y, attrs }) => {
    const tag = `x[${x}] w[${w}] ${JSON.stringify(attrs)}`;
    return [
      [
        'conv2d_bias',
        op('conv2d_bias'),
        { name: `${tag} relu`, inputs: [f32(x), f32(w), f32([w[3]!])], attrs: { ...attrs, activation: 'relu' } },
      ],
      ['conv2d_bwd_x', op('conv2d_bwd_x'), { name: tag, inputs: [f32(y), f32(w)], attrs: { ...attrs, xShape: x } }],
      ['conv2d_bwd_w', op('conv2d_bwd_w'), { name: tag, inputs: [f32(x), f32(y)], attrs: { ...attrs, wShape: w } }],
    ] as [string, AnyOp, Sample<object>][];
  });
}

const f32 = (shape: number[]) => ({ shape, range: [-1, 1] as [number, number] });

describe('large shapes', () => {
  const cases: [string, AnyOp, Sample<object>][] = [
    [
      'matmul',
      OPS.matmul as unknown as AnyOp,
      { name: '256x512 @ 512x384', inputs: [f32([256, 512]), f32([512, 384])] },
    ],
    [
      'matmul',
      OPS.matmul as unknown as AnyOp,
      {
        name: '(512x256)ᵀ @ (384x512)ᵀ',
        inputs: [f32([512, 256]), f32([384, 512])],
        attrs: { transA: true, transB: true },
      },
    ],
    [
      'matmul_bias',
      OPS.matmul_bias as unknown as AnyOp,
      {
        name: '[3,70,300] @ [300,130] + bias gelu',
        inputs: [f32([3, 70, 300]), f32([300, 130]), f32([130])],
        attrs: { activation: 'gelu' },
      },
    ],
    // The seed CNN's layers at batch 8: 28x28x1 -> 32 3x3 (+ relu), 14x14x32 -> 64 3x3 'same'; a strided input gradient.
    ...seedCnn(),
    [
      'max_pool2d',
      OPS.max_pool2d as unknown as AnyOp,
      { name: '[8,26,26,32] pool 2', inputs: [f32([8, 26, 26, 32])], attrs: { poolSize: 2 } },
    ],
  ];
  it.each(cases.map(([n, op, s]) => ({ op, s, label: `${n} ${s.name}` })))('$label [wasm] ≈ cpu', ({ op, s }) => {
    check(op, s, seedOf(s.name), ['forward', 'reverse']);
  });
});
