// Random ops: dropout from a counter-based hash, so a mask is a pure function of (seed, index): the backward pass
// regenerates it instead of storing it, and replays of a step are reproducible.
import { f32, grid1d, u32 } from '../backend/kernel.js';
import { ShapeError } from '../errors.js';
import { sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { defineOp, type OpDef } from './op.js';
import { requireFloat } from './util.js';

/** Options of `dropout`. */
export interface DropoutAttrs {
  /** Fraction of elements zeroed, in [0, 1). */
  rate: number;
  /**
   * Picks the mask; a new one per training step. A box `{ value }` is read when the kernel is encoded and again at
   * every replay of a captured step, so a layer can advance it without re-running the op.
   */
  seed: number | { value: number };
}

const seedOf = (s: DropoutAttrs['seed']): number => (typeof s === 'number' ? s : s.value) >>> 0;

// The same PCG output permutation as shaders/dropout_fwd.wgsl, in 32-bit unsigned arithmetic.
function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The uniform number in [0, 1) that decides element i's fate. */
const uniformAt = (seed: number, i: number): number => (pcg((i ^ pcg(seed)) >>> 0) >>> 8) / 16777216;

const WG = 256;

export const dropoutOp: OpDef<DropoutAttrs> = defineOp<DropoutAttrs>({
  name: 'dropout',
  arity: 1,
  attrs: { rate: 0.5, seed: 0 },
  infer: ([x], a) => {
    requireFloat('dropout', [x!]);
    if (!(a.rate >= 0 && a.rate < 1))
      throw new ShapeError(`dropout: rate ${a.rate} for input of ${x!.shape.length} dims; expected 0 <= rate < 1`);
    return { shape: x!.shape, dtype: 'float32' };
  },
  // y [n] = x [n] · [u(seed, i) ≥ rate] / (1 − rate)
  cpu: ({ inputs: [x], attrs, alloc }) => {
    const y = alloc(x!.data.length);
    const scale = 1 / (1 - attrs.rate);
    const seed = seedOf(attrs.seed);
    for (let i = 0; i < y.length; i++) y[i] = uniformAt(seed, i) >= attrs.rate ? x!.data[i]! * scale : 0;
    return y;
  },
  gpu: ({ inputs: [x], out, attrs, ctx }) => {
    const n = sizeOf(out.shape);
    ctx.dispatch({
      shader: 'dropout_fwd',
      overrides: { WG },
      workgroups: grid1d(n, WG, ctx.limits.maxComputeWorkgroupsPerDimension),
      outputs: [out],
      inputs: [x!],
      uniforms: () => [u32(n), u32(seedOf(attrs.seed)), f32(attrs.rate), f32(1 / (1 - attrs.rate))],
    });
  },
  samples: function* () {
    for (const [shape, rate, seed] of [
      [[1], 0.5, 1],
      [[7], 0.1, 2],
      [[33], 0.9, 3],
      [[65, 3], 0.5, 4],
      [[129], 0, 5],
      [[2, 0, 3], 0.5, 6],
      [[64, 28, 28], 0.25, 7],
      [[WG * 257 + 3], 0.5, 0xffffffff],
    ] as [number[], number, number][]) {
      yield { name: `[${shape}] rate ${rate} seed ${seed}`, inputs: [{ shape }], attrs: { rate, seed } };
    }
  },
  bad: [
    {
      name: 'rate 1',
      inputs: [{ shape: [2, 3] }],
      attrs: { rate: 1 },
      error: ShapeError,
      message: /dropout: rate 1 .*expected 0 <= rate < 1/,
    },
  ],
  // Masks agree exactly (integer hash); the scale is one f32 multiply.
  tol: { atol: 1e-6, rtol: 1e-6 },
  // d dropout = the same mask and scale applied to dy: the kernel itself, same seed.
  grad: { saves: {}, rule: ({ attrs, needs }, dy) => [needs[0] ? apply(dropoutOp, [dy], attrs) : null] },
});

export const randomOps = { dropout: dropoutOp };

/** Zeroes each element with probability `rate` and scales the rest by 1/(1 − rate); the mask is a function of `seed`. */
export const dropout = (x: Tensor, rate: number, seed: DropoutAttrs['seed']): Tensor =>
  apply(dropoutOp, [x], { rate, seed });
