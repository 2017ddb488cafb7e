// Walks the op table: for every op and every sample, WebGPU = CPU reference; bad inputs give typed errors that
// name the op and the shapes, on both backends, and the engine stays usable after them.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { DisposedError } from '../src/errors.js';
import { apply } from '../src/ops/apply.js';
import { conv2dBwdWKernel, conv2dBwdXKernel, conv2dFwdKernel, convOps } from '../src/ops/conv.js';
import { MATMUL_KERNELS, colsOf, matmulKernel, matmulOps, type MatmulKernelName } from '../src/ops/matmul.js';
import type { AnyOp, Sample } from '../src/ops/op.js';
import { avgPoolBwdKernel, maxPoolBwdKernel, poolFwdKernel, poolOps, type Pool2dAttrs } from '../src/ops/pool.js';
import { layoutOps } from '../src/ops/layout.js';
import { OPS } from '../src/ops/registry.js';
import { Rng } from '../src/rng.js';
import { sizeOf } from '../src/shape.js';
import { wrap } from '../src/tensor.js';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { asGpuAdapter, asSoftwareAdapter, cpu, expectClose, gpuBackend, sampleData, upload } from './helpers.js';

let gpu: WebGpuBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
});

const seedOf = (s: string): number => [...s].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7);

async function runOn(b: Backend, op: AnyOp, sample: Sample<object>, seed: number) {
  const rng = new Rng(seed);
  const inputs = sample.inputs.map((inp) => upload(b, sampleData(inp, rng), inp.shape));
  const y = apply(op, inputs, sample.attrs ?? {});
  const data = await y.data();
  const shape = y.shape;
  for (const t of [...inputs, y]) t.dispose();
  return { data, shape };
}

describe.each(Object.values(OPS) as AnyOp[])('$name', (op) => {
  const samples = [...op.samples(new Rng(seedOf(op.name)))] as Sample<object>[];

  it('has at least 8 samples', () => {
    expect(samples.length).toBeGreaterThanOrEqual(8);
  });

  it.each(samples.map((s, i) => ({ s, i, label: s.name })))(`${op.name} $label [webgpu] gpu≈cpu`, async ({ s, i }) => {
    const seed = seedOf(`${op.name}#${i}`);
    const want = await runOn(cpu, op, s, seed);
    const got = await runOn(gpu, op, s, seed);
    expect(got.shape).toEqual(want.shape);
    expectClose(got.data, want.data, op.tol, `${op.name} ${s.name} (seed ${seed})`);
  });

  it.each(op.bad.map((c) => ({ c, label: c.name })))(`${op.name} rejects $label [webgpu]`, async ({ c }) => {
    for (const b of [cpu, gpu]) {
      const rng = new Rng(1);
      const inputs = c.inputs.map((inp) => upload(b, sampleData(inp, rng), inp.shape));
      let err: unknown;
      try {
        apply(op, inputs, c.attrs ?? {});
      } catch (e) {
        err = e;
      }
      expect(err, `${b.name}: ${op.name} should throw for ${c.name}`).toBeInstanceOf(c.error);
      expect((err as Error).message).toMatch(c.message);
      for (const t of inputs) t.dispose();
    }
    // Still usable: the first sample runs after the error.
    const s = samples[0]!;
    const got = await runOn(gpu, op, s, 3);
    const want = await runOn(cpu, op, s, 3);
    expectClose(got.data, want.data, op.tol, `${op.name} after error`);
  });

  it(`${op.name} rejects a disposed input [webgpu]`, async () => {
    const s = samples.find((x) => x.inputs.length > 0)!;
    const rng = new Rng(2);
    const inputs = s.inputs.map((inp) => upload(gpu, sampleData(inp, rng), inp.shape));
    inputs[0]!.dispose();
    expect(() => apply(op, inputs, s.attrs ?? {})).toThrow(DisposedError);
    expect(() => apply(op, inputs, s.attrs ?? {})).toThrow(new RegExp(`${op.name}: tensor #\\d+ \\[`));
    for (const t of inputs) t.dispose();
  });
});

