// Conv2d f32, NHWC, on the WebGPU backend: forward, input gradient and filter gradient of a few CNN layers, next to
// TensorFlow.js's WebGPU backend on the same inputs. Each result is validated first (wgnn's CPU reference on a small
// batch of the same layer, and float64 sums at sampled outputs of the full batch), then timed as bench/matmul.ts does.
import type { WebGpuBackend } from '../src/backend/webgpu/webgpu.js';
import { CpuBackend } from '../src/backend/cpu/cpu.js';
import { apply } from '../src/ops/apply.js';
import { convOps } from '../src/ops/conv.js';
import { matmul, matmulOps } from '../src/ops/matmul.js';
import type { AnyOp, Tol } from '../src/ops/op.js';
import { Rng } from '../src/rng.js';
import { tensor, type Tensor } from '../src/tensor.js';
import { loadTfjs, type HostTensor, type PeerRun, type TfjsPeer } from './peers/tfjs.js';

type Pass = 'fwd' | 'bwd_x' | 'bwd_w';
type Padding = 'valid' | 'same';

interface ConvCase {
  name: string;
  /** x [N,H,W,C] at the default batch. */
  x: [number, number, number, number];
  /** w [R,S,C,K]. */
  w: [number, number, number, number];
  padding: Padding;
  stride: number;
  dilation: number;
  /** Batch under --quick. */
  quickBatch: number;
}

const CASES: ConvCase[] = [
  { name: 'seed conv1', x: [64, 28, 28, 1], w: [3, 3, 1, 32], padding: 'valid', stride: 1, dilation: 1, quickBatch: 8 },
  { name: 'seed conv2', x: [64, 13, 13, 32], w: [3, 3, 32, 64], padding: 'valid', stride: 1, dilation: 1, quickBatch: 8 },
  // Batch 8 keeps a trial near a second on lavapipe; --batch raises it on a real GPU.
  { name: 'resnet', x: [8, 56, 56, 64], w: [3, 3, 64, 64], padding: 'same', stride: 1, dilation: 1, quickBatch: 1 },
  // PEERS.md's anchor (TF.js 0.21 ms forward on the H100).
  { name: 'anchor', x: [32, 14, 14, 32], w: [3, 3, 32, 64], padding: 'same', stride: 1, dilation: 1, quickBatch: 4 },
];

const CHECK_SAMPLES = 256;
/** Images in the small batch that is checked in full against the CPU reference. */
const CPU_BATCH = 2;
/** Tolerance when the op table has none to offer (wgnn's conv unavailable): the STYLE.md conv2d tolerance. */
const DEFAULT_TOL: Tol = { atol: 1e-4, rtol: 1e-3 };
/** The op tolerances cover reductions of ~300 terms (their samples); f32 rounding grows like sqrt(length). */
const TOL_LENGTH = 300;

export interface EngineResult {
  ok: boolean;
  /** Why validation or a run failed. */
  error?: string;
  /** Median milliseconds per pass. */
  ms?: number;
  gflops?: number;
  reps?: number;
  trials?: number;
  /** Largest |result - float64| over the sampled outputs. */
  maxErr?: number;
  checked?: number;
  /** wgnn: largest |gpu - cpu reference| on the small batch, and how many entries that covered. */
  cpuMaxErr?: number;
  cpuChecked?: number;
  /** TF.js: the kernel timed, whether its result stayed on the GPU, largest |TF.js - wgnn| over every output. */
  kernel?: string;
  onGpu?: boolean;
  maxDiffVsWgnn?: number;
}

export interface ConvRow {
  case: string;
  pass: Pass;
  x: number[];
  w: number[];
  y: number[];
  stride: number;
  padding: Padding | 'n/a';
  dilation: number;
  flops: number;
  wgnn: EngineResult | null;
  tfjs: EngineResult | null;
  /** TF.js ms / wgnn ms: > 1 means wgnn is faster. */
  ratio: number | null;
}

