// Device limits and allocation failures, on a device opened with WebGPU's DEFAULT limits (128 MiB bindings, 256 MiB
// buffers, 16 KiB of workgroup memory, 65,535 workgroups per dimension): work past a limit is split, or refused
// with a LimitError naming the op, its shapes and the limit (never silent zeros), and the backend keeps working.
// Allocation failures (injected) empty the pool, retry once, then throw OutOfMemoryError with the byte counts.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Kernel } from '../src/backend/backend.js';
import { sizeClass } from '../src/backend/webgpu/pool.js';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { workgroupNeeds } from '../src/backend/webgpu/wgsl-reflect.js';
import { LimitError, OutOfMemoryError } from '../src/errors.js';
import { createWebGpuBackend } from '../src/init.js';
import { add, attention, conv2d, matmul, neg, relu, square, sum } from '../src/ops/index.js';
import { backward } from '../src/autograd/tape.js';
import { SHADERS } from '../src/shaders.gen.js';
import { memory, tensor, tidy } from '../src/tensor.js';
import { cpu, expectClose } from './helpers.js';

let dev: WebGpuBackend;
beforeAll(async () => {
  const b = await createWebGpuBackend({ defaultLimits: true });
  if (!b) throw new Error('no WebGPU adapter');
  dev = b;
});
afterAll(() => {
  expect(dev.errors, 'WebGPU errors reported by the device').toEqual([]);
  expect(memory(dev).liveTensors, 'tensors left alive').toBe(0);
  dev.destroy();
});

const MiB = 2 ** 20;
function vals(n: number, seed = 1): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.sin(i * 12.9898 + seed) * 3;
  return v;
}

/** The backend still computes correctly, and nothing the failed op allocated is left live. */
async function stillWorks(liveBefore: number): Promise<void> {
  expect(dev.pool.liveBytes, 'bytes held by live tensors after the error').toBe(liveBefore);
  const x = tensor([1, -2, 3, -4], [4], { backend: dev });
  const y = tidy(() => relu(neg(x)));
  expect(Array.from(await y.data())).toEqual([0, 2, 0, 4]);
  x.dispose();
  y.dispose();
}

/** a @ b on both backends (values in [-3, 3]), compared; returns the number of dispatches the GPU used. */
async function matmulGpuVsCpu(aShape: number[], bShape: number[]): Promise<number> {
  const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
  const [av, bv] = [vals(size(aShape), 1), vals(size(bShape), 2)];
  const run = async (backend: typeof cpu | WebGpuBackend) => {
    const a = tensor(av, aShape, { backend });
    const b = tensor(bv, bShape, { backend });
    const y = matmul(a, b);
    const out = await y.data();
    for (const t of [a, b, y]) t.dispose();
    return out;
  };
  const d0 = dev.dispatches;
  const got = await run(dev);
  const dispatches = dev.dispatches - d0;
  expectClose(
    got,
    await run(cpu),
    { atol: 1e-4, rtol: 1e-4 },
    `matmul ${JSON.stringify(aShape)} @ ${JSON.stringify(bShape)}`,
  );
  return dispatches;
}

