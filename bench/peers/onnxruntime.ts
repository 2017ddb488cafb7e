// onnxruntime as the ONNX inference peer: onnxruntime-web on its WebGPU execution provider (the JSEP build, what a
// browser page gets from `onnxruntime-web`), in Node on the bench's Dawn `navigator.gpu`, so on wgnn's adapter; and
// onnxruntime-node on the CPU (the oracle of test/interop-onnx.test.ts) beside wgnn's WASM backend.
import type { HostTensor } from './peer.js';

/** One loaded model: runs a batch from host memory to host memory (upload, graph, read-back), as a user calls it. */
export interface OrtSession {
  run(x: HostTensor): Promise<Float32Array>;
  release(): Promise<void>;
}

export interface OrtPeer {
  readonly name: string;
  /** Version, execution provider and adapter, for the report. */
  readonly description: string;
  open(bytes: Uint8Array): Promise<OrtSession>;
}

/** What both onnxruntime packages export that the bench uses (their types differ only in where they come from). */
interface Ort {
  env: { versions?: Record<string, string>; wasm: { numThreads?: number }; webgpu: { adapter?: GPUAdapter } };
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: number[]) => unknown;
  InferenceSession: {
    create(
      bytes: Uint8Array,
      opts: { executionProviders: string[] },
    ): Promise<{
      inputNames: readonly string[];
      outputNames: readonly string[];
      run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown }>>;
      release(): Promise<void>;
    }>;
  };
}

async function session(ort: Ort, bytes: Uint8Array, ep: string, alive: boolean): Promise<OrtSession> {
  const s = await ort.InferenceSession.create(bytes, { executionProviders: [ep] });
  const input = s.inputNames[0]!;
  const output = s.outputNames[0]!;
  return {
    run: async (x) => {
      // Token ids are int64 in the file, as torch.onnx writes them.
      const feed =
        x.data instanceof Int32Array
          ? new ort.Tensor(
              'int64',
              BigInt64Array.from(x.data, (v) => BigInt(v)),
              x.shape,
            )
          : new ort.Tensor('float32', x.data, x.shape);
      // NOTE: Dawn's Node binding holds no reference on the event loop while a mapAsync is pending, so without a timer
      // Node exits in the middle of onnxruntime-web's read-back (wgnn's own read-back is awaited the same way).
      const timer = alive ? setInterval(() => {}, 1000) : undefined;
      try {
        const out = await s.run({ [input]: feed });
        return out[output]!.data as Float32Array;
      } finally {
        clearInterval(timer);
      }
    },
    release: () => s.release(),
  };
}

let shimmed = false;
/**
 * onnxruntime-web's wasm memory is a SharedArrayBuffer (its threaded build) and it uploads straight from it; Dawn's
 * Node binding accepts no SharedArrayBuffer in `writeBuffer` (a browser does). This copies such uploads (the bytes
 * written only) into an ordinary buffer first; wgnn never passes one, so its uploads take the original path.
 */
function shimSharedUploads(): void {
  if (shimmed) return;
  shimmed = true;
  const write = GPUQueue.prototype.writeBuffer;
  GPUQueue.prototype.writeBuffer = function (
    this: GPUQueue,
    buffer: GPUBuffer,
    offset: number,
    data: BufferSource | SharedArrayBuffer,
    dataOffset?: number,
    size?: number,
  ): undefined {
    if (data instanceof SharedArrayBuffer) {
      const at = dataOffset ?? 0;
      return write.call(this, buffer, offset, new Uint8Array(data, at, size ?? data.byteLength - at).slice());
    }
    if (ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer) {
      const el = (data as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
      const at = (dataOffset ?? 0) * el;
      const bytes = size === undefined ? data.byteLength - at : size * el;
      return write.call(this, buffer, offset, new Uint8Array(data.buffer, data.byteOffset + at, bytes).slice());
    }
    return write.call(this, buffer, offset, data as BufferSource, dataOffset, size);
  } as GPUQueue['writeBuffer'];
}

/**
 * onnxruntime-web with the `webgpu` execution provider. Call after the bench installed `navigator.gpu`: it asks that
 * Dawn instance for its adapter. One wasm thread: Node has no global `Worker` for its thread pool.
 */
export async function loadOrtWeb(): Promise<OrtPeer> {
  if (!(globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu) throw new Error('no navigator.gpu');
  shimSharedUploads();
  const pkg = 'onnxruntime-web/all'; // the browser's default build (JSEP), which holds the WebGPU EP
  const ort = (await import(/* @vite-ignore */ pkg)) as Ort;
  ort.env.wasm.numThreads = 1;
  // Opening a first session initialises the EP (it requests its adapter and device); describe that adapter.
  return {
    name: 'onnxruntime-web',
    get description() {
      const a = ort.env.webgpu.adapter?.info;
      const on = a ? `${a.vendor} / ${a.architecture} / ${a.device}` : 'WebGPU';
      return `onnxruntime-web ${ort.env.versions?.web ?? '?'} (webgpu EP, JSEP build, 1 wasm thread) on ${on}`;
    },
    open: (bytes) => session(ort, bytes, 'webgpu', true),
  };
}

/** onnxruntime-node on the CPU execution provider (its default thread pool: one thread per core). */
export async function loadOrtNode(): Promise<OrtPeer> {
  const pkg = 'onnxruntime-node';
  const ort = (await import(/* @vite-ignore */ pkg)) as Ort;
  return {
    name: 'onnxruntime-node',
    description: `onnxruntime-node ${ort.env.versions?.node ?? ort.env.versions?.common ?? '?'} (cpu EP)`,
    open: (bytes) => session(ort, bytes, 'cpu', false),
  };
}