interface TimingOpts {
  trialMs: number;
  maxTrials: number;
}

export async function benchConv(gpu: WebGpuBackend, opts: { quick?: boolean; batch?: number; peers?: boolean }): Promise<ConvRow[]> {
  const ops = availableOps();
  const timing: TimingOpts = opts.quick ? { trialMs: 150, maxTrials: 3 } : { trialMs: 400, maxTrials: 5 };
  let peer: TfjsPeer | undefined;
  if (opts.peers !== false) {
    try {
      peer = await loadTfjs();
    } catch (e) {
      console.log(`TF.js: unavailable: ${msg(e)}`);
    }
  }
  console.log('conv2d f32 NHWC x [N,H,W,C] * w [R,S,C,K] -> y [N,P,Q,K], inputs and dy uniform in [-1,1]');
  console.log('FLOPs = 2·N·P·Q·K·R·S·C for each pass; ratio = TF.js ms / wgnn ms (> 1: wgnn faster)');
  if ('missing' in ops) console.log(`wgnn: UNAVAILABLE: src/ops/conv.ts has no ${ops.missing.join(', ')} yet; timing TF.js alone`);
  if (peer) {
    console.log(`peer: ${peer.description}; dx = tf.conv2dTranspose (Conv2DBackpropInput kernel), dw = Conv2DBackpropFilter kernel`);
  }
  console.log(
    `${'case'.padEnd(40)} ${'pass'.padEnd(6)} ${'check'.padEnd(6)} ${'wgnn ms'.padStart(9)} ${'GFLOP/s'.padStart(8)} ` +
      `${'TF.js ms'.padStart(9)} ${'GFLOP/s'.padStart(8)} ${'ratio'.padStart(6)}`,
  );
  const rows: ConvRow[] = [];
  const print = (r: ConvRow, label: string): void => {
    rows.push(r);
    const ms = (e: EngineResult | null): string => (e?.ms === undefined ? (e && !e.ok ? 'FAIL' : '—') : e.ms.toFixed(2));
    const gf = (e: EngineResult | null): string => (e?.gflops === undefined ? '—' : e.gflops.toFixed(2));
    const ok = [r.wgnn, r.tfjs].every((e) => !e || e.ok) ? 'ok' : 'FAIL';
    console.log(
      `${label.padEnd(40)} ${r.pass.padEnd(6)} ${ok.padEnd(6)} ${ms(r.wgnn).padStart(9)} ${gf(r.wgnn).padStart(8)} ` +
        `${ms(r.tfjs).padStart(9)} ${gf(r.tfjs).padStart(8)} ${(r.ratio === null ? '—' : r.ratio.toFixed(2)).padStart(6)}`,
    );
    for (const [who, e] of [['wgnn', r.wgnn], ['TF.js', r.tfjs]] as const) {
      if (e?.error) console.log(`  ${who}: ${e.error}`);
      if (who === 'TF.js' && e && e.onGpu === false) console.log('  TF.js: result was computed on the CPU, not the GPU');
    }
  };
  try {
    for (const c of CASES) {
      const N = opts.batch ?? (opts.quick ? c.quickBatch : c.x[0]);
      for (const row of await benchCase(gpu, ops, peer, c, N, timing)) print(row, caseLabel(c, N));
    }
    const n = opts.quick ? 256 : 512;
    print(await benchMatmulRow(gpu, peer, n, timing), `matmul [${n},${n}]@[${n},${n}] (sanity)`);
  } finally {
    peer?.close();
  }
  return rows;
}

const caseLabel = (c: ConvCase, N: number): string =>
  `${c.name} [${N},${c.x.slice(1).join(',')}]→${c.w[3]} ${c.w[0]}×${c.w[1]} ${c.padding}${c.stride > 1 ? ` s${c.stride}` : ''}`;

// ---------------------------------------------------------------------------------------------------------------
// wgnn's conv ops, looked up by name so the family reports them missing instead of failing to build.

