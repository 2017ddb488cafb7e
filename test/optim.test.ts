// Optimizers: each rule's fused WebGPU kernel against its CPU reference over 5 steps on awkward sizes, both backends
// against PyTorch's formulas worked out here for 2 steps, convergence on a quadratic, schedules, clipGradNorm,
// zeroGrad, state round trips, errors, leaks, and one dispatch per parameter with no new buffers in a steady loop.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Backend, TypedArray } from '../src/backend/backend.js';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { BackendError, DTypeError, ShapeError, WgnnError } from '../src/errors.js';
import { square, sub, sum } from '../src/ops/index.js';
import type { Tol } from '../src/ops/op.js';
import {
  adagrad,
  adam,
  adamw,
  clipGradNorm,
  cosineDecay,
  exponentialDecay,
  rmsprop,
  sgd,
  stepDecay,
  warmupCosine,
  type Optimizer,
} from '../src/optim/index.js';
import { layers, sequential, setSeed, trainStep, type Sequential } from '../src/nn/index.js';
import { Rng } from '../src/rng.js';
import { noGrad } from '../src/autograd/tape.js';
import { memory, setDefaultBackend, tidy, type Tensor } from '../src/tensor.js';
import { cpu, expectClose, gpuBackend, upload } from './helpers.js';

let gpu: WebGpuBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
});

const TOL: Tol = { atol: 1e-5, rtol: 1e-4 };
const uniform = (rng: Rng, n: number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => rng.uniform(lo, hi));

interface Case {
  label: string;
  make: () => Optimizer;
  /** Clip the gradients to this global norm before each step. */
  clip?: number;
}

const CASES: Case[] = [
  { label: 'sgd lr 0.1', make: () => sgd(0.1) },
  {
    label: 'sgd momentum 0.9 dampening 0.3 weightDecay 0.01',
    make: () => sgd({ lr: 0.05, momentum: 0.9, dampening: 0.3, weightDecay: 0.01 }),
  },
  {
    label: 'sgd nesterov 0.9 weightDecay 0.1',
    make: () => sgd({ lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.1 }),
  },
  { label: 'adam lr 0.01', make: () => adam(0.01) },
  {
    label: 'adam betas [0.8,0.99] eps 1e-6 weightDecay 0.1',
    make: () => adam({ lr: 0.01, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1 }),
  },
  { label: 'adamw lr 0.01 weightDecay 0.1', make: () => adamw({ lr: 0.01, weightDecay: 0.1 }) },
  { label: 'rmsprop lr 0.01', make: () => rmsprop(0.01) },
  { label: 'rmsprop momentum 0.9', make: () => rmsprop({ lr: 0.01, momentum: 0.9 }) },
  {
    label: 'rmsprop centered momentum 0.5 alpha 0.9 weightDecay 0.01',
    make: () => rmsprop({ lr: 0.01, alpha: 0.9, centered: true, momentum: 0.5, weightDecay: 0.01 }),
  },
  { label: 'adagrad lr 0.1', make: () => adagrad(0.1) },
  {
    label: 'adagrad lrDecay 0.1 initialAccumulatorValue 0.1 weightDecay 0.01',
    make: () => adagrad({ lr: 0.1, lrDecay: 0.1, initialAccumulatorValue: 0.1, weightDecay: 0.01 }),
  },
  { label: 'sgd momentum 0.9 with clipGradNorm 0.5', make: () => sgd({ lr: 0.1, momentum: 0.9 }), clip: 0.5 },
  { label: 'adam with clipGradNorm 2', make: () => adam(0.01), clip: 2 },
];

const SHAPES = [[1], [7], [33], [129], [10, 100]];

/** 5 steps with seeded gradients on params of SHAPES; returns the params, the states and the clip norms. */
async function fiveSteps(b: Backend, c: Case) {
  const rng = new Rng(42);
  const params = SHAPES.map((s) =>
    upload(
      b,
      uniform(
        rng,
        s.reduce((x, y) => x * y, 1),
        -2,
        2,
      ),
      s,
    ),
  );
  const opt = c.make();
  const norms: Tensor[] = [];
  for (let step = 0; step < 5; step++) {
    for (const p of params) p.grad = upload(b, uniform(rng, p.size), p.shape);
    if (c.clip !== undefined) norms.push(clipGradNorm(params, c.clip));
    opt.step(params);
    opt.zeroGrad(params);
  }
  const st = opt.state(params);
  const out = {
    params: await Promise.all(params.map((p) => p.data())),
    steps: st.params.map((s) => s?.step),
    slots: await Promise.all(
      st.params.map(async (s) =>
        Object.fromEntries(
          await Promise.all(Object.entries(s!.slots).map(async ([k, t]) => [k, await t.data()] as const)),
        ),
      ),
    ),
    norms: await Promise.all(norms.map((n) => n.data())),
  };
  for (const t of [...params, ...norms, ...st.params.flatMap((s) => Object.values(s!.slots))]) t.dispose();
  opt.dispose();
  return out;
}

