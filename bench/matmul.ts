// Matmul f32: square sizes, the skinny shapes of an MLP layer (forward, and its two gradients through the transpose
// flags), a wide rank-64 product, square transA/transB, and the dense layer's fused bias + relu. Validated against
// wgnn's CPU reference on a slice of rows (the first and last rows of the output: tile edges), then timed.
import { matmul, tensor, type WebGpuBackend } from '../src/index.js';
import {
  MATMUL_KERNELS,
  matmulKernel,
  matmulOps,
  type AnyOp,
  type MatmulAttrs,
  type MatmulKernelName,
} from '../src/internal.js';
import {
  checkAgainst,
  cpuRun,
  hostUniform,
  opRunner,
  type Case,
  type Check,
  type FamilyOpts,
  type HostTensor,
} from './harness.js';

/** Multiply-adds the CPU reference may spend per case (float64 loops in JavaScript: about a second). */
const CHECK_MACS = 4e7;
/** A case whose single run is predicted over this is skipped (lavapipe at 4096²: half a minute per run). */
const RUN_BUDGET_MS = 2000;

interface Shape {
  id: string;
  label: string;
  M: number;
  K: number;
  N: number;
  attrs: Partial<MatmulAttrs>;
  bias?: boolean;
}

const sq = (n: number, attrs: Partial<MatmulAttrs> = {}, bias = false): Shape => {
  const flags = [attrs.transA && 'transA', attrs.transB && 'transB', bias && '+bias relu'].filter(Boolean).join(' ');
  return {
    id: `square-${n}${attrs.transA ? '-ta' : ''}${attrs.transB ? '-tb' : ''}${bias ? '-bias-relu' : ''}`,
    label: `[${n},${n}]@[${n},${n}]${flags ? ` ${flags}` : ''}`,
    M: n,
    K: n,
    N: n,
    attrs,
    ...(bias ? { bias } : {}),
  };
};

function shapes(o: FamilyOpts): Shape[] {
  const pick = <T>(quick: T, software: T, gpu: T): T => (o.quick ? quick : o.software ? software : gpu);
  const square = o.sizes ?? pick([128, 256], [256, 512, 1024, 2048, 4096], [256, 512, 1024, 2048, 4096]);
  const big = pick(256, 512, 2048);
  const wide = pick(1024, 2048, 4096);
  const b = o.batch ?? 64;
  return [
    ...square.map((n) => sq(n)),
    // An MLP's first layer, x [b,784] @ w [784,128], and its gradients: dw = xᵀ·dy (transA), dx = dy·wᵀ (transB).
    { id: 'mlp-fwd', label: `[${b},784]@[784,128] (MLP layer)`, M: b, K: 784, N: 128, attrs: {} },
    {
      id: 'mlp-fwd-bias-relu',
      label: `[${b},784]@[784,128] +bias relu`,
      M: b,
      K: 784,
      N: 128,
      attrs: { activation: 'relu' },
      bias: true,
    },
    { id: 'mlp-dw-ta', label: `[${b},784]ᵀ@[${b},128] transA (dw)`, M: 784, K: b, N: 128, attrs: { transA: true } },
    { id: 'mlp-dx-tb', label: `[${b},128]@[784,128]ᵀ transB (dx)`, M: b, K: 128, N: 784, attrs: { transB: true } },
    { id: `wide-${wide}`, label: `[${wide},64]@[64,${wide}] (K=64)`, M: wide, K: 64, N: wide, attrs: {} },
    sq(big, { transA: true }),
    sq(big, { transB: true }),
    sq(big, { activation: 'relu' }, true),
  ];
}

/** Stored shapes of a and b for logical [M,K] @ [K,N] under the transpose flags. */
const stored = (s: Shape): [number[], number[]] => [
  s.attrs.transA ? [s.K, s.M] : [s.M, s.K],
  s.attrs.transB ? [s.N, s.K] : [s.K, s.N],
];

export function matmulCases(o: FamilyOpts): Case[] {
  return shapes(o).map((s, k) => matmulCase(s, 7000 + k * 100));
}

/**
 * The matmul-tune family: each square size on every kernel of the table (forced through the `kernel` attribute),
 * to see which is fastest on this device and where the table's pick stands. wgnn only.
 */
export function matmulTuneCases(o: FamilyOpts): Case[] {
  const sizes = o.sizes ?? (o.quick ? [256] : o.software ? [512, 1024] : [1024, 2048, 4096]);
  return sizes.flatMap((n, i) =>
    (Object.keys(MATMUL_KERNELS) as MatmulKernelName[]).map((kernel, j) => {
      const s = sq(n, { kernel });
      const c = matmulCase(
        { ...s, id: `${s.id}-${kernel}`, label: `[${n},${n}]@[${n},${n}] ${kernel}` },
        9000 + i * 100 + j * 10,
        'matmul-tune',
      );
      const overBudget = c.prepare;
      return {
        ...c,
        // A kernel the adapter cannot run (too little workgroup memory) is skipped, with the reason.
        prepare: async (gpu: WebGpuBackend) => {
          try {
            matmulKernel({ M: n, K: n, N: n, batch: 1 }, { transA: false, transB: false, kernel }, gpu.limits);
          } catch (e) {
            return (e as Error).message;
          }
          return overBudget?.(gpu);
        },
        tfjs: 'a wgnn kernel-tuning case',
        jax: 'a wgnn kernel-tuning case',
      };
    }),
  );
}