describe('device limits [webgpu, default limits]', () => {
  it('the device has WebGPU’s default limits, not the adapter’s', () => {
    const L = dev.limits;
    console.log(
      `default limits: maxStorageBufferBindingSize ${L.maxStorageBufferBindingSize}, maxBufferSize ${L.maxBufferSize}, ` +
        `maxComputeWorkgroupStorageSize ${L.maxComputeWorkgroupStorageSize}, maxComputeWorkgroupsPerDimension ${L.maxComputeWorkgroupsPerDimension}, ` +
        `maxComputeInvocationsPerWorkgroup ${L.maxComputeInvocationsPerWorkgroup}`,
    );
    expect(L.maxStorageBufferBindingSize).toBe(128 * MiB);
    expect(L.maxBufferSize).toBe(256 * MiB);
    expect(L.maxComputeWorkgroupStorageSize).toBe(16384);
    expect(L.maxComputeWorkgroupsPerDimension).toBe(65535);
  });

  it('an op whose output is over the 128 MiB binding limit throws LimitError naming the op, the shape and the limit', async () => {
    const live = dev.pool.liveBytes;
    const a = tensor(vals(8193), [8193, 1], { backend: dev });
    const b = tensor(vals(4096), [1, 4096], { backend: dev });
    // [8193, 4096] floats: 134,234,112 bytes, 16 KiB over.
    expect(() => add(a, b)).toThrow(LimitError);
    expect(() => add(a, b)).toThrow(
      /^add: tensor \[8193,4096\] needs 134234112 bytes, over this device's maxStorageBufferBindingSize of 134217728$/,
    );
    a.dispose();
    b.dispose();
    await stillWorks(live);
  });

  it('an upload over the binding limit throws LimitError before touching the device', async () => {
    const live = dev.pool.liveBytes;
    const n = 32 * MiB + 1;
    expect(() => tensor(new Float32Array(n), [n], { backend: dev })).toThrow(
      /^upload: tensor \[33554433\] needs 134217732 bytes, over this device's maxStorageBufferBindingSize of 134217728$/,
    );
    await stillWorks(live);
  });

  it('matmul with a batch of 65,536 (workgroups in z past 65,535) runs as two dispatches and matches the CPU', async () => {
    const dispatches = await matmulGpuVsCpu([65536, 2, 3], [65536, 3, 2]);
    console.log(`matmul [65536,2,3] @ [65536,3,2]: ${dispatches} dispatches`);
    expect(dispatches).toBe(2);
  });

  it('matmul with 4,194,304 rows (65,536 row tiles in y) runs as two dispatches and matches the CPU', async () => {
    const dispatches = await matmulGpuVsCpu([4194304, 2], [2, 3]);
    console.log(`matmul [4194304,2] @ [2,3]: ${dispatches} dispatches`);
    expect(dispatches).toBe(2);
  });

  it('a 1-D kernel past 65,535 workgroups folds into a 2-D grid: neg over 2^24 + 1 elements', async () => {
    const n = 2 ** 24 + 1;
    const xv = Float32Array.from({ length: n }, (_, i) => (i % 1999) - 999);
    const x = tensor(xv, [n], { backend: dev });
    const y = neg(x);
    expectClose(
      await y.data(),
      xv.map((v) => -v),
      { atol: 0, rtol: 0 },
      'neg of 2^24 + 1',
    );
    x.dispose();
    y.dispose();
  });

  it('conv2d with 4,198,400 output channels (65,600 workgroups in x) throws LimitError naming conv2d, its shapes and the limit', async () => {
    const live = dev.pool.liveBytes;
    const K = 65600 * 64;
    // 5 channels and stride 2: the implicit-GEMM kernel (fewer channels take the direct one, 1x1 stride 1 the matmul).
    const x = tensor(vals(5), [1, 1, 1, 5], { backend: dev });
    const w = tensor(new Float32Array(5 * K), [1, 1, 5, K], { backend: dev });
    const liveWithInputs = dev.pool.liveBytes;
    let err: unknown;
    try {
      conv2d(x, w, { stride: 2 });
    } catch (e) {
      err = e;
    }
    console.log(`conv2d past the grid limit: ${String(err)}`);
    expect(err).toBeInstanceOf(LimitError);
    expect((err as Error).message).toBe(
      "conv2d [1,1,1,5], [1,1,5,4198400] -> [1,1,1,4198400]: conv2d_fwd needs workgroups [65600,1,1], over this device's maxComputeWorkgroupsPerDimension of 65535",
    );
    expect(dev.pool.liveBytes, 'the output and scratch buffers went back to the pool').toBe(liveWithInputs);
    x.dispose();
    w.dispose();
    await stillWorks(live);
  });

  it('a pipeline needing more than 16 KiB of workgroup memory is refused with LimitError before it is created', async () => {
    const live = dev.pool.liveBytes;
    // matmul.wgsl with 128x128 tiles: two tiles of 16 x (32 + 1) vec4s, 16,896 bytes (Dawn's own count, checked).
    const bigTiles: Kernel<object> = {
      name: 'big_tiles',
      cpu: () => new Float32Array(1),
      gpu: ({ inputs: [a], out, ctx }) =>
        ctx.dispatch({
          shader: 'matmul',
          defines: { ACT: 'x', TN: '8u', SUBGROUP_ROWS: 'false' },
          overrides: { TILE_M: 128, TILE_N: 128 },
          workgroups: [1],
          outputs: [out],
          inputs: [a!, a!, a!],
          uniforms: Array.from({ length: 20 }, () => ({ u32: 1 })),
        }),
    };
    const a = tensor([1], [1, 1], { backend: dev });
    const compiled = dev.pipelines.compiled;
    let err: unknown;
    try {
      dev.run(bigTiles, [{ handle: a.live('test').handle, spec: a }], { shape: [1, 1], dtype: 'float32' }, {});
    } catch (e) {
      err = e;
    }
    console.log(`workgroup memory: ${String(err)}`);
    expect(err).toBeInstanceOf(LimitError);
    expect((err as Error).message).toMatch(
      /^big_tiles \[1,1\] -> \[1,1\]: matmul \{"TILE_M":128,"TILE_N":128\} needs 16896 bytes of workgroup memory, over this device's maxComputeWorkgroupStorageSize of 16384$/,
    );
    expect(dev.pipelines.compiled, 'no pipeline was created').toBe(compiled);
    await dev.sync();
    expect(dev.errors, 'no validation error reached the device').toEqual([]);
    a.dispose();
    await stillWorks(live);
  });

  it('attention at head dim 128, whose fused backward needs more than 16 KiB, takes the composed path and trains', async () => {
    const live = dev.pool.liveBytes;
    const [B, H, T, D] = [1, 2, 5, 128];
    const mk = (seed: number, b: typeof cpu | WebGpuBackend) =>
      tensor(vals(B * H * T * D, seed), [B, H, T, D], { backend: b }).variable();
    const run = async (b: typeof cpu | WebGpuBackend) => {
      const [q, k, v] = [mk(1, b), mk(2, b), mk(3, b)];
      const loss = tidy(() => sum(square(attention(q, k, v, { causal: true }))));
      backward(loss);
      const out = { loss: await loss.data(), dq: await q.grad!.data(), dv: await v.grad!.data() };
      for (const t of [q, k, v]) {
        t.grad!.dispose();
        t.dispose();
      }
      loss.dispose();
      return out;
    };
    const [want, got] = [await run(cpu), await run(dev)];
    const tol = { atol: 1e-3, rtol: 1e-4 };
    expectClose(got.loss, want.loss, tol, 'loss');
    expectClose(got.dq, want.dq, tol, 'dq');
    expectClose(got.dv, want.dv, tol, 'dv');
    expect(dev.errors, 'no validation error reached the device').toEqual([]);
    await stillWorks(live);
  });

  it('every shader is sized from its WGSL, and every tile configuration matmul and conv use fits the default limits', () => {
    const L = dev.limits;
    const rows: string[] = [];
    // TN: the columns per thread matmul's kernels take from the op (a define: 8 on a GPU, 16 on a CPU one).
    for (const [name, src] of Object.entries(SHADERS)) {
      const { size, storage } = workgroupNeeds(src, { TN: 8 });
      rows.push(`${name} ${size.join('x')} ${storage} B`);
    }
    console.log(`workgroup size and memory with default overrides: ${rows.join('; ')}`);
    // conv's tilesFor: TILE_N 8..64, TILE_M up to min(128, 4096 / TILE_N).
    const configs: [string, Record<string, number>][] = [
      ['matmul', { TILE_M: 64, TILE_N: 64, TILE_K: 16, TN: 8 }],
      ['matmul', { TILE_M: 64, TILE_N: 64, TILE_K: 16, TN: 16 }],
    ];
    for (const shader of ['conv2d_fwd', 'conv2d_bwd_x', 'conv2d_bwd_w']) {
      for (const TILE_N of [8, 16, 32, 64])
        configs.push([shader, { TILE_M: Math.min(128, 4096 / TILE_N), TILE_N, TILE_K: 16 }]);
    }
    for (const [shader, o] of configs) {
      const { size, storage } = workgroupNeeds(SHADERS[shader as keyof typeof SHADERS], o);
      expect(storage, `${shader} ${JSON.stringify(o)}`).toBeLessThanOrEqual(L.maxComputeWorkgroupStorageSize);
      expect(size[0] * size[1] * size[2], `${shader} ${JSON.stringify(o)}`).toBeLessThanOrEqual(
        L.maxComputeInvocationsPerWorkgroup,
      );
    }
  });
});

