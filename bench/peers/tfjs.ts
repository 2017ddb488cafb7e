// TensorFlow.js's WebGPU backend (@tensorflow/tfjs-backend-webgpu 4.22.0) as a benchmark peer, run in Node through
// the same Dawn instance as wgnn: its conv2d forward, input gradient, filter gradient and matmul on host inputs,
// each enqueued R times between syncs by the caller.
import type * as TfCore from '@tensorflow/tfjs-core';
import { getGPU } from '../../src/platform/gpu.js';

type Tf = typeof TfCore;

/** Host data and its shape (NHWC images, [R,S,C,K] filters, [M,K] matrices). */
export interface HostTensor {
  data: Float32Array;
  shape: number[];
}

export interface ConvAttrs {
  stride: number;
  padding: 'valid' | 'same';
  dilation: number;
}

/** One TF.js computation on fixed GPU-resident inputs. */
export interface PeerRun {
  /** Which TF.js kernel runs (for the report). */
  readonly kernel: string;
  /** Enqueues one run and frees its result (TF.js defers the free until its commands are submitted). */
  enqueue(): void;
  /** Runs once and reads the result back; also says whether TF.js kept the result on the GPU. */
  result(): Promise<{ data: Float32Array; onGpu: boolean }>;
  dispose(): void;
}

export interface TfjsPeer {
  readonly description: string;
  conv2d(x: HostTensor, w: HostTensor, a: ConvAttrs): PeerRun;
  /** dx [N,H,W,C] from dy [N,P,Q,K] and w [R,S,C,K]. */
  conv2dBwdX(dy: HostTensor, w: HostTensor, xShape: number[], a: ConvAttrs): PeerRun;
  /** dw [R,S,C,K] from x [N,H,W,C] and dy [N,P,Q,K]. */
  conv2dBwdW(x: HostTensor, dy: HostTensor, wShape: number[], a: ConvAttrs): PeerRun;
  matmul(a: HostTensor, b: HostTensor): PeerRun;
  /** Submits what TF.js has encoded and waits until the GPU has run it (as wgnn's `sync()`). */
  sync(): Promise<void>;
  close(): void;
}

// The parts of tfjs-backend-webgpu's WebGPUBackend used here. All are public in its typings but `commandEncoder`
// (null when nothing is pending; submitQueue() then throws).
interface TfWebGpuBackend {
  device: GPUDevice;
  queue: GPUQueue;
  adapterInfo?: { vendor?: string; architecture?: string };
  tensorMap: { get(dataId: object): { resource?: unknown } | undefined };
  endComputePassEncoder(): void;
  submitQueue(): void;
  commandEncoder: GPUCommandEncoder | null;
}

let imported: Promise<Tf> | undefined;

/**
 * Loads TF.js with its WebGPU backend on wgnn's Dawn instance. Throws, saying why, when it cannot run here.
 * NOTE: sets `globalThis.navigator` (Node 20 has none) for the rest of the process: TF.js registers its WebGPU
 * backend only if `navigator.gpu` exists when the package is imported, and asks it for its own adapter and device.
 */
export async function loadTfjs(): Promise<TfjsPeer> {
  imported ??= importTfjs();
  const tf = await imported;
  // NOTE: WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD cannot be changed from here: backend_webgpu.js copies it into a module
  // constant when imported, and the flag is only registered by that same import. WEBGPU_CPU_FORWARD = false (read
  // on every op; what TF.js's own WebGPU test suite sets) turns the CPU handoff off altogether.
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") failed (no adapter or device for TF.js)');
  await tf.ready();
  tf.enableProdMode(); // no per-op NaN checks or debug readbacks
  return makePeer(tf);
}