describe('optimizer kernels [webgpu] gpu≈cpu', () => {
  it.each(CASES)('$label: 5 steps on [1] [7] [33] [129] [10,100] [webgpu] gpu≈cpu', async (c) => {
    const want = await fiveSteps(cpu, c);
    const got = await fiveSteps(gpu, c);
    expect(got.steps).toEqual([5, 5, 5, 5, 5]);
    expect(want.steps).toEqual([5, 5, 5, 5, 5]);
    SHAPES.forEach((s, i) => {
      expectClose(got.params[i]!, want.params[i]!, TOL, `${c.label} param [${s}]`);
      expect(Object.keys(got.slots[i]!).sort()).toEqual(Object.keys(want.slots[i]!).sort());
      for (const [k, v] of Object.entries(want.slots[i]!))
        expectClose(got.slots[i]![k]!, v, TOL, `${c.label} ${k} [${s}]`);
    });
    got.norms.forEach((n, i) =>
      expectClose(n, want.norms[i]!, { atol: 1e-5, rtol: 1e-5 }, `${c.label} norm at step ${i}`),
    );
  });
});

// PyTorch's update rules worked out for two steps on one element, in float64, independently of src/optim.
const X0 = [0.5, -1.5, 2];
const G1 = [0.1, -0.3, 0.8];
const G2 = [-0.2, 0.4, 0.05];

interface Hand {
  label: string;
  make: () => Optimizer;
  /** x after two steps with gradients g1, g2 from x0. */
  twoSteps: (x0: number, g1: number, g2: number) => number;
}

const adamHand =
  (lr: number, b1: number, b2: number, eps: number, wd: number, decoupled: boolean) =>
  (x0: number, g1: number, g2: number) => {
    let x = x0;
    let m = 0;
    let v = 0;
    [g1, g2].forEach((g0, k) => {
      const t = k + 1;
      let g = g0;
      if (decoupled) x = x * (1 - lr * wd);
      else g = g + wd * x;
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      const mHat = m / (1 - b1 ** t);
      const vHat = v / (1 - b2 ** t);
      x = x - (lr * mHat) / (Math.sqrt(vHat) + eps);
    });
    return x;
  };

const HAND: Hand[] = [
  { label: 'sgd lr 0.1', make: () => sgd(0.1), twoSteps: (x0, g1, g2) => x0 - 0.1 * g1 - 0.1 * g2 },
  {
    label: 'sgd momentum 0.9 dampening 0.5',
    make: () => sgd({ lr: 0.1, momentum: 0.9, dampening: 0.5 }),
    // b1 = g1 (no dampening on the first step); b2 = 0.9·b1 + 0.5·g2
    twoSteps: (x0, g1, g2) => x0 - 0.1 * g1 - 0.1 * (0.9 * g1 + 0.5 * g2),
  },
  {
    label: 'sgd nesterov 0.9 weightDecay 0.1',
    make: () => sgd({ lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.1 }),
    twoSteps: (x0, g1, g2) => {
      const d1 = g1 + 0.1 * x0;
      const b1 = d1;
      const x1 = x0 - 0.1 * (d1 + 0.9 * b1);
      const d2 = g2 + 0.1 * x1;
      const b2 = 0.9 * b1 + d2;
      return x1 - 0.1 * (d2 + 0.9 * b2);
    },
  },
  { label: 'adam lr 0.1', make: () => adam(0.1), twoSteps: adamHand(0.1, 0.9, 0.999, 1e-8, 0, false) },
  {
    label: 'adam weightDecay 0.2 (L2)',
    make: () => adam({ lr: 0.1, weightDecay: 0.2 }),
    twoSteps: adamHand(0.1, 0.9, 0.999, 1e-8, 0.2, false),
  },
  {
    label: 'adamw weightDecay 0.2 (decoupled) betas [0.5,0.9] eps 0.01',
    make: () => adamw({ lr: 0.1, weightDecay: 0.2, betas: [0.5, 0.9], eps: 0.01 }),
    twoSteps: adamHand(0.1, 0.5, 0.9, 0.01, 0.2, true),
  },
  {
    label: 'rmsprop lr 0.01',
    make: () => rmsprop(0.01),
    twoSteps: (x0, g1, g2) => {
      const v1 = 0.01 * g1 * g1;
      const x1 = x0 - (0.01 * g1) / (Math.sqrt(v1) + 1e-8);
      const v2 = 0.99 * v1 + 0.01 * g2 * g2;
      return x1 - (0.01 * g2) / (Math.sqrt(v2) + 1e-8);
    },
  },
  {
    label: 'rmsprop centered momentum 0.5 alpha 0.9 weightDecay 0.1',
    make: () => rmsprop({ lr: 0.01, alpha: 0.9, momentum: 0.5, centered: true, weightDecay: 0.1 }),
    twoSteps: (x0, g1, g2) => {
      let x = x0;
      let v = 0;
      let a = 0;
      let b = 0;
      for (const g0 of [g1, g2]) {
        const g = g0 + 0.1 * x;
        v = 0.9 * v + 0.1 * g * g;
        a = 0.9 * a + 0.1 * g;
        b = 0.5 * b + g / (Math.sqrt(v - a * a) + 1e-8);
        x = x - 0.01 * b;
      }
      return x;
    },
  },
  {
    label: 'adagrad lrDecay 0.5 initialAccumulatorValue 0.2 weightDecay 0.1',
    make: () => adagrad({ lr: 0.1, lrDecay: 0.5, initialAccumulatorValue: 0.2, weightDecay: 0.1 }),
    twoSteps: (x0, g1, g2) => {
      const d1 = g1 + 0.1 * x0;
      const s1 = 0.2 + d1 * d1;
      const x1 = x0 - (0.1 * d1) / (Math.sqrt(s1) + 1e-10);
      const d2 = g2 + 0.1 * x1;
      const s2 = s1 + d2 * d2;
      return x1 - ((0.1 / 1.5) * d2) / (Math.sqrt(s2) + 1e-10);
    },
  },
];

