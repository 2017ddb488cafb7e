// Scaled dot-product attention, softmax(q kᵀ · scale + mask) v: one fused op (flash-style kernels, memory growing with
// T, not T²) without mask or dropout, else composed from table ops (the reference, its backward the tape's);
// attentionQkv runs the fused kernels on a transformer's packed QKV projection [B, T, 3·H·Dh], with no head transposes.
import type { CpuInput, FloatArray, TensorSpec } from '../backend/backend.js';
import type { Dispatch, GpuContext, GpuTensor } from '../backend/kernel.js';
import { f32, grid1d, u32 } from '../backend/kernel.js';
import { workgroupNeeds } from '../backend/webgpu/wgsl-reflect.js';
import { ArgumentError, DTypeError, LimitError, ShapeError, fmtShape } from '../errors.js';
import { SHADERS } from '../shaders.gen.js';
import { broadcastShapes, sizeOf, type Shape } from '../shape.js';
import { tensor, tidy, type Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { add, mul } from './binary.js';
import { reshape, slice, transpose } from './layout.js';
import { matmul } from './matmul.js';
import { defineOp, type OpDef, type Sample } from './op.js';
import { dropout, type DropoutAttrs } from './random.js';
import { sum } from './reduce.js';
import { softmax } from './softmax.js';

/** Options of {@link attention}. */
export interface AttentionOptions {
  /**
   * Query i attends to keys 0 .. i + (Tk − Tq) only: with Tq = Tk, position t sees positions up to t (GPT), and a
   * single new query over a key/value cache sees the whole cache. Needs Tq <= Tk, so no row is empty.
   * NOTE: bottom-right aligned, as flash-attention's causal; torch's SDPA aligns top-left, which is the same for Tq = Tk.
   */
  causal?: boolean;
  /** Multiplies q kᵀ; default 1/√Dh. */
  scale?: number;
  /**
   * Additive mask, float32, broadcastable to [B, H, Tq, Tk]: added to the scaled scores before the softmax (0 keeps,
   * -Infinity blocks). A boolean mask `keep` becomes one with `where(keep, 0, -Infinity)`. A row blocked
   * entirely gives NaN, as torch. Its gradient is the scores' gradient, as for any added tensor.
   */
  mask?: Tensor;
  /**
   * Dropout on the attention probabilities while training (torch's `dropout_p`): `rate` in [0, 1) and the seed box
   * of the dropout op (a layer advances it per step).
   */
  dropout?: { rate: number; seed: DropoutAttrs['seed'] };
}

/** Attributes of the fused op and its backward ops. */
export interface AttentionAttrs {
  causal: boolean;
  /** Multiplies q kᵀ; null: 1/√Dh. */
  scale: number | null;
}

/** The largest head dim (of q/k and of v) the fused kernels take: one thread per column, at most 128 threads. */
export const FUSED_MAX_HEAD_DIM = 128;

// Checks q [B, H, Tq, Dh], k [B, H, Tk, Dh], v [B, H, Tk, Dv] and the options; throws ShapeError naming the three
// shapes, DTypeError for a non-float32 input, ArgumentError for a scale that is not a finite number.
function checkAttention(
  [q, k, v]: readonly TensorSpec[],
  causal: boolean,
  scale: number | null | undefined,
  op = 'attention',
): void {
  const shapes = `q ${fmtShape(q!.shape)}, k ${fmtShape(k!.shape)}, v ${fmtShape(v!.shape)}`;
  const bad = (why: string) => new ShapeError(`${op}: ${shapes}: ${why}`);
  for (const [name, t] of [
    ['q', q!],
    ['k', k!],
    ['v', v!],
  ] as const) {
    if (t.shape.length !== 4) throw bad(`${name} has rank ${t.shape.length}; expected [B, H, T, D]`);
    if (t.dtype !== 'float32')
      throw new DTypeError(`${op}: ${name} ${fmtShape(t.shape)} is ${t.dtype}; expected float32`);
  }
  const [B, H, Tq, Dh] = q!.shape as [number, number, number, number];
  const Tk = k!.shape[2]!;
  if (k!.shape[0] !== B || k!.shape[1] !== H || v!.shape[0] !== B || v!.shape[1] !== H) {
    throw bad('batch and head dims [B, H] differ; expected them equal');
  }
  if (k!.shape[3] !== Dh) throw bad(`q's head dim ${Dh} and k's ${k!.shape[3]} differ; expected them equal`);
  if (v!.shape[2] !== Tk) throw bad(`k has ${Tk} positions and v ${v!.shape[2]}; expected them equal`);
  if (causal && Tq > Tk) throw bad(`causal with ${Tq} queries over ${Tk} keys; expected Tq <= Tk`);
  if (scale !== undefined && scale !== null && (typeof scale !== 'number' || !Number.isFinite(scale))) {
    throw new ArgumentError(`${op}: scale is ${String(scale)}; expected a finite number`);
  }
}

/**
 * Scaled dot-product attention: q [B, H, Tq, Dh], k [B, H, Tk, Dh], v [B, H, Tk, Dv] -> [B, H, Tq, Dv], as
 * torch.nn.functional.scaled_dot_product_attention. Throws ShapeError naming the three shapes when
 * they do not fit, ArgumentError for a scale that is not a finite number.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  checkAttention([q, k, v], !!opts.causal, opts.scale);
  const [Dh, Dv, Tk] = [q.shape[3]!, v.shape[3]!, k.shape[2]!];
  const fused =
    !opts.mask &&
    !(opts.dropout && opts.dropout.rate > 0) &&
    Tk > 0 &&
    Math.max(Dh, Dv) <= FUSED_MAX_HEAD_DIM &&
    fusedFits(q.backend, Dh, Dv);
  if (fused) return apply(attentionOp, [q, k, v], { causal: !!opts.causal, scale: opts.scale ?? null });
  return attentionComposed(q, k, v, opts);
}

/**
 * {@link attention} composed from table ops (matmul, the causal bias, the mask, softmax, dropout, matmul): the
 * reference for the fused op and the path for masks and dropout. It materialises the [B, H, Tq, Tk] scores.
 */
export function attentionComposed(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  checkAttention([q, k, v], !!opts.causal, opts.scale);
  const [B, H, Tq, Dh] = q.shape as [number, number, number, number];
  const Tk = k.shape[2]!;
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  if (opts.mask) broadcastShapes('attention: mask', opts.mask.shape, [B, H, Tq, Tk]);
  return tidy(() => {
    let s = mul(matmul(q, k, { transB: true }), scale); // [B, H, Tq, Tk]
    if (opts.causal) s = add(s, causalBias(Tq, Tk, q));
    if (opts.mask) s = add(s, opts.mask);
    const p = softmax(s, -1);
    return matmul(opts.dropout && opts.dropout.rate > 0 ? dropout(p, opts.dropout.rate, opts.dropout.seed) : p, v);
  });
}

// [Tq, Tk]: 0 where query i may see key j (j <= i + Tk − Tq), -Infinity elsewhere; on like's backend.
function causalBias(Tq: number, Tk: number, like: Tensor): Tensor {
  const data = new Float32Array(Tq * Tk);
  for (let i = 0; i < Tq; i++) data.fill(-Infinity, i * Tk + i + Tk - Tq + 1, (i + 1) * Tk);
  return tensor(data, [Tq, Tk], { backend: like.backend });
}

/**
 * Self-attention over a fused projection (nanoGPT's c_attn output): qkv [B, T, 3·H·Dh], columns [q | k | v] with each
 * head's Dh contiguous -> o [B, T, H·Dh], the heads side by side (ready for the output projection). Where the fused
 * kernels fit and there is no dropout it is one op that reads the heads out of qkv and writes o and the gradient
 * [B, T, 3·H·Dh] in place, with no transposes; else the heads are split and merged around {@link attention}.
 * Throws ShapeError when qkv's last dim is not a multiple of 3·heads.
 */
export function attentionQkv(qkv: Tensor, heads: number, opts: Omit<AttentionOptions, 'mask'> = {}): Tensor {
  const [B, T, Dh] = checkQkv(qkv, heads);
  const drop = opts.dropout && opts.dropout.rate > 0;
  const attrs = { heads, causal: !!opts.causal, scale: opts.scale ?? null };
  if (!drop && T > 0 && Dh <= FUSED_MAX_HEAD_DIM && fusedFits(qkv.backend, Dh, Dh))
    return apply(attentionQkvOp, [qkv], attrs);
  return tidy(() => {
    // [B, T, 3·H·Dh] -> [3, B, H, T, Dh]: q, k, v per head; the output [B, H, T, Dh] back to [B, T, H·Dh].
    const split = transpose(reshape(qkv, [B, T, 3, heads, Dh]), [2, 0, 3, 1, 4]);
    const part = (i: number) => reshape(slice(split, [i, 0, 0, 0, 0], [1, B, heads, T, Dh]), [B, heads, T, Dh]);
    const o = attention(part(0), part(1), part(2), opts);
    return reshape(transpose(o, [0, 2, 1, 3]), [B, T, heads * Dh]);
  });
}

/** Attributes of the fused op on a packed projection and of its backward. */
export interface AttentionQkvAttrs extends AttentionAttrs {
  heads: number;
}

// qkv [B, T, 3·H·Dh] float32 with H = heads: [B, T, Dh], or ShapeError/DTypeError/ArgumentError naming qkv.
function checkQkv(qkv: TensorSpec, heads: number, op = 'attention_qkv'): [number, number, number] {
  if (!Number.isInteger(heads) || heads < 1)
    throw new ArgumentError(`${op}: heads is ${String(heads)}; expected a positive integer`);
  if (qkv.dtype !== 'float32')
    throw new DTypeError(`${op}: qkv ${fmtShape(qkv.shape)} is ${qkv.dtype}; expected float32`);
  const [B, T, W] = qkv.shape as [number, number, number];
  if (qkv.shape.length !== 3 || W % (3 * heads) !== 0 || W === 0)
    throw new ShapeError(
      `${op}: qkv ${fmtShape(qkv.shape)} with ${heads} heads; expected [B, T, 3·heads·Dh] (q, k and v side by side)`,
    );
  return [B, T, W / (3 * heads)];
}
// A head's [B, H, T, Dh] spec, for checkAttention's checks of the options.
const headSpec =
  (Dh: number) =>
  (t: TensorSpec): TensorSpec => ({ shape: [t.shape[0]!, 1, t.shape[1]!, Dh], dtype: t.dtype });

// ---- The fused op: CPU references (float64 loops, from the definition), kernels, backward ----

interface Dims {
  BH: number;
  Tq: number;
  Tk: number;
  Dh: number;
  Dv: number;
  scale: number;
  causal: boolean;
}
const dimsOf = (q: Shape, k: Shape, v: Shape, a: AttentionAttrs): Dims => ({
  BH: q[0]! * q[1]!,
  Tq: q[2]!,
  Tk: k[2]!,
  Dh: q[3]!,
  Dv: v[3]!,
  scale: a.scale ?? 1 / Math.sqrt(q[3]!),
  causal: a.causal,
});
// NOTE: bottom-right alignment, as the composed path's causalBias.
const sees = (d: Dims, i: number, j: number): boolean => !d.causal || j <= i + d.Tk - d.Tq;

function dot(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, n: number): number {
  let s = 0;
  for (let e = 0; e < n; e++) s += a[ao + e]! * b[bo + e]!;
  return s;
}

// o [BH, Tq, Dv] = softmax(scale·q kᵀ, causally masked) v, lse [BH, Tq] = log Σ_j exp(s_ij), with the max taken out.
function attentionRef(d: Dims, q: CpuInput, k: CpuInput, v: CpuInput, o: FloatArray, lse: FloatArray): void {
  const s = new Float64Array(d.Tk);
  for (let bh = 0; bh < d.BH; bh++)
    for (let i = 0; i < d.Tq; i++) {
      const row = bh * d.Tq + i;
      let m = -Infinity;
      for (let j = 0; j < d.Tk; j++) {
        s[j] = sees(d, i, j) ? d.scale * dot(q.data, row * d.Dh, k.data, (bh * d.Tk + j) * d.Dh, d.Dh) : -Infinity;
        m = Math.max(m, s[j]!);
      }
      let z = 0;
      for (let j = 0; j < d.Tk; j++) z += s[j] = Math.exp(s[j]! - m);
      const acc = new Float64Array(d.Dv);
      for (let j = 0; j < d.Tk; j++)
        for (let e = 0; e < d.Dv; e++) acc[e]! += (s[j]! / z) * v.data[(bh * d.Tk + j) * d.Dv + e]!;
      o.set(acc, row * d.Dv);
      lse[row] = m + Math.log(z);
    }
}

// The backward from the definition, for every visible (i, j): p = exp(s − lse_i), dp = dy_i·v_j,
// ds = p (dp − delta_i); dq_i += scale·ds·k_j, dk_j += scale·ds·q_i, dv_j += p·dy_i. dq [BH, Tq, Dh] when which is
// 'q', else dkv [BH, Tk, Dh + Dv] (dk, then dv, per row).
function attentionBwdRef(d: Dims, [dy, q, k, v, lse, delta]: CpuInput[], which: 'q' | 'kv', out: FloatArray) {
  const acc = new Float64Array(out.length);
  const W = d.Dh + d.Dv;
  for (let bh = 0; bh < d.BH; bh++)
    for (let i = 0; i < d.Tq; i++)
      for (let j = 0; j < d.Tk; j++) {
        if (!sees(d, i, j)) continue;
        const [qi, kj, vj, yi] = [
          (bh * d.Tq + i) * d.Dh,
          (bh * d.Tk + j) * d.Dh,
          (bh * d.Tk + j) * d.Dv,
          bh * d.Tq + i,
        ];
        const p = Math.exp(d.scale * dot(q!.data, qi, k!.data, kj, d.Dh) - lse!.data[yi]!);
        const ds = p * (dot(dy!.data, yi * d.Dv, v!.data, vj, d.Dv) - delta!.data[yi]!);
        if (which === 'q') {
          for (let e = 0; e < d.Dh; e++) acc[qi + e]! += d.scale * ds * k!.data[kj + e]!;
          continue;
        }
        const o = (bh * d.Tk + j) * W;
        for (let e = 0; e < d.Dh; e++) acc[o + e]! += d.scale * ds * q!.data[qi + e]!;
        for (let e = 0; e < d.Dv; e++) acc[o + d.Dh + e]! += p * dy!.data[yi * d.Dv + e]!;
      }
  out.set(acc);
  return out;
}

type AttentionShader = 'attention_fwd' | 'attention_bwd_q' | 'attention_bwd_kv';
/** A workgroup of TX x TY threads, each holding RQ rows by CK columns of a score tile: (TY·RQ) x (TX·CK). */
interface AttentionTile {
  TX: number;
  TY: number;
  RQ: number;
  CK: number;
}
const tile = (TX: number, TY: number, RQ: number, CK: number): AttentionTile => ({ TX, TY, RQ, CK });
// Largest first, per kind of adapter; the first whose workgroup memory fits is taken.
// NOTE: a CPU implementation (lavapipe) runs a workgroup as one core's SIMD loop and reads workgroup memory by
// gathers: 16 threads of 8 x 8 take half the reads per multiply-add of 64 threads of 4 x 4, and the fused forward and
// backward run 1.4-1.7x faster (lavapipe, 2 cores, beside another busy process: B16 H4 T128 Dh32 117 -> 83 ms, B2 H4 T512 Dh32 212 -> 127 ms,
// Dh64 328 -> 210 ms). A GPU keeps 64 threads per workgroup.
const GPU_TILES: readonly AttentionTile[] = [
  tile(8, 8, 4, 4),
  tile(8, 8, 4, 2),
  tile(8, 8, 2, 2),
  tile(8, 8, 2, 1),
  tile(8, 8, 1, 1),
];
const SOFTWARE_TILES: readonly AttentionTile[] = [tile(4, 4, 8, 8), tile(4, 4, 8, 4), tile(4, 4, 4, 4), ...GPU_TILES];
type TileKind = 'gpu' | 'software';
const TILES: Record<TileKind, readonly AttentionTile[]> = { gpu: GPU_TILES, software: SOFTWARE_TILES };
const kindOf = (b: { software?: boolean }): TileKind => (b.software ? 'software' : 'gpu');
const tileCache = new Map<string, AttentionTile | undefined>();

/** The first tile of the adapter's list whose workgroup memory fits `limit` bytes, or undefined if none does. */
function tileFor(
  shader: AttentionShader,
  Dh: number,
  Dv: number,
  limit: number,
  kind: TileKind,
): AttentionTile | undefined {
  const key = `${shader}|${Dh}|${Dv}|${limit}|${kind}`;
  if (tileCache.has(key)) return tileCache.get(key);
  const t = TILES[kind].find((c) => workgroupNeeds(SHADERS[shader], { ...c, DK: Dh, DV: Dv }).storage <= limit);
  tileCache.set(key, t);
  return t;
}

/** {@link tileFor}, or a LimitError. */
function pickTile(shader: AttentionShader, Dh: number, Dv: number, limit: number, kind: TileKind): AttentionTile {
  const t = tileFor(shader, Dh, Dv, limit, kind);
  if (t) return t;
  throw new LimitError(
    `attention: ${shader} with head dims ${Dh} and ${Dv} needs more than this adapter's ${limit} B of workgroup memory`,
  );
}

/**
 * Whether the fused forward and both backward kernels fit the backend's workgroup memory (a device with WebGPU's
 * default 16 KiB does not take head dim 128 backward): otherwise attention takes the composed path. Always on the CPU.
 */
function fusedFits(backend: unknown, Dh: number, Dv: number): boolean {
  const limit = (backend as { limits?: GPUSupportedLimits }).limits?.maxComputeWorkgroupStorageSize;
  if (limit === undefined) return true;
  const b = backend as { software?: boolean; subgroupRows?: boolean };
  if (b.subgroupRows) return true;
  const kind = kindOf(b);
  return (['attention_fwd', 'attention_bwd_q', 'attention_bwd_kv'] as const).every((s) =>
    tileFor(s, Dh, Dv, limit, kind),
  );
}

/**
 * Rows per lane (RQ) and rows of the other side per step (KC) of the lane-row kernels (_attention_lanes.wgsl), by the
 * larger head dim. NOTE: measured on lavapipe (T 512, head dims 16-128): 4 rows per lane up to 256 elements of a head
 * dim per lane (4 x 64); at 4 x 128 its compiler stops unrolling the row loops and each kernel ran 3-4x slower. The
 * forward rescales its output once per KC keys: 8 rather than 4 took it from 23 to 18 ms at head dim 64.
 */
const lanesTile = (shader: AttentionShader, D: number): { RQ: number; KC: number } => ({
  RQ: D <= 64 ? 4 : 2,
  KC: shader === 'attention_fwd' ? 8 : 4,
});

/** Where a tensor's rows lie (_attention.wgsl's layouts): row t of head b·heads + h starts at x + b·y + h·z + t·w. */
type Layout = readonly [number, number, number, number];
interface Layouts {
  heads: number;
  q: Layout;
  k: Layout;
  v: Layout;
  /** o and dy */
  o: Layout;
  /** lse and delta */
  s: Layout;
  dk: Layout;
  dv: Layout;
}
/** [B·H, T, D] tensors (the op on q, k, v), dk and dv in one [B·H, Tk, Dh + Dv]. */
const flatLayouts = (d: Dims): Layouts => {
  const W = d.Dh + d.Dv;
  return {
    heads: 1,
    q: [0, d.Tq * d.Dh, 0, d.Dh],
    k: [0, d.Tk * d.Dh, 0, d.Dh],
    v: [0, d.Tk * d.Dv, 0, d.Dv],
    o: [0, d.Tq * d.Dv, 0, d.Dv],
    s: [0, d.Tq, 0, 1],
    dk: [0, d.Tk * W, 0, W],
    dv: [d.Dh, d.Tk * W, 0, W],
  };
};
/** The packed projection qkv [B, T, 3, H, Dh] (and its gradient), o and dy [B, T, H, Dh], lse and delta [B, T, H]. */
const packedLayouts = (d: Dims, H: number): Layouts => {
  const [T, D] = [d.Tq, H * d.Dh];
  const part = (i: number): Layout => [i * D, T * 3 * D, d.Dh, 3 * D];
  return {
    heads: H,
    q: part(0),
    k: part(1),
    v: part(2),
    o: [0, T * D, d.Dh, D],
    s: [0, T * H, 1, H],
    dk: part(1),
    dv: part(2),
  };
};

/** Encodes one fused kernel: `rows` (queries, or keys for attention_bwd_kv) in tiles, one workgroup per tile and head. */
function dispatchAttention(
  ctx: GpuContext,
  shader: AttentionShader,
  d: Dims,
  rows: number,
  outputs: GpuTensor[],
  inputs: GpuTensor[],
  lay: Layouts = flatLayouts(d),
): void {
  // Rows per workgroup, and the kernel with its overrides.
  let per: number;
  let kernel: Pick<Dispatch, 'shader' | 'defines' | 'overrides'>;
  if (ctx.subgroupRows) {
    const t = lanesTile(shader, Math.max(d.Dh, d.Dv));
    per = 8 * t.RQ;
    kernel = { shader: `${shader}_lanes`, defines: { ENABLE: 'subgroups' }, overrides: { ...t, DK: d.Dh, DV: d.Dv } };
  } else {
    const t = pickTile(shader, d.Dh, d.Dv, ctx.limits.maxComputeWorkgroupStorageSize, kindOf(ctx));
    per = t.TY * t.RQ;
    kernel = { shader, overrides: { ...t, DK: d.Dh, DV: d.Dv } };
  }
  const tiles = Math.ceil(rows / per);
  ctx.dispatch({
    ...kernel,
    workgroups: grid1d(tiles * d.BH, 1, ctx.limits.maxComputeWorkgroupsPerDimension),
    outputs,
    inputs,
    uniforms: [
      ...[u32(d.BH), u32(d.Tq), u32(d.Tk), f32(d.scale), u32(d.causal ? 1 : 0), u32(tiles), u32(lay.heads), u32(0)],
      ...[lay.q, lay.k, lay.v, lay.o, lay.s, lay.dk, lay.dv].flat().map(u32),
    ],
  });
}

function bwdInfer(name: string, which: 'q' | 'kv') {
  return ([dy, q, k, v, lse, delta]: readonly TensorSpec[], a: AttentionAttrs): TensorSpec => {
    checkAttention([q!, k!, v!], a.causal, a.scale, name);
    const [B, H, Tq] = q!.shape as [number, number, number];
    for (const [what, t, want] of [
      ['dy', dy!, [B, H, Tq, v!.shape[3]!]],
      ['lse', lse!, [B, H, Tq]],
      ['delta', delta!, [B, H, Tq]],
    ] as const) {
      if (t.dtype !== 'float32') throw new DTypeError(`${name}: ${what} is ${t.dtype}; expected float32`);
      if (fmtShape(t.shape) !== fmtShape(want))
        throw new ShapeError(
          `${name}: ${what} ${fmtShape(t.shape)} does not fit q ${fmtShape(q!.shape)}; expected ${fmtShape(want)}`,
        );
    }
    return which === 'q'
      ? { shape: q!.shape, dtype: 'float32' }
      : { shape: [B, H, k!.shape[2]!, q!.shape[3]! + v!.shape[3]!], dtype: 'float32' };
  };
}

// Samples: [B, H, Tq, Tk, Dh, Dv, causal, scale?]. T = 1, T off every tile (7, 33, 65, 100, 150), Tq < Tk (a KV cache's
// one query), Tq > Tk without causal, head dims 16/32/64/80/128 and Dv != Dh, and B·H = 65664 (the grid folds).
type Case = [number, number, number, number, number, number, boolean, number?];
const CASES: readonly Case[] = [
  [1, 1, 1, 1, 16, 16, true],
  [2, 3, 7, 7, 16, 16, true],
  [1, 2, 33, 33, 32, 32, true],
  [2, 2, 7, 7, 80, 80, false],
  [2, 1, 1, 33, 32, 16, true],
  [1, 3, 5, 9, 16, 8, true, 0.3],
  [1, 1, 65, 65, 64, 64, true],
  [1, 1, 40, 100, 128, 128, true],
  [1, 2, 40, 7, 64, 32, false],
  [1, 1, 37, 37, 80, 80, true],
  [1, 2, 70, 150, 32, 32, true], // 5 key tiles of 32; key tiles past the first start at a later query tile
  [128, 513, 2, 2, 16, 16, true],
];
const caseName = ([B, H, Tq, Tk, Dh, Dv, causal, scale]: Case) =>
  `B${B} H${H} Tq${Tq} Tk${Tk} Dh${Dh} Dv${Dv}${causal ? ' causal' : ''}${scale !== undefined ? ` scale ${scale}` : ''}`;
const caseAttrs = (c: Case): Partial<AttentionAttrs> => ({
  causal: c[6],
  ...(c[7] !== undefined ? { scale: c[7] } : {}),
});

const BAD_SHAPES = {
  error: ShapeError,
  message: /attention: q \[2,3,4,16\], k \[2,3,5,8\], v \[2,3,5,8\]: q's head dim 16 and k's 8 differ/,
};

function bwdOp(which: 'q' | 'kv'): OpDef<AttentionAttrs> {
  const name = `attention_bwd_${which}`;
  const shader: AttentionShader = which === 'q' ? 'attention_bwd_q' : 'attention_bwd_kv';
  return defineOp<AttentionAttrs>({
    name,
    arity: 6,
    attrs: { causal: false, scale: null },
    infer: bwdInfer(name, which),
    cpu: ({ inputs, out, attrs, alloc }) =>
      attentionBwdRef(
        dimsOf(inputs[1]!.shape, inputs[2]!.shape, inputs[3]!.shape, attrs),
        inputs,
        which,
        alloc(sizeOf(out.shape)),
      ),
    gpu: ({ inputs, out, attrs, ctx }) => {
      const d = dimsOf(inputs[1]!.shape, inputs[2]!.shape, inputs[3]!.shape, attrs);
      if (sizeOf(out.shape) > 0) dispatchAttention(ctx, shader, d, which === 'q' ? d.Tq : d.Tk, [out], inputs);
    },
    // lse and delta are any numbers here (the formulas hold for any); lse near the forward's keeps p = exp(s − lse) O(1).
    samples: function* () {
      for (const c of CASES) {
        const [B, H, Tq, Tk, Dh, Dv] = c;
        yield {
          name: caseName(c),
          inputs: [
            { shape: [B, H, Tq, Dv] },
            { shape: [B, H, Tq, Dh] },
            { shape: [B, H, Tk, Dh] },
            { shape: [B, H, Tk, Dv] },
            { shape: [B, H, Tq], range: [1, 4] },
            { shape: [B, H, Tq], range: [-1, 1] },
          ],
          attrs: caseAttrs(c),
        } satisfies Sample<AttentionAttrs>;
      }
    },
    bad: [
      {
        name: 'lse shape',
        inputs: [
          { shape: [1, 2, 3, 8] },
          { shape: [1, 2, 3, 8] },
          { shape: [1, 2, 4, 8] },
          { shape: [1, 2, 4, 8] },
          { shape: [1, 2, 4] },
          { shape: [1, 2, 3] },
        ],
        error: ShapeError,
        message: new RegExp(`${name}: lse \\[1,2,4\\] does not fit q \\[1,2,3,8\\]; expected \\[1,2,3\\]`),
      },
    ],
    // Sums over up to 100 keys of products of O(1) terms, f32 against float64.
    tol: { atol: 1e-4, rtol: 1e-4 },
    grad: { none: 'second-order gradients are not supported' },
  });
}

export const attentionBwdQOp = bwdOp('q');
export const attentionBwdKvOp = bwdOp('kv');

/** The fused op: q [B, H, Tq, Dh], k [B, H, Tk, Dh], v [B, H, Tk, Dv] -> [B, H, Tq, Dv], with lse [B, H, Tq] for backward. */
export const attentionOp: OpDef<AttentionAttrs> = defineOp<AttentionAttrs>({
  name: 'attention',
  arity: 3,
  attrs: { causal: false, scale: null },
  infer: (inputs, a) => {
    checkAttention(inputs, a.causal, a.scale);
    const [q, k, v] = inputs as [TensorSpec, TensorSpec, TensorSpec];
    if (k.shape[2] === 0) throw new ShapeError(`attention: k ${fmtShape(k.shape)} has no positions; expected Tk >= 1`);
    if (Math.max(q.shape[3]!, v.shape[3]!) > FUSED_MAX_HEAD_DIM)
      throw new LimitError(
        `attention: head dims ${q.shape[3]} and ${v.shape[3]}: the fused kernels take up to ${FUSED_MAX_HEAD_DIM}`,
      );
    return { shape: [...q.shape.slice(0, 3), v.shape[3]!], dtype: 'float32' };
  },
  aux: ([q]) => ({ shape: q!.shape.slice(0, 3), dtype: 'float32' }),
  cpu: ({ inputs: [q, k, v], out, attrs, alloc }) => {
    const d = dimsOf(q!.shape, k!.shape, v!.shape, attrs);
    const [o, lse] = [alloc(sizeOf(out.shape)), alloc(d.BH * d.Tq)];
    attentionRef(d, q!, k!, v!, o, lse);
    return { out: o, aux: lse };
  },
  gpu: ({ inputs: [q, k, v], out, aux, attrs, ctx }) => {
    const d = dimsOf(q!.shape, k!.shape, v!.shape, attrs);
    if (sizeOf(out.shape) > 0) dispatchAttention(ctx, 'attention_fwd', d, d.Tq, [out, aux!], [q!, k!, v!]);
  },
  samples: function* () {
    for (const c of CASES) {
      const [B, H, Tq, Tk, Dh, Dv] = c;
      yield {
        name: caseName(c),
        inputs: [{ shape: [B, H, Tq, Dh] }, { shape: [B, H, Tk, Dh] }, { shape: [B, H, Tk, Dv] }],
        attrs: caseAttrs(c),
      } satisfies Sample<AttentionAttrs>;
    }
  },
  bad: [
    {
      name: 'head dims differ',
      inputs: [{ shape: [2, 3, 4, 16] }, { shape: [2, 3, 5, 8] }, { shape: [2, 3, 5, 8] }],
      ...BAD_SHAPES,
    },
    {
      name: 'positions differ',
      inputs: [{ shape: [2, 3, 4, 16] }, { shape: [2, 3, 5, 16] }, { shape: [2, 3, 6, 8] }],
      error: ShapeError,
      message: /attention: q \[2,3,4,16\], k \[2,3,5,16\], v \[2,3,6,8\]: k has 5 positions and v 6/,
    },
    {
      name: 'rank 3',
      inputs: [{ shape: [3, 4, 16] }, { shape: [3, 5, 16] }, { shape: [3, 5, 16] }],
      error: ShapeError,
      message: /attention: q \[3,4,16\], k \[3,5,16\], v \[3,5,16\]: q has rank 3; expected \[B, H, T, D\]/,
    },
    {
      name: 'causal Tq > Tk',
      inputs: [{ shape: [2, 3, 4, 16] }, { shape: [2, 3, 3, 16] }, { shape: [2, 3, 3, 8] }],
      attrs: { causal: true },
      error: ShapeError,
      message: /causal with 4 queries over 3 keys; expected Tq <= Tk/,
    },
    {
      name: 'int32 k',
      inputs: [{ shape: [1, 1, 2, 4] }, { shape: [1, 1, 2, 4], dtype: 'int32' }, { shape: [1, 1, 2, 4] }],
      error: DTypeError,
      message: /attention: k \[1,1,2,4\] is int32; expected float32/,
    },
    {
      name: 'scale NaN',
      inputs: [{ shape: [1, 1, 2, 4] }, { shape: [1, 1, 2, 4] }, { shape: [1, 1, 2, 4] }],
      attrs: { scale: NaN },
      error: ArgumentError,
      message: /attention: scale is NaN; expected a finite number/,
    },
  ],
  // Sums of up to 128 products and of up to 100 weighted values, f32 against float64.
  tol: { atol: 2e-5, rtol: 1e-4 },
  gradTol: { atol: 1e-4, rtol: 1e-3 },
  grad: {
    saves: { inputs: [0, 1, 2], output: true },
    // delta = rowsum(dy ∘ o) = Σ_j p_ij dp_ij, so ds = p ∘ (dp − delta) is softmax's backward without the T x T matrix.
    rule: ({ inputs: [q, k, v], output: o, aux: lse, attrs, needs }, dy) => {
      const delta = sum(mul(dy, o!), -1); // [B, H, Tq]
      const ins = [dy, q!, k!, v!, lse!, delta];
      const dq = needs[0] ? apply(attentionBwdQOp, ins, attrs) : null;
      if (!needs[1] && !needs[2]) return [dq, null, null];
      const kv = apply(attentionBwdKvOp, ins, attrs);
      const [B, H, Tk, Dh] = k!.shape as [number, number, number, number];
      const Dv = v!.shape[3]!;
      return [
        dq,
        needs[1] ? slice(kv, [0, 0, 0, 0], [B, H, Tk, Dh]) : null,
        needs[2] ? slice(kv, [0, 0, 0, Dh], [B, H, Tk, Dv]) : null,
      ];
    },
  },
});

// ---- The fused op on a packed projection: the same kernels and CPU references, other layouts ----

const qkvDims = (qkv: Shape, a: AttentionQkvAttrs): Dims => {
  const [B, T, W] = qkv as [number, number, number];
  const Dh = W / (3 * a.heads);
  return { BH: B * a.heads, Tq: T, Tk: T, Dh, Dv: Dh, scale: a.scale ?? 1 / Math.sqrt(Dh), causal: a.causal };
};

// Part `part` of `parts` of x [B, T, parts, H, n] as [B, H, T, n] (a CpuInput), or, with `into`, written back there.
function splitHeads(x: ArrayLike<number>, d: Dims, H: number, n: number, parts: number, part: number): CpuInput {
  const B = d.BH / H;
  const data = new Float64Array(d.BH * d.Tq * n);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < d.Tq; t++)
        for (let e = 0; e < n; e++)
          data[((b * H + h) * d.Tq + t) * n + e] = x[((b * d.Tq + t) * parts + part) * H * n + h * n + e]!;
  return { data, shape: [B, H, d.Tq, n], dtype: 'float32' };
}
function mergeHeads(
  into: FloatArray,
  y: ArrayLike<number>,
  d: Dims,
  H: number,
  n: number,
  parts: number,
  part: number,
) {
  const B = d.BH / H;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < d.Tq; t++)
        for (let e = 0; e < n; e++)
          into[((b * d.Tq + t) * parts + part) * H * n + h * n + e] = y[((b * H + h) * d.Tq + t) * n + e]!;
}

