// Autograd over the op table: every differentiable op's backward rule against float64 central finite differences
// on the CPU, and WebGPU backward = CPU backward on the same samples; plus the tape's semantics (accumulation,
// two paths, retainGraph, noGrad, detach, grad/valueAndGrad), a two-layer MLP against a hand derivation, and leaks.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Backend, TypedArray } from '../src/backend/backend.js';
import { CpuBackend } from '../src/backend/cpu/cpu.js';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { backward, detach, grad, noGrad, valueAndGrad, zeroGrad } from '../src/autograd/tape.js';
import { apply } from '../src/ops/apply.js';
import { add, linear, mean, mul, relu, square, sub, sum, exp } from '../src/ops/index.js';
import type { AnyOp, Sample, SampleInput } from '../src/ops/op.js';
import { OPS } from '../src/ops/registry.js';
import { Rng } from '../src/rng.js';
import { sizeOf } from '../src/shape.js';
import { memory, tensor, tidy, type Tensor } from '../src/tensor.js';
import { cpu, expectClose, gpuBackend, sampleData, upload } from './helpers.js';

let gpu: WebGpuBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
});

const cpu64 = new CpuBackend({ float64: true });
const seedOf = (s: string): number => [...s].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 11);
const differentiable = (Object.values(OPS) as AnyOp[]).filter((op) => op.grad && !('none' in op.grad));
const isFloat = (inp: SampleInput) => inp.dtype !== 'int32';
// NOTE: samples with explicit non-finite values (Inf/NaN special cases) have no finite-difference gradient.
const finite = (s: Sample<object>) => s.inputs.every((i) => !i.values || i.values.every(Number.isFinite));

/** Runs op on `b` with inputs requiring grad, backward with upstream r; returns y and each float input's grad. */
async function opBackward(b: Backend, op: AnyOp, s: Sample<object>, datas: TypedArray[], r: TypedArray) {
  const xs = s.inputs.map((inp, i) => upload(b, datas[i]!, inp.shape).variable(isFloat(inp)));
  const y = apply(op, xs, s.attrs ?? {});
  const dy = upload(b, r, y.shape);
  backward(y, dy);
  const grads = await Promise.all(xs.map((x) => x.grad?.data()));
  for (const t of [...xs, y, dy]) t.dispose();
  zeroGrad(xs);
  return grads;
}

function sampleInputs(s: Sample<object>, seed: number) {
  const rng = new Rng(seed);
  return s.inputs.map((inp) => sampleData(inp, rng));
}

