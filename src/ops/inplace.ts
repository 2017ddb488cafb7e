// In-place kernels: what each definition holds (kernel, CPU reference, samples, tolerance), and the ones outside
// the optimizers: state that must stay in one buffer so a captured step can replay it (a step's running sums, batch
// norm's running statistics, anomaly mode's flag). INPLACE (src/optim/registry.ts) lists them with the optimizers'.
import type { InPlaceKernel } from '../backend/backend.js';
import { f32, grid1d, i32, u32 } from '../backend/kernel.js';
import { ShapeError, fmtShape } from '../errors.js';
import { sameShape, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { applyInPlace } from './apply.js';
import type { SampleInput, Tol } from './op.js';

/** Every in-place kernel's name. INPLACE has one entry per name: a kernel left out of it does not compile. */
export type InPlaceName = 'accumulate' | 'ema_update' | 'anomaly_check' | 'sgd' | 'adam' | 'rmsprop' | 'adagrad';

/** One test case of an in-place kernel: its targets (updated) and inputs (read), with values, and its attributes. */
export interface InPlaceSample<A> {
  name: string;
  targets: SampleInput[];
  inputs: SampleInput[];
  attrs: A;
}

/** An in-place kernel with what its test needs: samples (awkward sizes, each attribute path) and a tolerance. */
export interface InPlaceDef<A> extends InPlaceKernel<A> {
  readonly name: InPlaceName;
  /** Built when a test asks (some hold millions of values). */
  samples(): Iterable<InPlaceSample<A>>;
  /** GPU against the CPU reference, on every target. */
  readonly tol: Tol;
}

/** Identity helper, so each definition is checked against InPlaceDef with its own attribute type. */
export const defineInPlace = <A>(def: InPlaceDef<A>): InPlaceDef<A> => def;

const WG = 64;
/** Elements past 65,535 workgroups of 64 threads: the flat grid folds into 2D (grid1d). */
const FOLDED = 65535 * WG + 7;
const EXACT: Tol = { atol: 0, rtol: 0 };
const flat = (n: number, range?: [number, number]): SampleInput => (range ? { shape: [n], range } : { shape: [n] });

/** acc [n] += x [n], in place (a captured step's running sums of its loss and metrics: n = 1). */
export const accumulate = defineInPlace<Record<string, never>>({
  name: 'accumulate',
  cpu: ({ targets: [acc], inputs: [x] }) => {
    for (let i = 0; i < acc!.data.length; i++) acc!.data[i]! += x!.data[i]!;
  },
  gpu: ({ targets: [acc], inputs: [x], ctx }) => {
    const n = sizeOf(acc!.shape);
    ctx.dispatch({
      shader: 'accumulate',
      overrides: { WG },
      workgroups: grid1d(n, WG, ctx.limits.maxComputeWorkgroupsPerDimension),
      outputs: [acc!],
      inputs: [x!],
      uniforms: [u32(n)],
    });
  },
  samples: () => [
    ...[1, 7, 33, 65, 129].map((n) => ({ name: `[${n}]`, targets: [flat(n)], inputs: [flat(n)], attrs: {} })),
    { name: '[4,33]', targets: [{ shape: [4, 33] }], inputs: [{ shape: [4, 33] }], attrs: {} },
    // NOTE: a NaN or Inf loss must reach the sums (and Inf + -Inf is NaN), so a diverging run shows in its logs.
    {
      name: 'NaN and ±Inf [7]',
      targets: [{ shape: [7], values: [0.5, NaN, Infinity, -Infinity, Infinity, 2, -3] }],
      inputs: [{ shape: [7], values: [1, 2, 3, Infinity, -Infinity, NaN, -1] }],
      attrs: {},
    },
    { name: `[${FOLDED}] (a 2D grid)`, targets: [flat(FOLDED)], inputs: [flat(FOLDED)], attrs: {} },
  ],
  // One f32 addition: the CPU's float64 sum of two f32 values rounds to the same f32.
  tol: EXACT,
});

/** avg [n] = momentum · avg + (1 − momentum) · x [n], in float64 on the CPU. */
export const emaUpdate = defineInPlace<{ momentum: number }>({
  name: 'ema_update',
  cpu: ({ targets: [avg], inputs: [x], attrs }) => {
    const m = attrs.momentum;
    for (let i = 0; i < avg!.data.length; i++) avg!.data[i] = m * avg!.data[i]! + (1 - m) * x!.data[i]!;
  },
  gpu: ({ targets: [avg], inputs: [x], attrs, ctx }) => {
    const n = sizeOf(avg!.shape);
    ctx.dispatch({
      shader: 'ema_update',
      overrides: { WG },
      workgroups: grid1d(n, WG, ctx.limits.maxComputeWorkgroupsPerDimension),
      outputs: [avg!],
      inputs: [x!],
      uniforms: [u32(n), f32(attrs.momentum), f32(1 - attrs.momentum)],
    });
  },
  samples: () => [
    ...(
      [
        [1, 0.9],
        [7, 0.1],
        [33, 0.99],
        [65, 0],
        [129, 1],
      ] as const
    ).map(([n, momentum]) => ({
      name: `[${n}] momentum ${momentum}`,
      targets: [flat(n)],
      inputs: [flat(n)],
      attrs: { momentum },
    })),
    {
      name: '[4,33] momentum 0.5',
      targets: [{ shape: [4, 33] }],
      inputs: [{ shape: [4, 33] }],
      attrs: { momentum: 0.5 },
    },
    {
      name: `[${FOLDED}] momentum 0.9 (a 2D grid)`,
      targets: [flat(FOLDED)],
      inputs: [flat(FOLDED)],
      attrs: { momentum: 0.9 },
    },
  ],
  // Two f32 products and a sum against float64: a few ulp of values up to 2.
  tol: { atol: 1e-6, rtol: 1e-6 },
});

/** Moves the running average `avg` towards `x` in place (`avg` keeps its buffer). */
export function emaInPlace(avg: Tensor, x: Tensor, momentum: number): void {
  if (!sameShape(avg.shape, x.shape))
    throw new ShapeError(`ema_update: average ${fmtShape(avg.shape)} and value ${fmtShape(x.shape)} differ`);
  applyInPlace(emaUpdate, [avg], [x], { momentum });
}

export interface AnomalyCheckAttrs {
  /** Called once per check, and again at each replay of a captured step: each run of the op gets its own number. */
  seq: () => number;
}

const CHECK_WG = 256;
/** Workgroups of one check at most: the kernel loops over the rest, so the grid never needs folding. */
const CHECK_MAX_GROUPS = 256;
/** Anomaly mode's flag when nothing was flagged (src/debug/anomaly.ts). */
const CLEAN = 0x7fffffff;
/** Values 0.25 with `last` at the end. */
const endsWith = (n: number, last: number): SampleInput => ({
  shape: [n],
  values: [...Array<number>(n - 1).fill(0.25), last],
});

/** flag [1] (int32) = min(flag, seq) if x [n] has a NaN or an Inf (anomaly mode, src/debug/anomaly.ts). */
export const anomalyCheck = defineInPlace<AnomalyCheckAttrs>({
  name: 'anomaly_check',
  cpu: ({ targets: [flag], inputs: [x], attrs }) => {
    const seq = attrs.seq();
    if (x!.data.some((v) => !Number.isFinite(v))) flag!.data[0] = Math.min(flag!.data[0]!, seq);
  },
  gpu: ({ targets: [flag], inputs: [x], attrs, ctx }) => {
    const n = sizeOf(x!.shape);
    ctx.dispatch({
      shader: 'anomaly_check',
      overrides: { WG: CHECK_WG },
      workgroups: [Math.min(Math.ceil(n / CHECK_WG), CHECK_MAX_GROUPS)],
      outputs: [flag!],
      inputs: [x!],
      // A function: a captured step replays the check, and each replay's op gets a fresh entry in the log.
      uniforms: () => [u32(n), i32(attrs.seq())],
    });
  },
  samples: () => {
    const flag = (v: number): SampleInput => ({ shape: [1], dtype: 'int32', values: [v] });
    const seq = { seq: () => 5 };
    // Past the grid's 256 x 256 threads, so the last value is reached by the kernel's loop.
    const looped = CHECK_WG * CHECK_MAX_GROUPS * 2 + 5;
    return [
      { name: 'clean [7]', targets: [flag(CLEAN)], inputs: [flat(7)], attrs: seq },
      { name: 'NaN [1]', targets: [flag(CLEAN)], inputs: [{ shape: [1], values: [NaN] }], attrs: seq },
      { name: '+Inf last of [33]', targets: [flag(CLEAN)], inputs: [endsWith(33, Infinity)], attrs: seq },
      {
        name: '-Inf last of [257] (two workgroups)',
        targets: [flag(CLEAN)],
        inputs: [endsWith(257, -Infinity)],
        attrs: seq,
      },
      {
        name: `NaN last of [${looped}] (the kernel's loop)`,
        targets: [flag(CLEAN)],
        inputs: [endsWith(looped, NaN)],
        attrs: seq,
      },
      { name: `clean [${looped}]`, targets: [flag(CLEAN)], inputs: [flat(looped)], attrs: seq },
      // NOTE: only NaN and ±Inf count: the largest f32, a denormal and -0 are finite.
      {
        name: 'finite extremes [5]',
        targets: [flag(CLEAN)],
        inputs: [{ shape: [5], values: [3.4e38, -3.4e38, 1e-45, -0, 0] }],
        attrs: seq,
      },
      {
        name: 'an earlier flag (3) stays',
        targets: [flag(3)],
        inputs: [{ shape: [3], values: [1, NaN, 2] }],
        attrs: seq,
      },
      {
        name: 'a later flag (9) is lowered',
        targets: [flag(9)],
        inputs: [{ shape: [3], values: [1, 2, -Infinity] }],
        attrs: seq,
      },
    ];
  },
  tol: EXACT,
});
