// attention, where and gelu's tanh option: composed functions the op-table walks do not reach. Each against plain
// loops in float64 (the oracle), WebGPU against the CPU backend forward and backward, and float64 central differences.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Backend, TypedArray } from '../src/backend/backend.js';
import { CpuBackend } from '../src/backend/cpu/cpu.js';
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { backward, noGrad } from '../src/autograd/tape.js';
import { ArgumentError, ShapeError } from '../src/errors.js';
import {
  attention,
  attentionComposed,
  attentionOp,
  attentionQkv,
  type AttentionOptions,
} from '../src/ops/attention.js';
import { apply } from '../src/ops/apply.js';
import { createWebGpuBackend } from '../src/init.js';
import { add, maskedFill, mul, where } from '../src/ops/binary.js';
import { reshape, slice, transpose } from '../src/ops/layout.js';
import { matmul } from '../src/ops/matmul.js';
import { dropout } from '../src/ops/random.js';
import { softmax } from '../src/ops/softmax.js';
import { gelu } from '../src/ops/unary.js';
import { Rng } from '../src/rng.js';
import { sizeOf } from '../src/shape.js';
import { memory, tensor, tidy, type Tensor } from '../src/tensor.js';
import { asGpuAdapter, asSoftwareAdapter, cpu, expectClose, gpuBackend } from './helpers.js';

let gpu: WebGpuBackend;
let gpuTiles: WebGpuBackend;
let softwareTiles: WebGpuBackend;
beforeAll(async () => {
  gpu = await gpuBackend();
  gpuTiles = asGpuAdapter(gpu);
  softwareTiles = asSoftwareAdapter(gpu);
});
const cpu64 = new CpuBackend({ float64: true });
const TOL = { atol: 2e-5, rtol: 1e-4 };

interface Case {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  Dh: number;
  Dv: number;
  causal?: boolean;
  /** Shape of an additive mask, random with about a quarter -Infinity (never a whole row). */
  mask?: number[];
  scale?: number;
  /**
   * Also through the fused kernels as a GPU adapter and a software one without subgroups tile them (a few cases: each
   * tile compiles apart, slowly here).
   */
  gpuTiles?: true;
}
const label = (c: Case) =>
  `B${c.B} H${c.H} Tq${c.Tq} Tk${c.Tk} Dh${c.Dh} Dv${c.Dv}${c.causal ? ' causal' : ''}` +
  `${c.mask ? ` mask [${c.mask}]` : ''}${c.scale !== undefined ? ` scale ${c.scale}` : ''}`;

const CASES: Case[] = [
  { B: 1, H: 1, Tq: 1, Tk: 1, Dh: 16, Dv: 16, causal: true },
  { B: 2, H: 3, Tq: 7, Tk: 7, Dh: 16, Dv: 16, causal: true },
  { B: 1, H: 2, Tq: 33, Tk: 33, Dh: 32, Dv: 32, causal: true, gpuTiles: true },
  { B: 2, H: 2, Tq: 7, Tk: 7, Dh: 80, Dv: 80, gpuTiles: true },
  { B: 1, H: 2, Tq: 7, Tk: 7, Dh: 80, Dv: 80, causal: true },
  { B: 2, H: 1, Tq: 1, Tk: 33, Dh: 32, Dv: 16, causal: true, gpuTiles: true },
  { B: 1, H: 3, Tq: 5, Tk: 9, Dh: 16, Dv: 8, causal: true },
  { B: 2, H: 2, Tq: 7, Tk: 9, Dh: 16, Dv: 8, mask: [7, 9], scale: 0.3 },
  { B: 2, H: 2, Tq: 7, Tk: 7, Dh: 32, Dv: 16, causal: true, mask: [2, 1, 7, 7] },
  // B·H = 65664 products: matmul's batch grid dimension past the 65535 workgroups of one dispatch, split in two.
  { B: 128, H: 513, Tq: 2, Tk: 2, Dh: 16, Dv: 16, causal: true },
  { B: 1, H: 2, Tq: 9, Tk: 9, Dh: 64, Dv: 64, causal: true, gpuTiles: true },
];

