// Row-wise families: reductions of x [R,C] along either axis, softmax over the last axis, and the fused softmax +
// cross-entropy forward and backward (dense one-hot labels, which every engine takes, and wgnn's sparse int32 labels).
import { Rng } from '../src/index.js';
import { lossOps, reduceOps, softmaxOps, type AnyOp } from '../src/internal.js';
import { cpuCheck, hostUniform, opRunner, type Case, type FamilyOpts, type HostTensor } from './harness.js';
import type { JaxArray } from './peers/jax.js';

const elements = (o: FamilyOpts): number => (o.quick ? 1 << 18 : o.software ? 1 << 22 : 1 << 24);

export function reduceCases(o: FamilyOpts): Case[] {
  const C = 1024;
  const R = elements(o) / C;
  const cases = [
    { id: 'sum-rows', name: 'sum' as const, axis: 1, label: `sum [${R},${C}] axis 1 (each row → 1)`, out: R },
    {
      id: 'sum-cols',
      name: 'sum' as const,
      axis: 0,
      label: `sum [${R},${C}] axis 0 (each column → 1: a bias gradient)`,
      out: C,
    },
    { id: 'max-rows', name: 'max' as const, axis: 1, label: `max [${R},${C}] axis 1`, out: R },
  ];
  return cases.map((c, ci): Case => {
    const op: AnyOp = reduceOps[c.name];
    const attrs = { axes: [c.axis], keepdims: false };
    const seed = 6000 + ci * 10;
    return {
      family: 'reduce',
      id: c.id,
      label: c.label,
      bound: 'memory',
      bytes: 4 * (R * C + c.out),
      meta: { op: c.name, x: [R, C], axis: c.axis },
      inputs: (set) => [hostUniform(seed + set * 10, [R, C])],
      check: (inp) => cpuCheck(op, inp, attrs, seed),
      wgnn: (gpu, sets) => opRunner(gpu, op, sets, attrs),
      tfjs: (p, sets) =>
        p.prepare(c.name === 'sum' ? 'Sum' : 'Max', sets, ([x]) =>
          c.name === 'sum' ? p.tf.sum(x!, c.axis) : p.tf.max(x!, c.axis),
        ),
      jax: (p, sets) =>
        p.prepare(c.name, sets, (x) => (c.name === 'sum' ? p.jax.numpy.sum(x!, c.axis) : p.jax.numpy.max(x!, c.axis))),
    };
  });
}

/** One-hot float rows [R,C] and the same classes as int32 [R]. */
function labels(seed: number, R: number, C: number): { onehot: HostTensor; index: HostTensor } {
  const rng = new Rng(seed);
  const index = Int32Array.from({ length: R }, () => rng.int(0, C));
  const onehot = new Float32Array(R * C);
  index.forEach((k, r) => (onehot[r * C + k] = 1));
  return { onehot: { data: onehot, shape: [R, C] }, index: { data: index, shape: [R] } };
}