describe.each(['cpu', 'webgpu'] as const)('PyTorch formulas by hand, 2 steps [%s]', (which) => {
  it.each(HAND)(`$label on [3] [${which === 'webgpu' ? 'webgpu' : 'cpu'}]`, async (h) => {
    const b = which === 'cpu' ? cpu : gpu;
    const x = upload(b, Float32Array.from(X0), [3]);
    const opt = h.make();
    for (const g of [G1, G2]) {
      x.grad = upload(b, Float32Array.from(g), [3]);
      opt.step([x]);
      opt.zeroGrad([x]);
    }
    expect(opt.stepCount).toBe(2);
    const want = Float64Array.from(X0, (x0, i) =>
      h.twoSteps(Math.fround(x0), Math.fround(G1[i]!), Math.fround(G2[i]!)),
    );
    expectClose(await x.data(), want, { atol: 1e-6, rtol: 1e-5 }, h.label);
    x.dispose();
    opt.dispose();
  });
});

describe('convergence [webgpu]', () => {
  const RUNS: { label: string; make: () => Optimizer }[] = [
    { label: 'sgd lr 0.1', make: () => sgd(0.1) },
    { label: 'sgd momentum 0.9 nesterov lr 0.05', make: () => sgd({ lr: 0.05, momentum: 0.9, nesterov: true }) },
    { label: 'adam lr 0.1', make: () => adam(0.1) },
    { label: 'adamw lr 0.1', make: () => adamw(0.1) },
    { label: 'rmsprop lr 0.05', make: () => rmsprop(0.05) },
    { label: 'adagrad lr 0.5', make: () => adagrad(0.5) },
  ];
  it.each(RUNS)('$label reduces Σ(x − t)² [33] over 100 steps to under 1% [webgpu]', async ({ make }) => {
    const rng = new Rng(3);
    const x = upload(gpu, uniform(rng, 33, -3, 3), [33]).variable();
    const t = upload(gpu, uniform(rng, 33, -3, 3), [33]);
    const f = () => tidy(() => sum(square(sub(x, t))));
    const f0 = noGrad(f);
    const opt = make();
    for (let i = 0; i < 100; i++) {
      const loss = f();
      loss.backward();
      opt.step([x]);
      opt.zeroGrad([x]);
      loss.dispose();
    }
    const f100 = noGrad(f);
    const [a, z] = [(await f0.data())[0]!, (await f100.data())[0]!];
    expect(a).toBeGreaterThan(10);
    expect(z).toBeLessThan(0.01 * a);
    for (const u of [x, t, f0, f100]) u.dispose();
    opt.dispose();
  });
});