describe.each(differentiable)('$name backward', (op) => {
  // Samples whose inputs are all int32 (layout ops on integers) have nothing to differentiate.
  const samples = ([...op.samples(new Rng(seedOf(op.name)))] as Sample<object>[])
    .map((s, i) => ({ s, i, label: s.name }))
    .filter(({ s }) => s.inputs.some(isFloat));

  it.each(samples.filter(({ s }) => finite(s)))(
    `${op.name} $label gradcheck (float64 CPU, central differences)`,
    async ({ s, i }) => {
      const seed = seedOf(`${op.name}@${i}`);
      const datas = sampleInputs(s, seed);
      const outShape = noGrad(() =>
        tidy(
          () =>
            apply(
              op,
              s.inputs.map((inp, k) => upload(cpu64, datas[k]!, inp.shape)),
              s.attrs ?? {},
            ).shape,
        ),
      );
      const rng = new Rng(seed + 1);
      const r = Float64Array.from({ length: sizeOf(outShape) }, () => rng.uniform(-1, 1));
      const grads = await opBackward(
        cpu64,
        op,
        s,
        datas.map((d) => (d instanceof Int32Array ? d : Float64Array.from(d))),
        r,
      );
      // L(x) = Σ y(x)·r in float64; the difference L(x+) − L(x−) is summed term by term so that outputs the
      // perturbation does not touch cancel exactly instead of drowning the difference in round-off.
      const forward = async (ds: TypedArray[]) => {
        const y = noGrad(() =>
          tidy(() =>
            apply(
              op,
              s.inputs.map((inp, k) => upload(cpu64, ds[k]!, inp.shape)),
              s.attrs ?? {},
            ),
          ),
        );
        const yd = await y.data();
        y.dispose();
        return yd;
      };
      const lossDiff = async (a: TypedArray[], b: TypedArray[]) => {
        const [ya, yb] = [await forward(a), await forward(b)];
        let acc = 0;
        for (let j = 0; j < ya.length; j++) acc += (ya[j]! - yb[j]!) * r[j]!;
        return acc;
      };
      const eps = 1e-6;
      let checked = 0;
      for (let k = 0; k < s.inputs.length; k++) {
        if (!isFloat(s.inputs[k]!)) continue;
        const base = Float64Array.from(datas[k]!);
        const n = base.length;
        const cost = datas.reduce((a, d) => a + d.length, 0) + r.length;
        const coords =
          n <= 48 && cost < 1e5
            ? [...Array(n).keys()]
            : Array.from({ length: cost < 1e5 ? 24 : 6 }, () => rng.int(0, n));
        for (const j of coords) {
          const plus = Float64Array.from(base);
          const minus = Float64Array.from(base);
          plus[j]! += eps;
          minus[j]! -= eps;
          const withK = (v: Float64Array) =>
            datas.map((d, m) => (m === k ? v : d instanceof Int32Array ? d : Float64Array.from(d)));
          const fd = (await lossDiff(withK(plus), withK(minus))) / (2 * eps);
          const an = grads[k]![j]!;
          checked++;
          if (Number.isNaN(fd) && Number.isNaN(an)) continue; // undefined both ways (pow of a negative base in b)
          expect(
            Math.abs(an - fd),
            `${op.name} ${s.name} d/dx${k}[${j}]: analytic ${an}, finite difference ${fd} (seed ${seed})`,
          ).toBeLessThanOrEqual(1e-5 + 1e-3 * Math.abs(fd));
        }
      }
      expect(checked > 0 || n0(s), 'at least one coordinate checked').toBe(true);
    },
  );

  it.each(samples)(`${op.name} $label [webgpu] backward gpu≈cpu`, async ({ s, i }) => {
    const seed = seedOf(`${op.name}@${i}`);
    const datas = sampleInputs(s, seed);
    const outSize = noGrad(() =>
      tidy(
        () =>
          apply(
            op,
            s.inputs.map((inp, k) => upload(cpu, datas[k]!, inp.shape)),
            s.attrs ?? {},
          ).size,
      ),
    );
    const rng = new Rng(seed + 1);
    const r = Float32Array.from({ length: outSize }, () => rng.uniform(-1, 1));
    const want = await opBackward(cpu, op, s, datas, r);
    const got = await opBackward(gpu, op, s, datas, r);
    const tol = op.gradTol ?? { atol: op.tol.atol * 10, rtol: op.tol.rtol * 10 };
    want.forEach((w, k) => {
      if (w) expectClose(got[k]!, w, tol, `${op.name} ${s.name} d/dx${k} (seed ${seed})`);
    });
  });
});

// A sample whose float inputs are all empty has nothing to check by differences.
function n0(s: Sample<object>): boolean {
  return s.inputs.filter(isFloat).every((i) => sizeOf(i.shape) === 0);
}

describe('coverage', () => {
  it('every op has a backward rule or says why it has none', () => {
    // OpDef requires `grad`; this checks at run time what the type cannot: a table entry built through a cast, a
    // reason that is a sentence, a rule that is a function saving only inputs the op has.
    const missing = (Object.values(OPS) as AnyOp[]).filter((op) => !op.grad).map((op) => op.name);
    expect(missing).toEqual([]);
    for (const op of Object.values(OPS) as AnyOp[]) {
      const g = op.grad;
      if ('none' in g) {
        expect(g.none.length, `${op.name}: reason`).toBeGreaterThan(5);
        continue;
      }
      expect(typeof g.rule, `${op.name}: rule`).toBe('function');
      for (const i of g.saves.inputs ?? []) {
        expect(
          Number.isInteger(i) && i >= 0 && (op.arity === 'variadic' || i < op.arity),
          `${op.name}: saves input ${i} of ${op.arity}`,
        ).toBe(true);
      }
    }
    console.log(
      `backward rules: ${differentiable.length} ops differentiable, ${Object.keys(OPS).length - differentiable.length} without (each says why)`,
    );
  });
});

