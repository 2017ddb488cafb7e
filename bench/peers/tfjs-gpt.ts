// The char GPT's training step in TF.js (bench/transformer.ts), on its WebGPU backend: nanoGPT's model composed from
// tfjs-core ops (TF.js has no trainable multi-head attention, layer norm op or GELU: tf.moments for the norm, the
// tanh form of GELU from tf.tanh, attention as two batched matmuls around a masked tf.softmax), and AdamW written
// with tf.variableGrads and assign (tf.train has Adam without weight decay).
import type * as TfCore from '@tensorflow/tfjs-core';
import type { PeerTrainer } from '../train.js';
import type { GptSpec } from '../transformer.js';
import type { TfjsPeer } from './tfjs.js';
import { registerGradients } from './tfjs-train.js';

// The part of tfjs-backend-webgpu's WebGPUBackend used to submit a step's commands (as TfjsPeer.sync does).
interface TfWebGpuBackend {
  endComputePassEncoder(): void;
  submitQueue(): void;
  commandEncoder: GPUCommandEncoder | null;
}

let made = 0; // TF.js variable names are global to the engine

/**
 * One AdamW step per launch: the batch is uploaded, the loss and the gradients of every variable are computed
 * (tf.variableGrads), the variables and moments are assigned their new values and the commands submitted; `read`
 * waits for the loss. Variables keep wgnn's names and layouts (Keras kernels [in, out]).
 */
