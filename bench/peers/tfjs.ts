// TensorFlow.js's WebGPU backend (@tensorflow/tfjs-backend-webgpu 4.22.0) as a benchmark peer, run in Node through
// the same Dawn instance as wgnn (its own device on the same adapter). Families build runners with `prepare`, giving
// the TF.js ops to time on GPU-resident copies of their inputs.
import type * as TfCore from '@tensorflow/tfjs-core';
import { installNavigator } from '../platform.js';
import { msg, type HostTensor, type Peer, type Runner } from './peer.js';

export type Tf = typeof TfCore;

export interface TfjsPeer extends Peer {
  readonly tf: Tf;
  /**
   * A runner for `op` on each input set (uploaded once). `post` turns the result's data into wgnn's layout. The
   * result must stay on the GPU (TF.js hands tensors under 1,000 elements to the CPU unless told not to): a runner
   * whose result TF.js computed on the CPU throws when read.
   */
  prepare(
    kernel: string,
    sets: HostTensor[][],
    op: (ts: TfCore.Tensor[]) => TfCore.Tensor,
    opts?: { note?: string },
  ): Runner;
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
 * NOTE: TF.js registers its WebGPU backend only if `navigator.gpu` exists when the package is imported, so the
 * import is dynamic and comes after installNavigator().
 */
export async function loadTfjs(): Promise<TfjsPeer> {
  imported ??= importTfjs();
  const tf = await imported;
  // NOTE: WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD cannot be changed from here: backend_webgpu.js copies it into a module
  // constant when imported, and the flag is only registered by that same import. WEBGPU_CPU_FORWARD = false (read
  // on every op; what TF.js's own WebGPU test suite sets) turns the CPU handoff off altogether.
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  if (!(await tf.setBackend('webgpu')))
    throw new Error('tf.setBackend("webgpu") failed (no adapter or device for TF.js)');
  await tf.ready();
  tf.enableProdMode(); // no per-op NaN checks or debug readbacks
  return makePeer(tf);
}

async function importTfjs(): Promise<Tf> {
  if (!(await installNavigator())) throw new Error('no WebGPU entry point (the `webgpu` package did not load)');
  let tf: Tf;
  try {
    tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new Error(`cannot import @tensorflow/tfjs-core / @tensorflow/tfjs-backend-webgpu (npm install): ${msg(e)}`);
  }
  if (!tf.findBackendFactory('webgpu'))
    throw new Error('tfjs-backend-webgpu did not register (navigator.gpu missing at import)');
  return tf;
}

function makePeer(tf: Tf): TfjsPeer {
  const backend = tf.backend() as unknown as TfWebGpuBackend;
  const info = backend.adapterInfo;
  const upload = (h: HostTensor): TfCore.Tensor =>
    tf.tensor(h.data, h.shape, h.data instanceof Int32Array ? 'int32' : 'float32');
  return {
    name: 'TF.js',
    tf,
    device: backend.device,
    description: `@tensorflow/tfjs-backend-webgpu ${tf.version_core} on ${[info?.vendor, info?.architecture].filter(Boolean).join(' / ') || 'an unnamed adapter'}`,
    prepare: (kernel, sets, op, opts = {}) => {
      const ts = sets.map((s) => s.map(upload));
      return {
        kernel,
        ...(opts.note ? { note: opts.note } : {}),
        enqueue: (i) => op(ts[i]!).dispose(),
        result: async () => {
          const y = op(ts[0]!);
          const onGpu = backend.tensorMap.get(y.dataId)?.resource instanceof GPUBuffer;
          const data = (await y.data()) as Float32Array | Int32Array;
          y.dispose();
          if (!onGpu) throw new Error(`${kernel}: TF.js computed the result on the CPU, not the GPU`);
          return data;
        },
        dispose: () => ts.flat().forEach((t) => t.dispose()),
      };
    },
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
