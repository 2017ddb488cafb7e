// jax-js (@jax-js/jax 0.1.25) on its WebGPU device as a benchmark peer, run in Node through the same Dawn instance as
// wgnn (its own device on the same adapter). Families give a function of jax arrays; it is jit-compiled (one fused
// kernel where jax-js can) and run on GPU-resident inputs.
// NOTE: jax-js arrays are lazy and consumed by every use: inputs are passed as `.ref`, and each result is realized
// with gpuBufferSync() (which dispatches its kernels, without a readback, and consumes it).
import { installNavigator } from '../platform.js';
import { msg, type HostTensor, type Peer, type Runner } from './peer.js';

export type Jax = typeof import('@jax-js/jax');
export type JaxArray = import('@jax-js/jax').Array;

export interface JaxPeer extends Peer {
  readonly jax: Jax;
  /**
   * A runner for jit(fn) on each input set (uploaded once). `post` turns the result's data (set 0) into wgnn's layout;
   * `pre` the host inputs into jax-js's (NCHW images, OIHW filters).
   */
  prepare(
    kernel: string,
    sets: HostTensor[][],
    fn: (...xs: JaxArray[]) => JaxArray | JaxArray[],
    opts?: {
      note?: string;
      pre?: (h: HostTensor, i: number) => HostTensor;
      post?: (d: Float32Array) => Float32Array;
      output?: number;
    },
  ): Runner;
}

let loaded: Promise<Jax> | undefined;

/** Loads jax-js and starts its WebGPU backend on wgnn's Dawn instance. Throws, saying why, when it cannot run here. */
export async function loadJax(): Promise<JaxPeer> {
  loaded ??= importJax();
  const jax = await loaded;
  return makePeer(jax);
}

async function importJax(): Promise<Jax> {
  if (!(await installNavigator())) throw new Error('no WebGPU entry point (the `webgpu` package did not load)');
  let jax: Jax;
  try {
    jax = await import('@jax-js/jax');
  } catch (e) {
    throw new Error(`cannot import @jax-js/jax (npm install): ${msg(e)}`);
  }
  const devices = await jax.init('webgpu');
  if (!devices.includes('webgpu')) throw new Error('jax.init("webgpu") found no WebGPU device');
  jax.defaultDevice('webgpu');
  return jax;
}

function makePeer(jax: Jax): JaxPeer {
  const np = jax.numpy;
  const device = jax.getWebGPUDevice();
  const upload = (h: HostTensor): JaxArray =>
    np.array(h.data, { shape: h.shape, dtype: h.data instanceof Int32Array ? np.int32 : np.float32 });
  return {
    name: 'jax-js',
    jax,
    device,
    description: `@jax-js/jax 0.1.25 (jit) on its own WebGPU device`,
    prepare: (kernel, sets, fn, opts = {}) => {
      const xs = sets.map((s) => s.map((h, i) => upload(opts.pre ? opts.pre(h, i) : h)));
      const f = jax.jit(fn);
      const outputs = (set: number): JaxArray[] => {
        const out = f(...xs[set]!.map((x) => x.ref));
        return Array.isArray(out) ? out : [out];
      };
      return {
        kernel,
        ...(opts.note ? { note: opts.note } : {}),
        enqueue: (i) => outputs(i).forEach((y) => y.gpuBufferSync()),
        result: async () => {
          const ys = outputs(0);
          const keep = opts.output ?? 0;
          ys.forEach((y, j) => j !== keep && y.dispose());
          const data = (await ys[keep]!.data()) as Float32Array | Int32Array;
          return opts.post && data instanceof Float32Array ? opts.post(data) : data;
        },
        dispose: () => {
          xs.flat().forEach((x) => x.dispose());
          (f as { dispose?: () => void }).dispose?.();
        },
      };
    },
    sync: () => device.queue.onSubmittedWorkDone(),
    // jax-js keeps its device for the life of the process; the arrays were freed by their runners.
    close: () => {},
  };
}