describe.each([
  ['cpu', () => cpu],
  ['[webgpu]', () => gpu],
] as const)('tape semantics %s', (_, getB) => {
  it('a gradient that reaches a tensor through two paths accumulates', async () => {
    const b = getB();
    const x = tensor([1, 2, -3], [3], { backend: b }).variable();
    // y = sum(x·x + exp(x)): dy/dx = 2x + exp(x), the x·x term itself using x twice.
    const y = tidy(() => sum(add(mul(x, x), exp(x))));
    backward(y);
    expectClose(
      await x.grad!.data(),
      Float32Array.from([1, 2, -3], (v) => 2 * v + Math.exp(v)),
      { atol: 1e-5, rtol: 1e-5 },
      'two paths',
    );
    // Gradients accumulate across backward calls (+=) until zeroGrad.
    const y2 = tidy(() => sum(mul(x, x)));
    backward(y2);
    expectClose(
      await x.grad!.data(),
      Float32Array.from([1, 2, -3], (v) => 4 * v + Math.exp(v)),
      { atol: 1e-5, rtol: 1e-5 },
      'accumulated',
    );
    zeroGrad([x]);
    expect(x.grad).toBeUndefined();
    for (const t of [x, y, y2]) t.dispose();
  });

  it('backward twice needs retainGraph; noGrad and detach record nothing', async () => {
    const b = getB();
    const x = tensor([0.5, -1], [2], { backend: b }).variable();
    const y = tidy(() => sum(square(x)));
    backward(y, undefined, { retainGraph: true });
    backward(y);
    expectClose(await x.grad!.data(), Float32Array.from([2, -4]), { atol: 1e-6, rtol: 1e-6 }, 'retained twice');
    expect(() => backward(y)).toThrow(/ran backward already/);
    const z = noGrad(() => square(x));
    expect(z.requiresGrad).toBe(false);
    const d = detach(x);
    expect(d.requiresGrad).toBe(false);
    expect(square(d).requiresGrad).toBe(false);
    zeroGrad([x]);
    for (const t of [x, y, z, d]) t.dispose();
  });

  it('grad and valueAndGrad leave the arguments untouched', async () => {
    const b = getB();
    const x = tensor([1, 2, 3], [3], { backend: b });
    const w = tensor([0.5, -1, 2], [3], { backend: b });
    const f = (a: Tensor, c: Tensor) => sum(mul(square(a), c));
    const { value, grads } = valueAndGrad(f)(x, w);
    expect((await value.data())[0]).toBeCloseTo(0.5 - 4 + 18, 5);
    expectClose(await grads[0]!.data(), Float32Array.from([1, -4, 12]), { atol: 1e-5, rtol: 1e-5 }, 'df/dx');
    expectClose(await grads[1]!.data(), Float32Array.from([1, 4, 9]), { atol: 1e-5, rtol: 1e-5 }, 'df/dw');
    const [gx] = grad(f)(x, w);
    expectClose(await gx!.data(), Float32Array.from([1, -4, 12]), { atol: 1e-5, rtol: 1e-5 }, 'grad');
    expect(x.grad).toBeUndefined();
    expect(x.requiresGrad).toBe(false);
    for (const t of [x, w, value, ...grads, gx!]) t.dispose();
  });

  it('a two-layer MLP matches a hand derivation', async () => {
    const b = getB();
    const rng = new Rng(5);
    const [N, D, H, O] = [4, 3, 5, 2];
    const r = (n: number) => Array.from({ length: n }, () => rng.uniform(-1, 1));
    const X = r(N * D),
      W1 = r(D * H),
      B1 = r(H),
      W2 = r(H * O),
      B2 = r(O),
      T = r(N * O);
    const x = tensor(X, [N, D], { backend: b });
    const t = tensor(T, [N, O], { backend: b });
    const w1 = tensor(W1, [D, H], { backend: b }).variable();
    const b1 = tensor(B1, [H], { backend: b }).variable();
    const w2 = tensor(W2, [H, O], { backend: b }).variable();
    const b2 = tensor(B2, [O], { backend: b }).variable();
    // loss = mean((relu(x W1 + b1) W2 + b2 − t)²)
    const loss = tidy(() => mean(square(sub(linear(relu(linear(x, w1, b1)), w2, b2), t))));
    backward(loss);

    // By hand, in float64: forward, then dL/dy = 2(y − t)/(N·O), back through each layer.
    const h = new Float64Array(N * H),
      a = new Float64Array(N * H),
      y = new Float64Array(N * O);
    for (let n = 0; n < N; n++)
      for (let j = 0; j < H; j++) {
        let s = B1[j]!;
        for (let d = 0; d < D; d++) s += X[n * D + d]! * W1[d * H + j]!;
        h[n * H + j] = s;
        a[n * H + j] = Math.max(s, 0);
      }
    let L = 0;
    const dy = new Float64Array(N * O);
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++) {
        let s = B2[o]!;
        for (let j = 0; j < H; j++) s += a[n * H + j]! * W2[j * O + o]!;
        y[n * O + o] = s;
        const e = s - T[n * O + o]!;
        L += (e * e) / (N * O);
        dy[n * O + o] = (2 * e) / (N * O);
      }
    const dW2 = new Float64Array(H * O),
      dB2 = new Float64Array(O),
      dH = new Float64Array(N * H);
    const dW1 = new Float64Array(D * H),
      dB1 = new Float64Array(H);
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++) {
        dB2[o]! += dy[n * O + o]!;
        for (let j = 0; j < H; j++) {
          dW2[j * O + o]! += a[n * H + j]! * dy[n * O + o]!;
          dH[n * H + j]! += W2[j * O + o]! * dy[n * O + o]! * (h[n * H + j]! > 0 ? 1 : 0);
        }
      }
    for (let n = 0; n < N; n++)
      for (let j = 0; j < H; j++) {
        dB1[j]! += dH[n * H + j]!;
        for (let d = 0; d < D; d++) dW1[d * H + j]! += X[n * D + d]! * dH[n * H + j]!;
      }
    const tol = { atol: 1e-5, rtol: 1e-4 };
    expect((await loss.data())[0]).toBeCloseTo(L, 5);
    expectClose(await w1.grad!.data(), Float32Array.from(dW1), tol, 'dW1');
    expectClose(await b1.grad!.data(), Float32Array.from(dB1), tol, 'db1');
    expectClose(await w2.grad!.data(), Float32Array.from(dW2), tol, 'dW2');
    expectClose(await b2.grad!.data(), Float32Array.from(dB2), tol, 'db2');
    zeroGrad([w1, b1, w2, b2]);
    for (const v of [x, t, w1, b1, w2, b2, loss]) v.dispose();
  });
});

