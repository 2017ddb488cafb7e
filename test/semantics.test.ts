// PyTorch semantics a porting user relies on, against values computed by torch 1.13 (hard-coded, each beside the
// expression that produced it), on the CPU reference and on WebGPU: NaN and ±Inf through every unary op and its
// gradient, NaN through the fused dense and conv epilogues and max pooling, maximum/minimum's gradient at NaN, and pow's
// gradients at base 0.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { backward } from '../src/autograd/tape.js';
import { Dense } from '../src/nn/index.js';
import { apply } from '../src/ops/apply.js';
import { maximum, minimum, pow } from '../src/ops/binary.js';
import { conv2dBias, conv2dFwdKernel } from '../src/ops/conv.js';
import { matmulOps, type Activation, type MatmulKernelName } from '../src/ops/matmul.js';
import { maxPool2d } from '../src/ops/pool.js';
import { unaryOps, type UnaryName } from '../src/ops/unary.js';
import { setDefaultBackend, tensor, type Tensor } from '../src/tensor.js';
import { cpu, expectClose, gpuBackend } from './helpers.js';

let gpu: WebGpuBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
});

const BACKENDS = [
  ['cpu', () => cpu as Backend],
  ['[webgpu]', () => gpu as Backend],
] as const;

const TOL = { atol: 1e-6, rtol: 1e-5 };
const Inf = Infinity;

/** y = f(inputs) and each input's gradient for upstream dy, on backend b. */
async function forwardBackward(
  b: Backend,
  f: (xs: Tensor[]) => Tensor,
  inputs: number[][],
  shape: number[],
  dy: number[],
) {
  const xs = inputs.map((v) => tensor(v, shape, { backend: b }).variable());
  const y = f(xs);
  const g = tensor(dy, y.shape, { backend: b });
  backward(y, g);
  const out = { y: await y.data(), grads: await Promise.all(xs.map((x) => x.grad!.data())) };
  for (const t of [...xs, y, g]) t.dispose();
  return out;
}

// torch: x = torch.tensor([nan, inf, -inf, 0., -0., 1., -1.], requires_grad=True); y = f(x)
//        y.backward(torch.full_like(y, 2.)); y.tolist(), x.grad.tolist()
// with f = F.relu, F.leaky_relu(x, 0.2), torch.sigmoid, torch.tanh, F.gelu, torch.exp, torch.log, torch.neg,
// torch.sqrt, torch.square, torch.abs.
const X = [NaN, Inf, -Inf, 0, -0, 1, -1];
const UNARY_TORCH: Record<UnaryName, { y: number[]; dx: number[] }> = {
  relu: { y: [NaN, Inf, 0, 0, -0, 1, 0], dx: [2, 2, 0, 0, 0, 2, 0] },
  leaky_relu: { y: [NaN, Inf, -Inf, 0, -0, 1, -0.2], dx: [0.4, 2, 0.4, 0.4, 0.4, 2, 0.4] },
  sigmoid: {
    y: [NaN, 1, 0, 0.5, 0.5, 0.7310585975646973, 0.2689414322376251],
    dx: [NaN, 0, 0, 0.5, 0.5, 0.3932238519191742, 0.3932238817214966],
  },
  tanh: {
    y: [NaN, 1, -1, 0, -0, 0.7615941762924194, -0.7615941762924194],
    dx: [NaN, 0, 0, 2, 2, 0.8399485945701599, 0.8399485945701599],
  },
  gelu: {
    y: [NaN, Inf, NaN, 0, 0, 0.8413447141647339, -0.1586552858352661],
    dx: [NaN, NaN, NaN, 1, 1, 2.166630744934082, -0.16663086414337158],
  },
  // F.gelu(x, approximate='tanh')
  gelu_tanh: {
    y: [NaN, Inf, NaN, 0, -0, 0.8411920070648193, -0.15880799293518066],
    dx: [NaN, NaN, NaN, 1, 1, 2.1659281253814697, -0.1659281849861145],
  },
  exp: {
    y: [NaN, Inf, 0, 1, 1, 2.7182817459106445, 0.3678794503211975],
    dx: [NaN, Inf, 0, 2, 2, 5.436563491821289, 0.735758900642395],
  },
  log: { y: [NaN, Inf, NaN, -Inf, -Inf, 0, NaN], dx: [NaN, 0, -0, Inf, -Inf, 2, -2] },
  neg: { y: [NaN, -Inf, Inf, -0, 0, -1, 1], dx: [-2, -2, -2, -2, -2, -2, -2] },
  sqrt: { y: [NaN, Inf, NaN, 0, -0, 1, NaN], dx: [NaN, 0, NaN, Inf, -Inf, 1, NaN] },
  square: { y: [NaN, Inf, Inf, 0, 0, 1, 1], dx: [NaN, Inf, -Inf, 0, -0, 4, -4] },
  abs: { y: [NaN, Inf, Inf, 0, 0, 1, 1], dx: [0, 2, -2, 0, 0, 2, -2] },
};