function caseData(c: Case, seed: number) {
  const rng = new Rng(seed);
  const rand = (n: number) => Float64Array.from({ length: n }, () => rng.uniform(-2, 2));
  const q = rand(c.B * c.H * c.Tq * c.Dh);
  const k = rand(c.B * c.H * c.Tk * c.Dh);
  const v = rand(c.B * c.H * c.Tk * c.Dv);
  // -Inf on a quarter of the entries except the last key, so no row is blocked whole.
  const last = c.mask?.[c.mask.length - 1] ?? 1;
  const mask = c.mask
    ? Float64Array.from({ length: sizeOf(c.mask) }, (_, i) =>
        i % last !== last - 1 && rng.uniform(0, 1) < 0.25 ? -Infinity : rng.uniform(-1, 1),
      )
    : undefined;
  return { q, k, v, mask };
}

/** The oracle: plain loops in float64, softmax with its max subtracted. */
function attentionRef(c: Case, d: ReturnType<typeof caseData>): Float64Array {
  const { B, H, Tq, Tk, Dh, Dv } = c;
  const scale = c.scale ?? 1 / Math.sqrt(Dh);
  const out = new Float64Array(B * H * Tq * Dv);
  const s = new Float64Array(Tk);
  const ms = c.mask ? [...Array(4 - c.mask.length).fill(1), ...c.mask] : undefined;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < Tq; i++) {
        let max = -Infinity;
        for (let j = 0; j < Tk; j++) {
          let dot = 0;
          for (let e = 0; e < Dh; e++)
            dot += d.q[((b * H + h) * Tq + i) * Dh + e]! * d.k[((b * H + h) * Tk + j) * Dh + e]!;
          s[j] = dot * scale;
          if (c.causal && j > i + Tk - Tq) s[j] = -Infinity;
          if (ms) {
            const idx = (((b % ms[0]!) * ms[1]! + (h % ms[1]!)) * ms[2]! + (i % ms[2]!)) * ms[3]! + (j % ms[3]!);
            s[j] += d.mask![idx]!;
          }
          max = Math.max(max, s[j]!);
        }
        let z = 0;
        for (let j = 0; j < Tk; j++) z += s[j] = Math.exp(s[j]! - max);
        for (let j = 0; j < Tk; j++)
          for (let e = 0; e < Dv; e++)
            out[((b * H + h) * Tq + i) * Dv + e] += (s[j]! / z) * d.v[((b * H + h) * Tk + j) * Dv + e]!;
      }
  return out;
}

const up = (b: Backend, data: TypedArray, shape: number[]) => tensor(data, shape, { backend: b });
const shapesOf = (c: Case) => [
  [c.B, c.H, c.Tq, c.Dh],
  [c.B, c.H, c.Tk, c.Dh],
  [c.B, c.H, c.Tk, c.Dv],
];
const optsOf = (c: Case, mask: Tensor | undefined): AttentionOptions => ({
  causal: c.causal ?? false,
  ...(c.scale !== undefined ? { scale: c.scale } : {}),
  ...(mask ? { mask } : {}),
});

type AttentionFn = (q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions) => Tensor;
/** The fused op itself, whatever attention() would pick. */
const fused: AttentionFn = (q, k, v, o) =>
  apply(attentionOp, [q, k, v], { causal: !!o.causal, scale: o.scale ?? null });

/** y and the gradients of q, k, v (and the mask) for upstream r, on backend b, through f (default attention()). */
async function run(b: Backend, c: Case, d: ReturnType<typeof caseData>, r: TypedArray, f: AttentionFn = attention) {
  const [qs, ks, vs] = shapesOf(c);
  const xs = [up(b, d.q, qs!), up(b, d.k, ks!), up(b, d.v, vs!)].map((t) => t.variable());
  const mask = d.mask ? up(b, d.mask, c.mask!).variable() : undefined;
  const y = f(xs[0]!, xs[1]!, xs[2]!, optsOf(c, mask));
  const dy = up(b, r, [...y.shape]);
  backward(y, dy);
  const all = mask ? [...xs, mask] : xs;
  const out = { y: await y.data(), grads: await Promise.all(all.map((x) => x.grad!.data())) };
  for (const t of [...all, ...all.map((x) => x.grad!), y, dy]) t.dispose();
  return out;
}