type Ops = { conv2d: AnyOp; conv2d_bwd_x: AnyOp; conv2d_bwd_w: AnyOp } | { missing: string[] };

function availableOps(): Ops {
  const table: Partial<Record<'conv2d' | 'conv2d_bwd_x' | 'conv2d_bwd_w', AnyOp>> = convOps;
  const { conv2d, conv2d_bwd_x, conv2d_bwd_w } = table;
  if (conv2d && conv2d_bwd_x && conv2d_bwd_w) return { conv2d, conv2d_bwd_x, conv2d_bwd_w };
  return { missing: Object.entries({ conv2d, conv2d_bwd_x, conv2d_bwd_w }).filter(([, v]) => !v).map(([k]) => k) };
}

// ---------------------------------------------------------------------------------------------------------------
// Geometry (TF/Keras 'same' and 'valid': 'same' pads (R-1)·d + 1 - stride-remainder in total, the smaller half on top).

/** x [N,H,W,C], w [R,S,C,K], y [N,P,Q,K]; the padding above and left of x; stride and dilation. */
interface Geom {
  N: number;
  H: number;
  W: number;
  C: number;
  R: number;
  S: number;
  K: number;
  P: number;
  Q: number;
  padTop: number;
  padLeft: number;
  stride: number;
  dil: number;
}

function geometry(c: ConvCase, N: number): Geom {
  const [, H, W, C] = c.x;
  const [R, S, , K] = c.w;
  const st = c.stride;
  const d = c.dilation;
  const out = (In: number, F: number): [number, number] => {
    if (c.padding === 'valid') return [Math.ceil((In - (F - 1) * d) / st), 0];
    const P = Math.ceil(In / st);
    return [P, Math.floor(Math.max(0, (P - 1) * st + (F - 1) * d + 1 - In) / 2)];
  };
  const [P, padTop] = out(H, R);
  const [Q, padLeft] = out(W, S);
  return { N, H, W, C, R, S, K, P, Q, padTop, padLeft, stride: st, dil: d };
}

/**
 * The float64 value of one output of a pass, and the length of its reduction. Written from the definitions,
 * independently of wgnn's CPU reference: y[n,p,q,k] = Σ_{r,s,c} x[n, p·st - pt + r·d, q·st - pl + s·d, c]·w[r,s,c,k].
 */
function exact(g: Geom, pass: Pass, idx: number, x: Float32Array, w: Float32Array, dy: Float32Array): { want: number; length: number } {
  const { H, W, C, R, S, K, P, Q, padTop, padLeft, stride: st, dil: d } = g;
  const X = (n: number, h: number, v: number, c: number): number => x[((n * H + h) * W + v) * C + c]!;
  const Wt = (r: number, s: number, c: number, k: number): number => w[((r * S + s) * C + c) * K + k]!;
  const DY = (n: number, p: number, q: number, k: number): number => dy[((n * P + p) * Q + q) * K + k]!;
  let want = 0;
  if (pass === 'fwd') {
    // idx over y [N,P,Q,K]
    const k = idx % K, q = Math.floor(idx / K) % Q, p = Math.floor(idx / (K * Q)) % P, n = Math.floor(idx / (K * Q * P));
    for (let r = 0; r < R; r++) {
      const h = p * st - padTop + r * d;
      if (h < 0 || h >= H) continue;
      for (let s = 0; s < S; s++) {
        const v = q * st - padLeft + s * d;
        if (v < 0 || v >= W) continue;
        for (let c = 0; c < C; c++) want += X(n, h, v, c) * Wt(r, s, c, k);
      }
    }
    return { want, length: R * S * C };
  }
  if (pass === 'bwd_x') {
    // idx over dx [N,H,W,C]: in the forward pass x[n,h,v,c] fed every y[n,p,q,k] with p·st - pt + r·d = h, so
    // dx[n,h,v,c] = Σ dy[n,p,q,k]·w[r,s,c,k] over those (p, q, r, s) and all k.
    const c = idx % C, v = Math.floor(idx / C) % W, h = Math.floor(idx / (C * W)) % H, n = Math.floor(idx / (C * W * H));
    for (let r = 0; r < R; r++) {
      const ph = h + padTop - r * d;
      if (ph < 0 || ph % st !== 0 || ph / st >= P) continue;
      for (let s = 0; s < S; s++) {
        const qw = v + padLeft - s * d;
        if (qw < 0 || qw % st !== 0 || qw / st >= Q) continue;
        for (let k = 0; k < K; k++) want += DY(n, ph / st, qw / st, k) * Wt(r, s, c, k);
      }
    }
    return { want, length: R * S * K };
  }
  // idx over dw [R,S,C,K]: dw[r,s,c,k] = Σ_{n,p,q} x[n, p·st - pt + r·d, q·st - pl + s·d, c]·dy[n,p,q,k].
  const k = idx % K, c = Math.floor(idx / K) % C, s = Math.floor(idx / (K * C)) % S, r = Math.floor(idx / (K * C * S));
  for (let n = 0; n < g.N; n++) {
    for (let p = 0; p < P; p++) {
      const h = p * st - padTop + r * d;
      if (h < 0 || h >= H) continue;
      for (let q = 0; q < Q; q++) {
        const v = q * st - padLeft + s * d;
        if (v >= 0 && v < W) want += X(n, h, v, c) * DY(n, p, q, k);
      }
    }
  }
  return { want, length: g.N * P * Q };
}