describe.each(BACKENDS)('unary ops at NaN and ±Inf as torch 1.13 %s', (_, getB) => {
  it.each(Object.keys(UNARY_TORCH) as UnaryName[])('%s: value and gradient', async (name) => {
    const want = UNARY_TORCH[name];
    const got = await forwardBackward(
      getB(),
      ([x]) => apply(unaryOps[name], [x!], { alpha: 0.2 }),
      [X],
      [X.length],
      X.map(() => 2),
    );
    expectClose(got.y, Float32Array.from(want.y), TOL, `${name}(${X})`);
    expectClose(got.grads[0]!, Float32Array.from(want.dx), TOL, `${name}'(${X}) · 2`);
  });
});

describe.each(BACKENDS)('NaN through fused layers %s', (_, getB) => {
  // A NaN feature makes its row's pre-activation NaN; every activation must pass it on (torch: F.relu(lin(x)) with
  // a NaN in x is all NaN in that row), whichever matmul kernel runs the epilogue.
  const kernels: (MatmulKernelName | 'auto')[] = ['auto', 'scalar-64x64x16', 'vec4-64x64x16'];
  const acts: Activation[] = ['relu', 'leaky_relu', 'gelu', 'sigmoid', 'tanh', 'abs'];
  it.each(kernels)('dense + activation epilogue, kernel %s: the NaN row is NaN, the others finite', async (kernel) => {
    const b = getB();
    const [M, K, N] = [6, 8, 12];
    const x = tensor(
      Array.from({ length: M * K }, (_, i) => (i === 2 * K + 5 ? NaN : Math.cos(i))),
      [M, K],
      { backend: b },
    );
    const w = tensor(
      Array.from({ length: K * N }, (_, i) => Math.sin(i) * 0.5),
      [K, N],
      { backend: b },
    );
    const bias = tensor(
      Array.from({ length: N }, (_, i) => 0.1 * i - 0.6),
      [N],
      { backend: b },
    );
    for (const activation of acts) {
      const y = apply(matmulOps.matmul_bias, [x, w, bias], { activation, kernel });
      const d = await y.data();
      y.dispose();
      for (let m = 0; m < M; m++) {
        const row = [...d.slice(m * N, (m + 1) * N)];
        if (m === 2) expect(row.every(Number.isNaN), `${activation} row ${m}: ${row}`).toBe(true);
        else expect(row.every(Number.isFinite), `${activation} row ${m}: ${row}`).toBe(true);
      }
    }
    for (const t of [x, w, bias]) t.dispose();
  });

  // conv2d_bias's epilogue, in each forward kernel: one NaN pixel makes NaN exactly the outputs whose 3x3 window
  // holds it (a 'same' conv of a 5x5 image, NaN at the centre: the inner 3x3 outputs), the others finite.
  it.each([
    [1, 8, 'conv2d_fwd_direct'],
    [2, 5, 'conv2d_fwd_direct'],
    [5, 8, 'conv2d_fwd'],
  ] as const)('conv2d_bias + relu, C=%i K=%i (%s): NaN where the window holds the NaN pixel', async (C, K, kernel) => {
    const b = getB();
    const geo = { padding: 'same', activation: 'relu' } as const;
    expect(conv2dFwdKernel([1, 5, 5, C], [3, 3, C, K], { stride: 1, dilation: 1, ...geo })).toBe(kernel);
    const x = tensor(
      Array.from({ length: 25 * C }, (_, i) => (i === 12 * C ? NaN : Math.cos(i))),
      [1, 5, 5, C],
      { backend: b },
    );
    const w = tensor(
      Array.from({ length: 9 * C * K }, (_, i) => Math.sin(i) * 0.5),
      [3, 3, C, K],
      { backend: b },
    );
    const bias = tensor(
      Array.from({ length: K }, (_, i) => 0.1 * i - 0.3),
      [K],
      { backend: b },
    );
    const y = conv2dBias(x, w, bias, geo);
    const d = await y.data();
    for (let i = 0; i < d.length; i++) {
      const [h, ww] = [Math.floor(i / (5 * K)), Math.floor(i / K) % 5];
      const inner = h >= 1 && h <= 3 && ww >= 1 && ww <= 3;
      expect(inner ? Number.isNaN(d[i]) : Number.isFinite(d[i]), `y[${h},${ww},${i % K}] = ${d[i]}`).toBe(true);
    }
    for (const t of [x, w, bias, y]) t.dispose();
  });

  it('a Dense relu layer maps a NaN input to NaN outputs', async () => {
    setDefaultBackend(getB());
    try {
      const layer = new Dense({ units: 5, inputDim: 3, activation: 'relu', seed: 1 });
      const x = tensor([1, NaN, 0.5, 0.2, -0.3, 0.8], [2, 3]);
      const y = layer.forward(x);
      const d = [...(await y.data())];
      expect(d.slice(0, 5).every(Number.isNaN), `row 0: ${d.slice(0, 5)}`).toBe(true);
      expect(d.slice(5).every(Number.isFinite), `row 1: ${d.slice(5)}`).toBe(true);
      for (const t of [x, y, ...layer.parameters()]) t.dispose();
    } finally {
      setDefaultBackend(undefined);
    }
  });

  it('max_pool2d propagates NaN and sends its gradient to the NaN', async () => {
    // torch: x = torch.tensor([[[[1., nan], [3., 2.]]]], requires_grad=True); y = F.max_pool2d(x, 2)
    //        y.backward(torch.ones_like(y)) -> y [[[[nan]]]], x.grad [[[[0., 1.], [0., 0.]]]]  (NCHW; here NHWC [1,2,2,1])
    const got = await forwardBackward(
      getB(),
      ([x]) => maxPool2d(x!, { poolSize: 2 }),
      [[1, NaN, 3, 2]],
      [1, 2, 2, 1],
      [1],
    );
    expectClose(got.y, Float32Array.from([NaN]), TOL, 'max_pool2d y');
    expectClose(got.grads[0]!, Float32Array.from([0, 1, 0, 0]), TOL, 'max_pool2d dx');
  });
});