describe('learning-rate schedules', () => {
  it('stepDecay, exponentialDecay, cosineDecay at known steps', () => {
    const s = stepDecay({ initial: 0.1, stepSize: 10, gamma: 0.5 });
    expect([0, 9, 10, 25].map(s)).toEqual([0.1, 0.1, 0.05, 0.025]);
    const e = exponentialDecay({ initial: 0.1, decayRate: 0.5, decaySteps: 10 });
    expect(e(0)).toBe(0.1);
    expect(e(5)).toBeCloseTo(0.1 * Math.SQRT1_2, 15);
    expect(e(20)).toBeCloseTo(0.025, 15);
    const es = exponentialDecay({ initial: 0.1, decayRate: 0.5, decaySteps: 10, staircase: true });
    expect([0, 9, 10, 15, 20].map(es)).toEqual([0.1, 0.1, 0.05, 0.05, 0.025]);
    const c = cosineDecay({ initial: 1, decaySteps: 100, alpha: 0.1 });
    expect(c(0)).toBe(1);
    expect(c(50)).toBeCloseTo(0.55, 15);
    expect(c(100)).toBeCloseTo(0.1, 15);
    expect(c(1000)).toBeCloseTo(0.1, 15);
    expect(() => stepDecay({ initial: 1, stepSize: 0 })).toThrow(WgnnError);
    expect(() => stepDecay({ initial: 1, stepSize: 0 })).toThrow(/stepDecay: stepSize must be > 0, got 0/);
  });

  it('warmupCosine: linear warmup peak·(step+1)/warmupSteps, then cosine from peak to min over decaySteps, then min', () => {
    const s = warmupCosine({ peak: 1, warmupSteps: 4, decaySteps: 10, min: 0.1 });
    expect([0, 1, 2, 3].map(s)).toEqual([0.25, 0.5, 0.75, 1]);
    expect(s(4)).toBe(1); // t = 0
    expect(s(6)).toBeCloseTo(0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI / 5)), 15); // t = 0.2
    expect(s(6)).toBeCloseTo(0.914057647, 9); // cos 36° = 0.809017: 0.1 + 0.9 · 0.904508
    expect(s(9)).toBeCloseTo(0.55, 15); // t = 0.5
    expect(s(14)).toBeCloseTo(0.1, 15); // t = 1
    expect([15, 100, 1e9].map(s)).toEqual([0.1, 0.1, 0.1]);
    // no warmup, min 0 by default
    const c = warmupCosine({ peak: 6e-4, warmupSteps: 0, decaySteps: 100 });
    expect(c(0)).toBe(6e-4);
    expect(c(50)).toBeCloseTo(3e-4, 18);
    expect(c(100)).toBe(0);
    // as an optimizer's lr: evaluated at stepCount
    const opt = sgd(warmupCosine({ peak: 0.2, warmupSteps: 2, decaySteps: 2 }));
    const lrs: number[] = [];
    for (let i = 0; i < 5; i++, opt.stepCount++) lrs.push(opt.lr);
    expect(lrs[0]).toBe(0.1);
    expect(lrs[1]).toBe(0.2);
    expect(lrs[2]).toBe(0.2);
    expect(lrs[3]).toBeCloseTo(0.1, 15);
    expect(lrs[4]).toBeCloseTo(0, 15);
    const bad: [object, RegExp][] = [
      [{ peak: -1, warmupSteps: 1, decaySteps: 1 }, /warmupCosine: peak must be >= 0, got -1/],
      [{ peak: NaN, warmupSteps: 1, decaySteps: 1 }, /peak/],
      [{ peak: 1, warmupSteps: 1.5, decaySteps: 1 }, /warmupCosine: warmupSteps must be an integer >= 0, got 1.5/],
      [{ peak: 1, warmupSteps: -1, decaySteps: 1 }, /warmupSteps/],
      [{ peak: 1, warmupSteps: 1, decaySteps: 0 }, /warmupCosine: decaySteps must be > 0, got 0/],
      [{ peak: 1, warmupSteps: 1, decaySteps: 1, min: 2 }, /warmupCosine: min must be in \[0, 1\], got 2/],
      [{ peak: 1, warmupSteps: 1, decaySteps: 1, min: -0.1 }, /min/],
      [{ peak: 1, warmupSteps: 1 }, /decaySteps/],
      [{ peak: 1, warmupSteps: 1, decaySteps: 1, warmup: 3 }, /unknown option "warmup"/],
    ];
    for (const [o, msg] of bad) expect(() => warmupCosine(o as never), JSON.stringify(o)).toThrow(msg);
    expect(() => warmupCosine(null as never)).toThrow(/options must be an object/);
    expect(() => warmupCosine({ peak: -1, warmupSteps: 1, decaySteps: 1 })).toThrow(WgnnError);
  });

  it('an optimizer evaluates its schedule at stepCount, 0 first; lr is settable [webgpu]', async () => {
    const x = upload(gpu, Float32Array.from([0]), [1]);
    const opt = sgd(stepDecay({ initial: 1, stepSize: 1, gamma: 0.5 }));
    const lrs: number[] = [];
    for (let i = 0; i < 3; i++) {
      lrs.push(opt.lr);
      x.grad = upload(gpu, Float32Array.from([1]), [1]);
      opt.step([x]);
      opt.zeroGrad([x]);
    }
    expect(lrs).toEqual([1, 0.5, 0.25]);
    expectClose(await x.data(), Float64Array.from([-1.75]), { atol: 0, rtol: 1e-7 }, 'x after 3 scheduled steps');
    opt.lr = 2;
    expect(opt.lr).toBe(2);
    x.grad = upload(gpu, Float32Array.from([1]), [1]);
    opt.step([x]);
    opt.zeroGrad([x]);
    expectClose(await x.data(), Float64Array.from([-3.75]), { atol: 0, rtol: 1e-7 }, 'x after lr = 2');
    x.dispose();
    opt.dispose();
  });
});

