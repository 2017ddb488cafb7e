// The seed CNN and MLP training step in jax-js (bench/train.ts): one jit of valueAndGrad(loss) and Adam written in
// jax.numpy, NCHW images and OIHW filters, log-softmax cross-entropy on one-hot labels.
import type { PeerTrainer, TrainSpec } from '../train.js';
import type { JaxArray, JaxPeer } from './jax.js';

/**
 * Weights in jax-js's layouts: the conv filter [R,S,C,K] -> OIHW [K,C,R,S]; the first dense kernel of the CNN
 * reads the pooled map flattened as (c,h,w) in NCHW instead of (h,w,c), so its rows are permuted to match.
 */
function toJaxLayout(s: TrainSpec): { data: Float32Array; shape: number[] }[] {
  return s.weights.map((w, i) => {
    const d = w.data as Float32Array;
    if (s.model !== 'cnn') return { data: d, shape: w.shape };
    if (i === 0) {
      const [R, S, C, K] = w.shape as [number, number, number, number];
      const out = new Float32Array(d.length);
      for (let r = 0; r < R; r++)
        for (let q = 0; q < S; q++)
          for (let c = 0; c < C; c++)
            for (let k = 0; k < K; k++) {
              out[((k * C + c) * R + r) * S + q] = d[((r * S + q) * C + c) * K + k]!;
            }
      return { data: out, shape: [K, C, R, S] };
    }
    if (i === 2) {
      const [rows, units] = w.shape as [number, number];
      const C = s.weights[0]!.shape[3]!;
      const HW = rows / C;
      const out = new Float32Array(d.length);
      for (let hw = 0; hw < HW; hw++)
        for (let c = 0; c < C; c++) {
          out.set(d.subarray((hw * C + c) * units, (hw * C + c + 1) * units), (c * HW + hw) * units);
        }
      return { data: out, shape: w.shape };
    }
    return { data: d, shape: w.shape };
  });
}

/**
 * One training step per launch: the batch and Adam's two bias-correction scalars are uploaded and the jit-compiled
 * step (loss, gradients and the Adam update of every parameter) is dispatched; `read` waits for the loss. `realize`
 * runs the step's program now (default: the WebGPU device's dispatch, gpuBufferSync; on the wasm device, dataSync).
 * NOTE: jax-js arrays are consumed by each use, inside traced functions too: every use but the last takes `.ref`.
 */
export function jaxTrainer(
  p: Pick<JaxPeer, 'jax'>,
  s: TrainSpec,
  realize: (loss: JaxArray) => void = (l) => void l.gpuBufferSync(),
): PeerTrainer {
  const { numpy: np, nn, lax, jit, valueAndGrad } = p.jax;
  const B = s.batch;
  const [beta1, beta2, lr, eps] = [0.9, 0.999, 1e-3, 1e-8];

  // x [B,1,28,28] -> logits [B,10]
  const logits = (ps: JaxArray[], x: JaxArray): JaxArray => {
    let h: JaxArray;
    let rest: JaxArray[];
    if (s.model === 'cnn') {
      const [k1, b1, ...more] = ps as [JaxArray, JaxArray, ...JaxArray[]];
      const K = k1.shape[0]!;
      const c = nn.relu(lax.convGeneralDilated(x, k1, [1, 1], 'VALID').add(b1.reshape([1, K, 1, 1]))); // [B,K,26,26]
      const pooled = lax.reduceWindow(c, (w) => np.max(w), [1, 1, 2, 2], [1, 1, 2, 2]); // [B,K,13,13]
      h = pooled.reshape([B, pooled.size / B]);
      rest = more;
    } else {
      h = x.reshape([B, x.size / B]);
      rest = ps;
    }
    const [k2, b2, k3, b3] = rest as [JaxArray, JaxArray, JaxArray, JaxArray];
    const d = nn.relu(np.matmul(h, k2).add(b2));
    return np.matmul(d, k3).add(b3);
  };
  // mean over the batch of −Σ onehot · log softmax(logits)
  const loss = (ps: JaxArray[], x: JaxArray, y: JaxArray): JaxArray =>
    nn
      .logSoftmax(logits(ps, x), -1)
      .mul(y)
      .sum()
      .mul(-1 / B);

  // ps, ms, vs: parameters and Adam's moments; a = lr / (1 − β1^t), c = √(1 − β2^t) (from the host, per step).
  const step = jit(
    (ps: JaxArray[], ms: JaxArray[], vs: JaxArray[], x: JaxArray, y: JaxArray, a: JaxArray, c: JaxArray) => {
      const [l, gs] = valueAndGrad(loss)(
        ps.map((q) => q.ref),
        x,
        y,
      ) as [JaxArray, JaxArray[]];
      const n = ps.length;
      const out: JaxArray[][] = [[], [], []];
      ps.forEach((q, i) => {
        const last = i === n - 1;
        const g = gs[i]!;
        const m = ms[i]!.ref.add(g.ref.sub(ms[i]!).mul(1 - beta1)); // m + (1 − β1)(g − m)
        const v = vs[i]!.mul(beta2).add(g.ref.mul(g).mul(1 - beta2)); // β2 v + (1 − β2) g²
        const denom = np
          .sqrt(v.ref)
          .div(last ? c : c.ref)
          .add(eps);
        out[0]!.push(q.sub(m.ref.mul(last ? a : a.ref).div(denom)));
        out[1]!.push(m);
        out[2]!.push(v);
      });
      return [l, ...out] as [JaxArray, JaxArray[], JaxArray[], JaxArray[]];
    },
  );

  const up = (data: Float32Array, shape: number[]): JaxArray => np.array(data, { shape, dtype: np.float32 });
  let ps = toJaxLayout(s).map((w) => up(w.data, w.shape));
  let ms = s.weights.map((_, i) => np.zeros(ps[i]!.shape));
  let vs = s.weights.map((_, i) => np.zeros(ps[i]!.shape));
  let t = 0;
  let pending: JaxArray | undefined;
  return {
    kernel: 'jit(valueAndGrad(loss) + Adam in jax.numpy)',
    note: 'convGeneralDilated NCHW/OIHW, reduceWindow(max) pooling, nn.logSoftmax',
    launch: (i) => {
      const b = s.batches[i % s.batches.length]!;
      t++;
      const a = up(new Float32Array([lr / (1 - beta1 ** t)]), []);
      const c = up(new Float32Array([Math.sqrt(1 - beta2 ** t)]), []);
      const [l, ps2, ms2, vs2] = step(ps, ms, vs, up(b.x, [B, 1, 28, 28]), up(b.onehot, [B, 10]), a, c) as [
        JaxArray,
        JaxArray[],
        JaxArray[],
        JaxArray[],
      ];
      [ps, ms, vs] = [ps2, ms2, vs2];
      // jax-js dispatches lazily: realizing the loss runs the whole jit program now, in the step's JavaScript part.
      realize(l.ref);
      pending = l;
    },
    read: async () => {
      const l = pending!;
      pending = undefined;
      return (await l.data())[0]!;
    },
    dispose: () => {
      [...ps, ...ms, ...vs].forEach((x) => x.dispose());
      (step as { dispose?: () => void }).dispose?.();
    },
  };
}