async function importTfjs(): Promise<Tf> {
  // Dawn's instance is held in src/platform/gpu.ts for the life of the process; navigator only borrows it.
  const gpu = await getGPU();
  if (!gpu) throw new Error('no WebGPU entry point (the `webgpu` package did not load)');
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu !== gpu) {
    const { availableParallelism } = await import('node:os');
    Object.defineProperty(globalThis, 'navigator', {
      value: { ...nav, gpu, userAgent: `Node.js/${process.versions.node}`, hardwareConcurrency: availableParallelism() },
      configurable: true,
      writable: true,
    });
  }
  let tf: Tf;
  try {
    tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new Error(`cannot import @tensorflow/tfjs-core / @tensorflow/tfjs-backend-webgpu (npm install): ${msg(e)}`);
  }
  if (!tf.findBackendFactory('webgpu')) throw new Error('tfjs-backend-webgpu did not register (navigator.gpu missing at import)');
  return tf;
}

function makePeer(tf: Tf): TfjsPeer {
  const backend = tf.backend() as unknown as TfWebGpuBackend;
  const info = backend.adapterInfo;
  const upload = (h: HostTensor): TfCore.Tensor => tf.tensor(h.data, h.shape, 'float32');
  const prepare = (kernel: string, inputs: HostTensor[], op: (ts: TfCore.Tensor[]) => TfCore.Tensor): PeerRun => {
    const ts = inputs.map(upload);
    return {
      kernel,
      enqueue: () => op(ts).dispose(),
      result: async () => {
        const y = op(ts);
        const onGpu = backend.tensorMap.get(y.dataId)?.resource instanceof GPUBuffer;
        const data = (await y.data()) as Float32Array;
        y.dispose();
        return { data, onGpu };
      },
      dispose: () => ts.forEach((t) => t.dispose()),
    };
  };
  const check = (a: ConvAttrs, what: string): void => {
    if (a.dilation !== 1) throw new Error(`TF.js ${what} takes no dilation (its WebGPU kernel fixes it at 1)`);
  };
  return {
    description: `@tensorflow/tfjs-backend-webgpu ${tf.version_core} on ${[info?.vendor, info?.architecture].filter(Boolean).join(' / ') || 'an unnamed adapter'}`,
    conv2d: (x, w, a) =>
      prepare('Conv2D', [x, w], ([x, w]) => tf.conv2d(x as TfCore.Tensor4D, w as TfCore.Tensor4D, a.stride, a.padding, 'NHWC', a.dilation)),
    // tf.conv2dTranspose(dy, w, xShape) is a direct call of the Conv2DBackpropInput kernel (the gradient of conv2d
    // with respect to x), so this times that kernel itself. By default (flag WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE) it
    // is TF.js's direct, not its matmul-based, program.
    conv2dBwdX: (dy, w, xShape, a) => {
      check(a, 'Conv2DBackpropInput');
      return prepare('Conv2DBackpropInput', [dy, w], ([dy, w]) =>
        tf.conv2dTranspose(dy as TfCore.Tensor4D, w as TfCore.Tensor4D, xShape as [number, number, number, number], a.stride, a.padding),
      );
    },
    // Conv2DBackpropFilter has no public op; tf.grad(conv2d) would also run the forward, so call the kernel.
    conv2dBwdW: (x, dy, wShape, a) => {
      check(a, 'Conv2DBackpropFilter');
      return prepare('Conv2DBackpropFilter', [x, dy], ([x, dy]) =>
        tf.engine().runKernel('Conv2DBackpropFilter', { x: x!, dy: dy! }, {
          strides: a.stride,
          pad: a.padding,
          dataFormat: 'NHWC',
          dimRoundingMode: undefined,
          filterShape: wShape,
        } as unknown as TfCore.NamedAttrMap) as TfCore.Tensor,
      );
    },
    matmul: (a, b) => prepare('BatchMatMul', [a, b], ([a, b]) => tf.matMul(a!, b!)),
    // The flush of TF.js's own readback (getBufferData), without the copy and map.
    sync: async () => {
      backend.endComputePassEncoder();
      if (backend.commandEncoder) backend.submitQueue();
      await backend.queue.onSubmittedWorkDone();
    },
    close: () => {
      // Disposes every TF.js tensor and backend (flags too); a later loadTfjs() makes a new backend and device.
      const device = backend.device;
      tf.engine().reset();
      device.destroy();
    },
  };
}

const msg = (e: unknown): string => (e instanceof Error ? e.message : String(e));
