// The attention family (`npm run bench -- attention`): causal attention forward + backward (dq, dk, dv), the fused
// flash-style op against the composed path (matmul, causal bias, softmax, matmul; the tape's backward), same inputs.
// Both are checked against wgnn's CPU reference of the fused op (float64 loops) before they are timed.
import {
  CpuBackend,
  attention,
  backward,
  zeroGrad,
  tensor,
  type Backend,
  type Tensor,
  type WebGpuBackend,
} from '../src/index.js';
import { attentionComposed } from '../src/internal.js';
import {
  checkAgainst,
  hostUniform,
  type Case,
  type Engine,
  type FamilyOpts,
  type HostTensor,
  type Row,
} from './harness.js';
import type { Runner } from './peers/peer.js';
import { derive } from './report.js';

type Path = 'fused' | 'composed';
interface Shape {
  B: number;
  H: number;
  T: number;
  D: number;
}
const NO_PEER = 'no peer: the family compares two wgnn paths';

/** y, dq, dk, dv of causal attention on set `s` (q, k, v, dy), through `path`, concatenated; inputs freed. */
async function forwardBackward(b: Backend, path: Path, s: HostTensor[]): Promise<Float32Array> {
  const [q, k, v] = s.slice(0, 3).map((h) => tensor(h.data, h.shape, { backend: b }).variable());
  const dy = tensor(s[3]!.data, s[3]!.shape, { backend: b });
  const y = (path === 'fused' ? attention : attentionComposed)(q!, k!, v!, { causal: true });
  backward(y, dy);
  const parts = await Promise.all([y, q!.grad!, k!.grad!, v!.grad!].map((t) => t.data()));
  for (const t of [q!, k!, v!, dy, y, q!.grad!, k!.grad!, v!.grad!]) t.dispose();
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

function runner(gpu: WebGpuBackend, path: Path, sets: HostTensor[][]): Runner {
  const ts: Tensor[][] = sets.map((s) =>
    s.map((h, i) => {
      const t = tensor(h.data, h.shape, { backend: gpu });
      return i < 3 ? t.variable() : t;
    }),
  );
  const f = path === 'fused' ? attention : attentionComposed;
  return {
    kernel:
      path === 'fused' ? 'attention_fwd, attention_bwd_q, attention_bwd_kv' : 'matmul, add, softmax, matmul (+ tape)',
    enqueue: (i) => {
      const [q, k, v, dy] = ts[i]!;
      const y = f(q!, k!, v!, { causal: true });
      backward(y, dy!);
      y.dispose();
      zeroGrad([q!, k!, v!]);
    },
    result: () => forwardBackward(gpu, path, sets[0]!),
    dispose: () => ts.flat().forEach((t) => t.dispose()),
  };
}

const shapes = (o: FamilyOpts): Shape[] =>
  o.quick
    ? [{ B: 2, H: 2, T: 128, D: 32 }]
    : [
        // The char GPT's attention (batch 16, 4 heads, d = 128: head dim 32), then longer contexts.
        { B: 16, H: 4, T: 128, D: 32 },
        { B: 4, H: 4, T: 128, D: 64 },
        { B: 2, H: 4, T: 512, D: 32 },
        { B: 2, H: 4, T: 512, D: 64 },
      ];

export function attentionCases(o: FamilyOpts): Case[] {
  const refs = new Map<string, Promise<Float32Array>>();
  return shapes(o).flatMap(({ B, H, T, D }, si) =>
    (['fused', 'composed'] as const).map((path): Case => {
      const seed = 9000 + si * 10;
      const key = `B${B} H${H} T${T} Dh${D}`;
      return {
        family: 'attention',
        id: `${path}-T${T}-d${D}`,
        label: `${path} ${key} causal fwd+bwd`,
        bound: 'compute',
        // Six T x T x D products (q kᵀ, p v; dp, dv, dq, dk), 2 flops per multiply-add, half of them under the mask.
        flops: (12 * B * H * T * T * D) / 2,
        bytes: 4 * B * H * T * D * 8,
        meta: { B, H, T, Dh: D, causal: true, path },
        sets: 2,
        inputs: (set) => [0, 1, 2, 3].map((i) => hostUniform(seed + set * 10 + i, [B, H, T, D])),
        check: async (inp) => {
          if (!refs.has(key)) refs.set(key, forwardBackward(new CpuBackend(), 'fused', inp));
          return checkAgainst(
            'cpu reference',
            'attention fwd+bwd',
            await refs.get(key)!,
            { atol: 1e-4, rtol: 1e-3 },
            seed,
          );
        },
        wgnn: (gpu, sets) => runner(gpu, path, sets),
        tfjs: NO_PEER,
        jax: NO_PEER,
      };
    }),
  );
}

/** The family's table: per shape, fused and composed ms, GFLOP/s and composed / fused. */
export function printAttention(rows: Row[], _peers: Partial<Record<Engine, string>>, log: (s: string) => void): void {
  log('');
  log(
    '== attention == causal attention forward + backward (dq, dk, dv), fused kernels vs the composed path; ms = median',
  );
  log(
    '   GPU time per run where the device has timestamps (* = wall), GFLOP/s = 6 products of T·T·D, halved by the mask',
  );
  const W = [28, 12, 10, 12, 10, 9];
  const line = (cells: string[]) => cells.map((c, i) => (i ? c.padStart(W[i]!) : c.padEnd(W[i]!))).join(' ');
  log(line(['shape', 'fused ms', 'GFLOP/s', 'composed ms', 'GFLOP/s', 'ratio']));
  const byShape = new Map<string, Partial<Record<Path, Row>>>();
  for (const r of rows) {
    const m = r.meta as { B: number; H: number; T: number; Dh: number; path: Path };
    const key = `B${m.B} H${m.H} T${m.T} Dh${m.Dh}`;
    byShape.set(key, { ...byShape.get(key), [m.path]: r });
  }
  for (const [key, p] of byShape) {
    const cell = (r: Row | undefined) => {
      const w = r?.engines.wgnn;
      if (!r || w?.status !== 'ok') return { ms: undefined, text: [w?.status ?? 'skipped', '—'] };
      const d = derive(r, {})!;
      const ms = d.ms.wgnn!;
      return { ms, text: [`${ms.toFixed(2)}${d.timer === 'wall' ? '*' : ''}`, d.rate!.toFixed(1)] };
    };
    const [f, c] = [cell(p.fused), cell(p.composed)];
    const ratio = f.ms && c.ms ? `${(c.ms / f.ms).toFixed(2)}x` : '—';
    log(line([key, ...f.text, ...c.text, ratio]));
  }
  for (const r of rows)
    if (r.engines.wgnn && r.engines.wgnn.status !== 'ok')
      log(`  ${r.label}: ${r.engines.wgnn.why ?? r.engines.wgnn.status}`);
}
