// Fused optimizer updates (src/optim: one in-place kernel per parameter), Adam and SGD with momentum, over one
// parameter tensor of n elements with random (nonzero) state at step 10, so the timed path is the general one
// (SGD's first step only copies the gradient into its buffer).
// Validated against the kernel's CPU reference from the same state; the result compared is params and state.
import { CpuBackend, tensor, type Tensor } from '../src/index.js';
import {
  adamKernel,
  applyInPlace,
  sgdKernel,
  type AdamAttrs,
  type InPlaceKernel,
  type SgdAttrs,
  type Tol,
} from '../src/internal.js';
import { checkAgainst, hostUniform, type Case, type FamilyOpts, type HostTensor, type Runner } from './harness.js';
import type { JaxArray } from './peers/jax.js';

// As test/optim.test.ts: the fused f32 update against float64 loops.
const TOL: Tol = { atol: 1e-5, rtol: 1e-4 };
const STEP = 10;

interface Rule<A> {
  id: string;
  label: string;
  kernel: InPlaceKernel<A>;
  attrs: A;
  /** State tensors after the parameter, with their initial ranges (second moments positive). */
  state: [number, number][];
}

const ADAM: Rule<AdamAttrs> = {
  id: 'adam',
  label: 'Adam',
  kernel: adamKernel,
  attrs: { live: { lr: 1e-3, step: STEP }, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false },
  state: [
    [-0.1, 0.1],
    [1e-4, 1e-2],
  ],
};

const SGD: Rule<SgdAttrs> = {
  id: 'sgd-momentum',
  label: 'SGD momentum 0.9',
  kernel: sgdKernel,
  attrs: { live: { lr: 0.01, step: STEP }, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 },
  state: [[-0.1, 0.1]],
};

export function optimCases(o: FamilyOpts): Case[] {
  const n = o.quick ? 1 << 18 : o.software ? 1 << 22 : 1 << 24;
  return [ruleCase(ADAM as Rule<unknown>, n, 0), ruleCase(SGD as Rule<unknown>, n, 1)];
}

function ruleCase(rule: Rule<unknown>, n: number, ri: number): Case {
  const k = 1 + rule.state.length; // targets: param and state
  const seed = 2000 + ri * 100;
  const concat = (parts: ArrayLike<number>[]): Float32Array => {
    const out = new Float32Array(parts.length * n);
    parts.forEach((p, i) => out.set(p, i * n));
    return out;
  };
  return {
    family: 'optim',
    id: rule.id,
    label: `${rule.label} [${n}] step ${STEP}`,
    bound: 'memory',
    // read param, state, grad; write param, state
    bytes: 4 * n * (2 * k + 1),
    meta: { rule: rule.id, n, attrs: rule.attrs },
    // Set layout: param, ...state, grad.
    inputs: (set) => [
      hostUniform(seed + set * 10, [n]),
      ...rule.state.map(([lo, hi], i) => hostUniform(seed + set * 10 + 1 + i, [n], lo, hi)),
      hostUniform(seed + set * 10 + 9, [n]),
    ],
    check: (inp) => {
      // The kernel's CPU reference on wgnn's CPU backend, updating copies of set 0 in place.
      const cpu = new CpuBackend();
      const hs = inp.map((h) => ({ handle: cpu.upload(h.data), spec: { shape: h.shape, dtype: 'float32' as const } }));
      const flag = { handle: cpu.upload(new Int32Array(1)), spec: { shape: [1], dtype: 'int32' as const } };
      cpu.runInPlace(rule.kernel, [...hs.slice(0, k), flag], [hs[k]!], rule.attrs);
      return checkAgainst(
        'cpu reference',
        `${rule.kernel.name} (param, state)`,
        concat(hs.slice(0, k).map((h) => h.handle as Float32Array)),
        TOL,
        seed,
      );
    },
    wgnn: (gpu, sets) => {
      const ts: Tensor[][] = sets.map((s) => s.map((h) => tensor(h.data, h.shape, { backend: gpu })));
      // The targets end in the finiteness check's flag slot (int32 [1]), bound unchecked here (no seq in the attrs).
      const flag = tensor(new Int32Array(1), [1], { backend: gpu, dtype: 'int32' });
      const step = (i: number): void =>
        applyInPlace(rule.kernel, [...ts[i]!.slice(0, k), flag], [ts[i]![k]!], rule.attrs);
      return {
        kernel: `${rule.kernel.name} (fused, in place)`,
        enqueue: step,
        result: async () => {
          step(0);
          return concat((await Promise.all(ts[0]!.slice(0, k).map((t) => t.data()))) as Float32Array[]);
        },
        dispose: () => [...ts.flat(), flag].forEach((t) => t.dispose()),
      };
    },
    tfjs: (p, sets) => tfjsRule(p, rule, sets, k, concat),
    jax: (p, sets) => jaxRule(p, rule, sets, k, concat),
  };
}

