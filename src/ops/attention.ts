// Scaled dot-product attention, softmax(q kᵀ · scale + mask) v, picked by shape: one fused op (flash-style kernels,
// shaders/attention_*.wgsl: memory grows with T, not T²) where there is no mask and no dropout, else composed from
// table ops (matmul, add, softmax, dropout), whose backward is the tape's. The composed path is the reference.
import type { CpuInput, FloatArray, TensorSpec } from '../backend/backend.js';
import type { GpuContext, GpuTensor } from '../backend/kernel.js';
import { f32, grid1d, u32 } from '../backend/kernel.js';
import { workgroupNeeds } from '../backend/webgpu/wgsl-reflect.js';
import { ArgumentError, DTypeError, LimitError, ShapeError, fmtShape } from '../errors.js';
import { SHADERS } from '../shaders.gen.js';
import { broadcastShapes, sizeOf, type Shape } from '../shape.js';
import { tensor, tidy, type Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { add, mul } from './binary.js';
import { slice } from './layout.js';
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
/** Rows x columns per thread, largest first: the tile is (8·rows) x (8·columns), 64 threads. */
const TILE_CHOICES: readonly (readonly [number, number])[] = [
  [4, 4],
  [4, 2],
  [2, 2],
  [2, 1],
  [1, 1],
];
const tileCache = new Map<string, { RQ: number; CK: number } | undefined>();

/** The largest tile of TILE_CHOICES whose workgroup memory fits `limit` bytes, or undefined if none does. */
function tileFor(
  shader: AttentionShader,
  Dh: number,
  Dv: number,
  limit: number,
): { RQ: number; CK: number } | undefined {
  const key = `${shader}|${Dh}|${Dv}|${limit}`;
  if (tileCache.has(key)) return tileCache.get(key);
  const [RQ, CK] =
    TILE_CHOICES.find(
      ([rq, ck]) => workgroupNeeds(SHADERS[shader], { RQ: rq, CK: ck, DK: Dh, DV: Dv }).storage <= limit,
    ) ?? [];
  const t = RQ === undefined ? undefined : { RQ, CK: CK! };
  tileCache.set(key, t);
  return t;
}

/** {@link tileFor}, or a LimitError. */
function pickTile(shader: AttentionShader, Dh: number, Dv: number, limit: number): { RQ: number; CK: number } {
  const t = tileFor(shader, Dh, Dv, limit);
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
  return (['attention_fwd', 'attention_bwd_q', 'attention_bwd_kv'] as const).every((s) => tileFor(s, Dh, Dv, limit));
}

/** Encodes one fused kernel: `rows` (queries, or keys for attention_bwd_kv) in tiles, one workgroup per tile and head. */
function dispatchAttention(
  ctx: GpuContext,
  shader: AttentionShader,
  d: Dims,
  rows: number,
  outputs: GpuTensor[],
  inputs: GpuTensor[],
): void {
  const { RQ, CK } = pickTile(shader, d.Dh, d.Dv, ctx.limits.maxComputeWorkgroupStorageSize);
  const tiles = Math.ceil(rows / (8 * RQ));
  ctx.dispatch({
    shader,
    overrides: { RQ, CK, DK: d.Dh, DV: d.Dv },
    workgroups: grid1d(tiles * d.BH, 1, ctx.limits.maxComputeWorkgroupsPerDimension),
    outputs,
    inputs,
    uniforms: [u32(d.BH), u32(d.Tq), u32(d.Tk), f32(d.scale), u32(d.causal ? 1 : 0), u32(tiles)],
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

export const attentionOps = {
  attention: attentionOp,
  attention_bwd_q: attentionBwdQOp,
  attention_bwd_kv: attentionBwdKvOp,
};