describe.each(['cpu', 'webgpu'] as const)('clipGradNorm [%s]', (which) => {
  const tag = which === 'webgpu' ? ' [webgpu]' : '';
  const b = () => (which === 'cpu' ? cpu : gpu);
  const GA = [3, -4, 1, 0.5];
  const GB = [2, -1, 0.25];
  const normOf = (...gs: number[][]) => Math.sqrt(gs.flat().reduce((s, g) => s + Math.fround(g) ** 2, 0));

  function setup() {
    const p = [upload(b(), Float32Array.from([1, 2, 3, 4]), [2, 2]), upload(b(), Float32Array.from([-1, 0, 1]), [3])];
    p[0]!.grad = upload(b(), Float32Array.from(GA), [2, 2]);
    p[1]!.grad = upload(b(), Float32Array.from(GB), [3]);
    return p;
  }

  it(`returns the global L2 norm; the next step applies min(1, maxNorm / (norm + 1e-6)) in its kernel${tag}`, async () => {
    const ps = setup();
    const norm = clipGradNorm(ps, 1);
    const n = normOf(GA, GB);
    expect(norm.shape).toEqual([]);
    expectClose(await norm.data(), Float64Array.from([n]), { atol: 0, rtol: 1e-6 }, 'norm');
    const opt = sgd(1);
    opt.step(ps);
    const k = 1 / (n + 1e-6);
    expectClose(
      await ps[0]!.data(),
      Float64Array.from([1, 2, 3, 4], (x, i) => x - k * GA[i]!),
      { atol: 1e-6, rtol: 1e-6 },
      'param 0',
    );
    expectClose(
      await ps[1]!.data(),
      Float64Array.from([-1, 0, 1], (x, i) => x - k * GB[i]!),
      { atol: 1e-6, rtol: 1e-6 },
      'param 1',
    );
    // NOTE: the gradients themselves are not rescaled (the factor is applied in the step).
    expectClose(await ps[0]!.grad!.data(), Float64Array.from(GA), { atol: 0, rtol: 0 }, 'grad 0 untouched');
    opt.zeroGrad(ps);
    for (const t of [...ps, norm]) t.dispose();
    opt.dispose();
  });

  it(`leaves gradients under maxNorm as they are; two clips compose${tag}`, async () => {
    const ps = setup();
    const n = normOf(GA, GB);
    clipGradNorm(ps, 100).dispose();
    const n2 = clipGradNorm(ps, 2); // sees the (unchanged) norm n, then clips to 2
    expectClose(await n2.data(), Float64Array.from([n]), { atol: 0, rtol: 1e-6 }, 'norm after a no-op clip');
    const n3 = clipGradNorm(ps, 1); // sees the clipped norm
    const k2 = 2 / (n + 1e-6);
    expectClose(await n3.data(), Float64Array.from([n * k2]), { atol: 0, rtol: 1e-6 }, 'norm after clipping to 2');
    const k = k2 * (1 / (n * k2 + 1e-6));
    const opt = sgd(1);
    opt.step(ps);
    expectClose(
      await ps[0]!.data(),
      Float64Array.from([1, 2, 3, 4], (x, i) => x - k * GA[i]!),
      { atol: 1e-6, rtol: 1e-6 },
      'param 0',
    );
    // The factor is used by one step only.
    opt.step(ps);
    expectClose(
      await ps[1]!.data(),
      Float64Array.from([-1, 0, 1], (x, i) => x - k * GB[i]! - GB[i]!),
      { atol: 1e-6, rtol: 1e-6 },
      'param 1',
    );
    opt.zeroGrad(ps);
    for (const t of [...ps, n2, n3]) t.dispose();
    opt.dispose();
  });

  it(`no gradients: norm 0${tag}`, async () => {
    const p = upload(b(), Float32Array.from([1]), [1]);
    const n = clipGradNorm([p], 1);
    expect(Array.from(await n.data())).toEqual([0]);
    for (const t of [p, n]) t.dispose();
  });
});

/** Bitwise equality of two lists of float32 arrays. */
const same = (a: Float32Array[], e: Float32Array[]) =>
  a.length === e.length && a.every((x, i) => Buffer.from(x.buffer).equals(Buffer.from(e[i]!.buffer)));

describe.each(['cpu', 'webgpu'] as const)('globalClipnorm [%s]', (which) => {
  const tag = which === 'webgpu' ? ' [webgpu]' : '';
  const b = () => (which === 'cpu' ? cpu : gpu);
  const RULES: [string, (clip?: number) => Optimizer][] = [
    ['sgd momentum 0.9', (clip) => sgd({ lr: 0.5, momentum: 0.9, globalClipnorm: clip })],
    ['adamw weightDecay 0.1', (clip) => adamw({ lr: 0.1, weightDecay: 0.1, globalClipnorm: clip })],
    ['rmsprop', (clip) => rmsprop({ lr: 0.01, globalClipnorm: clip })],
    ['adagrad', (clip) => adagrad({ lr: 0.1, globalClipnorm: clip })],
  ];

  /** 3 steps on [7] [33] [10,100] (the last without a gradient at step 2); `clip` 'option' or 'byHand' or none. */
  async function threeSteps(make: (clip?: number) => Optimizer, clip: 'option' | 'byHand' | 'none', maxNorm: number) {
    const rng = new Rng(21);
    const shapes = [[7], [33], [10, 100]];
    const ps = shapes.map((s) =>
      upload(
        b(),
        uniform(
          rng,
          s.reduce((x, y) => x * y, 1),
        ),
        s,
      ),
    );
    const opt = make(clip === 'option' ? maxNorm : undefined);
    for (let step = 0; step < 3; step++) {
      ps.forEach((p, i) => (p.grad = step === 1 && i === 2 ? undefined : upload(b(), uniform(rng, p.size), p.shape)));
      if (clip === 'byHand') clipGradNorm(ps, maxNorm).dispose();
      opt.step(ps);
      opt.zeroGrad(ps);
    }
    const out = await Promise.all(ps.map(async (p) => (await p.data()) as Float32Array));
    ps.forEach((p) => p.dispose());
    opt.dispose();
    return out;
  }
  it.each(RULES)(
    `%s: 3 steps with globalClipnorm equal clipGradNorm then step, bitwise; a large one clips nothing${tag}`,
    async (_, make) => {
      // the gradients' global norm is about 10 (1130 values uniform in [-1, 1]): 0.5 clips, 1e6 does not
      const clipped = await threeSteps(make, 'option', 0.5);
      expect(same(clipped, await threeSteps(make, 'byHand', 0.5))).toBe(true);
      expect(same(clipped, await threeSteps(make, 'none', 0.5))).toBe(false);
      expect(same(await threeSteps(make, 'option', 1e6), await threeSteps(make, 'none', 1e6))).toBe(true);
    },
  );

  it(`sgd with globalClipnorm: p − lr·g·max/(‖g‖ + 1e-6), the norm over the parameters given that have a gradient${tag}`, async () => {
    const GA = [3, -4, 1, 0.5];
    const GB = [2, -1, 0.25];
    const ps = [
      upload(b(), Float32Array.from([1, 2, 3, 4]), [2, 2]),
      upload(b(), Float32Array.from([-1, 0, 1]), [3]),
      upload(b(), Float32Array.from([5]), [1]), // no gradient: neither updated nor counted in the norm
    ];
    ps[0]!.grad = upload(b(), Float32Array.from(GA), [2, 2]);
    ps[1]!.grad = upload(b(), Float32Array.from(GB), [3]);
    const opt = sgd({ lr: 0.5, globalClipnorm: 2 });
    expect(opt.globalClipnorm).toBe(2);
    expect(opt.step(ps)).toEqual([ps[0], ps[1]]);
    const n = Math.sqrt([...GA, ...GB].reduce((s, g) => s + g * g, 0));
    const k = 0.5 * (2 / (n + 1e-6));
    const tol = { atol: 1e-6, rtol: 1e-6 };
    expectClose(
      await ps[0]!.data(),
      Float64Array.from([1, 2, 3, 4], (x, i) => x - k * GA[i]!),
      tol,
      'param 0',
    );
    expectClose(
      await ps[1]!.data(),
      Float64Array.from([-1, 0, 1], (x, i) => x - k * GB[i]!),
      tol,
      'param 1',
    );
    expect(Array.from(await ps[2]!.data())).toEqual([5]);
    opt.zeroGrad(ps);
    ps.forEach((p) => p.dispose());
    opt.dispose();
    expect(sgd(0.1).globalClipnorm).toBeUndefined();
  });

  it(`a bad globalClipnorm is a WgnnError naming the rule and the option${tag}`, () => {
    for (const [name, make] of RULES) {
      const rule = name.split(' ')[0];
      for (const bad of [0, -1, NaN, Infinity, '1', true]) {
        expect(() => make(bad as never), `${name} ${String(bad)}`).toThrow(WgnnError);
        expect(() => make(bad as never), `${name} ${String(bad)}`).toThrow(
          new RegExp(`${rule}: globalClipnorm must be > 0, got`),
        );
      }
    }
    expect(() => adam({ globalClipnorm: null as never })).toThrow(/adam: globalClipnorm is null/);
    expect(() => adam({ globalClipNorm: 1 } as never)).toThrow(/unknown option "globalClipNorm"/);
  });
});