const allowed = (tol: Tol, length: number, want: number): number =>
  tol.atol * Math.max(1, Math.sqrt(length / TOL_LENGTH)) + tol.rtol * Math.abs(want);

/** Checks `got` at sampled indices against float64 values; returns the first failure or the largest error. */
function checkSamples(
  what: string,
  got: Float32Array,
  indices: number[],
  exactAt: (i: number) => { want: number; length: number },
  tol: Tol,
  seed: number,
): { maxErr: number; checked: number; error?: string } {
  let maxErr = 0;
  for (const i of indices) {
    const { want, length } = exactAt(i);
    const err = Math.abs(got[i]! - want);
    if (!(err <= allowed(tol, length, want))) {
      return { maxErr: err, checked: indices.length, error: `${what}[${i}] = ${got[i]}, expected ${want} (float64), |err| ${err.toExponential(2)} (seed ${seed})` };
    }
    maxErr = Math.max(maxErr, err);
  }
  return { maxErr, checked: indices.length };
}

// ---------------------------------------------------------------------------------------------------------------

const PASSES: Pass[] = ['fwd', 'bwd_x', 'bwd_w'];

async function benchCase(
  gpu: WebGpuBackend,
  ops: Ops,
  peer: TfjsPeer | undefined,
  c: ConvCase,
  N: number,
  timing: TimingOpts,
): Promise<ConvRow[]> {
  const g = geometry(c, N);
  const xShape = [N, g.H, g.W, g.C];
  const wShape = [g.R, g.S, g.C, g.K];
  const yShape = [N, g.P, g.Q, g.K];
  const seed = N * 1000 + g.H * 10 + g.K;
  const rng = new Rng(seed);
  const host = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
  const x = host(N * g.H * g.W * g.C);
  const w = host(g.R * g.S * g.C * g.K);
  const dy = host(N * g.P * g.Q * g.K);
  const attrs = { stride: c.stride, padding: c.padding, dilation: c.dilation };
  const flops = 2 * N * g.P * g.Q * g.K * g.R * g.S * g.C;
  const outShape: Record<Pass, number[]> = { fwd: yShape, bwd_x: xShape, bwd_w: wShape };

  // wgnn: the ops' inputs and attributes per pass.
  const wg = 'missing' in ops ? undefined : ops;
  const opOf = (p: Pass): AnyOp => (p === 'fwd' ? wg!.conv2d : p === 'bwd_x' ? wg!.conv2d_bwd_x : wg!.conv2d_bwd_w);
  const attrsOf = (p: Pass, n: number): object =>
    p === 'fwd' ? attrs : p === 'bwd_x' ? { ...attrs, xShape: [n, g.H, g.W, g.C] } : { ...attrs, wShape };
  const argsOf = (p: Pass, t: { x: Tensor; w: Tensor; dy: Tensor }): Tensor[] =>
    p === 'fwd' ? [t.x, t.w] : p === 'bwd_x' ? [t.dy, t.w] : [t.x, t.dy];

  const cpuChecks = wg ? await checkAgainstCpu(gpu, g, x, w, dy, opOf, attrsOf, argsOf, seed) : undefined;
  const gpuT = wg && {
    x: tensor(x, xShape, { backend: gpu }),
    w: tensor(w, wShape, { backend: gpu }),
    dy: tensor(dy, yShape, { backend: gpu }),
  };

  const rows: ConvRow[] = [];
  try {
    for (const pass of PASSES) {
      const size = outShape[pass].reduce((a, b) => a * b, 1);
      const indices = sampleIndices(size, rng);
      const exactAt = (i: number): { want: number; length: number } => exact(g, pass, i, x, w, dy);
      const tol = wg ? opOf(pass).tol : DEFAULT_TOL;

      let wgnn: EngineResult | null = null;
      let ours: Float32Array | undefined;
      if (wg && gpuT) {
        const op = opOf(pass);
        const args = argsOf(pass, gpuT);
        const a = attrsOf(pass, N);
        wgnn = { ok: true, ...cpuChecks![pass] };
        try {
          const y = apply(op, args, a);
          if (y.shape.join() !== outShape[pass].join()) throw new Error(`${op.name} gave shape [${y.shape}], expected [${outShape[pass]}]`);
          ours = (await y.data()) as Float32Array;
          y.dispose();
          const chk = checkSamples(op.name, ours, indices, exactAt, tol, seed);
          wgnn = { ...wgnn, maxErr: chk.maxErr, checked: chk.checked };
          if (wgnn.error || chk.error) wgnn = { ...wgnn, ok: false, error: wgnn.error ?? chk.error };
          else wgnn = { ...wgnn, ...(await time(() => apply(op, args, a).dispose(), () => gpu.sync(), flops, timing)) };
        } catch (e) {
          wgnn = { ...wgnn, ok: false, error: msg(e) };
        }
      }

      let tfjs: EngineResult | null = null;
      if (peer) {
        const hx: HostTensor = { data: x, shape: xShape };
        const hw: HostTensor = { data: w, shape: wShape };
        const hdy: HostTensor = { data: dy, shape: yShape };
        tfjs = await runPeer(
          peer,
          () =>
            pass === 'fwd'
              ? peer.conv2d(hx, hw, attrs)
              : pass === 'bwd_x'
                ? peer.conv2dBwdX(hdy, hw, xShape, attrs)
                : peer.conv2dBwdW(hx, hdy, wShape, attrs),
          `TF.js ${pass}`,
          indices,
          exactAt,
          tol,
          seed,
          ours,
          flops,
          timing,
        );
      }
      rows.push({
        case: c.name,
        pass,
        x: xShape,
        w: wShape,
        y: yShape,
        stride: c.stride,
        padding: c.padding,
        dilation: c.dilation,
        flops,
        wgnn,
        tfjs,
        ratio: wgnn?.ms && tfjs?.ms ? tfjs.ms / wgnn.ms : null,
      });
    }
  } finally {
    if (gpuT) for (const t of Object.values(gpuT)) t.dispose();
  }
  return rows;
}

