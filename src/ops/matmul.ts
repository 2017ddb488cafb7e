// Matmul ops: batched a [..., M, K] @ b [..., K, N] -> [..., M, N] with NumPy-broadcast batch dims and transpose
// flags (so backward never materialises a transpose), and matmul_bias, the dense layer's fused bias + activation.
// Both run shaders/matmul.wgsl.
import { f32, subgroupRowDefines, u32 } from '../backend/kernel.js';
import type { TensorSpec } from '../backend/backend.js';
import { workgroupNeeds } from '../backend/webgpu/wgsl-reflect.js';
import { DTypeError, ShapeError, WgnnError, fmtShape } from '../errors.js';
import { SHADERS } from '../shaders.gen.js';
import { broadcastStrides, sizeOf, stridesOf, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { sumTo } from './binary.js';
import { reshape } from './layout.js';
import { defineOp, type BadCase, type Grad, type OpDef, type Sample } from './op.js';
import { sum } from './reduce.js';
import { UNARY, unaryOps, type UnaryName } from './unary.js';
import { requireFloat } from './util.js';

/** An activation fused into a matmul or conv epilogue: 'none' or an elementwise op of the unary table. */
export type Activation = 'none' | UnaryName;

/** Options of `matmul` and `linear`. */
export interface MatmulAttrs {
  /** a is stored [..., K, M]. */
  transA: boolean;
  /** b is stored [..., N, K]. */
  transB: boolean;
  /** Applied to each output element (after the bias): 'none' or an elementwise op of the unary table. */
  activation: Activation;
  /** leaky_relu's negative slope. */
  alpha: number;
  /** The GPU kernel: 'auto' (picked per shape, see matmulKernel) or one of MATMUL_KERNELS, for tuning. */
  kernel: 'auto' | MatmulKernelName;
}

/** A matmul kernel and its tiles: one row of the table `matmulKernel` picks from. */
export interface MatmulKernel {
  /** matmul.wgsl reads scalars and works on any shape; matmul_vec4.wgsl reads and writes vec4s and double-buffers. */
  shader: 'matmul' | 'matmul_vec4';
  tileM: number;
  tileN: number;
  tileK: number;
  /** vec4s of padding per k-row of a workgroup tile (matmul_vec4.wgsl; matmul.wgsl always pads by one). */
  pad: number;
}

// Every kernel runs 8x8 outputs per thread. The `kernel` attribute forces one (the benchmark's matmul-tune family
// times each on a device); 'auto' takes matmulKernel's pick.
export const MATMUL_KERNELS = {
  'scalar-64x64x16': { shader: 'matmul', tileM: 64, tileN: 64, tileK: 16, pad: 1 },
  'vec4-64x64x16': { shader: 'matmul_vec4', tileM: 64, tileN: 64, tileK: 16, pad: 1 },
  'vec4-128x128x8': { shader: 'matmul_vec4', tileM: 128, tileN: 128, tileK: 8, pad: 1 },
  'vec4-128x128x16': { shader: 'matmul_vec4', tileM: 128, tileN: 128, tileK: 16, pad: 0 },
} as const satisfies Record<string, MatmulKernel>;
export type MatmulKernelName = keyof typeof MATMUL_KERNELS;

// The table. `npm run bench -- matmul-tune` times every kernel on a device; on lavapipe (bench/results/) the 128x128
// kernels run 512² and 1024² 1.1-1.3x faster than the 64x64 ones, and vec4 and scalar 64x64 tie.
// - 128x128 tiles (256 threads) halve the global-memory reads per FMA of 64x64 tiles but give a quarter of the
//   workgroups: taken only where there are plenty for a many-core GPU (>= 128 tiles of 128², a 1536² product and
//   up), 16 deep. A CPU adapter (lavapipe, SwiftShader: a few cores) takes them wherever M and N both fill a tile
//   (>= 128): on lavapipe every matmul of the char GPT's step (M = 2048, K and N of 113-512, plain, transA and
//   transB) ran 1.15-1.4x faster with them than with 64x64 tiles.
// - Smaller products on a CPU adapter run matmul.wgsl: there its one pipeline serves a layer's forward (relu or
//   none) and both gradients, where matmul_vec4.wgsl compiles a variant per transpose (lavapipe compiles each at its
//   first dispatch, 0.5-0.8 s). Half-empty 128-row tiles were slower too: the seed CNN's products (64 x 5408 x 64,
//   its two gradients) took 11.9 / 7.2 / 9.4 ms on lavapipe with matmul.wgsl vs 23.1 / 11.9 / 11.1 ms.
// - vec4 loads and stores need each operand's contiguous dim to be a multiple of 4 (so no vec4 straddles a row);
//   other shapes, and adapters under 17 KiB of workgroup memory (WebGPU's default limit is 16), run matmul.wgsl.
// - No subgroup operations (on a GPU): in the 8x8-per-thread loop the a reads are broadcasts (one address per 16 threads) and
//   there are 4 vec4 reads of workgroup memory per 64 FMAs, so the loop is bound by FMAs, not by workgroup memory;
//   shuffling fragments between lanes would replace cheap broadcasts with shuffles of the same count. A CPU
//   implementation with subgroups of 8 is the other way round (its reads cost per lane): there the a reads go
//   through subgroup broadcasts (_tile_mma.wgsl's SUBGROUP_ROWS).
const LARGE_MIN_TILES = 128;
// Columns per thread (the WGSL's TN; rows TM are 8). NOTE: on a CPU implementation, the 128x128 tiles of a large
// product take 16: lavapipe runs a workgroup as one core's SIMD loop, 8 threads to a vector, and 8x16 blocks (half
// the threads, 6 vec4 reads of workgroup memory per 128 FMAs) ran the char GPT's products 1.1-1.24x faster than 8x8,
// timed in turn in one process (2 cores: [16,128,128]@[128,384] 47.4 -> 39.2 ms, [16,128,128]@[128,512] 59.0 ->
// 47.6, Xᵀ·dY with K = 2048 41.0 -> 34.8), and its replayed step 1.1x (1664-1796 vs 1805-2121 ms). 16x16 and 8x32
// were slower. But lavapipe compiles the 8x16 kernel ~2 s longer (the seed MLP's cold start 2.0-3.1 -> 3.9-5.0 s for
// its one 784x64x128 product): only products of 2^24 multiply-adds and more (the GPT's smallest, 2048x128x128, is
// 2^25) take it, where the step gains back the compile in tens of steps. A GPU keeps 8x8 (its registers).
const WIDE_MIN_MACS = 1 << 24;
/** Columns per thread of kernel `k` on a `batch` of M x K @ K x N products: 8, or 16 (see above). */
export const colsOf = (
  k: MatmulKernel,
  d: { M: number; K: number; N: number; batch: number },
  software?: boolean,
): number => (software && k.tileM === 128 && d.M * d.K * d.N * d.batch >= WIDE_MIN_MACS ? 16 : 8);
/** Threads of a workgroup: 8 x colsOf outputs each. */
const threadsOf = (k: MatmulKernel, cols: number): number => (k.tileM / 8) * (k.tileN / cols);
/** The WGSL overrides that size kernel `k`'s tiles (matmul.wgsl has no PAD: it always pads by one). */
const tileOverrides = (k: MatmulKernel): Record<string, number> => ({
  TILE_M: k.tileM,
  TILE_N: k.tileN,
  TILE_K: k.tileK,
  ...(k.shader === 'matmul_vec4' ? { PAD: k.pad } : {}),
});
const tileBytesOf = new Map<MatmulKernel, number>();
/** Bytes of workgroup memory kernel `k` declares, read from its WGSL as the backend's limit check reads it. */
function tileBytes(k: MatmulKernel): number {
  let bytes = tileBytesOf.get(k);
  // TN only sizes the workgroup, not its memory: any value reads the bytes.
  if (bytes === undefined)
    tileBytesOf.set(k, (bytes = workgroupNeeds(SHADERS[k.shader], { ...tileOverrides(k), TN: 8 }).storage));
  return bytes;
}

type KernelLimits = Pick<GPUSupportedLimits, 'maxComputeWorkgroupStorageSize' | 'maxComputeInvocationsPerWorkgroup'> & {
  /** A CPU implementation of WebGPU (GpuContext.software). */
  software?: boolean;
};

/** Why kernel `k` cannot run an M x K @ K x N product under these flags and limits, or undefined if it can. */
function unfit(
  k: MatmulKernel,
  d: { M: number; K: number; N: number; batch: number },
  t: Pick<MatmulAttrs, 'transA' | 'transB'>,
  limits: KernelLimits,
): string | undefined {
  if (k.shader === 'matmul') return undefined;
  if ((t.transA ? d.M : d.K) % 4 !== 0) return `a's rows (${t.transA ? 'M' : 'K'}) are not whole vec4s`;
  if ((t.transB ? d.K : d.N) % 4 !== 0) return `b's rows (${t.transB ? 'K' : 'N'}) are not whole vec4s`;
  if (d.N % 4 !== 0) return "y's rows (N) are not whole vec4s";
  if (tileBytes(k) > limits.maxComputeWorkgroupStorageSize) {
    return `its ${tileBytes(k)} B of workgroup memory exceed the adapter's ${limits.maxComputeWorkgroupStorageSize}`;
  }
  const threads = threadsOf(k, colsOf(k, d, limits.software));
  if (threads > limits.maxComputeInvocationsPerWorkgroup) return `its ${threads} threads exceed the adapter's limit`;
  return undefined;
}

/**
 * The kernel for an M x K @ K x N product (`batch` of them) under the transpose flags, on an adapter with these
 * limits: `kernel` when forced (WgnnError if it cannot run the shape), else the table's pick.
 */
export function matmulKernel(
  d: { M: number; K: number; N: number; batch: number },
  t: Pick<MatmulAttrs, 'transA' | 'transB'> & { kernel?: MatmulAttrs['kernel'] },
  limits: KernelLimits,
  op = 'matmul',
): MatmulKernel {
  if (t.kernel && t.kernel !== 'auto') {
    const k: MatmulKernel | undefined = MATMUL_KERNELS[t.kernel];
    if (!k)
      throw new WgnnError(
        `${op}: unknown kernel '${t.kernel}'; expected 'auto' or one of ${Object.keys(MATMUL_KERNELS).join(', ')}`,
      );
    const why = unfit(k, d, t, limits);
    if (why)
      throw new WgnnError(
        `${op}: kernel '${t.kernel}' cannot run [${d.M},${d.K}] @ [${d.K},${d.N}] (${flags(t)}): ${why}`,
      );
    return k;
  }
  const tiles = Math.ceil(d.M / 128) * Math.ceil(d.N / 128) * d.batch;
  let order: MatmulKernelName[] = ['vec4-64x64x16'];
  if (limits.software) order = d.M >= 128 && d.N >= 128 ? ['vec4-128x128x16', 'vec4-128x128x8'] : [];
  else if (tiles >= LARGE_MIN_TILES) order = ['vec4-128x128x16', 'vec4-128x128x8', 'vec4-64x64x16'];
  const name = order.find((n) => !unfit(MATMUL_KERNELS[n], d, t, limits)) ?? 'scalar-64x64x16';
  return MATMUL_KERNELS[name];
}

/** Batch dims the kernel takes after merging (the vec4s of its uniform struct). */
const MAX_BATCH_DIMS = 4;

interface Dims {
  M: number;
  K: number;
  N: number;
  /** The output's batch dims (the broadcast of a's and b's). */
  batch: number[];
}

const flags = (t: Pick<MatmulAttrs, 'transA' | 'transB'>): string => `transA=${t.transA}, transB=${t.transB}`;

/** M, K, N and the broadcast batch dims of a @ b; throws ShapeError naming the op, both shapes and the flags. */
function matmulDims(op: string, a: Shape, b: Shape, t: MatmulAttrs): Dims {
  for (const [which, s] of [
    ['a', a],
    ['b', b],
  ] as const) {
    if (s.length < 2) {
      throw new ShapeError(
        `${op}: ${which} ${fmtShape(s)} has rank ${s.length}; expected rank >= 2 (${fmtShape(a)} @ ${fmtShape(b)})`,
      );
    }
  }
  const [a0, a1] = a.slice(-2) as [number, number];
  const [b0, b1] = b.slice(-2) as [number, number];
  const [M, Ka] = t.transA ? [a1, a0] : [a0, a1];
  const [Kb, N] = t.transB ? [b1, b0] : [b0, b1];
  if (Ka !== Kb) {
    throw new ShapeError(
      `${op}: inner dims differ: ${fmtShape(a)} @ ${fmtShape(b)} (${flags(t)}) has K = ${Ka} vs ${Kb}; expected equal`,
    );
  }
  const ab = a.slice(0, -2);
  const bb = b.slice(0, -2);
  const r = Math.max(ab.length, bb.length);
  const batch: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = ab[ab.length - r + i] ?? 1;
    const db = bb[bb.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(
        `${op}: batch dims of ${fmtShape(a)} and ${fmtShape(b)} do not broadcast (${da} vs ${db}); expected equal sizes or 1`,
      );
    }
    batch.push(da === 1 ? db : da);
  }
  return { M, K: Ka, N, batch };
}