export async function tfjsGptTrainer(p: TfjsPeer, s: GptSpec): Promise<PeerTrainer> {
  await registerGradients();
  const tf = p.tf;
  const backend = tf.backend() as unknown as TfWebGpuBackend;
  const id = made++;
  const { vocabSize: V, blockSize: T, layers: L, heads: H, dim: D } = s.model;
  const B = s.batch;
  const N = B * T;
  const hd = D / H;
  const { lr, beta1, beta2, eps, weightDecay } = s.adamw;
  const names = [...s.weights.keys()];
  const vars = new Map<string, TfCore.Variable>();
  const moments = new Map<string, [TfCore.Variable, TfCore.Variable]>();
  // A variable holds its initial tensor's data (one more reference): the tensor itself is disposed.
  const variable = (init: TfCore.Tensor, trainable: boolean, name: string): TfCore.Variable => {
    const x = tf.variable(init, trainable, name);
    init.dispose();
    return x;
  };
  for (const n of names) {
    const w = s.weights.get(n)!;
    vars.set(n, variable(tf.tensor(w.data, w.shape), true, `gpt${id}_${n}`));
    moments.set(n, [
      variable(tf.zeros(w.shape), false, `gpt${id}_${n}_m`),
      variable(tf.zeros(w.shape), false, `gpt${id}_${n}_v`),
    ]);
  }
  const v = (n: string): TfCore.Tensor => vars.get(n)!;
  // Added to the scores above the diagonal: exp(s − 1e9 − max) is exactly 0 in float32, as a −∞ mask gives.
  const mask = tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9)); // [T,T]

  // h [N,D] -> layer norm over D with gamma, beta [D]
  const norm = (h: TfCore.Tensor, name: string): TfCore.Tensor => {
    const { mean, variance } = tf.moments(h, -1, true);
    return tf.add(
      tf.mul(tf.mul(tf.sub(h, mean), tf.rsqrt(tf.add(variance, s.epsilon))), v(`${name}.gamma`)),
      v(`${name}.beta`),
    );
  };
  // x [N,in] @ kernel [in,out] + bias [out]
  const dense = (x: TfCore.Tensor, name: string): TfCore.Tensor =>
    tf.add(tf.matMul(x as TfCore.Tensor2D, v(`${name}.kernel`) as TfCore.Tensor2D), v(`${name}.bias`));
  // GPT-2's GELU: x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³)))
  const gelu = (x: TfCore.Tensor): TfCore.Tensor =>
    tf.mul(
      tf.mul(x, 0.5),
      tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.mul(tf.square(x), x)))))),
    );
  // a [N,D] -> causal self-attention per head -> [N,D]
  const attention = (a: TfCore.Tensor, l: string): TfCore.Tensor => {
    // [N,3D] -> [3,B,H,T,D/H] -> q, k, v [B·H,T,D/H]
    const qkv = tf.transpose(tf.reshape(dense(a, `${l}.attn.qkv`), [B, T, 3, H, hd]), [2, 0, 3, 1, 4]);
    const [q, k, vv] = tf.split(qkv, 3, 0).map((t) => tf.reshape(t, [B * H, T, hd]) as TfCore.Tensor3D) as [
      TfCore.Tensor3D,
      TfCore.Tensor3D,
      TfCore.Tensor3D,
    ];
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd)), mask); // [B·H,T,T]
    const o = tf.matMul(tf.softmax(scores) as TfCore.Tensor3D, vv); // [B·H,T,D/H]
    return dense(tf.reshape(tf.transpose(tf.reshape(o, [B, H, T, hd]), [0, 2, 1, 3]), [N, D]), `${l}.attn.out`);
  };
  // ids x [N] int32 -> logits [N,V]
  const logits = (x: TfCore.Tensor): TfCore.Tensor2D => {
    const tokens = v('layers.0.tokens');
    let h = tf.reshape(tf.add(tf.reshape(tf.gather(tokens, x), [B, T, D]), v('layers.0.positions')), [N, D]);
    for (let i = 1; i <= L; i++) {
      const l = `layers.${i}`;
      h = tf.add(h, attention(norm(h, `${l}.ln1`), l));
      h = tf.add(h, dense(gelu(dense(norm(h, `${l}.ln2`), `${l}.fc`)), `${l}.proj`));
    }
    return tf.matMul(norm(h, `layers.${L + 1}`) as TfCore.Tensor2D, tokens as TfCore.Tensor2D, false, true); // tied head
  };

  let t = 0;
  let pending: TfCore.Scalar | undefined;
  return {
    kernel: 'tf.variableGrads(softmaxCrossEntropy(forward)) + AdamW by assign',
    note: 'tf.gather embedding, tf.moments layer norm, matMul/softmax attention with an additive mask, tanh GELU',
    launch: (i) => {
      const b = s.batches[i % s.batches.length]!;
      t++;
      const x = tf.tensor1d(b.x, 'int32');
      const y = tf.tensor1d(b.y, 'int32');
      const { value, grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(tf.oneHot(y, V, 1, 0, 'float32'), logits(x)) as TfCore.Scalar,
        [...vars.values()],
      );
      // AdamW as torch.optim.AdamW: p ← p·(1 − lr·λ) − (lr / (1 − β1^t))·m / (√v / √(1 − β2^t) + eps)
      const [a, c] = [lr / (1 - beta1 ** t), Math.sqrt(1 - beta2 ** t)];
      tf.tidy(() => {
        for (const n of names) {
          const g = grads[`gpt${id}_${n}`]!;
          const [m, vm] = moments.get(n)!;
          m.assign(tf.add(m, tf.mul(tf.sub(g, m), 1 - beta1)));
          vm.assign(tf.add(tf.mul(vm, beta2), tf.mul(tf.square(g), 1 - beta2)));
          const w = vars.get(n)!;
          w.assign(tf.sub(tf.mul(w, 1 - lr * weightDecay), tf.div(tf.mul(m, a), tf.add(tf.div(tf.sqrt(vm), c), eps))));
        }
      });
      tf.dispose([x, y, ...Object.values(grads)]);
      backend.endComputePassEncoder();
      if (backend.commandEncoder) backend.submitQueue();
      pending = value;
    },
    read: async () => {
      const l = pending!;
      pending = undefined;
      const value = (await l.data())[0]!;
      l.dispose();
      return value;
    },
    dispose: () => {
      mask.dispose();
      for (const w of vars.values()) w.dispose();
      for (const [m, vm] of moments.values()) (m.dispose(), vm.dispose());
    },
  };
}
