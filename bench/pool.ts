// Pooling f32 NHWC, forward and backward: max (whose forward also writes the int32 argmax its backward reads) and
// average. The max backward is timed as OPS.max_pool2d_bwd_x itself, on an argmax built by wgnn's CPU reference of
// max_pool2d over the same x (the forward's aux output), so the row measures the backward kernel alone.
import { CpuBackend, Rng } from '../src/index.js';
import { poolOps, type AnyOp, type TensorSpec } from '../src/internal.js';
import {
  cpuCheck,
  hostUniform,
  opRunner,
  sizeOfShape,
  type Case,
  type FamilyOpts,
  type HostTensor,
} from './harness.js';

interface PoolConfig {
  id: string;
  name: string;
  /** x [N,H,W,C] with N per profile. */
  x: (n: number) => number[];
  batch: { quick: number; software: number; gpu: number };
  pool: number;
  stride: number;
  padding: 'valid' | 'same';
}

const CONFIGS: PoolConfig[] = [
  // The seed CNN's pool after conv1 (26×26×32).
  {
    id: 'seed',
    name: 'seed',
    x: (n) => [n, 26, 26, 32],
    batch: { quick: 8, software: 64, gpu: 64 },
    pool: 2,
    stride: 2,
    padding: 'valid',
  },
  // A ResNet stem: 3×3 stride 2 'same' over 112×112×64.
  {
    id: 'stem',
    name: 'resnet stem',
    x: (n) => [n, 112, 112, 64],
    batch: { quick: 1, software: 2, gpu: 16 },
    pool: 3,
    stride: 2,
    padding: 'same',
  },
];

type Kind = 'max-fwd' | 'max-bwd' | 'avg-fwd' | 'avg-bwd';
const KINDS: Kind[] = ['max-fwd', 'max-bwd', 'avg-fwd', 'avg-bwd'];