describe('globalClipnorm in a captured training step [webgpu]', () => {
  it('trainStep with adamw({ globalClipnorm }) replays bitwise equal to eager steps, and the clip changes the weights', async () => {
    setDefaultBackend(gpu);
    try {
      const run = async (replay: boolean, globalClipnorm?: number) => {
        setSeed(5);
        const m: Sequential = sequential([
          layers.dense({ units: 16, activation: 'relu', inputShape: [8] }),
          layers.dense({ units: 3, activation: 'softmax' }),
        ]);
        const opt = adamw({ lr: 0.01, weightDecay: 0.1, globalClipnorm });
        const step = trainStep(m, { optimizer: opt, loss: 'sparseCategoricalCrossentropy', replay });
        const rng = new Rng(8);
        for (let i = 0; i < 4; i++) {
          const x = { data: uniform(rng, 6 * 8, -3, 3), shape: [6, 8] };
          step.run(x, { data: Int32Array.from({ length: 6 }, (_, j) => (i + j) % 3), shape: [6] });
        }
        const counts = [step.captures, step.replays];
        const w = await Promise.all(m.namedTensors().map(async ([, t]) => (await t.data()) as Float32Array));
        step.dispose();
        opt.dispose();
        m.dispose();
        return { w, counts };
      };
      const replayed = await run(true, 0.05);
      const eager = await run(false, 0.05);
      expect(replayed.counts).toEqual([1, 3]);
      expect(same(replayed.w, eager.w)).toBe(true);
      expect(same(replayed.w, (await run(true)).w)).toBe(false);
    } finally {
      setDefaultBackend(undefined);
    }
  });
});

