// `init()`: picks the backend. WebGPU when a GPU adapter exists (Dawn in Node, navigator.gpu in a browser); the
// WebAssembly SIMD backend where the adapter is a software one (lavapipe, SwiftShader: there wasm trains the seed
// models 5-6x faster) and in a browser without WebGPU, said once; else the CPU reference backend, said loudly. `init({ backend: 'webgpu' })` insists
// and throws without an adapter; `init({ backend: 'wasm' })` opens the WASM backend anywhere.
import type { Backend } from './backend/backend.js';
import { CpuBackend } from './backend/cpu/cpu.js';
import { WasmBackend, type WasmOptions } from './backend/wasm/wasm.js';
import { WebGpuBackend, type WebGpuOptions } from './backend/webgpu/webgpu.js';
import { BackendError } from './errors.js';
import { getGPU, openDevice, wasmReason, type DeviceRequest } from './platform/gpu.js';
import { setDefaultBackend } from './tensor.js';

/** Options of `init()`: which backend, and the WebGPU device's or the WASM backend's settings. */
export interface InitOptions extends DeviceRequest, WebGpuOptions, WasmOptions {
  backend?: 'auto' | 'webgpu' | 'wasm' | 'cpu';
  /** Silence the fallback warning. */
  quiet?: boolean;
}

let current: Backend | undefined;
/** The options and the kind of backend of the last `init()`, for `reinit()`. */
let last: { opts: InitOptions; kind: Backend['name'] } | undefined;

/** Opens a WebGPU backend without making it the default; undefined when there is no adapter. */
export async function createWebGpuBackend(
  opts: DeviceRequest & WebGpuOptions = {},
): Promise<WebGpuBackend | undefined> {
  const gpu = await getGPU();
  const opened = gpu && (await openDevice(gpu, opts));
  return opened && new WebGpuBackend(opened.device, opened.info, opts);
}

/**
 * Opens the backend all tensors default to: `backend: 'webgpu'` (an adapter or an error), `'wasm'` (WebAssembly
 * SIMD on worker threads), `'cpu'` (the reference), or `'auto'` (default: WebGPU on a GPU adapter; the WASM backend
 * where the adapter is a software one, lavapipe or SwiftShader, and in a browser without WebGPU, said on the console;
 * else the CPU reference, said loudly). It measures nothing: the choice comes from the adapter's info. In a browser
 * the WASM backend has worker threads only on a cross-origin isolated page (COOP/COEP headers); its description says
 * when it runs on one thread for want of it.
 */
export async function init(opts: InitOptions = {}): Promise<Backend> {
  const want = opts.backend ?? 'auto';
  current?.destroy();
  current = undefined;
  let b: Backend | undefined;
  const why = want === 'auto' ? await wasmReason(opts) : undefined;
  if (want === 'wasm') b = await WasmBackend.create(opts);
  else if (why) {
    try {
      b = await WasmBackend.create(opts);
      const anyway = why.software ? ", which is faster there; init({ backend: 'webgpu' }) uses the adapter anyway" : '';
      if (!opts.quiet) console.info(`wgnn: ${why.reason}: using the WebAssembly backend (${b.description})${anyway}`);
    } catch (e) {
      // A browser without WebAssembly SIMD or threads' building blocks: the reference backend still runs.
      if (!opts.quiet)
        console.warn(
          `wgnn: ******** ${why.reason}, and the WebAssembly backend did not start (${(e as Error).message}): falling back to the CPU reference backend (slow) ********`,
        );
    }
  } else if (want !== 'cpu') {
    b = await createWebGpuBackend(opts);
    if (!b && want === 'webgpu') {
      throw new BackendError(
        'init: no WebGPU adapter found (in Node: the `webgpu` package found no Vulkan/Metal/D3D adapter; on Linux without a GPU install Mesa >= 25 lavapipe); use init() to fall back to the CPU',
      );
    }
    if (!b && !opts.quiet) {
      console.warn('wgnn: ******** NO WEBGPU ADAPTER: falling back to the CPU reference backend (slow) ********');
    }
  }
  b ??= new CpuBackend();
  current = b;
  last = { opts, kind: b.name };
  setDefaultBackend(b);
  return b;
}

/**
 * After a lost device: opens a new backend and makes it the default (and what `backend()` returns), dropping the one
 * `init()` opened. `open` makes it (e.g. a test's own device); without it, a backend of the kind the last `init()`
 * chose, with the same options (WebGPU when init() was never called). Training code that recovers (`fit` with a
 * checkpoint) calls this and never opens a device itself.
 */
export async function reinit(open?: () => Promise<Backend>): Promise<Backend> {
  if (!open) return init({ ...last?.opts, backend: last?.kind ?? 'webgpu' });
  const b = await open();
  if (current !== b) current?.destroy();
  current = b;
  setDefaultBackend(b);
  return b;
}

/** The backend `init()` chose. */
export function backend(): Backend {
  if (!current) throw new BackendError('wgnn: no backend; call `await wg.init()` first');
  return current;
}

/** Releases the device so a Node process can exit; `init()` again to continue. */
export function shutdown(): void {
  current?.destroy();
  current = undefined;
  setDefaultBackend(undefined);
}