describe('out of memory [webgpu, fault injection]', () => {
  /** Empties the pool, then puts one 1 MiB buffer in it: every other size class must be allocated. */
  function fillPool(): void {
    dev.flush();
    dev.pool.empty();
    dev.pool.submitted();
    tensor(new Float32Array(MiB / 4), [MiB / 4], { backend: dev }).dispose();
    expect(dev.pool.pooledBytes).toBeGreaterThanOrEqual(MiB);
  }

  it('one failed allocation empties the pool and the retry succeeds', async () => {
    fillPool();
    const created = dev.pool.created;
    dev.pool.failNext = 1;
    const x = tensor(vals(3001), [3001], { backend: dev }); // a size class the pool does not hold
    expect(dev.pool.failNext, 'the injected failure was used').toBe(0);
    expect(dev.pool.pooledBytes, 'pool emptied before the retry').toBe(0);
    expect(dev.pool.created, 'one buffer created, by the retry').toBe(created + 1);
    expectClose(await x.data(), vals(3001), { atol: 0, rtol: 0 }, 'the retried upload');
    x.dispose();
  });

  it('two failed allocations throw OutOfMemoryError with the requested, live and pooled bytes; the engine stays usable', async () => {
    fillPool();
    const x = tensor(vals(5003), [5003], { backend: dev });
    relu(x).dispose(); // the pool now holds relu's output class too
    const live = dev.pool.liveBytes;
    const pooled = dev.pool.pooledBytes;
    dev.pool.failNext = 2;
    let err: unknown;
    try {
      add(x, x).dispose(); // same class as relu's output: served by the pool, no allocation
      neg(tensor([1, 2], [2, 1], { backend: dev })); // [2,1]: 256 B class, not pooled: allocates, fails twice
    } catch (e) {
      err = e;
    }
    console.log(`two failures: ${String(err)}`);
    expect(err).toBeInstanceOf(OutOfMemoryError);
    const oom = err as OutOfMemoryError;
    expect(oom.requestedBytes).toBe(sizeClass(8));
    expect(oom.liveBytes).toBe(live);
    expect(oom.pooledBytes).toBe(pooled);
    expect(oom.message).toMatch(
      /^upload: tensor \[2,1\]: the device could not allocate 256 bytes, even after the pool freed its \d+ bytes; \d+ bytes are held by live tensors/,
    );
    expect(dev.pool.failNext).toBe(0);
    expect(dev.pool.pooledBytes).toBe(0);
    // Usable: the same allocation now succeeds, and ops compute.
    const z = neg(x);
    expectClose(
      await z.data(),
      vals(5003).map((v) => -v),
      { atol: 0, rtol: 0 },
      'neg after the failure',
    );
    z.dispose();
    x.dispose();
    await stillWorks(dev.pool.liveBytes);
  });

  it('an out-of-memory error the device reports later (its error scope) empties the pool and rejects the next read', async () => {
    fillPool();
    const scope = dev.device.popErrorScope.bind(dev.device);
    // The real scope is popped; its answer is replaced by the error a device out of memory gives.
    const spy = vi
      .spyOn(dev.device, 'popErrorScope')
      .mockImplementationOnce(() => scope().then(() => ({ message: 'Out of memory (simulated)' }) as GPUError));
    const x = tensor(vals(7001), [7001], { backend: dev }); // a new size class: created under the spied scope
    spy.mockRestore();
    let err: unknown;
    try {
      await x.data();
    } catch (e) {
      err = e;
    }
    console.log(`late failure: ${String(err)}`);
    expect(err).toBeInstanceOf(OutOfMemoryError);
    expect((err as OutOfMemoryError).requestedBytes).toBe(sizeClass(7001 * 4));
    expect((err as Error).message).toMatch(
      /^upload: tensor \[7001\]: the device ran out of memory allocating 28672 bytes .*Out of memory \(simulated\)$/,
    );
    expect(dev.pool.pooledBytes, "the pooled 1 MiB was freed (what remains is the read's staging buffer)").toBe(
      sizeClass(7001 * 4),
    );
    // Reported once; the next read succeeds.
    expectClose(await x.data(), vals(7001), { atol: 0, rtol: 0 }, 'read after the reported failure');
    x.dispose();
    await stillWorks(dev.pool.liveBytes);
  });
});
