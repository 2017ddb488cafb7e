// matmul / matmul_bias on the wasm backend (assembly/matmul.ts), and the GEMM tiling plan the convolutions share:
// b packed into 8-column panels once, then tasks over output tiles, each packing its block of a and running the
// 4x8 SIMD micro-kernel over it. Every element sums k = 0..K-1 in order from 0, so the plan (tile sizes, task count,
// K blocking) changes only speed, never a bit of the result.
import type { Activation, MatmulAttrs } from '../../../ops/matmul.js';
import type { OpName } from '../../../ops/registry.js';
import { broadcastStrides } from '../../../shape.js';
import type { WasmCtx, WasmKernel } from '../kernel.js';

/** The micro-kernel's register tile (assembly/gemm.ts MR, NR): rows of a packed A panel, columns of a B panel. */
export const MR = 4;
export const NR = 8;
/** Depth of a packed A block: MC_MAX x KC floats (96 KiB) stay in L2, a KC x NR sliver of B (8 KiB) in L1. */
export const KC = 256;
const MC_MAX = 96;
const NC_MAX = 256;
/** Tasks at most: each holds a packed A block in scratch; a task runs a contiguous run of tiles. */
export const MAX_TASKS = 64;
/** Products of at least this many flops are cut into at least MIN_TILES tiles (work for every thread). */
export const PARALLEL_FLOPS = 1 << 20;
export const MIN_TILES = 8;

/** Codes of the epilogue's activations (assembly/gemm.ts `activate`); a new unary op must get one here. */
export const ACTIVATION_CODES: Record<Activation, number> = {
  none: 0,
  relu: 1,
  leaky_relu: 2,
  sigmoid: 3,
  tanh: 4,
  gelu: 5,
  gelu_tanh: 6,
  exp: 7,
  log: 8,
  neg: 9,
  sqrt: 10,
  square: 11,
  abs: 12,
};

export const roundUp = (n: number, m: number): number => Math.ceil(n / m) * m;

export interface GemmPlan {
  /** Output tile rows (a multiple of MR) and columns (of NR). */
  mc: number;
  nc: number;
  /** K block depth. */
  kcb: number;
  tasks: number;
  /** Scratch bytes per task: a packed A block of mc x kcb floats and an MR x NR edge tile. */
  taskBytes: number;
}

/** Tiles for Z products of [M, Kr] @ [Kr, N]: large tiles, cut smaller until there are enough for the threads. */
export function gemmPlan(M: number, N: number, Kr: number, Z = 1): GemmPlan {
  let mc = Math.min(MC_MAX, roundUp(M, MR));
  let nc = Math.min(NC_MAX, roundUp(N, NR));
  const tiles = () => Z * Math.ceil(M / mc) * Math.ceil(N / nc);
  if (2 * Z * M * N * Kr >= PARALLEL_FLOPS) {
    while (tiles() < MIN_TILES) {
      if (mc > 2 * MR) mc = roundUp(mc / 2, MR);
      else if (nc > 2 * NR) nc = roundUp(nc / 2, NR);
      else break;
    }
  }
  const kcb = Math.max(1, Math.min(KC, Kr));
  return { mc, nc, kcb, tasks: Math.min(tiles(), MAX_TASKS), taskBytes: roundUp(4 * (mc * kcb + MR * NR), 16) };
}

/** Tasks for packing `panels` B panels of Kr rows: one per 64 Ki floats. */
export const packTasks = (panels: number, Kr: number): number =>
  Math.max(1, Math.min(panels, MAX_TASKS, Math.ceil((panels * Kr * NR) / 65536)));

/** The kernel's view of the batch: merged dims [d0..d3] and a's and b's element strides (see ops/matmul.ts). */
function batchLayout(
  a: readonly number[],
  b: readonly number[],
  batch: readonly number[],
  M: number,
  K: number,
  N: number,
) {
  const as = broadcastStrides(a.slice(0, -2), batch).map((s) => s * M * K);
  const bs = broadcastStrides(b.slice(0, -2), batch).map((s) => s * K * N);
  const dims: number[] = [];
  const aS: number[] = [];
  const bS: number[] = [];
  for (let i = batch.length - 1; i >= 0; i--) {
    const n = batch[i]!;
    if (n === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && as[i] === aS[last]! * dims[last]! && bs[i] === bS[last]! * dims[last]!) {
      dims[last]! *= n;
      continue;
    }
    dims.push(n);
    aS.push(as[i]!);
    bS.push(bs[i]!);
  }
  // The op's shape rule allows at most 4 merged dims.
  while (dims.length < 4) {
    dims.push(1);
    aS.push(0);
    bS.push(0);
  }
  return { dims: dims.reverse(), aS: aS.reverse(), bS: bS.reverse() };
}

// y [...batch, M, N] = act(a @ b + bias), a [..., M, K] (or [..., K, M] with transA), b [..., K, N] (or [..., N, K]).
function matmulKernel(withBias: boolean): WasmKernel<MatmulAttrs> {
  return (ctx: WasmCtx<MatmulAttrs>) => {
    const [a, b, bias] = ctx.inputs;
    const { transA, transB, activation, alpha } = ctx.attrs;
    const ys = ctx.out.shape;
    let M = ys[ys.length - 2]!;
    const N = ys[ys.length - 1]!;
    const K = a!.shape[a!.shape.length - (transA ? 2 : 1)]!;
    const lay = batchLayout(a!.shape, b!.shape, ys.slice(0, -2), M, K, N);
    let Z = lay.dims.reduce((p, d) => p * d, 1);
    if (M * N * Z === 0) return;
    // a [Z, M, K] contiguous times one b: a single [Z·M, K] @ [K, N] product.
    if (!transA && lay.bS.every((s) => s === 0) && lay.dims.slice(0, 3).every((d) => d === 1) && lay.aS[3] === M * K) {
      M *= Z;
      Z = 1;
      lay.aS[3] = 0;
      lay.dims[3] = 1;
    }
    const [, d1, d2, d3] = lay.dims;
    const panels = Math.ceil(N / NR);
    const pb = ctx.scratch(Math.max(16, 4 * Z * panels * NR * K));
    if (K > 0) {
      ctx.parallel('matmul_pack_b', [b!.ptr, pb, K, N, +transB, Z, d1!, d2!, d3!, ...lay.bS], packTasks(Z * panels, K));
    }
    const plan = gemmPlan(M, N, K, Z);
    const scratch = ctx.scratch(plan.tasks * plan.taskBytes);
    ctx.parallel(
      'matmul_tiles',
      [
        a!.ptr,
        pb,
        ctx.out.ptr,
        withBias ? bias!.ptr : 0,
        +withBias,
        ACTIVATION_CODES[activation],
        alpha,
        M,
        K,
        N,
        +transA,
        Z,
        d1!,
        d2!,
        d3!,
        ...lay.aS,
        plan.mc,
        plan.nc,
        plan.kcb,
        scratch,
        plan.taskBytes,
      ],
      plan.tasks,
    );
  };
}

/** The wasm kernels of src/ops/matmul.ts. */
export const matmulKernels = {
  matmul: matmulKernel(false),
  matmul_bias: matmulKernel(true),
} satisfies Partial<Record<OpName, WasmKernel<MatmulAttrs>>>;