type TfjsPeer = import('./peers/tfjs.js').TfjsPeer;
type JaxPeer = import('./peers/jax.js').JaxPeer;

/**
 * TF.js's own optimizers (tf.train.adam / tf.train.momentum: composed elementwise ops, no fused kernel), one per input
 * set, each with one variable, their state set with setWeights to the same values and step.
 */
function tfjsRule(
  p: TfjsPeer,
  rule: Rule<unknown>,
  sets: HostTensor[][],
  k: number,
  concat: (parts: ArrayLike<number>[]) => Float32Array,
): Runner {
  const tf = p.tf;
  const a = rule.attrs as AdamAttrs & SgdAttrs;
  const make = (): import('@tensorflow/tfjs-core').Optimizer =>
    rule.id === 'adam'
      ? tf.train.adam(a.live.lr, a.beta1, a.beta2, a.eps)
      : tf.train.momentum(a.live.lr, a.momentum, false);
  const runs = sets.map((s, i) => {
    const name = `bench_${rule.id}_${i}_${Math.random().toString(36).slice(2)}`;
    const v = tf.variable(tf.tensor(s[0]!.data, s[0]!.shape), true, name);
    const g = tf.tensor(s[k]!.data, s[k]!.shape);
    const opt = make();
    // iterations = STEP − 1: the next update is step STEP (Adam's bias corrections β^STEP).
    const ready = opt.setWeights([
      { name: 'iter', tensor: tf.scalar(STEP - 1, 'int32') },
      ...s.slice(1, k).map((h, j) => ({ name: `${name}/s${j}`, tensor: tf.tensor(h.data, h.shape) })),
    ]);
    return { name, v, g, opt, ready };
  });
  return {
    kernel: rule.id === 'adam' ? 'tf.train.adam().applyGradients' : 'tf.train.momentum().applyGradients',
    note: 'composed elementwise ops',
    enqueue: (i) => runs[i]!.opt.applyGradients({ [runs[i]!.name]: runs[i]!.g }),
    result: async () => {
      await Promise.all(runs.map((r) => r.ready));
      const r = runs[0]!;
      r.opt.applyGradients({ [r.name]: r.g });
      const w = await r.opt.getWeights(); // [iterations, ...state]
      const parts = [
        await r.v.data(),
        ...(await Promise.all(w.slice(1).map((t) => t.tensor.data()))),
      ] as Float32Array[];
      return concat(parts);
    },
    dispose: () =>
      runs.forEach((r) => {
        r.opt.dispose();
        r.v.dispose();
        r.g.dispose();
      }),
  };
}

/** The same update written in jax.numpy as one jit function (p, state, g) -> (p', state'), bias corrections on the host. */
function jaxRule(
  p: JaxPeer,
  rule: Rule<unknown>,
  sets: HostTensor[][],
  k: number,
  concat: (parts: ArrayLike<number>[]) => Float32Array,
): Runner {
  const { numpy: np, jit } = p.jax;
  const a = rule.attrs as AdamAttrs & SgdAttrs;
  const update =
    rule.id === 'adam'
      ? (x: JaxArray, m: JaxArray, v: JaxArray, g: JaxArray): JaxArray[] => {
          const m2 = m.add(g.ref.sub(m.ref).mul(1 - a.beta1));
          const v2 = v.mul(a.beta2).add(g.ref.mul(g).mul(1 - a.beta2));
          const stepSize = a.live.lr / (1 - a.beta1 ** STEP);
          const denom = np
            .sqrt(v2.ref)
            .div(Math.sqrt(1 - a.beta2 ** STEP))
            .add(a.eps);
          return [x.sub(m2.ref.mul(stepSize).div(denom)), m2, v2];
        }
      : (x: JaxArray, buf: JaxArray, g: JaxArray): JaxArray[] => {
          const b2 = buf.mul(a.momentum).add(g.mul(1 - a.dampening));
          return [x.sub(b2.ref.mul(a.live.lr)), b2];
        };
  const f = jit(update as (...xs: JaxArray[]) => JaxArray[]);
  const upload = (h: HostTensor): JaxArray => np.array(h.data, { shape: h.shape });
  const state = sets.map((s) => s.map(upload)); // [p, ...state, g]; p and state replaced after each step
  const step = (i: number): JaxArray[] => {
    const s = state[i]!;
    const out = f(...s.slice(0, k), s[k]!.ref) as JaxArray[];
    state[i] = [...out.map((y) => y.ref), s[k]!];
    return out;
  };
  return {
    kernel: 'jit(update in jax.numpy)',
    note: 'written for this benchmark (@jax-js/optax is not a dependency)',
    enqueue: (i) => step(i).forEach((y) => y.gpuBufferSync()),
    result: async () => concat((await Promise.all(step(0).map((y) => y.data()))) as Float32Array[]),
    dispose: () => {
      state.flat().forEach((x) => x.dispose());
      (f as { dispose?: () => void }).dispose?.();
    },
  };
}
