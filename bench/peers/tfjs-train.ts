// The seed CNN and MLP training step in TF.js (bench/train.ts): tfjs-core ops in NHWC, sparse labels as one-hot,
// tf.losses.softmaxCrossEntropy and tf.train.adam(1e-3).minimize, on TF.js's WebGPU backend.
import type * as TfCore from '@tensorflow/tfjs-core';
import type { PeerTrainer, TrainSpec } from '../train.js';
import type { TfjsPeer } from './tfjs.js';

// The part of tfjs-backend-webgpu's WebGPUBackend used to submit a step's commands (as TfjsPeer.sync does); absent
// on the wasm backend, which computes each op when it is called.
interface TfWebGpuBackend {
  endComputePassEncoder?(): void;
  submitQueue(): void;
  commandEncoder: GPUCommandEncoder | null;
}

let made = 0; // TF.js variable names are global to the engine
let gradients: Promise<unknown> | undefined;

/**
 * Registers TF.js's gradients (tfjs-core registers none by itself; the `@tensorflow/tfjs` union package imports
 * this file). NOTE: its ES modules import each other without file extensions, which Node's own ESM loader rejects,
 * so unbundled runs get a resolve hook that adds `.js` inside tfjs-core's dist/ (a bundle resolves them itself).
 * Gradients go into TF.js's global registry, shared by every copy of tfjs-core loaded in the process.
 */
export function registerGradients(): Promise<unknown> {
  gradients ??= (async () => {
    const { register } = await import('node:module');
    const hook = `export async function resolve(spec, ctx, next) {
      try { return await next(spec, ctx); } catch (e) {
        if (!ctx.parentURL?.includes('/@tensorflow/tfjs-core/dist/') || !spec.startsWith('.') || spec.endsWith('.js')) throw e;
        try { return await next(spec + '.js', ctx); } catch { return next(spec + '/index.js', ctx); }
      }
    }`;
    register(`data:text/javascript,${encodeURIComponent(hook)}`);
    return import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  })();
  return gradients;
}

/**
 * One training step per launch: the batch is uploaded, `minimize` records the forward on TF.js's tape, runs the
 * backward and Adam, and the commands are submitted; `read` waits for the loss.
 */
export async function tfjsTrainer(p: Pick<TfjsPeer, 'tf'>, s: TrainSpec): Promise<PeerTrainer> {
  await registerGradients();
  const tf = p.tf;
  const backend = tf.backend() as unknown as TfWebGpuBackend;
  const id = made++;
  const vars = s.weights.map((w, i) => tf.variable(tf.tensor(w.data, w.shape), true, `train${id}_${i}`));
  // NOTE: TF.js's Adam defaults epsilon to the backend's (1e-7); wgnn and PyTorch use 1e-8.
  const opt = tf.train.adam(1e-3, 0.9, 0.999, 1e-8);
  const B = s.batch;
  // x [B,28,28,1] -> logits [B,10]; weights in wgnn's layout ([R,S,C,K] filters, [in,out] dense kernels).
  const logits = (x: TfCore.Tensor4D): TfCore.Tensor2D => {
    let h: TfCore.Tensor2D;
    let rest: TfCore.Variable[];
    if (s.model === 'cnn') {
      const [k1, b1, ...more] = vars as [TfCore.Variable, TfCore.Variable, ...TfCore.Variable[]];
      const c = tf.relu(tf.add(tf.conv2d(x, k1 as TfCore.Tensor4D, 1, 'valid'), b1)) as TfCore.Tensor4D; // [B,26,26,32]
      h = tf.reshape(tf.maxPool(c, 2, 2, 'valid'), [B, -1]); // [B,13·13·32]
      rest = more;
    } else {
      h = tf.reshape(x, [B, -1]);
      rest = vars;
    }
    const [k2, b2, k3, b3] = rest as [TfCore.Variable, TfCore.Variable, TfCore.Variable, TfCore.Variable];
    const d = tf.relu(tf.add(tf.matMul(h, k2 as TfCore.Tensor2D), b2)) as TfCore.Tensor2D;
    return tf.add(tf.matMul(d, k3 as TfCore.Tensor2D), b3);
  };
  let pending: { loss: TfCore.Scalar; x: TfCore.Tensor; y: TfCore.Tensor } | undefined;
  return {
    kernel: 'tf.train.adam(1e-3).minimize(softmaxCrossEntropy(forward))',
    note: 'tf.conv2d/maxPool/matMul/add/relu (unfused), one-hot labels',
    launch: (i) => {
      const b = s.batches[i % s.batches.length]!;
      const x = tf.tensor4d(b.x, [B, 28, 28, 1]);
      const y = tf.tensor2d(b.onehot, [B, 10]);
      const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, logits(x)) as TfCore.Scalar, true, vars)!;
      backend.endComputePassEncoder?.();
      if (backend.commandEncoder) backend.submitQueue();
      pending = { loss, x, y };
    },
    read: async () => {
      const r = pending!;
      pending = undefined;
      const v = (await r.loss.data())[0]!;
      r.loss.dispose();
      r.x.dispose();
      r.y.dispose();
      return v;
    },
    dispose: () => {
      opt.dispose();
      vars.forEach((v) => v.dispose());
    },
  };
}