function matmulCase(s: Shape, seed: number, family = 'matmul'): Case {
  const [aShape, bShape] = stored(s);
  const op: AnyOp = s.bias ? matmulOps.matmul_bias : matmulOps.matmul;
  const attrs: Partial<MatmulAttrs> = s.attrs;
  const flops = 2 * s.M * s.N * s.K;
  const { transA = false, transB = false } = attrs;
  return {
    family,
    id: s.id,
    label: s.label,
    bound: 'compute',
    flops,
    bytes: 4 * (s.M * s.K + s.K * s.N + s.M * s.N + (s.bias ? s.N : 0)),
    meta: { M: s.M, K: s.K, N: s.N, a: aShape, b: bShape, transA, transB, epilogue: s.bias ? 'bias+relu' : 'none' },
    inputs: (set) => [
      hostUniform(seed + set * 10 + 1, aShape),
      hostUniform(seed + set * 10 + 2, bShape),
      ...(s.bias ? [hostUniform(seed + set * 10 + 3, [s.N])] : []),
    ],
    prepare: flops >= 2 * 2048 ** 3 ? (gpu) => overBudget(gpu, flops) : undefined,
    check: (inp) => rowSliceCheck(op, inp, attrs, s, seed),
    wgnn: (gpu, sets) => {
      const k = matmulKernel(
        { M: s.M, K: s.K, N: s.N, batch: 1 },
        { transA, transB, ...(attrs.kernel ? { kernel: attrs.kernel } : {}) },
        {
          maxComputeWorkgroupStorageSize: gpu.limits.maxComputeWorkgroupStorageSize,
          maxComputeInvocationsPerWorkgroup: gpu.limits.maxComputeInvocationsPerWorkgroup,
          software: gpu.software,
        },
      );
      return { ...opRunner(gpu, op, sets, attrs), kernel: `${op.name} (${k.shader} ${k.tileM}x${k.tileN}x${k.tileK})` };
    },
    tfjs: (p, sets) =>
      s.bias
        ? p.prepare('_FusedMatMul (tf.fused.matMul)', sets, ([a, b, bias]) =>
            p.tf.fused.matMul({
              a: a!,
              b: b!,
              transposeA: transA,
              transposeB: transB,
              bias: bias!,
              activation: 'relu',
            }),
          )
        : p.prepare('BatchMatMul', sets, ([a, b]) => p.tf.matMul(a!, b!, transA, transB)),
    jax: (p, sets) => {
      const np = p.jax.numpy;
      return p.prepare(s.bias ? 'relu(matmul + bias)' : 'matmul', sets, (a, b, bias) => {
        const y = np.matmul(transA ? np.matrixTranspose(a!) : a!, transB ? np.matrixTranspose(b!) : b!);
        return bias ? p.jax.nn.relu(y.add(bias)) : y;
      });
    },
  };
}

/**
 * The reference for rows of the output: wgnn's CPU backend runs the same op on the same b (and bias) and on the
 * rows of a that make the first and last output rows, as many as CHECK_MACS allows (at least 2).
 */
async function rowSliceCheck(
  op: AnyOp,
  [a, b, bias]: HostTensor[],
  attrs: Partial<MatmulAttrs>,
  s: Shape,
  seed: number,
): Promise<Check> {
  const m = Math.max(2, Math.min(s.M, Math.floor(CHECK_MACS / (s.K * s.N))));
  const rows = [
    ...Array.from({ length: Math.ceil(m / 2) }, (_, i) => i),
    ...Array.from({ length: Math.floor(m / 2) }, (_, i) => s.M - Math.floor(m / 2) + i),
  ];
  const A = a!.data as Float32Array;
  let sub: Float32Array;
  if (attrs.transA) {
    // a is stored [K,M]: take columns.
    sub = new Float32Array(s.K * m);
    for (let k = 0; k < s.K; k++) rows.forEach((r, j) => (sub[k * m + j] = A[k * s.M + r]!));
  } else {
    sub = new Float32Array(m * s.K);
    rows.forEach((r, j) => sub.set(A.subarray(r * s.K, (r + 1) * s.K), j * s.K));
  }
  const want = await cpuRun(
    op,
    [{ data: sub, shape: attrs.transA ? [s.K, m] : [m, s.K] }, b!, ...(bias ? [bias] : [])],
    attrs,
  );
  const at = Int32Array.from({ length: m * s.N }, (_, i) => rows[Math.floor(i / s.N)]! * s.N + (i % s.N));
  const how = m === s.M ? 'cpu reference' : `cpu reference (rows ${rows.length} of ${s.M})`;
  return checkAgainst(how, op.name, want, op.tol, seed, { at, length: s.K });
}

/**
 * Predicts one run of `flops` from a 512² matmul on this device (which underestimates a GPU's rate, so errs towards
 * running) and says why the case is skipped when it is over RUN_BUDGET_MS.
 */
async function overBudget(gpu: WebGpuBackend, flops: number): Promise<string | undefined> {
  const n = 512;
  const a = tensor(hostUniform(1, [n, n]).data, [n, n], { backend: gpu });
  try {
    matmul(a, a).dispose();
    await gpu.sync();
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) matmul(a, a).dispose();
    await gpu.sync();
    const gflops = (3 * 2 * n ** 3) / ((performance.now() - t0) * 1e6);
    const ms = flops / (gflops * 1e6);
    if (ms <= RUN_BUDGET_MS) return undefined;
    return `skipped: one run would take ≈ ${(ms / 1000).toFixed(0)} s at the ${gflops.toFixed(1)} GFLOP/s of a ${n}² matmul here, over the ${RUN_BUDGET_MS / 1000} s budget per run (a GPU runs it)`;
  } finally {
    a.dispose();
  }
}