interface BatchLayout {
  /** Batch dims after merging, outermost first, padded in front with 1s to MAX_BATCH_DIMS. */
  dims: number[];
  /** Element strides of a and b per merged dim (0 where broadcast). */
  aStrides: number[];
  bStrides: number[];
}

/**
 * The kernel's view of the batch: drops size-1 dims and merges neighbours that both operands step through
 * contiguously (or both broadcast), e.g. [2,3] @ [2,3] batches become one dim of 6. Throws ShapeError past 4.
 */
function batchLayout(op: string, a: Shape, b: Shape, d: Dims): BatchLayout {
  const as = broadcastStrides(a.slice(0, -2), d.batch).map((s) => s * d.M * d.K);
  const bs = broadcastStrides(b.slice(0, -2), d.batch).map((s) => s * d.K * d.N);
  const dims: number[] = [];
  const aStrides: number[] = [];
  const bStrides: number[] = [];
  for (let i = d.batch.length - 1; i >= 0; i--) {
    const n = d.batch[i]!;
    if (n === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && as[i] === aStrides[last]! * dims[last]! && bs[i] === bStrides[last]! * dims[last]!) {
      dims[last] *= n;
      continue;
    }
    dims.push(n);
    aStrides.push(as[i]!);
    bStrides.push(bs[i]!);
  }
  if (dims.length > MAX_BATCH_DIMS) {
    throw new ShapeError(
      `${op}: batch dims of ${fmtShape(a)} and ${fmtShape(b)} need ${dims.length} dims after merging; expected at most ${MAX_BATCH_DIMS}`,
    );
  }
  while (dims.length < MAX_BATCH_DIMS) {
    dims.push(1);
    aStrides.push(0);
    bStrides.push(0);
  }
  return { dims: dims.reverse(), aStrides: aStrides.reverse(), bStrides: bStrides.reverse() };
}