export function poolCases(o: FamilyOpts): Case[] {
  return CONFIGS.flatMap((c, ci) => {
    const n = o.batch ?? (o.quick ? c.batch.quick : o.software ? c.batch.software : c.batch.gpu);
    const xShape = c.x(n);
    const attrs = { poolSize: c.pool, strides: c.stride, padding: c.padding };
    const fwdOp = (k: Kind): AnyOp => (k.startsWith('max') ? poolOps.max_pool2d : poolOps.avg_pool2d);
    const yShape = cpuSpec(poolOps.avg_pool2d, xShape, attrs).shape as number[];
    const [nx, ny] = [sizeOfShape(xShape), sizeOfShape(yShape)];
    const label = `${c.name} [${xShape}] pool ${c.pool} s${c.stride} ${c.padding}`;
    return KINDS.map((kind): Case => {
      const seed = 5000 + ci * 100 + KINDS.indexOf(kind) * 10;
      const bwd = kind.endsWith('bwd');
      const op: AnyOp = bwd ? (kind === 'max-bwd' ? poolOps.max_pool2d_bwd_x : poolOps.avg_pool2d_bwd_x) : fwdOp(kind);
      const opAttrs = bwd ? { ...attrs, xShape } : attrs;
      const bytes = 4 * (kind === 'max-fwd' ? nx + 2 * ny : kind === 'max-bwd' ? 2 * ny + nx : nx + ny);
      // Set layout: fwd [x]; avg-bwd [dy, x]; max-bwd [dy, argmax, x, y] (TF.js's MaxPoolGrad reads x and y instead).
      const inputs = (set: number): HostTensor[] => {
        const x = kind.startsWith('max') ? distinct(seed + set * 10, xShape) : hostUniform(seed + set * 10, xShape);
        if (!bwd) return [x];
        const dy = hostUniform(seed + set * 10 + 1, yShape);
        if (kind === 'avg-bwd') return [dy, x];
        const { out, aux } = maxPoolForward(x, attrs);
        return [dy, { data: aux, shape: yShape }, x, { data: out, shape: yShape }];
      };
      const wgnnInputs = (s: HostTensor[]): HostTensor[] =>
        kind === 'max-bwd' ? s.slice(0, 2) : kind === 'avg-bwd' ? s.slice(0, 1) : s;
      const tfPad = c.padding;
      return {
        family: 'pool',
        id: `${c.id}-${kind}`,
        label: `${label} ${kind.replace('-', ' ')}`,
        bound: 'memory',
        bytes,
        meta: { kind, x: xShape, y: yShape, ...attrs },
        inputs,
        check: (inp) => cpuCheck(op, wgnnInputs(inp), opAttrs, seed),
        wgnn: (gpu, sets) => ({
          ...opRunner(gpu, op, sets.map(wgnnInputs), opAttrs),
          ...(kind === 'max-bwd' ? { note: 'argmax from the CPU reference forward' } : {}),
        }),
        tfjs: (p, sets) => {
          const tf = p.tf;
          const win: [number, number] = [c.pool, c.pool];
          switch (kind) {
            case 'max-fwd':
              return p.prepare('MaxPool', sets, ([x]) => tf.maxPool(x as never, win, c.stride, tfPad), {
                note: 'writes no argmax',
              });
            case 'avg-fwd':
              return p.prepare('AvgPool', sets, ([x]) => tf.avgPool(x as never, win, c.stride, tfPad));
            case 'max-bwd':
              // MaxPoolGrad finds the winners again from x and y: it reads both instead of an argmax.
              return p.prepare(
                'MaxPoolGrad',
                sets.map((s) => [s[0]!, s[2]!, s[3]!]),
                ([dy, x, y]) =>
                  tf.engine().runKernel('MaxPoolGrad', { dy: dy!, input: x!, output: y! }, {
                    filterSize: win,
                    strides: c.stride,
                    pad: tfPad,
                    dimRoundingMode: undefined,
                  } as never) as never,
                { note: 'reads x and y, no argmax' },
              );
            case 'avg-bwd':
              return p.prepare(
                'AvgPoolGrad',
                sets.map((s) => [s[0]!, s[1]!]),
                ([dy, x]) =>
                  tf.engine().runKernel('AvgPoolGrad', { dy: dy!, input: x! }, {
                    filterSize: win,
                    strides: c.stride,
                    pad: tfPad,
                  } as never) as never,
                // Checked here: with 'same' padding it matches wgnn's countIncludePad: true to 3e-8, its AvgPool does not.
                tfPad === 'same'
                  ? { note: "divides by the whole window (padding counted), unlike TF.js's AvgPool" }
                  : {},
              );
          }
        },
        jax:
          c.padding !== 'valid'
            ? "jax-js's lax.reduceWindow takes no padding (and np.pad only pads with zeros)"
            : (p, sets) => {
                const { lax, numpy: np, vjp } = p.jax;
                const win = [1, c.pool, c.pool, 1];
                const st = [1, c.stride, c.stride, 1];
                // reduceWindow hands the computation one window (shape `win`) at a time: reduce all of it.
                const pool = kind.startsWith('max')
                  ? (x: Parameters<typeof np.max>[0]) => lax.reduceWindow(x as never, (w) => np.max(w), win, st)
                  : (x: Parameters<typeof np.max>[0]) => lax.reduceWindow(x as never, (w) => np.mean(w), win, st);
                if (!bwd)
                  return p.prepare(kind === 'max-fwd' ? 'reduceWindow(max)' : 'reduceWindow(mean)', sets, (x) =>
                    pool(x!),
                  );
                // vjp needs the forward's input (max: which element won), so it runs the forward again.
                return p.prepare(
                  `vjp(reduceWindow(${kind.startsWith('max') ? 'max' : 'mean'}))`,
                  sets.map((s) => (kind === 'max-bwd' ? [s[0]!, s[2]!] : [s[0]!, s[1]!])),
                  (dy, x) => {
                    const [y, back] = vjp((v: typeof x) => pool(v!), [x!]);
                    y.dispose();
                    const [dx] = back(dy!) as unknown as (typeof x)[];
                    return dx!;
                  },
                  { note: 'jit(vjp): recomputes the forward' },
                );
              },
      };
    });
  });
}

/**
 * x with distinct values: a random permutation of the integers around 0 (exact in f32 up to 2^25 elements; past that,
 * uniform values).
 * NOTE: engines split a max's gradient differently at ties (wgnn and PyTorch: the first; jax-js: evenly; TF.js: the
 * last), and random floats do tie now and then in a million windows: distinct values make every engine comparable.
 */
function distinct(seed: number, shape: number[]): HostTensor {
  const n = sizeOfShape(shape);
  if (n > 2 ** 25) return hostUniform(seed, shape);
  const rng = new Rng(seed);
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  return { data: Float32Array.from(perm, (p) => p - Math.floor(n / 2)), shape };
}

/** The op's output spec for x of `shape` (its shape rule). */
function cpuSpec(op: AnyOp, shape: number[], attrs: object): TensorSpec {
  return op.infer([{ shape, dtype: 'float32' }], { ...op.attrs, ...attrs });
}

/** wgnn's CPU reference of max_pool2d on x: y and the int32 argmax the forward kernel writes as its aux output. */
function maxPoolForward(x: HostTensor, attrs: object): { out: Float32Array; aux: Int32Array } {
  const op = poolOps.max_pool2d;
  const full = { ...op.attrs, ...attrs };
  const spec: TensorSpec = { shape: x.shape, dtype: 'float32' };
  const cpu = new CpuBackend();
  const r = cpu.run(op, [{ handle: cpu.upload(x.data), spec }], op.infer([spec], full), full, op.aux!([spec], full));
  return { out: r.out as Float32Array, aux: r.aux as Int32Array };
}
