// The char GPT's training step in jax-js (bench/transformer.ts): nanoGPT's model written with jax.numpy and jax.nn
// (take for the embedding, standardize for layer norm, attention by matmul around a masked softmax, gelu's tanh form,
// the head tied to the token table) and AdamW in jax.numpy, one jit of valueAndGrad(loss) and the update.
import type { PeerTrainer } from '../train.js';
import type { GptSpec } from '../transformer.js';
import type { JaxArray, JaxPeer } from './jax.js';

type Params = Record<string, JaxArray>;

/**
 * One AdamW step per launch: the batch and the two bias-correction scalars are uploaded and the jit-compiled step
 * runs; `read` waits for the loss. Parameters keep wgnn's names and layouts (Keras kernels [in, out]).
 * NOTE: jax-js arrays are consumed by each use, inside traced functions too: every use but the last takes `.ref`.
 */
export function jaxGptTrainer(p: JaxPeer, s: GptSpec): PeerTrainer {
  const { numpy: np, nn, jit, valueAndGrad } = p.jax;
  const { vocabSize: V, blockSize: T, layers: L, heads: H, dim: D } = s.model;
  const B = s.batch;
  const { lr, beta1, beta2, eps, weightDecay } = s.adamw;
  const names = [...s.weights.keys()];

  // h [B,T,D] -> layer norm over D with gamma, beta [D]
  const norm = (h: JaxArray, g: JaxArray, b: JaxArray): JaxArray =>
    nn.standardize(h, -1, { epsilon: s.epsilon }).mul(g).add(b);
  // x [B,T,in] @ kernel [in,out] + bias [out]
  const dense = (x: JaxArray, ps: Params, name: string): JaxArray =>
    np.matmul(x, ps[`${name}.kernel`]!).add(ps[`${name}.bias`]!);

  // ids x [B,T] int32 -> logits [B,T,V]
  const logits = (ps: Params, x: JaxArray): JaxArray => {
    const tokens = ps['layers.0.tokens']!;
    let h = np.take(tokens.ref, x, 0).add(ps['layers.0.positions']!); // [B,T,D] (T = blockSize)
    for (let i = 1; i <= L; i++) {
      const l = `layers.${i}`;
      const a = norm(h.ref, ps[`${l}.ln1.gamma`]!, ps[`${l}.ln1.beta`]!);
      // [B,T,3D] -> [B,T,3,H,D/H] -> q, k, v [B,H,T,D/H] (columns [q | k | v], each head's D/H contiguous)
      const [q, k, v] = np
        .split(dense(a, ps, `${l}.attn.qkv`).reshape([B, T, 3, H, D / H]), 3, 2)
        .map((t) => t.reshape([B, T, H, D / H]).transpose([0, 2, 1, 3])) as [JaxArray, JaxArray, JaxArray];
      // NOTE: nn.dotProductAttention would do, but it parses an einsum string with Iterator.prototype.map (Node 22+);
      // the same computation by matmul: softmax(q·kᵀ/√(D/H), masked above the diagonal)·v
      const scores = np.matmul(q, k.transpose([0, 1, 3, 2])).mul(1 / Math.sqrt(D / H)); // [B,H,T,T]
      const probs = nn.softmax(np.where(np.tri(T, T, 0, { dtype: np.bool }), scores, -Infinity), -1);
      const o = np.matmul(probs, v).transpose([0, 2, 1, 3]).reshape([B, T, D]); // [B,T,D]
      h = h.add(dense(o, ps, `${l}.attn.out`));
      const m = norm(h.ref, ps[`${l}.ln2.gamma`]!, ps[`${l}.ln2.beta`]!);
      h = h.add(dense(nn.gelu(dense(m, ps, `${l}.fc`), { approximate: true }), ps, `${l}.proj`));
    }
    const f = norm(h, ps[`layers.${L + 1}.gamma`]!, ps[`layers.${L + 1}.beta`]!);
    return np.matmul(f, tokens.transpose()); // the head tied to the token table: [B,T,D] @ [D,V]
  };
  // mean over the B·T positions of −log softmax(logits)[y]
  const loss = (ps: Params, x: JaxArray, y: JaxArray): JaxArray =>
    nn
      .logSoftmax(logits(ps, x), -1)
      .mul(nn.oneHot(y, V))
      .sum()
      .mul(-1 / (B * T));

  // AdamW as torch.optim.AdamW: p ← p·(1 − lr·λ) − (lr / (1 − β1^t))·m / (√v / √(1 − β2^t) + eps); a = lr / (1 − β1^t)
  // and c = √(1 − β2^t) come from the host each step.
  const step = jit((ps: Params, ms: Params, vs: Params, x: JaxArray, y: JaxArray, a: JaxArray, c: JaxArray) => {
    const [l, gs] = valueAndGrad(loss)(Object.fromEntries(names.map((n) => [n, ps[n]!.ref])), x, y) as [
      JaxArray,
      Params,
    ];
    const out: [Params, Params, Params] = [{}, {}, {}];
    names.forEach((n, i) => {
      const last = i === names.length - 1;
      const g = gs[n]!;
      const m = ms[n]!.ref.add(g.ref.sub(ms[n]!).mul(1 - beta1)); // m + (1 − β1)(g − m)
      const v = vs[n]!.mul(beta2).add(g.ref.mul(g).mul(1 - beta2)); // β2 v + (1 − β2) g²
      const denom = np
        .sqrt(v.ref)
        .div(last ? c : c.ref)
        .add(eps);
      out[0][n] = ps[n]!.mul(1 - lr * weightDecay).sub(m.ref.mul(last ? a : a.ref).div(denom));
      out[1][n] = m;
      out[2][n] = v;
    });
    return [l, ...out] as [JaxArray, Params, Params, Params];
  });

  const up = (data: Float32Array | Int32Array, shape: number[]): JaxArray =>
    np.array(data, { shape, dtype: data instanceof Int32Array ? np.int32 : np.float32 });
  let ps: Params = Object.fromEntries(names.map((n) => [n, up(s.weights.get(n)!.data, s.weights.get(n)!.shape)]));
  let ms: Params = Object.fromEntries(names.map((n) => [n, np.zeros(s.weights.get(n)!.shape)]));
  let vs: Params = Object.fromEntries(names.map((n) => [n, np.zeros(s.weights.get(n)!.shape)]));
  let t = 0;
  let pending: JaxArray | undefined;
  return {
    kernel: 'jit(valueAndGrad(loss) + AdamW in jax.numpy)',
    note: 'np.take embedding, nn.standardize layer norm, causal attention by np.matmul + nn.softmax, nn.gelu(approximate)',
    launch: (i) => {
      const b = s.batches[i % s.batches.length]!;
      t++;
      const a = up(new Float32Array([lr / (1 - beta1 ** t)]), []);
      const c = up(new Float32Array([Math.sqrt(1 - beta2 ** t)]), []);
      const [l, ps2, ms2, vs2] = step(ps, ms, vs, up(b.x, [B, T]), up(b.y, [B, T]), a, c) as [
        JaxArray,
        Params,
        Params,
        Params,
      ];
      [ps, ms, vs] = [ps2, ms2, vs2];
      // jax-js dispatches lazily: realizing the loss runs the whole jit program now, in the step's JavaScript part.
      l.ref.gpuBufferSync();
      pending = l;
    },
    read: async () => {
      const l = pending!;
      pending = undefined;
      return (await l.data())[0]!;
    },
    dispose: () => {
      for (const tree of [ps, ms, vs]) Object.values(tree).forEach((x) => x.dispose());
      (step as { dispose?: () => void }).dispose?.();
    },
  };
}