// The matmul kernel table: the samples above must run every kernel it can pick (else a kernel goes unchecked).
describe('matmul kernel table', () => {
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
  type Flags = { transA: boolean; transB: boolean; kernel?: MatmulKernelName | 'auto' };
  const pick = (
    M: number,
    K: number,
    N: number,
    t: Flags = { transA: false, transB: false },
    l = limits,
    batch = 1,
  ) => {
    const k = matmulKernel({ M, K, N, batch }, t, l);
    return `${k.shader} ${k.tileM}x${k.tileN}x${k.tileK}`;
  };

  it('picks by shape, alignment and adapter limits', () => {
    expect(pick(4096, 4096, 4096)).toBe('matmul_vec4 128x128x16');
    expect(pick(1024, 1024, 1024)).toBe('matmul_vec4 64x64x16');
    expect(pick(130, 12, 132, undefined, limits, 128)).toBe('matmul_vec4 128x128x16');
    // A CPU adapter takes the 128x128 tiles wherever M and N fill one (the char GPT's products: 1.15-1.4x on
    // lavapipe), and below that matmul.wgsl, one pipeline for every flag (the seed CNN's products: 1.2-2x).
    const software = { ...limits, software: true };
    expect(pick(2048, 128, 384, undefined, software)).toBe('matmul_vec4 128x128x16');
    expect(pick(128, 2048, 384, { transA: true, transB: false }, software)).toBe('matmul_vec4 128x128x16');
    expect(pick(64, 5408, 64, undefined, software)).toBe('matmul 64x64x16');
    expect(pick(64, 64, 5408, { transA: false, transB: true }, software)).toBe('matmul 64x64x16');
    expect(pick(5408, 64, 64, { transA: true, transB: false }, software)).toBe('matmul 64x64x16');
    expect(pick(64, 5408, 64)).toBe('matmul_vec4 64x64x16');
    expect(pick(2048, 128, 384)).toBe('matmul_vec4 64x64x16');
    expect(pick(4096, 4096, 4095)).toBe('matmul 64x64x16'); // y rows not whole vec4s
    expect(pick(4096, 4094, 4096)).toBe('matmul 64x64x16'); // a's rows (K) not whole vec4s
    expect(pick(4094, 4096, 4096, { transA: true, transB: false })).toBe('matmul 64x64x16'); // aᵀ's rows are M
    expect(pick(4096, 4094, 4096, { transA: true, transB: false })).toBe('matmul_vec4 128x128x16');
    expect(pick(4096, 4094, 4096, { transA: true, transB: true })).toBe('matmul 64x64x16'); // bᵀ's rows are K
    // The default WebGPU limits (16 KiB of workgroup memory) cannot hold the double-buffered tiles.
    expect(
      pick(4096, 4096, 4096, undefined, {
        maxComputeWorkgroupStorageSize: 16384,
        maxComputeInvocationsPerWorkgroup: 256,
      }),
    ).toBe('matmul 64x64x16');
    // 20,000 B: the 8-deep 128x128 tiles fit where the 16-deep ones do not.
    expect(
      pick(4096, 4096, 4096, undefined, {
        maxComputeWorkgroupStorageSize: 20000,
        maxComputeInvocationsPerWorkgroup: 256,
      }),
    ).toBe('matmul_vec4 128x128x8');
    expect(pick(4096, 4096, 4096, { transA: false, transB: false, kernel: 'scalar-64x64x16' })).toBe('matmul 64x64x16');
    expect(() =>
      pick(
        4096,
        4096,
        4096,
        { transA: false, transB: false, kernel: 'vec4-128x128x16' },
        { ...limits, maxComputeWorkgroupStorageSize: 16384 },
      ),
    ).toThrow(
      /matmul: kernel 'vec4-128x128x16' cannot run \[4096,4096\] @ \[4096,4096\] \(transA=false, transB=false\): its 32768 B of workgroup memory exceed the adapter's 16384/,
    );
  });

  // The samples are too small for the wide blocks a software adapter gives large products (8x16 per thread).
  it.each([
    [false, false],
    [true, false],
    [false, true],
  ])(
    'a 2^24 multiply-add product (transA %s, transB %s) [webgpu] takes the wide blocks here, ≈ cpu',
    async (transA, transB) => {
      const [M, K, N] = [256, 256, 256];
      const k = matmulKernel({ M, K, N, batch: 1 }, { transA, transB }, { ...gpu.limits, software: gpu.software });
      expect(colsOf(k, { M, K, N, batch: 1 }, gpu.software), `${k.shader} ${k.tileM}: columns per thread`).toBe(
        gpu.software ? 16 : 8,
      );
      const s: Sample<object> = {
        name: `[${M},${K}]@[${K},${N}]`,
        inputs: [
          { shape: transA ? [K, M] : [M, K], dtype: 'float32', range: [-1, 1] },
          { shape: transB ? [N, K] : [K, N], dtype: 'float32', range: [-1, 1] },
        ],
        attrs: { transA, transB },
      };
      const seed = seedOf(`wide ${transA} ${transB}`);
      const [want, got] = [await runOn(cpu, matmulOps.matmul, s, seed), await runOn(gpu, matmulOps.matmul, s, seed)];
      expectClose(got.data, want.data, { atol: 1e-4, rtol: 1e-4 }, `${s.name} transA ${transA} transB ${transB}`);
    },
  );

  it("the op table's samples run every kernel", () => {
    const seen = new Set<string>();
    for (const op of [matmulOps.matmul, matmulOps.matmul_bias] as AnyOp[]) {
      for (const s of op.samples(new Rng(1))) {
        const [a, b] = s.inputs.map((i) => i.shape);
        const { transA = false, transB = false, kernel = 'auto' } = (s.attrs ?? {}) as Partial<Flags>;
        const [M, K] = transA ? [a!.at(-1)!, a!.at(-2)!] : [a!.at(-2)!, a!.at(-1)!];
        const N = transB ? b!.at(-2)! : b!.at(-1)!;
        const batch = Math.max(sizeOf(a!.slice(0, -2)), sizeOf(b!.slice(0, -2)));
        seen.add(pick(M, K, N, { transA, transB, kernel }, gpu.limits, batch));
      }
    }
    expect([...seen].sort()).toEqual(
      Object.values(MATMUL_KERNELS)
        .map((k) => `${k.shader} ${k.tileM}x${k.tileN}x${k.tileK}`)
        .sort(),
    );
  });
});