describe('attention', () => {
  it.each(CASES.map((c, i) => ({ c, i, name: label(c) })))(
    '$name: cpu and [webgpu] ≈ loops, backward gpu≈cpu',
    async ({ c, i }) => {
      const d = caseData(c, 100 + i);
      const want = attentionRef(c, d);
      const rng = new Rng(200 + i);
      const r = Float32Array.from({ length: want.length }, () => rng.uniform(-1, 1));
      const onCpu = await run(cpu, c, d, r);
      const onGpu = await run(gpu, c, d, r);
      expectClose(onCpu.y, want, TOL, `${label(c)} cpu forward vs loops`);
      expectClose(onGpu.y, want, TOL, `${label(c)} webgpu forward vs loops`);
      onCpu.grads.forEach((g, k) =>
        expectClose(onGpu.grads[k]!, g, { atol: 1e-4, rtol: 1e-3 }, `${label(c)} grad ${k}`),
      );
    },
  );

  // Float64 central differences of L = Σ y·r on the CPU backend, a few coordinates of each input.
  it.each(CASES.filter((c) => c.B * c.H < 100).map((c, i) => ({ c, i, name: label(c) })))(
    '$name: gradcheck (float64 CPU, central differences)',
    async ({ c, i }) => {
      const d = caseData(c, 300 + i);
      const n = c.B * c.H * c.Tq * c.Dv;
      const rng = new Rng(400 + i);
      const r = Float64Array.from({ length: n }, () => rng.uniform(-1, 1));
      const { grads } = await run(cpu64, c, d, r);
      const loss = (dd: ReturnType<typeof caseData>) => {
        const [qs, ks, vs] = shapesOf(c);
        const y = noGrad(() =>
          tidy(() =>
            attention(
              up(cpu64, dd.q, qs!),
              up(cpu64, dd.k, ks!),
              up(cpu64, dd.v, vs!),
              optsOf(c, dd.mask ? up(cpu64, dd.mask, c.mask!) : undefined),
            ),
          ),
        );
        return y.data().then((yd) => {
          y.dispose();
          let acc = 0;
          for (let j = 0; j < yd.length; j++) acc += yd[j]! * r[j]!;
          return acc;
        });
      };
      const names = ['q', 'k', 'v', 'mask'] as const;
      for (let x = 0; x < grads.length; x++) {
        const base = d[names[x]!]!;
        for (let t = 0; t < 8; t++) {
          const j = rng.int(0, base.length);
          if (!Number.isFinite(base[j]!)) continue;
          const at = (delta: number) => {
            const moved = Float64Array.from(base);
            moved[j]! += delta;
            return { ...d, [names[x]!]: moved };
          };
          const eps = 1e-6;
          const fd = ((await loss(at(eps))) - (await loss(at(-eps)))) / (2 * eps);
          const an = grads[x]![j]!;
          expect(Math.abs(an - fd), `${label(c)} d${names[x]}[${j}]: analytic ${an}, fd ${fd}`).toBeLessThanOrEqual(
            1e-6 + 1e-4 * Math.abs(fd),
          );
        }
      }
    },
  );

  // The fused kernels against the composed reference on the same shapes (masks dropped: the fused op takes none).
  // This adapter's kernels (lavapipe: a row per lane, the other side's rows passed by subgroup broadcasts) and, for some
  // cases, a GPU's tiles (8 x 8 threads, 4 x 4) and a software adapter's without subgroups (4 x 4 threads, 8 x 8).
  it.each(CASES.map((c, i) => ({ c: { ...c, mask: undefined }, i, name: label({ ...c, mask: undefined }) })))(
    '$name: [webgpu] fused = composed, forward and the gradients of q, k, v',
    async ({ c, i }) => {
      const d = caseData(c, 500 + i);
      const rng = new Rng(600 + i);
      const r = Float32Array.from({ length: c.B * c.H * c.Tq * c.Dv }, () => rng.uniform(-1, 1));
      const want = await run(gpu, c, d, r, attentionComposed);
      const others = [['GPU', gpuTiles] as const, ['software', softwareTiles] as const];
      for (const [tiles, b] of [['this adapter', gpu] as const, ...(c.gpuTiles ? others : [])]) {
        const got = await run(b, c, d, r, fused);
        expectClose(got.y, want.y, TOL, `${label(c)} fused forward, ${tiles} tiles`);
        want.grads.forEach((g, k) =>
          expectClose(got.grads[k]!, g, { atol: 1e-4, rtol: 1e-3 }, `${label(c)} fused d${'qkv'[k]}, ${tiles} tiles`),
        );
      }
    },
  );

  // The packed op reads the heads out of qkv [B, T, 3·H·Dh] and writes o [B, T, H·Dh] and dqkv in place: the same
  // kernels as the op on split heads, so its forward is that path's bit for bit, and its gradient that of the
  // transposes and slices around it.
  it.each([
    [1, 1, 1, 16, true],
    [2, 7, 3, 16, true],
    [2, 33, 2, 32, false],
    [1, 70, 2, 64, true],
    [2, 9, 1, 80, true],
  ] as const)('attentionQkv B%i T%i H%i Dh%i causal %s: [webgpu] = heads split, attention, merged', async (...c) => {
    const [B, T, H, Dh, causal] = c;
    const rng = new Rng(B * 1000 + T * 10 + H);
    const n = B * T * 3 * H * Dh;
    const data = Float32Array.from({ length: n }, () => rng.uniform(-2, 2));
    const r = Float32Array.from({ length: n / 3 }, () => rng.uniform(-1, 1));
    const split = (qkv: Tensor) => {
      const x = transpose(reshape(qkv, [B, T, 3, H, Dh]), [2, 0, 3, 1, 4]);
      const part = (i: number) => reshape(slice(x, [i, 0, 0, 0, 0], [1, B, H, T, Dh]), [B, H, T, Dh]);
      return reshape(transpose(attention(part(0), part(1), part(2), { causal }), [0, 2, 1, 3]), [B, T, H * Dh]);
    };
    const go = async (f: (qkv: Tensor) => Tensor) => {
      const qkv = up(gpu, data, [B, T, 3 * H * Dh]).variable();
      const y = f(qkv);
      const dy = up(gpu, r, [...y.shape]);
      backward(y, dy);
      const out = { y: await y.data(), g: await qkv.grad!.data() };
      for (const t of [qkv, qkv.grad!, y, dy]) t.dispose();
      return out;
    };
    const [want, got] = [await go(split), await go((qkv) => attentionQkv(qkv, H, { causal }))];
    expect([...got.y], 'forward bit for bit').toEqual([...want.y]);
    expectClose(got.g, want.g, { atol: 1e-6, rtol: 1e-5 }, 'dqkv');
  });

  it('[webgpu] attention() takes the fused op without mask or dropout, the composed path with either', async () => {
    const c: Case = { B: 1, H: 2, Tq: 9, Tk: 9, Dh: 16, Dv: 16, causal: true };
    const d = caseData(c, 12);
    const [qs, ks, vs] = shapesOf(c);
    const [q, k, v] = [up(gpu, d.q, qs!), up(gpu, d.k, ks!), up(gpu, d.v, vs!)];
    const zero = up(gpu, new Float32Array(81), [9, 9]);
    const same = async (a: Tensor, b: Tensor, what: string) =>
      expect([...(await a.data())], what).toEqual([...(await b.data())]);
    const ys = [
      attention(q, k, v, { causal: true }),
      fused(q, k, v, { causal: true }),
      attention(q, k, v, { causal: true, mask: zero }),
      attentionComposed(q, k, v, { causal: true, mask: zero }),
    ];
    await same(ys[0]!, ys[1]!, 'no mask: the fused kernel');
    await same(ys[2]!, ys[3]!, 'a mask: the composed path');
    expect([...(await ys[0]!.data())]).not.toEqual([...(await ys[2]!.data())]); // the two paths round differently
    for (const t of [q, k, v, zero, ...ys]) t.dispose();
  });

  // Peak bytes of forward + backward at T = 2048, Dh = 64, each path on a fresh device (the pool's peak counts from
  // its creation): the composed path holds [B, H, T, T] scores and their gradients, the fused one never does.
  it('[webgpu] T = 2048, Dh = 64: the fused path peaks far below the composed one', async () => {
    const c: Case = { B: 1, H: 2, Tq: 2048, Tk: 2048, Dh: 64, Dv: 64, causal: true };
    const d = caseData(c, 13);
    const r = new Float32Array(c.B * c.H * c.Tq * c.Dv).fill(1e-3);
    const peak = async (f: AttentionFn) => {
      const g = (await createWebGpuBackend())!;
      try {
        const out = await run(g, c, d, r, f);
        return { peak: memory(g).peakBytes, y: out.y };
      } finally {
        g.destroy();
      }
    };
    const [f, comp] = [await peak(fused), await peak(attentionComposed)];
    console.log(
      `attention B1 H2 T2048 Dh64 causal forward+backward peak bytes: fused ${f.peak}, composed ${comp.peak} (${(comp.peak / f.peak).toFixed(1)}x)`,
    );
    expectClose(f.y, comp.y, TOL, 'T = 2048 fused vs composed forward');
    const scores = c.B * c.H * c.Tq * c.Tk * 4;
    expect(f.peak, 'fused peak under one [B, H, T, T] matrix').toBeLessThan(scores);
    expect(f.peak * 8, 'fused peak an eighth of the composed one or less').toBeLessThan(comp.peak);
  });

  // Which kernels a step runs: the lane-row ones on a software adapter with subgroups of 8 (this lavapipe), the tiled
  // ones on a GPU and on a software adapter without subgroups.
  it('[webgpu] the fused step dispatches the lane-row kernels where subgroups are 8 lanes, tiles elsewhere', () => {
    const c: Case = { B: 1, H: 2, Tq: 9, Tk: 9, Dh: 16, Dv: 16, causal: true };
    const d = caseData(c, 17);
    const kernels = ['attention_bwd_kv', 'attention_bwd_q', 'attention_fwd'];
    for (const [b, lanes] of [
      [gpu, gpu.subgroupRows],
      [gpuTiles, false],
      [softwareTiles, false],
    ] as const) {
      const [qs, ks, vs] = shapesOf(c);
      const xs = [up(b, d.q, qs!), up(b, d.k, ks!), up(b, d.v, vs!)].map((t) => t.variable());
      const dy = up(b, d.q, qs!);
      b.capture.begin();
      const y = fused(xs[0]!, xs[1]!, xs[2]!, optsOf(c, undefined));
      backward(y, dy);
      const rec = b.capture.end();
      const shaders = b.capture.describe(rec).map((x) => x.shader);
      b.capture.release(rec);
      expect(shaders.filter((s) => s.startsWith('attention_')).sort(), b.description).toEqual(
        kernels.map((k) => (lanes ? `${k}_lanes` : k)),
      );
      for (const t of [...xs, ...xs.map((x) => x.grad!), y, dy]) t.dispose();
    }
  });

  it('dropout on the probabilities: softmax, then the dropout op with the same seed, then v; off at rate 0', async () => {
    const c: Case = { B: 2, H: 2, Tq: 6, Tk: 6, Dh: 16, Dv: 16, causal: true };
    const d = caseData(c, 11);
    for (const b of [cpu, gpu]) {
      const [qs, ks, vs] = shapesOf(c);
      const [q, k, v] = [up(b, d.q, qs!), up(b, d.k, ks!), up(b, d.v, vs!)];
      const y = attention(q, k, v, { causal: true, dropout: { rate: 0.3, seed: 5 } });
      const mask = new Float32Array(36);
      for (let i = 0; i < 6; i++) mask.fill(-Infinity, i * 6 + i + 1, (i + 1) * 6);
      const p = softmax(add(mul(matmul(q, k, { transB: true }), 0.25), tensor(mask, [6, 6], { backend: b })), -1);
      const want = matmul(dropout(p, 0.3, 5), v);
      expectClose(await y.data(), await want.data(), { atol: 1e-6, rtol: 1e-5 }, `${b.name} dropout`);
      const off = attention(q, k, v, { causal: true, dropout: { rate: 0, seed: 5 } });
      expectClose(await off.data(), await attention(q, k, v, { causal: true }).data(), { atol: 0, rtol: 0 }, 'rate 0');
      for (const t of [q, k, v, y, p, want, off]) t.dispose();
    }
  });

  it('causal: the output at position t and its gradients do not depend on positions after t', async () => {
    const c: Case = { B: 2, H: 2, Tq: 9, Tk: 9, Dh: 16, Dv: 16, causal: true };
    const d = caseData(c, 7);
    const moved = { ...d, k: Float64Array.from(d.k), v: Float64Array.from(d.v) };
    const t = 4;
    // Change keys and values after t in every batch and head.
    for (let bh = 0; bh < c.B * c.H; bh++)
      for (let j = t + 1; j < c.Tk; j++)
        for (let e = 0; e < 16; e++) {
          moved.k[(bh * c.Tk + j) * 16 + e] += 3;
          moved.v[(bh * c.Tk + j) * 16 + e] -= 5;
        }
    // Upstream gradient only on rows 0..t: then no gradient may reach keys or values after t.
    const r = Float32Array.from({ length: c.B * c.H * c.Tq * c.Dv }, (_, i) =>
      Math.floor(i / 16) % c.Tq <= t ? 1 : 0,
    );
    for (const b of [cpu, gpu] as Backend[]) {
      const [a, z] = [await run(b, c, d, r), await run(b, c, moved, r)];
      for (let i = 0; i < a.y.length; i++) {
        if (Math.floor(i / 16) % c.Tq <= t) expect(z.y[i], `y[${i}] moved with the future`).toBe(a.y[i]);
        else expect(z.y[i], `y[${i}] ignored its own past`).not.toBe(a.y[i]);
      }
      for (const g of [a.grads[1]!, a.grads[2]!])
        for (let i = 0; i < g.length; i++) if (Math.floor(i / 16) % c.Tk > t) expect(g[i], `grad at ${i}`).toBe(0);
    }
  });

  it('bad shapes and options are typed errors naming q, k and v', () => {
    const t = (s: number[]) => tensor(new Float32Array(sizeOf(s)), s, { backend: cpu });
    const q = t([2, 3, 4, 16]);
    const cases: [Tensor, Tensor, Tensor, AttentionOptions, RegExp][] = [
      [
        q,
        t([2, 3, 5, 8]),
        t([2, 3, 5, 8]),
        {},
        /q \[2,3,4,16\], k \[2,3,5,8\], v \[2,3,5,8\]: q's head dim 16 and k's 8/,
      ],
      [q, t([2, 3, 5, 16]), t([2, 3, 6, 8]), {}, /k has 5 positions and v 6/],
      [q, t([2, 2, 5, 16]), t([2, 2, 5, 8]), {}, /batch and head dims \[B, H\] differ/],
      [t([3, 4, 16]), t([3, 5, 16]), t([3, 5, 16]), {}, /q has rank 3; expected \[B, H, T, D\]/],
      [q, t([2, 3, 3, 16]), t([2, 3, 3, 8]), { causal: true }, /causal with 4 queries over 3 keys; expected Tq <= Tk/],
      [
        q,
        t([2, 3, 5, 16]),
        t([2, 3, 5, 8]),
        { mask: t([4, 4]) },
        /attention: mask: shapes \[4,4\] and \[2,3,4,5\] do not broadcast/,
      ],
    ];
    for (const [a, b, c, o, msg] of cases) expect(() => attention(a, b, c, o)).toThrow(msg);
    for (const [a, b, c, o] of cases) expect(() => attention(a, b, c, o)).toThrow(ShapeError);
    const k = t([2, 3, 5, 16]);
    const v = t([2, 3, 5, 8]);
    expect(() => attention(q, k, v, { scale: NaN })).toThrow(ArgumentError);
    expect(() => attention(q, k, v, { scale: NaN })).toThrow(/attention: scale is NaN; expected a finite number/);
    for (const x of [q, k, v, ...cases.flatMap((c) => c.slice(0, 3) as Tensor[]), ...cases.map((c) => c[3].mask)])
      x?.dispose();
  });
});