export function softmaxCases(o: FamilyOpts): Case[] {
  // One workgroup per row: on lavapipe, 2^18 elements of 10 classes (26,214 rows) take ~0.1 s per run in wgnn and
  // ~0.3 s in TF.js; --quick takes a quarter of that, lavapipe's full run as many, a GPU 2^24.
  const n = o.quick ? 1 << 16 : o.software ? 1 << 18 : elements(o);
  const out: Case[] = [];
  for (const C of [10, 1000, 32768]) {
    const R = Math.floor(n / C);
    const op = softmaxOps.softmax;
    const seed = 8000 + C;
    out.push({
      family: 'softmax',
      id: `softmax-${C}`,
      label: `softmax [${R},${C}]`,
      bound: 'memory',
      bytes: 8 * R * C,
      meta: { x: [R, C] },
      inputs: (set) => [hostUniform(seed + set * 10, [R, C], -4, 4)],
      check: (inp) => cpuCheck(op, inp, { axis: -1 }, seed),
      wgnn: (gpu, sets) => opRunner(gpu, op, sets, { axis: -1 }),
      tfjs: (p, sets) => p.prepare('Softmax', sets, ([x]) => p.tf.softmax(x!)),
      jax: (p, sets) => p.prepare('softmax', sets, (x) => p.jax.nn.softmax(x!, -1)),
    });
  }
  for (const C of [10, 1000]) {
    const R = Math.floor(n / C);
    for (const sparse of [false, true]) {
      for (const bwd of [false, true]) {
        const op: AnyOp = bwd ? lossOps.softmax_cross_entropy_bwd_x : lossOps.softmax_cross_entropy;
        const seed = 8100 + C + (sparse ? 2 : 0) + (bwd ? 1 : 0);
        const labelBytes = sparse ? R : R * C;
        out.push({
          family: 'softmax',
          id: `ce-${sparse ? 'sparse' : 'dense'}-${C}-${bwd ? 'bwd' : 'fwd'}`,
          label: `cross-entropy [${R},${C}] ${sparse ? 'int32 labels' : 'one-hot labels'} ${bwd ? 'bwd (dx)' : 'fwd (loss per row)'}`,
          bound: 'memory',
          // fwd: logits + labels -> loss [R]; bwd: logits + labels + dy [R] -> dx [R,C]
          bytes: 4 * (R * C + labelBytes + (bwd ? R + R * C : R)),
          meta: { logits: [R, C], sparse, pass: bwd ? 'bwd_x' : 'fwd' },
          inputs: (set) => {
            const l = labels(seed + set * 10 + 1, R, C);
            return [
              hostUniform(seed + set * 10, [R, C], -4, 4),
              sparse ? l.index : l.onehot,
              ...(bwd ? [hostUniform(seed + set * 10 + 2, [R])] : []),
            ];
          },
          check: (inp) => cpuCheck(op, inp, { sparse }, seed),
          wgnn: (gpu, sets) => opRunner(gpu, op, sets, { sparse }),
          tfjs: sparse
            ? 'TF.js has no softmax cross-entropy on class indices'
            : (p, sets) => {
                const tf = p.tf;
                if (!bwd) {
                  return p.prepare(
                    'tf.losses.softmaxCrossEntropy',
                    sets,
                    ([x, t]) => tf.losses.softmaxCrossEntropy(t!, x!, undefined, 0, tf.Reduction.NONE),
                    {
                      note: 'composed',
                    },
                  );
                }
                // TF.js's gradient of softmaxCrossEntropy with respect to the logits: dy·(softmax(x) − t).
                return p.prepare(
                  'Mul(Sub(Softmax(x), t), dy)',
                  sets,
                  ([x, t, dy]) => tf.tidy(() => tf.mul(tf.sub(tf.softmax(x!), t!), tf.expandDims(dy!, 1))),
                  {
                    note: "composed, as TF.js's gradient",
                  },
                );
              },
          jax: (p, sets) => {
            const { nn, numpy: np, vjp } = p.jax;
            // loss = −Σ t·log_softmax(x) per row; class indices become one-hot rows first.
            const loss = (x: JaxArray, t: JaxArray): JaxArray =>
              np.sum((sparse ? nn.oneHot(t, C) : t).mul(nn.logSoftmax(x, -1)), -1).mul(-1);
            const note = sparse ? 'labels through nn.oneHot' : undefined;
            if (!bwd) return p.prepare('−Σ t·logSoftmax(x)', sets, (x, t) => loss(x!, t!), note ? { note } : {});
            return p.prepare(
              'vjp(−Σ t·logSoftmax(x))',
              sets,
              (x, t, dy) => {
                const [y, back] = vjp((v: JaxArray) => loss(v, t!), [x!]);
                y.dispose();
                const [dx] = back(dy!) as unknown as JaxArray[];
                return dx!;
              },
              { note: `jit(vjp)${note ? `; ${note}` : ''}` },
            );
          },
        });
      }
    }
  }
  return out;
}