// Samples: [B, T, H, Dh, causal, scale?]: T = 1, T off every tile (7, 33, 37, 70: several key tiles), head dims
// 8/16/32/64/80/128, and B·H = 65664 (the grid folds).
type QkvCase = [number, number, number, number, boolean, number?];
const QKV_CASES: readonly QkvCase[] = [
  [1, 1, 1, 16, true],
  [2, 7, 3, 16, true],
  [1, 33, 2, 32, true],
  [2, 7, 2, 80, false],
  [1, 5, 3, 8, true, 0.3],
  [1, 65, 1, 64, true],
  [1, 40, 1, 128, false],
  [1, 37, 1, 80, true],
  [1, 70, 2, 32, true],
  [128, 2, 513, 16, true],
];
const qkvName = ([B, T, H, Dh, causal, scale]: QkvCase) =>
  `B${B} T${T} H${H} Dh${Dh}${causal ? ' causal' : ''}${scale !== undefined ? ` scale ${scale}` : ''}`;
const qkvAttrs = (c: QkvCase): Partial<AttentionQkvAttrs> => ({
  heads: c[2],
  causal: c[4],
  ...(c[5] !== undefined ? { scale: c[5] } : {}),
});

/** The fused op's backward on the packed layout: dy [B, T, D], qkv, lse and delta [B, T, H] -> dqkv [B, T, 3D]. */
export const attentionQkvBwdOp: OpDef<AttentionQkvAttrs> = defineOp<AttentionQkvAttrs>({
  name: 'attention_qkv_bwd',
  arity: 4,
  attrs: { heads: 1, causal: false, scale: null },
  infer: ([dy, qkv, lse, delta], a) => {
    const [B, T, Dh] = checkQkv(qkv!, a.heads, 'attention_qkv_bwd');
    for (const [what, t, want] of [
      ['dy', dy!, [B, T, a.heads * Dh]],
      ['lse', lse!, [B, T, a.heads]],
      ['delta', delta!, [B, T, a.heads]],
    ] as const) {
      if (t.dtype !== 'float32') throw new DTypeError(`attention_qkv_bwd: ${what} is ${t.dtype}; expected float32`);
      if (fmtShape(t.shape) !== fmtShape(want))
        throw new ShapeError(
          `attention_qkv_bwd: ${what} ${fmtShape(t.shape)} does not fit qkv ${fmtShape(qkv!.shape)}; expected ${fmtShape(want)}`,
        );
    }
    return { shape: qkv!.shape, dtype: 'float32' };
  },
  cpu: ({ inputs: [dy, qkv, lse, delta], out, attrs, alloc }) => {
    const d = qkvDims(qkv!.shape, attrs);
    const H = attrs.heads;
    const ins = [
      splitHeads(dy!.data, d, H, d.Dh, 1, 0),
      ...[0, 1, 2].map((i) => splitHeads(qkv!.data, d, H, d.Dh, 3, i)),
      splitHeads(lse!.data, d, H, 1, 1, 0),
      splitHeads(delta!.data, d, H, 1, 1, 0),
    ];
    const dqkv = alloc(sizeOf(out.shape));
    const dq = attentionBwdRef(d, ins, 'q', new Float64Array(d.BH * d.Tq * d.Dh));
    const dkv = attentionBwdRef(d, ins, 'kv', new Float64Array(d.BH * d.Tk * 2 * d.Dh));
    mergeHeads(dqkv, dq, d, H, d.Dh, 3, 0);
    for (const [i, off] of [
      [1, 0],
      [2, d.Dh],
    ] as const) {
      const part = new Float64Array(d.BH * d.Tk * d.Dh);
      for (let r = 0; r < d.BH * d.Tk; r++)
        part.set(dkv.subarray(r * 2 * d.Dh + off, r * 2 * d.Dh + off + d.Dh), r * d.Dh);
      mergeHeads(dqkv, part, d, H, d.Dh, 3, i);
    }
    return dqkv;
  },
  gpu: ({ inputs: [dy, qkv, lse, delta], out, attrs, ctx }) => {
    const d = qkvDims(qkv!.shape, attrs);
    if (sizeOf(out.shape) === 0) return;
    const lay = packedLayouts(d, attrs.heads);
    const ins = [dy!, qkv!, qkv!, qkv!, lse!, delta!];
    // Two kernels, one output: dq into its columns of [B, T, 3D], dk and dv into theirs.
    dispatchAttention(ctx, 'attention_bwd_q', d, d.Tq, [out], ins, lay);
    dispatchAttention(ctx, 'attention_bwd_kv', d, d.Tk, [out], ins, lay);
  },
  samples: function* () {
    for (const c of QKV_CASES) {
      const [B, T, H, Dh] = c;
      yield {
        name: qkvName(c),
        inputs: [
          { shape: [B, T, H * Dh] },
          { shape: [B, T, 3 * H * Dh] },
          { shape: [B, T, H], range: [1, 4] },
          { shape: [B, T, H], range: [-1, 1] },
        ],
        attrs: qkvAttrs(c),
      } satisfies Sample<AttentionQkvAttrs>;
    }
  },
  bad: [
    {
      name: 'delta shape',
      inputs: [{ shape: [1, 3, 8] }, { shape: [1, 3, 24] }, { shape: [1, 3, 2] }, { shape: [1, 2, 3] }],
      attrs: { heads: 2 },
      error: ShapeError,
      message: /attention_qkv_bwd: delta \[1,2,3\] does not fit qkv \[1,3,24\]; expected \[1,3,2\]/,
    },
  ],
  tol: { atol: 1e-4, rtol: 1e-4 },
  grad: { none: 'second-order gradients are not supported' },
});