describe('memory [webgpu]', () => {
  it('200 forward+backward iterations return live bytes to the baseline; the pool stops growing', async () => {
    const rng = new Rng(9);
    const r = (n: number) => Array.from({ length: n }, () => rng.uniform(-1, 1));
    const x = tensor(r(64 * 32), [64, 32], { backend: gpu });
    const w = tensor(r(32 * 16), [32, 16], { backend: gpu }).variable();
    const bias = tensor(r(16), [16], { backend: gpu }).variable();
    await x.data();
    const base = memory(gpu);
    let created10 = 0;
    for (let it = 0; it < 200; it++) {
      const loss = tidy(() => mean(square(relu(linear(x, w, bias)))));
      backward(loss);
      await loss.data();
      loss.dispose();
      zeroGrad([w, bias]);
      if (it === 9) created10 = memory(gpu).buffersCreated;
    }
    const end = memory(gpu);
    console.log(
      `leak test, 200 steps: live tensors ${base.liveTensors} -> ${end.liveTensors}, live bytes ${base.liveBytes} -> ${end.liveBytes}, ` +
        `buffers created after step 10: ${created10}, after step 200: ${end.buffersCreated}, pooled ${end.pooledBytes} B`,
    );
    expect(end.liveTensors).toBe(base.liveTensors);
    expect(end.liveBytes).toBe(base.liveBytes);
    expect(end.buffersCreated).toBe(created10);
    for (const t of [x, w, bias]) t.dispose();
  });
});