function activationRow(op: string, name: Activation): (typeof UNARY)[UnaryName] | undefined {
  if (name === 'none') return undefined;
  if (!(name in UNARY)) {
    throw new WgnnError(
      `${op}: unknown activation '${String(name)}'; expected 'none' or one of ${Object.keys(UNARY).join(', ')}`,
    );
  }
  return UNARY[name];
}

function matmulOp(name: 'matmul' | 'matmul_bias'): OpDef<MatmulAttrs> {
  const withBias = name === 'matmul_bias';
  return defineOp<MatmulAttrs>({
    name,
    arity: withBias ? 3 : 2,
    attrs: { transA: false, transB: false, activation: 'none', alpha: 0.2, kernel: 'auto' },
    infer: (inputs, attrs) => {
      const [a, b, bias] = inputs as [TensorSpec, TensorSpec, TensorSpec?];
      requireFloat(name, inputs);
      activationRow(name, attrs.activation);
      const d = matmulDims(name, a.shape, b.shape, attrs);
      batchLayout(name, a.shape, b.shape, d);
      // A forced kernel must suit the shape on any backend (the adapter's limits are checked at dispatch).
      matmulKernel(
        { ...d, batch: 1 },
        attrs,
        { maxComputeWorkgroupStorageSize: Infinity, maxComputeInvocationsPerWorkgroup: Infinity },
        name,
      );
      if (bias && (bias.shape.length !== 1 || bias.shape[0] !== d.N)) {
        throw new ShapeError(
          `${name}: bias ${fmtShape(bias.shape)} does not match N = ${d.N} of ${fmtShape(a.shape)} @ ${fmtShape(b.shape)} (${flags(attrs)}); expected [${d.N}]`,
        );
      }
      return { shape: [...d.batch, d.M, d.N], dtype: 'float32' };
    },
    // y [...batch, M, N] = act(a [...batchA, M, K] @ b [...batchB, K, N] + bias [N]), with a [..., K, M] when
    // transA and b [..., N, K] when transB; batchA and batchB broadcast to batch. Float64 sums.
    cpu: ({ inputs: [a, b, bias], attrs, alloc }) => {
      const { M, K, N, batch } = matmulDims(name, a!.shape, b!.shape, attrs);
      const f = activationRow(name, attrs.activation)?.ref;
      const aStr = broadcastStrides(a!.shape.slice(0, -2), batch);
      const bStr = broadcastStrides(b!.shape.slice(0, -2), batch);
      const bIdx = stridesOf(batch);
      const A = a!.data;
      const B = b!.data;
      const y = alloc(sizeOf(batch) * M * N);
      for (let z = 0; z < sizeOf(batch); z++) {
        let ao = 0;
        let bo = 0;
        batch.forEach((_, i) => {
          const idx = Math.floor(z / bIdx[i]!) % batch[i]!;
          ao += idx * aStr[i]! * M * K;
          bo += idx * bStr[i]! * K * N;
        });
        for (let m = 0; m < M; m++) {
          for (let n = 0; n < N; n++) {
            let s = 0;
            for (let k = 0; k < K; k++) {
              const av = attrs.transA ? A[ao + k * M + m]! : A[ao + m * K + k]!;
              const bv = attrs.transB ? B[bo + n * K + k]! : B[bo + k * N + n]!;
              s += av * bv;
            }
            if (bias) s += bias.data[n]!;
            y[(z * M + m) * N + n] = f ? f(s, attrs.alpha) : s;
          }
        }
      }
      return y;
    },
    gpu: ({ inputs: [a, b, bias], out, attrs, ctx }) => {
      const d = matmulDims(name, a!.shape, b!.shape, attrs);
      const lay = batchLayout(name, a!.shape, b!.shape, d);
      const limits = {
        maxComputeWorkgroupStorageSize: ctx.limits.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: ctx.limits.maxComputeInvocationsPerWorkgroup,
        software: ctx.software,
      };
      const k = matmulKernel({ ...d, batch: sizeOf(d.batch) }, attrs, limits, name);
      // The grid: column tiles in x, row tiles in y, the batch in z. Past the per-dimension workgroup limit (a batch
      // of 65,536 small products, or over 4M rows from a pointwise conv) it runs as blocks of at most that many per
      // dimension, the kernel adding each block's first workgroup from the uniforms.
      const grid = [Math.ceil(d.N / k.tileN), Math.ceil(d.M / k.tileM), sizeOf(d.batch)] as const;
      const max = ctx.limits.maxComputeWorkgroupsPerDimension;
      // The kernel always declares a bias binding; plain matmul binds a placeholder it never reads.
      const inputs = [a!, b!, bias ?? ctx.scratch(4)];
      const cols = colsOf(k, { ...d, batch: sizeOf(d.batch) }, ctx.software);
      const defines: Record<string, string> = {
        ACT: activationRow(name, attrs.activation)?.wgsl ?? 'x',
        TN: `${cols}u`,
        ...subgroupRowDefines(ctx, k.tileN / cols),
      };
      const threads = threadsOf(k, cols);
      // matmul.wgsl takes the transposes, the bias and relu as uniform flags (one pipeline for a layer's forward and
      // both gradients: fewer compiles at start-up); matmul_vec4.wgsl as overrides, since there the branches in its
      // unrolled loads doubled lavapipe's compile time, more than the variants they would save.
      let overrides: Record<string, number | boolean> = tileOverrides(k);
      let flags = 0;
      if (k.shader === 'matmul_vec4') {
        defines.A_LOADS = `${(k.tileM * k.tileK) / 4 / threads}u`;
        defines.B_LOADS = `${(k.tileN * k.tileK) / 4 / threads}u`;
        overrides = { ...overrides, TRANS_A: attrs.transA, TRANS_B: attrs.transB, HAS_BIAS: withBias };
      } else {
        const relu = attrs.activation === 'relu';
        if (relu) defines.ACT = 'x';
        flags = (attrs.transA ? 1 : 0) | (attrs.transB ? 2 : 0) | (withBias ? 4 : 0) | (relu ? 8 : 0);
      }
      for (let z = 0; z < grid[2]; z += max) {
        for (let y = 0; y < grid[1]; y += max) {
          for (let x = 0; x < grid[0]; x += max) {
            ctx.dispatch({
              shader: k.shader,
              defines,
              overrides,
              workgroups: [Math.min(max, grid[0] - x), Math.min(max, grid[1] - y), Math.min(max, grid[2] - z)],
              outputs: [out],
              inputs,
              uniforms: [
                u32(d.M),
                u32(d.N),
                u32(d.K),
                f32(attrs.alpha),
                ...lay.dims.map(u32),
                ...lay.aStrides.map(u32),
                ...lay.bStrides.map(u32),
                ...[x, y, z, flags].map(u32),
              ],
            });
          }
        }
      }
    },
    samples: withBias ? biasSamples : plainSamples,
    bad: withBias ? biasBad : plainBad,
    // Inputs in [-1, 1] and K <= 300: the f32 sum's rounding error grows like sqrt(K)·2^-24·|terms| (the largest
    // seen over all 65,536 entries of a K = 256 product is 2e-5), and gelu's erf approximation adds < 1.5e-7.
    // 1e-4 leaves room for summation order and FMA contraction without letting a dropped or sign-flipped term
    // (error ~0.1 and up) through.
    tol: { atol: 1e-4, rtol: 1e-4 },
    // The gradients are matmuls over M or N (up to 257 terms) and, for batch broadcasts and the bias, sums over rows.
    gradTol: { atol: 1e-3, rtol: 1e-4 },
    grad: matmulGrad(withBias),
  });
}