describe.each([
  ['cpu', () => cpu as Backend],
  ['[webgpu]', () => gpu as Backend],
] as const)('where and maskedFill %s', (_, getB) => {
  it('where(cond [3,1], a [3,4], b [4]) ≈ loops, gradients masked and summed over broadcast dims', async () => {
    const b = getB();
    const cv = [0, 2, NaN];
    const av = [1, -Infinity, 3, 4, 5, 6, NaN, 8, 9, 10, 11, Infinity];
    const bv = [-1, -2, Infinity, -4];
    const cond = up(b, Float32Array.from(cv), [3, 1]).variable();
    const a = up(b, Float32Array.from(av), [3, 4]).variable();
    const bb = up(b, Float32Array.from(bv), [4]).variable();
    const y = where(cond, a, bb);
    const want = Float32Array.from({ length: 12 }, (_, i) => (cv[Math.floor(i / 4)] !== 0 ? av[i]! : bv[i % 4]!));
    expectClose(await y.data(), want, { atol: 0, rtol: 0 }, 'where forward');
    const dy = up(
      b,
      Float32Array.from({ length: 12 }, (_, i) => i + 1),
      [3, 4],
    );
    backward(y, dy);
    const da = Float32Array.from({ length: 12 }, (_, i) => (i < 4 ? 0 : i + 1));
    expectClose(await a.grad!.data(), da, { atol: 0, rtol: 0 }, 'where d/da');
    expectClose(await bb.grad!.data(), Float32Array.from([1, 2, 3, 4]), { atol: 0, rtol: 0 }, 'where d/db');
    expectClose(await cond.grad!.data(), new Float32Array(3), { atol: 0, rtol: 0 }, 'where d/dcond');
    const x = up(b, Float32Array.from([1, 2, 3, 4]), [2, 2]);
    const m = up(b, Float32Array.from([0, 1]), [2]);
    const f = maskedFill(x, m, -Infinity);
    expectClose(await f.data(), Float32Array.from([1, -Infinity, 3, -Infinity]), { atol: 0, rtol: 0 }, 'maskedFill');
    for (const t of [cond, a, bb, y, dy, x, m, f, cond.grad!, a.grad!, bb.grad!]) t.dispose();
  });

  it("gelu(x, { approximate: 'tanh' }) is torch's F.gelu(x, approximate='tanh'); other values are ArgumentError", async () => {
    const b = getB();
    const x = up(b, Float32Array.from([-3, -1, 0.5, 3]), [4]);
    // torch 1.13: F.gelu(torch.tensor([-3., -1., 0.5, 3.], dtype=torch.float64), approximate='tanh')
    const want = Float32Array.from([
      -0.0036373920817729943, -0.1588080093917233, 0.34571400982514394, 2.996362607918227,
    ]);
    const y = gelu(x, { approximate: 'tanh' });
    expectClose(await y.data(), want, { atol: 1e-6, rtol: 1e-5 }, 'gelu tanh');
    const exact = gelu(x);
    expect((await exact.data())[0]).not.toBeCloseTo(want[0]!, 6);
    expect(() => gelu(x, { approximate: 'erf' as 'tanh' })).toThrow(ArgumentError);
    for (const t of [x, y, exact]) t.dispose();
  });
});