describe.each(['cpu', 'webgpu'] as const)('optimizer bookkeeping [%s]', (which) => {
  const tag = which === 'webgpu' ? ' [webgpu]' : '';
  const b = () => (which === 'cpu' ? cpu : gpu);

  it(`zeroGrad disposes and clears grads (and their clip factors); a step without grads changes nothing${tag}`, async () => {
    const base = memory(b()).liveTensors;
    const p = upload(b(), Float32Array.from([1, 2, 3]), [3]);
    const g = upload(b(), Float32Array.from([1, 1, 1]), [3]);
    p.grad = g;
    const opt = adam(0.1);
    clipGradNorm([p], 0.1).dispose();
    opt.zeroGrad([p]);
    expect(p.grad).toBeUndefined();
    expect(g.isDisposed).toBe(true);
    opt.step([p]);
    expect(opt.stepCount).toBe(1);
    expect(opt.state([p]).params).toEqual([null]);
    expect(Array.from(await p.data())).toEqual([1, 2, 3]);
    p.dispose();
    opt.dispose();
    expect(memory(b()).liveTensors).toBe(base);
  });

  it(`step with a finiteness check: each rule lowers the flag to the smallest seq of a parameter it made NaN or Inf, returns the parameters it updated${tag}`, async () => {
    const CLEAN = 0x7fffffff;
    const rules = [
      () => sgd({ lr: 0.1, momentum: 0.9 }),
      () => adam(0.01),
      () => rmsprop({ lr: 0.01, centered: true }),
      () => adagrad(0.1),
    ];
    for (const make of rules) {
      const opt = make();
      const ps = [[1, 2, 3], [4, 5], [6]].map((v) => upload(b(), Float32Array.from(v), [v.length]));
      const flag = upload(b(), Int32Array.from([CLEAN]), [1]);
      const seqs = new Map(ps.map((p, i) => [p, 10 + i]));
      const check = { flag, seq: (p: Tensor) => seqs.get(p)! };
      const grads = (...gs: (number[] | undefined)[]) =>
        ps.forEach((p, i) => (p.grad = gs[i] && upload(b(), Float32Array.from(gs[i]), p.shape)));
      // Finite updates leave the flag as it is; the parameter without a gradient is neither updated nor returned.
      grads([1, -1, 0.5], [0.25, 2]);
      expect(opt.step(ps, { check })).toEqual([ps[0], ps[1]]);
      opt.zeroGrad(ps);
      expect(Array.from(await flag.data()), `${opt.name}: finite`).toEqual([CLEAN]);
      // NaN in the second parameter (seq 11), NaN or -Inf in the third (seq 12): the flag holds 11.
      grads([1, 1, 1], [0.5, NaN], [Infinity]);
      expect(opt.step(ps, { check })).toEqual(ps);
      opt.zeroGrad(ps);
      expect(Array.from(await flag.data()), `${opt.name}: non-finite`).toEqual([11]);
      expect(Array.from(await ps[0]!.data()).every(Number.isFinite)).toBe(true);
      // Without the check, a NaN update leaves the flag alone.
      grads([NaN, 1, 1]);
      opt.step(ps);
      opt.zeroGrad(ps);
      expect(Array.from(await flag.data()), `${opt.name}: unchecked`).toEqual([11]);
      // The flag must be int32 [1] on the parameters' backend.
      grads([1, 1, 1]);
      const bad = [
        upload(b(), Float32Array.from([0]), [1]),
        upload(b(), Int32Array.from([0, 0]), [2]),
        upload(which === 'cpu' ? gpu : cpu, Int32Array.from([0]), [1]),
      ];
      expect(() => opt.step(ps, { check: { ...check, flag: bad[0]! } })).toThrow(
        new RegExp(`${opt.name}: the finiteness check's flag is float32\\[1\\]; expected int32\\[1\\]`),
      );
      expect(() => opt.step(ps, { check: { ...check, flag: bad[1]! } })).toThrow(DTypeError);
      expect(() => opt.step(ps, { check: { ...check, flag: bad[2]! } })).toThrow(BackendError);
      opt.zeroGrad(ps);
      for (const t of [...ps, flag, ...bad]) t.dispose();
      opt.dispose();
    }
  });

  it(`no tensors leak: state, placeholders, clip factors and state() views are freed${tag}`, async () => {
    const base = memory(b());
    const rng = new Rng(9);
    const ps = SHAPES.map((s) =>
      upload(
        b(),
        uniform(
          rng,
          s.reduce((x, y) => x * y, 1),
        ),
        s,
      ),
    );
    const opts = [
      sgd(0.1),
      sgd({ lr: 0.1, momentum: 0.9 }),
      adam(),
      rmsprop({ momentum: 0.5, centered: true }),
      adagrad(),
    ];
    for (let i = 0; i < 3; i++) {
      for (const p of ps) p.grad = upload(b(), uniform(rng, p.size), p.shape);
      clipGradNorm(ps, 0.5).dispose();
      for (const o of opts) o.step(ps);
      const views = opts.flatMap((o) => o.state(ps).params.flatMap((s) => Object.values(s?.slots ?? {})));
      await Promise.all(views.map((v) => v.data()));
      for (const v of views) v.dispose();
      opts[0]!.zeroGrad(ps);
    }
    // A factor whose gradient was replaced before any step is dropped by the next step.
    for (const p of ps) p.grad = upload(b(), uniform(rng, p.size), p.shape);
    clipGradNorm(ps, 0.5).dispose();
    for (const p of ps) {
      p.grad!.dispose();
      p.grad = upload(b(), uniform(rng, p.size), p.shape);
    }
    opts[2]!.step(ps);
    opts[2]!.zeroGrad(ps);
    for (const o of opts) o.dispose();
    for (const p of ps) p.dispose();
    const after = memory(b());
    expect(after.liveTensors).toBe(base.liveTensors);
    expect(after.liveBytes).toBe(base.liveBytes);
  });

  it(`state() / loadState() round trip, ${which} to ${which === 'cpu' ? 'webgpu' : 'cpu'} [webgpu]`, async () => {
    const other = which === 'cpu' ? gpu : cpu;
    const rng = new Rng(5);
    const init = [uniform(rng, 7), uniform(rng, 33)];
    const grads = Array.from({ length: 3 }, () => [uniform(rng, 7), uniform(rng, 33)]);
    const pa = init.map((d) => upload(b(), d, [d.length]));
    const pb = init.map((d) => upload(other, d, [d.length]));
    const a = rmsprop({ lr: 0.01, momentum: 0.9, centered: true });
    const stepWith = (o: Optimizer, ps: Tensor[], be: Backend, k: number) => {
      ps.forEach((p, i) => (p.grad = upload(be, grads[k]![i]!, p.shape)));
      o.step(ps);
      o.zeroGrad(ps);
    };
    stepWith(a, pa, b(), 0);
    stepWith(a, pa, b(), 1);
    // pb follows pa's parameters (copied) and takes over its state.
    const now = await Promise.all(pa.map((p) => p.data()));
    pb.forEach((p) => p.dispose());
    const pb2 = now.map((d) => upload(other, d, [d.length]));
    const s = a.state(pa);
    expect(s.stepCount).toBe(2);
    expect(s.params.map((p) => p && Object.keys(p.slots).sort())).toEqual([
      ['grad_avg', 'momentum_buffer', 'square_avg'],
      ['grad_avg', 'momentum_buffer', 'square_avg'],
    ]);
    const bOpt = rmsprop({ lr: 0.01, momentum: 0.9, centered: true });
    await bOpt.loadState(pb2, s);
    for (const p of s.params) for (const t of Object.values(p!.slots)) t.dispose();
    expect(bOpt.stepCount).toBe(2);
    stepWith(a, pa, b(), 2);
    stepWith(bOpt, pb2, other, 2);
    for (let i = 0; i < 2; i++)
      expectClose(await pa[i]!.data(), await pb2[i]!.data(), TOL, `param ${i} after a step from loaded state`);
    // Mismatched state is refused before anything changes.
    const s2 = a.state(pa);
    await expect(bOpt.loadState(pb2.slice(0, 1), s2)).rejects.toThrow(WgnnError);
    const wrong = [upload(other, uniform(rng, 8), [8]), pb2[1]!];
    await expect(bOpt.loadState(wrong, s2)).rejects.toThrow(
      /rmsprop.loadState: 'square_avg' of parameter 0 is float32\[7\]; expected float32\[8\]/,
    );
    await expect(adam().loadState(pa, s2)).rejects.toThrow(/adam.loadState: parameter 0 has no 'exp_avg' state/);
    for (const p of s2.params) for (const t of Object.values(p!.slots)) t.dispose();
    for (const t of [...pa, ...pb2, wrong[0]!]) t.dispose();
    a.dispose();
    bOpt.dispose();
  });

  it(`bad options and bad gradients throw, naming the rule [webgpu]`, () => {
    expect(() => sgd({ lr: 0.1, nesterov: true })).toThrow(/sgd: Nesterov momentum needs momentum > 0/);
    expect(() => sgd(-1)).toThrow(WgnnError);
    expect(() => sgd(-1)).toThrow(/sgd: lr must be >= 0, got -1/);
    expect(() => adam({ betas: [0.9, 1] })).toThrow(/adam: betas\[1\] must be in \[0, 1\)/);
    expect(() => adamw({ weightDecay: -0.1 })).toThrow(/adamw: weightDecay/);
    expect(() => rmsprop({ alpha: -1 })).toThrow(WgnnError);
    expect(() => adagrad({ eps: -1 })).toThrow(WgnnError);
    const p = upload(b(), Float32Array.from([1, 2, 3]), [3]);
    p.grad = upload(b(), Float32Array.from([1, 2]), [2]);
    expect(() => sgd(0.1).step([p])).toThrow(ShapeError);
    p.grad.dispose();
    p.grad = upload(b(), Int32Array.from([1, 2, 3]), [3]);
    expect(() => sgd(0.1).step([p])).toThrow(DTypeError);
    p.grad.dispose();
    p.grad = upload(which === 'cpu' ? gpu : cpu, Float32Array.from([1, 2, 3]), [3]);
    expect(() => sgd(0.1).step([p])).toThrow(BackendError);
    // A schedule of our own: stepDecay itself refuses a negative initial rate when it is made.
    const bad = sgd((step) => -1 - step);
    p.grad.dispose();
    p.grad = upload(b(), Float32Array.from([1, 2, 3]), [3]);
    expect(() => bad.step([p])).toThrow(/sgd: the schedule gave learning rate -1 at step 0/);
    p.grad.dispose();
    p.dispose();
  });
});