// y = act(z), z = a' @ b' + bias with a' = transA ? aᵀ : a (likewise b'). With dz = act'(dy):
//   da' = dz @ b'ᵀ, db' = a'ᵀ @ dz, dbias = Σ_rows dz,
// each written with transpose flags so nothing is materialised, then summed over broadcast batch dims.
function matmulGrad(withBias: boolean): Grad<MatmulAttrs> {
  const row = (act: Activation) => (act === 'none' ? undefined : UNARY[act]);
  return {
    // relu/sigmoid/tanh/exp/sqrt take their derivative from y; the others need z, recomputed from a, b (and bias).
    saves: { inputs: withBias ? [0, 1, 2] : [0, 1], output: true },
    rule: ({ inputs: [a, b, bias], output: y, shapes, attrs, needs }, dy) => {
      const { transA: tA, transB: tB, activation: act, alpha } = attrs;
      const r = row(act);
      let dz = dy;
      if (r) {
        const s =
          r.grad.uses === 'y'
            ? y!
            : apply(withBias ? matmulOps.matmul_bias : matmulOps.matmul, withBias ? [a!, b!, bias!] : [a!, b!], {
                transA: tA,
                transB: tB,
              });
        dz = apply(unaryOps[`${act as UnaryName}_bwd_x`], [s, dy], { alpha });
      }
      const mm = (x: Tensor, w: Tensor, transA: boolean, transB: boolean) =>
        apply(matmulOps.matmul, [x, w], { transA, transB });
      const da = needs[0] ? sumTo(tA ? mm(b!, dz, tB, true) : mm(dz, b!, false, !tB), shapes[0]!) : null;
      const shared = !tA && a!.rank > 2 && b!.rank === 2; // a dense layer on a sequence: x [B, T, K] @ w [K, N]
      const db = !needs[1]
        ? null
        : shared
          ? sharedWeightGrad(a!, dz, tB)
          : sumTo(tB ? mm(dz, a!, true, tA) : mm(a!, dz, !tA, false), shapes[1]!);
      const dbias = withBias && needs[2] ? sum(dz, [...Array(dz.rank - 1).keys()]) : null;
      return withBias ? [da, db, dbias] : [da, db];
    },
  };
}

