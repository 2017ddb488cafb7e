// The runtime under the ops: scopes free what they should, the pool reuses buffers, dispatches batch into one
// submit, uniforms from the arena stay per-dispatch, uploads never overwrite a buffer a queued op still reads,
// device loss is reported, and init() picks or refuses backends as documented.
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { sizeClass } from '../src/backend/webgpu/pool.js';
import { DeviceLostError } from '../src/errors.js';
import { createWebGpuBackend } from '../src/init.js';
import { leakyRelu, neg, relu, square } from '../src/ops/index.js';
import { keep, memory, tensor, tidy, type Tensor } from '../src/tensor.js';
import { cpu, expectClose, gpuBackend } from './helpers.js';

let gpu: WebGpuBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
});

const vals = (n: number, seed = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 3);

describe('buffer pool [webgpu]', () => {
  it('size classes round up by at most 25% and never shrink', () => {
    for (const n of [1, 4, 255, 256, 257, 1000, 4097, 65536, 1e6 + 3, 3e8]) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c).toBeLessThanOrEqual(Math.max(256, n * 1.25));
    }
    expect(sizeClass(1000)).toBe(sizeClass(1024)); // one class serves nearby sizes
  });

  it('memory() returns to its baseline after a scope that ran 100 ops [webgpu]', async () => {
    const x = tensor(vals(1000), [10, 100], { backend: gpu });
    await x.data();
    const before = memory(gpu);
    const out = tidy(() => {
      let y: Tensor = x;
      for (let i = 0; i < 100; i++) y = i % 2 ? relu(y) : neg(y);
      return y;
    });
    const during = memory(gpu);
    expect(during.liveTensors).toBe(before.liveTensors + 1);
    const got = await out.data();
    out.dispose();
    const after = memory(gpu);
    expect(after.liveTensors).toBe(before.liveTensors);
    expect(after.liveBytes).toBe(before.liveBytes);
    // 100 ops alternating neg/relu: the result is relu(-x) after the last neg... check against the CPU.
    const xc = tensor(vals(1000), [10, 100], { backend: cpu });
    const want = tidy(() => {
      let y: Tensor = xc;
      for (let i = 0; i < 100; i++) y = i % 2 ? relu(y) : neg(y);
      return y;
    });
    expectClose(got, await want.data(), { atol: 0, rtol: 0 }, 'chain of 100');
    want.dispose();
    xc.dispose();
    x.dispose();
  });

  it('a steady loop creates no new GPU buffers after the first iterations; pool hits grow [webgpu]', async () => {
    const x = tensor(vals(4096), [64, 64], { backend: gpu });
    const step = async () => {
      const y = tidy(() => square(relu(neg(x))));
      await y.data();
      y.dispose();
    };
    for (let i = 0; i < 3; i++) await step();
    const a = memory(gpu);
    for (let i = 0; i < 50; i++) await step();
    const b = memory(gpu);
    expect(b.buffersCreated).toBe(a.buffersCreated);
    expect(b.poolHits - a.poolHits).toBeGreaterThanOrEqual(50 * 3);
    expect(b.liveBytes).toBe(a.liveBytes);
    console.log(
      `steady loop: ${b.buffersCreated} buffers created in all, +${b.poolHits - a.poolHits} pool hits over 50 steps`,
    );
    x.dispose();
  });

  it('the pool keeps at most its cap [webgpu]', async () => {
    const small = await createWebGpuBackend({ poolCapBytes: 64 * 1024 });
    const ts = Array.from({ length: 20 }, (_, i) => tensor(vals(4096, i), [4096], { backend: small! }));
    for (const t of ts) t.dispose();
    expect(small!.memory().pooledBytes).toBeLessThanOrEqual(64 * 1024);
    expect(small!.memory().liveBytes).toBe(0);
    small!.destroy();
  });
});