/**
 * Runs every pass on the first CPU_BATCH images on both backends and compares every output entry. The CPU
 * reference stores f32 and sums in float64; its error is part of the budget, as in the op table's own tests.
 */
async function checkAgainstCpu(
  gpu: WebGpuBackend,
  g: Geom,
  x: Float32Array,
  w: Float32Array,
  dy: Float32Array,
  opOf: (p: Pass) => AnyOp,
  attrsOf: (p: Pass, n: number) => object,
  argsOf: (p: Pass, t: { x: Tensor; w: Tensor; dy: Tensor }) => Tensor[],
  seed: number,
): Promise<Record<Pass, Pick<EngineResult, 'cpuMaxErr' | 'cpuChecked' | 'error'>>> {
  const n = Math.min(CPU_BATCH, g.N);
  const xs = x.subarray(0, n * g.H * g.W * g.C);
  const dys = dy.subarray(0, n * g.P * g.Q * g.K);
  const cpu = new CpuBackend();
  const on = (b: WebGpuBackend | CpuBackend): { x: Tensor; w: Tensor; dy: Tensor } => ({
    x: tensor(xs, [n, g.H, g.W, g.C], { backend: b }),
    w: tensor(w, [g.R, g.S, g.C, g.K], { backend: b }),
    dy: tensor(dys, [n, g.P, g.Q, g.K], { backend: b }),
  });
  const tc = on(cpu);
  const tg = on(gpu);
  const out = {} as Record<Pass, Pick<EngineResult, 'cpuMaxErr' | 'cpuChecked' | 'error'>>;
  const lengths: Record<Pass, number> = { fwd: g.R * g.S * g.C, bwd_x: g.R * g.S * g.K, bwd_w: n * g.P * g.Q };
  try {
    for (const pass of PASSES) {
      const op = opOf(pass);
      try {
        const yc = apply(op, argsOf(pass, tc), attrsOf(pass, n));
        const yg = apply(op, argsOf(pass, tg), attrsOf(pass, n));
        const [want, got] = [(await yc.data()) as Float32Array, (await yg.data()) as Float32Array];
        yc.dispose();
        yg.dispose();
        let maxErr = 0;
        let error: string | undefined;
        for (let i = 0; i < want.length; i++) {
          const err = Math.abs(got[i]! - want[i]!);
          if (!(err <= allowed(op.tol, lengths[pass], want[i]!))) {
            error = `${op.name} batch ${n}: gpu[${i}] = ${got[i]}, cpu reference ${want[i]}, |err| ${err.toExponential(2)} (seed ${seed})`;
            break;
          }
          maxErr = Math.max(maxErr, err);
        }
        out[pass] = { cpuMaxErr: maxErr, cpuChecked: want.length, ...(error ? { error } : {}) };
      } catch (e) {
        out[pass] = { error: `${op.name} batch ${n} (vs CPU reference): ${msg(e)}` };
      }
    }
  } finally {
    for (const t of [...Object.values(tc), ...Object.values(tg)]) t.dispose();
  }
  return out;
}