/**
 * The gradient of a matrix b shared by a whole batch, a [..., M, K] @ b (not transposed a): the batch and M fold
 * into the product's K, db = a'ᵀ·dz over all batch·M rows, one product rather than a [batch, K, N] stack of partial
 * products and their sum (for GPT-2 at B = 8 that stack is 8 copies of every weight). The rows split into G groups
 * (partial products summed over G) only where the single product would leave a CPU implementation of WebGPU with
 * fewer tiles than it has cores to run them (a [128, 128] gradient is one tile).
 */
function sharedWeightGrad(a: Tensor, dz: Tensor, tB: boolean): Tensor {
  const K = a.shape[a.rank - 1]!;
  const N = dz.shape[dz.rank - 1]!;
  const rows = sizeOf(a.shape) / Math.max(1, K);
  const tiles = Math.ceil(K / 128) * Math.ceil(N / 128);
  let G = 1;
  if ((a.backend as { software?: boolean }).software)
    while (tiles * G < SPLIT_TILES && rows % (2 * G) === 0 && rows / (2 * G) >= SPLIT_MIN_ROWS) G *= 2;
  const a3 = reshape(a, [G, rows / G, K]);
  const dz3 = reshape(dz, [G, rows / G, N]);
  const mm = (x: Tensor, w: Tensor) => apply(matmulOps.matmul, [x, w], { transA: true });
  const g = tB ? mm(dz3, a3) : mm(a3, dz3); // [G, N, K] or [G, K, N]
  return G > 1 ? sum(g, [0]) : reshape(g, g.shape.slice(1));
}
// Tiles a software adapter's gradient product should offer (its cores, with room for uneven ones), and the fewest
// rows a group keeps (below that the partial products cost more to sum than they save).
const SPLIT_TILES = 8;
const SPLIT_MIN_ROWS = 128;