describe('steady training loop [webgpu]', () => {
  it('one dispatch per parameter per step; no new GPU buffers, with or without clipping [webgpu]', async () => {
    const rng = new Rng(11);
    const ps = SHAPES.map((s) =>
      upload(
        gpu,
        uniform(
          rng,
          s.reduce((x, y) => x * y, 1),
        ),
        s,
      ),
    );
    const gs = ps.map((p) => upload(gpu, uniform(rng, p.size), p.shape));
    const opt = adam(1e-3);
    const step = (clip: boolean) => {
      ps.forEach((p, i) => (p.grad = gs[i]));
      if (clip) clipGradNorm(ps, 0.5).dispose();
      opt.step(ps);
    };
    for (let i = 0; i < 3; i++) step(true);
    await ps[0]!.data();
    const m0 = memory(gpu);
    const d0 = gpu.dispatches;
    for (let i = 0; i < 20; i++) step(false);
    expect(gpu.dispatches - d0).toBe(20 * ps.length);
    for (let i = 0; i < 20; i++) step(true);
    const last: TypedArray = await ps[4]!.data();
    expect(last.every(Number.isFinite)).toBe(true);
    const m1 = memory(gpu);
    expect(m1.buffersCreated).toBe(m0.buffersCreated);
    expect(m1.liveTensors).toBe(m0.liveTensors);
    expect(m1.liveBytes).toBe(m0.liveBytes);
    for (const p of ps) p.grad = undefined;
    for (const t of [...ps, ...gs]) t.dispose();
    opt.dispose();
  });
});