/** Validates one TF.js computation (float64 samples, and every entry against wgnn's result when there is one), then times it. */
async function runPeer(
  peer: TfjsPeer,
  make: () => PeerRun,
  what: string,
  indices: number[],
  exactAt: (i: number) => { want: number; length: number },
  tol: Tol,
  seed: number,
  ours: Float32Array | undefined,
  flops: number,
  timing: TimingOpts,
): Promise<EngineResult> {
  let run: PeerRun | undefined;
  let r: EngineResult = { ok: true };
  try {
    run = make();
    r.kernel = run.kernel;
    const { data, onGpu } = await run.result();
    r.onGpu = onGpu;
    const chk = checkSamples(what, data, indices, exactAt, tol, seed);
    r = { ...r, maxErr: chk.maxErr, checked: chk.checked };
    if (chk.error) return { ...r, ok: false, error: chk.error };
    if (ours) {
      let maxDiff = 0;
      for (let i = 0; i < ours.length; i++) maxDiff = Math.max(maxDiff, Math.abs(data[i]! - ours[i]!));
      r.maxDiffVsWgnn = maxDiff;
    }
    const go = run;
    return { ...r, ...(await time(() => go.enqueue(), () => peer.sync(), flops, timing)) };
  } catch (e) {
    return { ...r, ok: false, error: `${what}: ${msg(e)}` };
  } finally {
    run?.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** The matmul family's square case on both engines: if these ratios disagree with `bench matmul`, the harness is off. */
async function benchMatmulRow(gpu: WebGpuBackend, peer: TfjsPeer | undefined, n: number, timing: TimingOpts): Promise<ConvRow> {
  const rng = new Rng(n);
  const A = Float32Array.from({ length: n * n }, () => rng.uniform(-1, 1));
  const B = Float32Array.from({ length: n * n }, () => rng.uniform(-1, 1));
  const flops = 2 * n ** 3;
  const indices = sampleIndices(n * n, rng);
  const exactAt = (idx: number): { want: number; length: number } => {
    const i = Math.floor(idx / n);
    const j = idx % n;
    let want = 0;
    for (let k = 0; k < n; k++) want += A[i * n + k]! * B[k * n + j]!;
    return { want, length: n };
  };
  const tol = matmulOps.matmul.tol;
  const a = tensor(A, [n, n], { backend: gpu });
  const b = tensor(B, [n, n], { backend: gpu });
  let wgnn: EngineResult;
  let ours: Float32Array | undefined;
  try {
    const y = matmul(a, b);
    ours = (await y.data()) as Float32Array;
    y.dispose();
    const chk = checkSamples('matmul', ours, indices, exactAt, tol, n);
    wgnn = chk.error
      ? { ok: false, error: chk.error, maxErr: chk.maxErr, checked: chk.checked }
      : { ok: true, maxErr: chk.maxErr, checked: chk.checked, ...(await time(() => matmul(a, b).dispose(), () => gpu.sync(), flops, timing)) };
  } catch (e) {
    wgnn = { ok: false, error: `matmul: ${msg(e)}` };
  } finally {
    a.dispose();
    b.dispose();
  }
  const host = (data: Float32Array): HostTensor => ({ data, shape: [n, n] });
  const tfjs = peer
    ? await runPeer(peer, () => peer.matmul(host(A), host(B)), 'TF.js matmul', indices, exactAt, tol, n, ours, flops, timing)
    : null;
  return {
    case: 'matmul',
    pass: 'fwd',
    x: [n, n],
    w: [n, n],
    y: [n, n],
    stride: 1,
    padding: 'n/a',
    dilation: 1,
    flops,
    wgnn,
    tfjs,
    ratio: wgnn.ms && tfjs?.ms ? tfjs.ms / wgnn.ms : null,
  };
}

/**
 * Median ms of one run over trials of R back-to-back runs with one sync each (as bench/matmul.ts). The first,
 * untimed run plus sync warms up (pipelines are compiled by the validation run before it) and sizes R.
 */
async function time(
  once: () => void,
  sync: () => Promise<void>,
  flops: number,
  t: TimingOpts,
): Promise<Pick<EngineResult, 'ms' | 'gflops' | 'reps' | 'trials'>> {
  let t0 = performance.now();
  once();
  await sync();
  const estimate = performance.now() - t0;
  const reps = Math.max(1, Math.min(100, Math.round(t.trialMs / Math.max(estimate, 1e-3))));
  const trials = estimate > 2000 ? 2 : t.maxTrials;
  const per: number[] = [];
  for (let i = 0; i < trials; i++) {
    t0 = performance.now();
    for (let r = 0; r < reps; r++) once();
    await sync();
    per.push((performance.now() - t0) / reps);
  }
  const ms = median(per);
  return { ms, gflops: flops / (ms * 1e6), reps, trials };
}

/** CHECK_SAMPLES random indices of [0, size), and the first and last. */
function sampleIndices(size: number, rng: Rng): number[] {
  if (size <= CHECK_SAMPLES) return Array.from({ length: size }, (_, i) => i);
  return [0, size - 1, ...Array.from({ length: CHECK_SAMPLES - 2 }, () => rng.int(0, size))];
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

const msg = (e: unknown): string => (e instanceof Error ? e.message : String(e));