describe('scopes and views', () => {
  it('tidy frees intermediates, keeps returned and kept tensors, nests', async () => {
    const base = memory(cpu).liveTensors;
    let kept!: Tensor;
    const r = tidy(() => {
      const a = tensor([1, -2, 3], [3], { backend: cpu });
      const b = relu(a);
      kept = keep(neg(a));
      const inner = tidy(() => square(b));
      return { inner, list: [b] };
    });
    expect(memory(cpu).liveTensors).toBe(base + 3);
    expect(Array.from(await r.inner.data())).toEqual([1, 0, 9]);
    expect(Array.from(await r.list[0]!.data())).toEqual([1, 0, 3]);
    expect(Array.from(await kept.data())).toEqual([-1, 2, -3]);
    for (const t of [r.inner, r.list[0]!, kept]) t.dispose();
    expect(memory(cpu).liveTensors).toBe(base);
  });

  it('dispose is idempotent; a tensor used after dispose throws naming the op', () => {
    const a = tensor([1, 2], [2], { backend: cpu });
    a.dispose();
    a.dispose();
    expect(() => relu(a)).toThrow(/relu: tensor #\d+ \[2\] was disposed/);
    expect(a.isDisposed).toBe(true);
  });
});

describe('dispatch batching [webgpu]', () => {
  it('a chain of ops is one submit, made at the readback', async () => {
    const x = tensor(vals(333), [333], { backend: gpu });
    await x.data();
    const s0 = gpu.submits;
    const y = tidy(() => {
      let t: Tensor = x;
      for (let i = 0; i < 40; i++) t = neg(t);
      return t;
    });
    expect(gpu.submits).toBe(s0);
    expectClose(await y.data(), vals(333), { atol: 0, rtol: 0 }, '40 negations');
    expect(gpu.submits).toBe(s0 + 1);
    x.dispose();
    y.dispose();
  });

  it('each dispatch in a batch keeps its own uniforms (arena slots) [webgpu]', async () => {
    const n = 257;
    const xs = vals(n);
    const run = async (b: typeof cpu | WebGpuBackend) => {
      const x = tensor(xs, [n], { backend: b });
      const outs = tidy(() => Array.from({ length: 300 }, (_, i) => leakyRelu(x, i / 300)));
      const data = await Promise.all(outs.map((o) => o.data()));
      for (const o of outs) o.dispose();
      x.dispose();
      return data;
    };
    const [want, got] = [await run(cpu), await run(gpu)];
    got.forEach((g, i) => expectClose(g, want[i]!, { atol: 1e-6, rtol: 1e-6 }, `alpha ${i}/300`));
  });

  it('an upload never overwrites a buffer that a queued op still reads [webgpu]', async () => {
    const a = vals(1024, 1);
    const x = tensor(a, [1024], { backend: gpu });
    await x.data();
    const y = neg(x); // queued, not submitted
    x.dispose(); // x's buffer goes back to the pool...
    const z = tensor(vals(1024, 2), [1024], { backend: gpu }); // ...and is reused here
    expectClose(
      await y.data(),
      a.map((v) => -v),
      { atol: 0, rtol: 0 },
      'neg of the old data',
    );
    expectClose(await z.data(), vals(1024, 2), { atol: 0, rtol: 0 }, 'new upload');
    y.dispose();
    z.dispose();
  });
});

describe('device loss [webgpu]', () => {
  it('pending reads reject and the next op throws DeviceLostError', async () => {
    const b = (await createWebGpuBackend())!;
    const x = tensor(vals(64), [64], { backend: b });
    const pending = neg(x).data();
    b.device.destroy();
    await expect(pending).rejects.toThrow(DeviceLostError);
    await vi.waitFor(() => expect(b.isLost).toBe(true));
    expect(() => relu(x)).toThrow(DeviceLostError);
    expect(() => relu(x)).toThrow(/relu: the WebGPU device was lost/);
  });
});

describe('init', () => {
  it('falls back to the CPU loudly without an adapter, and refuses when WebGPU is required', async () => {
    vi.resetModules();
    vi.doMock('../src/platform/gpu.js', () => ({
      getGPU: async () => undefined,
      openDevice: async () => undefined,
      wasmReason: async () => undefined,
    }));
    const mod = await import('../src/init.js');
    const errors = await import('../src/errors.js');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const b = await mod.init();
    expect(b.name).toBe('cpu');
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/NO WEBGPU ADAPTER/));
    warn.mockRestore();
    await expect(mod.init({ backend: 'webgpu' })).rejects.toThrow(errors.BackendError);
    await expect(mod.init({ backend: 'webgpu' })).rejects.toThrow(/init: no WebGPU adapter/);
    mod.shutdown();
    vi.doUnmock('../src/platform/gpu.js');
    vi.resetModules();
  });

  it('picks the WASM backend on a software adapter (this machine: lavapipe) and says why; WebGPU and the CPU on request', async () => {
    const { init, shutdown } = await import('../src/init.js');
    const { BackendError: NoBackend } = await import('../src/errors.js');
    const { tensor: tensorDefault } = await import('../src/tensor.js');
    const info = vi.spyOn(console, 'info').mockImplementation(() => {});
    const w = await init();
    expect(w.name).toBe('wasm');
    expect(info).toHaveBeenCalledWith(
      expect.stringMatching(/software one \(.*llvmpipe.*\): using the WebAssembly backend/),
    );
    info.mockRestore();
    const g = await init({ backend: 'webgpu' });
    expect(g.name).toBe('webgpu');
    expect(g.description).toMatch(/\S/);
    const c = await init({ backend: 'cpu' });
    expect(c.name).toBe('cpu');
    shutdown();
    expect(() => tensorDefault([1])).toThrow(NoBackend);
  });

  it('picks WebGPU on a GPU adapter (the adapter is not a software one)', async () => {
    vi.resetModules();
    const real = await import('../src/platform/gpu.js');
    vi.doMock('../src/platform/gpu.js', () => ({ ...real, wasmReason: async () => undefined }));
    const mod = await import('../src/init.js');
    const g = await mod.init();
    expect(g.name).toBe('webgpu');
    mod.shutdown();
    vi.doUnmock('../src/platform/gpu.js');
    vi.resetModules();
  });

  it('reinit after a lost device: a new backend of the kind and options init() used, made the default', async () => {
    const { init, reinit, backend, shutdown } = await import('../src/init.js');
    const { tensor: tensorDefault } = await import('../src/tensor.js');
    const g = (await init({ backend: 'webgpu', poolCapBytes: 1 << 20 })) as WebGpuBackend;
    g.device.destroy();
    await vi.waitFor(() => expect(g.isLost).toBe(true));
    const n = (await reinit()) as WebGpuBackend;
    expect(n.name).toBe('webgpu');
    expect(n).not.toBe(g);
    expect(backend()).toBe(n);
    expect(n.pool.capBytes).toBe(1 << 20);
    const t = tensorDefault([1, 2]);
    expect(t.backend).toBe(n);
    expect(Array.from(await t.data())).toEqual([1, 2]);
    t.dispose();
    // Given its own way to open a device (a test's, an app's), reinit makes that one the default.
    const own = (await createWebGpuBackend())!;
    expect(await reinit(async () => own)).toBe(own);
    expect(backend()).toBe(own);
    expect(tensorDefault([3]).backend).toBe(own);
    shutdown();
  });
});