// This adapter is a software one: matmul's and conv's GEMM kernels hold 8x16 outputs per thread, and strided_copy
// (transpose, slice, concat, broadcast_to) takes runs of 8 indices per invocation. The samples of those ops also run
// as on a GPU adapter (8x8 blocks, one index per invocation), so both stay checked here.
describe.each(
  [matmulOps.matmul, matmulOps.matmul_bias, ...Object.values(convOps), ...Object.values(layoutOps)].map((op) => ({
    op: op as AnyOp,
    name: op.name,
  })),
)('$name', ({ op }) => {
  it("samples [webgpu] with a GPU adapter's blocks, and a software one's without subgroups, ≈ cpu", async () => {
    for (const [kind, b] of [
      ['a GPU', asGpuAdapter(gpu)],
      ['a software adapter without subgroups', asSoftwareAdapter(gpu)],
    ] as const) {
      for (const [i, s] of [...op.samples(new Rng(seedOf(op.name)))].entries()) {
        const seed = seedOf(`${op.name}#${i} gpu blocks`);
        const want = await runOn(cpu, op, s as Sample<object>, seed);
        const got = await runOn(b, op, s as Sample<object>, seed);
        expectClose(got.data, want.data, op.tol, `${op.name} ${s.name}, ${kind}'s blocks`);
      }
    }
  });
});

// The pooling ops pick a kernel by shape; the window kernels write dx band by band, so besides running on the
// samples every kernel must write every output element: here outputs land in a reused buffer full of NaN.
const POOL_KERNELS: { op: AnyOp; kernel: (attrs: object, x: number[]) => string; kernels: string[] }[] = [
  {
    op: poolOps.max_pool2d,
    kernel: (_, x) => poolFwdKernel('max', x),
    kernels: ['max_pool2d_fwd', 'max_pool2d_fwd_vec4'],
  },
  {
    op: poolOps.avg_pool2d,
    kernel: (_, x) => poolFwdKernel('avg', x),
    kernels: ['avg_pool2d_fwd', 'avg_pool2d_fwd_vec4'],
  },
  {
    op: poolOps.max_pool2d_bwd_x,
    kernel: (a) => maxPoolBwdKernel({ ...poolOps.max_pool2d_bwd_x.attrs, ...a }),
    kernels: ['max_pool2d_bwd', 'max_pool2d_bwd_window'],
  },
  {
    op: poolOps.avg_pool2d_bwd_x,
    kernel: (a) => avgPoolBwdKernel({ ...poolOps.avg_pool2d_bwd_x.attrs, ...a }),
    kernels: ['avg_pool2d_bwd', 'avg_pool2d_bwd_window'],
  },
];