const RANGE: [number, number] = [-1, 1];

function sample(shapes: number[][], attrs: Partial<MatmulAttrs> = {}, label = ''): Sample<MatmulAttrs> {
  const [a, b, bias] = shapes;
  const on = Object.entries(attrs).map(([k, v]) => (k === 'activation' ? String(v) : v === true ? k : `${k}=${v}`));
  return {
    name: `${fmtShape(a!)}@${fmtShape(b!)}${bias ? `+${fmtShape(bias)}` : ''}${on.length ? ` ${on.join(' ')}` : ''}${label}`,
    inputs: shapes.map((shape) => ({ shape, range: RANGE })),
    attrs,
  };
}

function* plainSamples(): Iterable<Sample<MatmulAttrs>> {
  yield sample([
    [1, 1],
    [1, 1],
  ]);
  yield sample([
    [7, 33],
    [33, 65],
  ]);
  yield sample([
    [129, 65],
    [65, 129],
  ]);
  yield sample(
    [
      [1, 129],
      [129, 7],
    ],
    {},
    ' (M=1)',
  );
  yield sample(
    [
      [65, 1],
      [1, 33],
    ],
    {},
    ' (K=1)',
  );
  yield sample([
    [3, 7, 5],
    [3, 5, 9],
  ]);
  yield sample(
    [
      [2, 1, 4, 6],
      [3, 6, 5],
    ],
    {},
    ' (broadcast)',
  );
  yield sample(
    [
      [4, 5],
      [3, 5, 6],
    ],
    {},
    ' (a broadcast)',
  );
  yield sample(
    [
      [2, 3, 1, 2, 4, 5],
      [3, 2, 1, 5, 6],
    ],
    {},
    ' (4 batch dims)',
  );
  yield sample(
    [
      [2, 3, 7, 5],
      [2, 3, 5, 9],
    ],
    {},
    ' (batch dims merge)',
  );
  // A matrix shared by the batch: its gradient folds the batch into K (split in two groups on a software adapter).
  yield sample(
    [
      [4, 64, 20],
      [20, 24],
    ],
    {},
    ' (shared b)',
  );
  yield sample(
    [
      [3, 50, 9],
      [7, 9],
    ],
    { transB: true },
    ' (shared b)',
  );
  yield sample(
    [
      [33, 70],
      [33, 65],
    ],
    { transA: true },
  );
  yield sample(
    [
      [7, 33],
      [65, 33],
    ],
    { transB: true },
  );
  yield sample(
    [
      [2, 33, 70],
      [65, 33],
    ],
    { transA: true, transB: true },
  );
  yield sample(
    [
      [4, 0],
      [0, 5],
    ],
    {},
    ' (K=0)',
  );
  yield sample([
    [0, 5],
    [5, 3],
  ]);
  yield sample(
    [
      [7, 33],
      [33, 65],
    ],
    { activation: 'relu' },
  );
  yield sample([
    [200, 300],
    [300, 257],
  ]);
  // Shapes of whole vec4s: matmul_vec4.wgsl, 64x64 tiles (partial in M, N and K) and 128x128 (>= 128 tiles).
  yield sample(
    [
      [68, 36],
      [36, 132],
    ],
    {},
    ' (vec4)',
  );
  yield sample(
    [
      [36, 68],
      [132, 36],
    ],
    { transA: true, transB: true },
    ' (vec4)',
  );
  yield sample(
    [
      [4, 0],
      [0, 8],
    ],
    {},
    ' (vec4, K=0)',
  );
  yield sample(
    [
      [128, 130, 12],
      [128, 12, 132],
    ],
    {},
    ' (vec4 128x128)',
  );
  yield sample(
    [
      [16, 20, 260],
      [20, 264],
    ],
    { transA: true },
    ' (vec4 128x128 broadcast)',
  );
  // The kernels the table does not pick on every adapter, forced.
  yield sample(
    [
      [130, 36],
      [132, 36],
    ],
    { transB: true, kernel: 'vec4-128x128x8' },
  );
  yield sample(
    [
      [68, 36],
      [36, 132],
    ],
    { kernel: 'scalar-64x64x16' },
  );
}