describe.each(BACKENDS)('binary ops at NaN as torch 1.13 %s', (_, getB) => {
  // torch: a = torch.tensor([nan, 1., nan, 2., 2.], requires_grad=True); b = torch.tensor([1., nan, nan, 2., 1.], ...)
  //        y = torch.maximum(a, b) (or torch.minimum); y.backward(torch.ones_like(y)); a.grad, b.grad
  it.each([
    ['maximum', maximum, [NaN, NaN, NaN, 2, 2], [1, 1, 1, 0.5, 1], [1, 1, 1, 0.5, 0]],
    ['minimum', minimum, [NaN, NaN, NaN, 2, 1], [1, 1, 1, 0.5, 0], [1, 1, 1, 0.5, 1]],
  ] as const)('%s: NaN wins and both sides get the whole gradient', async (_n, f, y, da, db) => {
    const got = await forwardBackward(
      getB(),
      ([a, b]) => f(a!, b!),
      [
        [NaN, 1, NaN, 2, 2],
        [1, NaN, NaN, 2, 1],
      ],
      [5],
      [1, 1, 1, 1, 1],
    );
    expectClose(got.y, Float32Array.from(y), TOL, 'y');
    expectClose(got.grads[0]!, Float32Array.from(da), TOL, 'da');
    expectClose(got.grads[1]!, Float32Array.from(db), TOL, 'db');
  });

  // torch: a = torch.tensor(A).reshape(-1, 1).expand(len(A), len(B)).contiguous().requires_grad_(True)
  //        b = torch.tensor(B).reshape(1, -1).expand(len(A), len(B)).contiguous().requires_grad_(True)
  //        torch.pow(a, b).backward(torch.ones(len(A), len(B))); a.grad, b.grad
  // torch's rules (FunctionsManual.cpp pow_backward_self / pow_backward_exponent): da = where(b == 0, 0,
  // dy·b·a^(b−1)) and db = dy · where(a == 0 & b >= 0, 0, a^b·ln a), so both are 0 at a = 0, b = 0.
  const A = [0, -0, 1, -1, 2, -2, 0.5, Inf, NaN];
  const B = [0, -0, 1, -1, 2, 0.5, -0.5, 3, Inf, -Inf, NaN];
  const DA = [
    [0, 0, 1, -Inf, 0, Inf, -Inf, 0, NaN, -Inf, NaN], // a = 0
    [0, 0, 1, -Inf, -0, Inf, -Inf, 0, NaN, -Inf, NaN], // a = -0
    [0, 0, 1, -1, 2, 0.5, -0.5, 3, Inf, -Inf, NaN], // a = 1
    [0, 0, 1, -1, -2, NaN, NaN, 3, Inf, -Inf, NaN], // a = -1
    [0, 0, 1, -0.25, 4, 0.3535533845424652, -0.1767766922712326, 12, Inf, NaN, NaN], // a = 2
    [0, 0, 1, -0.25, -4, NaN, NaN, 12, Inf, NaN, NaN], // a = -2
    [0, 0, 1, -4, 1, 0.7071067690849304, -1.4142135381698608, 0.75, NaN, -Inf, NaN], // a = 0.5
    [0, 0, 1, -0, Inf, 0, -0, Inf, Inf, NaN, NaN], // a = Inf
    [0, 0, 1, NaN, NaN, NaN, NaN, NaN, NaN, NaN, NaN], // a = NaN
  ];
  const DB = [
    [0, 0, 0, -Inf, 0, 0, -Inf, 0, 0, -Inf, NaN], // a = 0
    [0, 0, 0, Inf, 0, 0, -Inf, 0, 0, -Inf, NaN], // a = -0
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // a = 1
    B.map(() => NaN), // a = -1
    [
      0.6931471824645996,
      0.6931471824645996,
      1.3862943649291992,
      0.3465735912322998,
      2.7725887298583984,
      0.9802581071853638,
      0.4901290535926819,
      5.545177459716797,
      Inf,
      0,
      NaN,
    ], // a = 2
    B.map(() => NaN), // a = -2
    [
      -0.6931471824645996,
      -0.6931471824645996,
      -0.3465735912322998,
      -1.3862943649291992,
      -0.1732867956161499,
      -0.4901290535926819,
      -0.9802581071853638,
      -0.08664339780807495,
      -0,
      -Inf,
      NaN,
    ], // a = 0.5
    [Inf, Inf, Inf, NaN, Inf, Inf, NaN, Inf, Inf, NaN, NaN], // a = Inf
    B.map(() => NaN), // a = NaN
  ];

  it('pow: gradients at base 0 and the other special values', async () => {
    const a = A.flatMap((v) => B.map(() => v));
    const b = A.flatMap(() => B);
    const got = await forwardBackward(
      getB(),
      ([x, e]) => pow(x!, e!),
      [a, b],
      [A.length, B.length],
      a.map(() => 1),
    );
    expectClose(got.grads[0]!, Float32Array.from(DA.flat()), { atol: 1e-6, rtol: 1e-6 }, 'pow da');
    expectClose(got.grads[1]!, Float32Array.from(DB.flat()), { atol: 1e-6, rtol: 1e-6 }, 'pow db');
  });
});