describe.each(POOL_KERNELS)('$op.name kernels', ({ op, kernel, kernels }) => {
  const samples = [...op.samples(new Rng(1))] as Sample<object>[];

  it(`${op.name}: the op table's samples run every kernel`, () => {
    const seen = new Set(samples.map((s) => kernel(s.attrs ?? {}, s.inputs[0]!.shape as number[])));
    expect([...seen].sort()).toEqual(kernels);
  });

  it.each(samples.map((s, i) => ({ s, i, label: s.name })))(
    `${op.name} $label writes every output element [webgpu]`,
    async ({ s, i }) => {
      const seed = seedOf(`${op.name}#${i} NaN`);
      const want = await runOn(cpu, op, s, seed);
      const rng = new Rng(seed);
      const inputs = s.inputs.map((inp) => upload(gpu, sampleData(inp, rng), inp.shape));
      upload(gpu, new Float32Array(sizeOf(want.shape)).fill(NaN), want.shape).dispose(); // the output's buffer next
      const y = apply(op, inputs, s.attrs ?? {});
      expectClose(await y.data(), want.data, op.tol, `${op.name} ${s.name} over NaN (seed ${seed})`);
      for (const t of [...inputs, y]) t.dispose();
    },
  );
});

// The conv2d input gradient picks a kernel by shape (conv2dBwdXKernel): the samples must run each of them.
describe('conv2d_bwd_x kernels', () => {
  const geo = { stride: 1, padding: 'valid', dilation: 1 } as const;

  it('picks the direct kernel for C <= 8, the GEMM (or matmul for 1x1) above', () => {
    expect(conv2dBwdXKernel([64, 28, 28, 1], [3, 3, 1, 32], geo)).toBe('conv2d_bwd_x_direct');
    expect(conv2dBwdXKernel([8, 9, 9, 8], [1, 1, 8, 16], geo)).toBe('conv2d_bwd_x_direct');
    expect(conv2dBwdXKernel([8, 9, 9, 9], [3, 3, 9, 16], { ...geo, stride: 2, padding: 'same' })).toBe('conv2d_bwd_x');
    expect(conv2dBwdXKernel([8, 9, 9, 9], [1, 1, 9, 16], geo)).toBe('matmul');
  });

  it("the op table's samples run every kernel, the direct one at each C with K in vec4s and in scalars", () => {
    const op = convOps.conv2d_bwd_x;
    const seen = new Set<string>();
    const direct = new Set<number>();
    for (const s of op.samples(new Rng(1))) {
      const w = s.inputs[1]!.shape;
      const kernel = conv2dBwdXKernel(s.attrs!.xShape!, w, { ...op.attrs, ...s.attrs });
      seen.add(kernel === 'conv2d_bwd_x_direct' ? `${kernel} ${w[3]! % 4 === 0 ? 'vec4' : 'scalar'}` : kernel);
      if (kernel === 'conv2d_bwd_x_direct') direct.add(w[2]!);
    }
    expect([...seen].sort()).toEqual([
      'conv2d_bwd_x',
      'conv2d_bwd_x_direct scalar',
      'conv2d_bwd_x_direct vec4',
      'matmul',
    ]);
    expect([...direct].sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

// The conv2d filter gradient picks a kernel by shape (conv2dBwdWKernel): the samples must run each of them.
describe('conv2d_bwd_w kernels', () => {
  const geo = { stride: 1, padding: 'valid', dilation: 1 } as const;

  it('picks the direct kernel for C <= 4 with K in vec4s, the GEMM otherwise', () => {
    expect(conv2dBwdWKernel([64, 28, 28, 1], [3, 3, 1, 32], geo)).toBe('conv2d_bwd_w_direct');
    expect(conv2dBwdWKernel([8, 9, 9, 4], [1, 1, 4, 16], geo)).toBe('conv2d_bwd_w_direct');
    expect(conv2dBwdWKernel([8, 9, 9, 5], [3, 3, 5, 16], geo)).toBe('conv2d_bwd_w');
    expect(conv2dBwdWKernel([8, 9, 9, 1], [3, 3, 1, 10], geo)).toBe('conv2d_bwd_w');
  });

  it("the op table's samples run both kernels, the direct one at C = 1 to 4 and with several splits", () => {
    const op = convOps.conv2d_bwd_w;
    const seen = new Set<string>();
    const direct = new Set<number>();
    let splitPixels = 0;
    for (const s of op.samples(new Rng(1))) {
      const [x, dy] = s.inputs.map((i) => i.shape);
      const kernel = conv2dBwdWKernel(x!, s.attrs!.wShape!, { ...op.attrs, ...s.attrs });
      seen.add(kernel);
      if (kernel === 'conv2d_bwd_w_direct') {
        direct.add(x![3]!);
        splitPixels = Math.max(splitPixels, dy![0]! * dy![1]! * dy![2]!);
      }
    }
    expect([...seen].sort()).toEqual(['conv2d_bwd_w', 'conv2d_bwd_w_direct']);
    expect([...direct].sort()).toEqual([1, 2, 3, 4]);
    expect(splitPixels).toBeGreaterThan(256); // more than one split of the direct kernel's 256 pixels
  });
});

// The forward's argmax (its aux output, read by the backward) is no output the tests above compare: here the GPU's
// must equal the CPU reference's exactly, ties and NaN included, in both forward kernels.
describe('max_pool2d argmax', () => {
  const op = poolOps.max_pool2d;
  const samples = [...op.samples(new Rng(1))] as Sample<Partial<Pool2dAttrs>>[];

  async function argmax(b: Backend, s: Sample<Partial<Pool2dAttrs>>, seed: number) {
    const rng = new Rng(seed);
    const [x] = s.inputs.map((inp) => upload(b, sampleData(inp, rng), inp.shape));
    const attrs = { ...op.attrs, ...s.attrs };
    const spec = op.infer([x!], attrs);
    const auxSpec = op.aux!([x!], attrs);
    const r = b.run(op, [{ handle: x!.live(op.name).handle, spec: x! }], spec, attrs, auxSpec);
    const [y, arg] = [wrap(b, r.out, spec), wrap(b, r.aux!, auxSpec)];
    const data = await arg.data();
    for (const t of [x!, y, arg]) t.dispose();
    return data;
  }

  it.each(samples.map((s, i) => ({ s, i, label: s.name })))(
    'max_pool2d $label argmax gpu = cpu [webgpu]',
    async ({ s, i }) => {
      const seed = seedOf(`max_pool2d#${i} argmax`);
      const want = await argmax(cpu, s, seed);
      expect([...(await argmax(gpu, s, seed))]).toEqual([...want]);
    },
  );
});

// The conv2d forward picks a kernel by shape (conv2dFwdKernel): the samples of conv2d and conv2d_bias must run each,
// the direct one at every C it takes, with K in vec4s and scalars, in one block a thread and in several.
describe('conv2d forward kernels', () => {
  const geo = { stride: 1, padding: 'valid', dilation: 1 } as const;

  it('picks the direct kernel for C <= 4, the GEMM (or matmul for 1x1) above', () => {
    expect(conv2dFwdKernel([64, 28, 28, 1], [3, 3, 1, 32], geo)).toBe('conv2d_fwd_direct');
    expect(conv2dFwdKernel([8, 9, 9, 4], [1, 1, 4, 16], geo)).toBe('conv2d_fwd_direct');
    expect(conv2dFwdKernel([8, 9, 9, 5], [3, 3, 5, 16], { ...geo, stride: 2, padding: 'same' })).toBe('conv2d_fwd');
    expect(conv2dFwdKernel([64, 13, 13, 32], [3, 3, 32, 64], geo)).toBe('conv2d_fwd');
    expect(conv2dFwdKernel([8, 9, 9, 8], [1, 1, 8, 16], geo)).toBe('matmul');
  });

  it.each(['conv2d', 'conv2d_bias'] as const)("%s: the op table's samples run every kernel", (name) => {
    const op = convOps[name];
    const seen = new Set<string>();
    const direct = new Set<number>();
    for (const s of op.samples(new Rng(1))) {
      const [x, w] = [s.inputs[0]!.shape, s.inputs[1]!.shape];
      const kernel = conv2dFwdKernel(x, w, { ...op.attrs, ...s.attrs });
      if (kernel !== 'conv2d_fwd_direct') {
        seen.add(kernel);
        continue;
      }
      const K = w[3]!;
      // A thread's block: 8 vec4s at C = 1, else 4, where K % 4 == 0; else 8 scalars (src/ops/conv.ts).
      const [lanes, block] = K % 4 === 0 ? ['vec4', w[2] === 1 ? 32 : 16] : ['scalar', 8];
      seen.add(`${kernel} ${lanes} ${K > block ? 'blocks' : 'one block'}`);
      direct.add(w[2]!);
    }
    expect([...seen].sort()).toEqual(
      [
        'conv2d_fwd',
        'matmul',
        ...['vec4', 'scalar'].flatMap((l) => [`conv2d_fwd_direct ${l} blocks`, `conv2d_fwd_direct ${l} one block`]),
      ].sort(),
    );
    expect([...direct].sort()).toEqual([1, 2, 3, 4]);
  });
});