function* biasSamples(): Iterable<Sample<MatmulAttrs>> {
  yield sample([[1, 1], [1, 1], [1]]);
  yield sample([[7, 33], [33, 65], [65]], { activation: 'relu' });
  yield sample([[129, 65], [65, 129], [129]], { activation: 'gelu' });
  yield sample([[33, 7], [7, 65], [65]], { activation: 'sigmoid' });
  yield sample([[65, 33], [33, 17], [17]], { activation: 'leaky_relu', alpha: 0.1 });
  yield sample([[17, 33], [65, 33], [65]], { activation: 'tanh', transB: true });
  yield sample([[2, 1, 4, 6], [3, 6, 5], [5]]);
  yield sample([[40, 70], [40, 9], [9]], { activation: 'relu', transA: true });
  yield sample([[3, 0], [0, 5], [5]], { activation: 'relu' }, ' (K=0)');
  yield sample([[0, 5], [5, 3], [3]]);
  yield sample([[100, 200], [130, 200], [130]], { activation: 'gelu', transB: true });
  yield sample([[68, 36], [36, 132], [132]], { activation: 'relu' }, ' (vec4)');
  yield sample([[130, 20], [132, 20], [132]], { activation: 'leaky_relu', alpha: 0.1, transB: true }, ' (vec4)');
  yield sample([[128, 130, 12], [12, 132], [132]], { activation: 'tanh' }, ' (vec4 128x128)');
}