/** The fused op on a packed projection: qkv [B, T, 3·H·Dh] -> o [B, T, H·Dh], with lse [B, T, H] for backward. */
export const attentionQkvOp: OpDef<AttentionQkvAttrs> = defineOp<AttentionQkvAttrs>({
  name: 'attention_qkv',
  arity: 1,
  attrs: { heads: 1, causal: false, scale: null },
  infer: ([qkv], a) => {
    const [B, T, Dh] = checkQkv(qkv!, a.heads);
    checkAttention([qkv!, qkv!, qkv!].map(headSpec(Dh)), a.causal, a.scale, 'attention_qkv');
    if (T === 0) throw new ShapeError(`attention_qkv: qkv ${fmtShape(qkv!.shape)} has no positions; expected T >= 1`);
    if (Dh > FUSED_MAX_HEAD_DIM)
      throw new LimitError(`attention_qkv: head dim ${Dh}: the fused kernels take up to ${FUSED_MAX_HEAD_DIM}`);
    return { shape: [B, T, a.heads * Dh], dtype: 'float32' };
  },
  aux: ([qkv], a) => ({ shape: [qkv!.shape[0]!, qkv!.shape[1]!, a.heads], dtype: 'float32' }),
  cpu: ({ inputs: [qkv], out, attrs, alloc }) => {
    const d = qkvDims(qkv!.shape, attrs);
    const H = attrs.heads;
    const [q, k, v] = [0, 1, 2].map((i) => splitHeads(qkv!.data, d, H, d.Dh, 3, i));
    const [o, lse] = [new Float64Array(d.BH * d.Tq * d.Dh), new Float64Array(d.BH * d.Tq)];
    attentionRef(d, q!, k!, v!, o, lse);
    const [oo, ll] = [alloc(sizeOf(out.shape)), alloc(d.BH * d.Tq)];
    mergeHeads(oo, o, d, H, d.Dh, 1, 0);
    mergeHeads(ll, lse, d, H, 1, 1, 0);
    return { out: oo, aux: ll };
  },
  gpu: ({ inputs: [qkv], out, aux, attrs, ctx }) => {
    const d = qkvDims(qkv!.shape, attrs);
    if (sizeOf(out.shape) === 0) return;
    dispatchAttention(ctx, 'attention_fwd', d, d.Tq, [out, aux!], [qkv!, qkv!, qkv!], packedLayouts(d, attrs.heads));
  },
  samples: function* () {
    for (const c of QKV_CASES) {
      const [B, T, H, Dh] = c;
      yield {
        name: qkvName(c),
        inputs: [{ shape: [B, T, 3 * H * Dh] }],
        attrs: qkvAttrs(c),
      } satisfies Sample<AttentionQkvAttrs>;
    }
  },
  bad: [
    {
      name: 'width not 3·heads·Dh',
      inputs: [{ shape: [2, 4, 20] }],
      attrs: { heads: 2 },
      error: ShapeError,
      message: /attention_qkv: qkv \[2,4,20\] with 2 heads; expected \[B, T, 3·heads·Dh\]/,
    },
    {
      name: 'rank 4',
      inputs: [{ shape: [2, 4, 3, 24] }],
      attrs: { heads: 2 },
      error: ShapeError,
      message: /attention_qkv: qkv \[2,4,3,24\] with 2 heads; expected \[B, T, 3·heads·Dh\]/,
    },
    {
      name: 'heads 0',
      inputs: [{ shape: [1, 2, 12] }],
      attrs: { heads: 0 },
      error: ArgumentError,
      message: /attention_qkv: heads is 0; expected a positive integer/,
    },
    {
      name: 'int32 qkv',
      inputs: [{ shape: [1, 2, 12], dtype: 'int32' }],
      attrs: { heads: 1 },
      error: DTypeError,
      message: /attention_qkv: qkv \[1,2,12\] is int32; expected float32/,
    },
  ],
  tol: { atol: 2e-5, rtol: 1e-4 },
  gradTol: { atol: 1e-4, rtol: 1e-3 },
  grad: {
    saves: { inputs: [0], output: true },
    // delta = rowsum(dy ∘ o) per head, as the op on q, k, v; one kernel pair writes all of dqkv.
    rule: ({ inputs: [qkv], output: o, aux: lse, attrs }, dy) => {
      const [B, T] = qkv!.shape as [number, number];
      const delta = sum(reshape(mul(dy, o!), [B, T, attrs.heads, o!.shape[2]! / attrs.heads]), -1); // [B, T, H]
      return [apply(attentionQkvBwdOp, [dy, qkv!, lse!, delta], attrs)];
    },
  },
});

export const attentionOps = {
  attention: attentionOp,
  attention_bwd_q: attentionBwdQOp,
  attention_bwd_kv: attentionBwdKvOp,
  attention_qkv: attentionQkvOp,
  attention_qkv_bwd: attentionQkvBwdOp,
};