const inp = (shape: number[], dtype: 'int32' | 'float32' = 'float32') => ({ shape, dtype, range: RANGE });

const plainBad: BadCase<MatmulAttrs>[] = [
  {
    name: 'rank 1',
    inputs: [inp([3]), inp([3, 4])],
    error: ShapeError,
    message: /matmul: a \[3\] has rank 1; expected rank >= 2/,
  },
  {
    name: 'K mismatch',
    inputs: [inp([2, 3]), inp([4, 5])],
    error: ShapeError,
    message: /matmul: inner dims differ: \[2,3\] @ \[4,5\]/,
  },
  {
    name: 'K mismatch transA transB',
    inputs: [inp([2, 3]), inp([2, 4])],
    attrs: { transA: true, transB: true },
    error: ShapeError,
    message: /matmul: inner dims differ: \[2,3\] @ \[2,4\] \(transA=true, transB=true\) has K = 2 vs 4/,
  },
  {
    name: 'batch dims do not broadcast',
    inputs: [inp([2, 3, 4]), inp([3, 4, 5])],
    error: ShapeError,
    message: /matmul: batch dims of \[2,3,4\] and \[3,4,5\] do not broadcast/,
  },
  {
    name: 'more than 4 batch dims after merging',
    inputs: [inp([2, 1, 2, 1, 2, 3, 3]), inp([1, 2, 1, 2, 1, 3, 3])],
    error: ShapeError,
    message: /matmul: batch dims of \[2,1,2,1,2,3,3\] and \[1,2,1,2,1,3,3\] need 5 dims/,
  },
  {
    name: 'int32 input',
    inputs: [inp([2, 3]), inp([3, 4], 'int32')],
    error: DTypeError,
    message: /matmul: input 1 \[3,4\] is int32/,
  },
  {
    name: 'unknown activation',
    inputs: [inp([2, 3]), inp([3, 4])],
    attrs: { activation: 'softmax' as Activation },
    error: WgnnError,
    message: /matmul: unknown activation 'softmax'/,
  },
  {
    name: 'unknown kernel',
    inputs: [inp([2, 4]), inp([4, 4])],
    attrs: { kernel: 'vec8' as MatmulKernelName },
    error: WgnnError,
    message: /matmul: unknown kernel 'vec8'; expected 'auto' or one of scalar-64x64x16/,
  },
  {
    name: 'vec4 kernel forced on rows that are not whole vec4s',
    inputs: [inp([2, 4]), inp([4, 6])],
    attrs: { kernel: 'vec4-64x64x16' },
    error: WgnnError,
    message:
      /matmul: kernel 'vec4-64x64x16' cannot run \[2,4\] @ \[4,6\] \(transA=false, transB=false\): b's rows \(N\) are not whole vec4s/,
  },
];

const biasBad: BadCase<MatmulAttrs>[] = [
  {
    name: 'bias length',
    inputs: [inp([2, 3]), inp([3, 5]), inp([4])],
    error: ShapeError,
    message: /matmul_bias: bias \[4\] does not match N = 5 of \[2,3\] @ \[3,5\]/,
  },
  {
    name: 'bias rank 2',
    inputs: [inp([2, 3]), inp([3, 5]), inp([1, 5])],
    error: ShapeError,
    message: /matmul_bias: bias \[1,5\] does not match N = 5/,
  },
  {
    name: 'K mismatch',
    inputs: [inp([2, 3]), inp([4, 5]), inp([5])],
    error: ShapeError,
    message: /matmul_bias: inner dims differ: \[2,3\] @ \[4,5\]/,
  },
  {
    name: 'int32 bias',
    inputs: [inp([2, 3]), inp([3, 5]), inp([5], 'int32')],
    error: DTypeError,
    message: /matmul_bias: input 2 \[5\] is int32/,
  },
];

export const matmulOps = {
  matmul: matmulOp('matmul'),
  matmul_bias: matmulOp('matmul_bias'),
};

/** Batched a @ b over the last two dims (a [..., M, K], b [..., K, N]); batch dims broadcast as in NumPy. */
export function matmul(a: Tensor, b: Tensor, opts: Partial<MatmulAttrs> = {}): Tensor {
  return apply(matmulOps.matmul, [a, b], opts);
}

/** A dense layer in one kernel: act(x @ w + bias), x [..., M, K], w [K, N] (or [N, K] with transB), bias [N]. */
export function linear(
  x: Tensor,
  w: Tensor,
  bias: Tensor,
  opts: Partial<Pick<MatmulAttrs, 'activation' | 'alpha' | 'transB'>> = {},
): Tensor {
  return apply(matmulOps.matmul_bias, [x, w, bias], opts);
}
