// Conv2d f32, NHWC: forward, input gradient and filter gradient of a few CNN layers. Forward and input gradient are
// checked against wgnn's CPU reference on the first images of the batch (their outputs depend on those images only);
// the filter gradient sums over the whole batch, so it is checked against the CPU reference on the whole batch when
// that is affordable, else against float64 sums written from the definition at sampled entries.
import { Rng } from '../src/index.js';
import { convOps, type AnyOp } from '../src/internal.js';
import {
  checkAgainst,
  cpuRun,
  hostUniform,
  opRunner,
  sizeOfShape,
  type Case,
  type Check,
  type FamilyOpts,
  type HostTensor,
} from './harness.js';
import type { JaxArray } from './peers/jax.js';

type Pass = 'fwd' | 'bwd_x' | 'bwd_w';
const PASSES: Pass[] = ['fwd', 'bwd_x', 'bwd_w'];

interface ConvCase {
  id: string;
  name: string;
  /** x [N,H,W,C] at the default batch. */
  x: [number, number, number, number];
  /** w [R,S,C,K]. */
  w: [number, number, number, number];
  padding: 'valid' | 'same';
  stride: number;
  dilation: number;
  /** Batch under --quick, and on lavapipe and on a GPU where it differs from x[0]. */
  quickBatch: number;
  softwareBatch?: number;
  gpuBatch?: number;
  /** H and W under --quick, where they differ. */
  quickHW?: number;
}

const CASES: ConvCase[] = [
  {
    id: 'seed1',
    name: 'seed conv1',
    x: [64, 28, 28, 1],
    w: [3, 3, 1, 32],
    padding: 'valid',
    stride: 1,
    dilation: 1,
    quickBatch: 8,
  },
  {
    id: 'seed2',
    name: 'seed conv2',
    x: [64, 13, 13, 32],
    w: [3, 3, 32, 64],
    padding: 'valid',
    stride: 1,
    dilation: 1,
    quickBatch: 8,
  },
  // Batch 2 keeps the peers' runs under a second on lavapipe (TF.js's filter gradient); a GPU runs 32.
  {
    id: 'resnet',
    name: 'resnet',
    x: [8, 56, 56, 64],
    w: [3, 3, 64, 64],
    padding: 'same',
    stride: 1,
    dilation: 1,
    quickBatch: 1,
    softwareBatch: 2,
    gpuBatch: 32,
    quickHW: 28,
  },
  // PEERS.md's anchor (TF.js 0.21 ms forward on the H100).
  {
    id: 'anchor',
    name: 'anchor',
    x: [32, 14, 14, 32],
    w: [3, 3, 32, 64],
    padding: 'same',
    stride: 1,
    dilation: 1,
    quickBatch: 4,
  },
];

/** Multiply-adds the CPU reference may spend on one pass (float64 loops in JavaScript: a second or two). */
const CPU_MACS = 2e8;
/** Entries of dw checked against float64 sums when the CPU reference over the whole batch is too slow. */
const SAMPLES = 4096;

/** x [N,H,W,C], w [R,S,C,K], y [N,P,Q,K]; the padding above and left of x (TF/Keras 'same': the smaller half on top). */
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

function geometry(c: ConvCase, N: number, quick: boolean): Geom {
  const [, H, W, C] = quick && c.quickHW ? [0, c.quickHW, c.quickHW, c.x[3]] : c.x;
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

export function convCases(o: FamilyOpts): Case[] {
  return CASES.flatMap((c, ci) => {
    const N = o.batch ?? (o.quick ? c.quickBatch : o.software ? (c.softwareBatch ?? c.x[0]) : (c.gpuBatch ?? c.x[0]));
    const g = geometry(c, N, o.quick);
    const xShape = [N, g.H, g.W, g.C];
    const wShape = [g.R, g.S, g.C, g.K];
    const yShape = [N, g.P, g.Q, g.K];
    const attrs = { stride: c.stride, padding: c.padding, dilation: c.dilation };
    const flops = 2 * N * g.P * g.Q * g.K * g.R * g.S * g.C;
    const label = `${c.name} [${N},${g.H},${g.W},${g.C}]→${c.w[3]} ${c.w[0]}×${c.w[1]} ${c.padding}${c.stride > 1 ? ` s${c.stride}` : ''}`;
    // Inputs per pass, in the op's order: fwd (x, w), bwd_x (dy, w), bwd_w (x, dy).
    const shapesOf: Record<Pass, number[][]> = {
      fwd: [xShape, wShape],
      bwd_x: [yShape, wShape],
      bwd_w: [xShape, yShape],
    };
    const outOf: Record<Pass, number[]> = { fwd: yShape, bwd_x: xShape, bwd_w: wShape };
    const opOf: Record<Pass, AnyOp> = { fwd: convOps.conv2d, bwd_x: convOps.conv2d_bwd_x, bwd_w: convOps.conv2d_bwd_w };
    const attrsOf = (p: Pass, n: number): object =>
      p === 'fwd' ? attrs : p === 'bwd_x' ? { ...attrs, xShape: [n, g.H, g.W, g.C] } : { ...attrs, wShape };
    return PASSES.map((pass): Case => {
      const seed = 9000 + ci * 100 + PASSES.indexOf(pass) * 10;
      const shapes = shapesOf[pass];
      return {
        family: 'conv',
        id: `${c.id}-${pass}`,
        label: `${label} ${pass}`,
        bound: 'compute',
        flops,
        bytes: 4 * [...shapes, outOf[pass]].reduce((s, sh) => s + sizeOfShape(sh), 0),
        meta: { pass, x: xShape, w: wShape, y: yShape, ...attrs },
        inputs: (set) => shapes.map((sh, i) => hostUniform(seed + set * 1000 + i, sh)),
        check: (inp) => convCheck(pass, g, opOf[pass], inp, attrsOf, seed),
        wgnn: (gpu, sets) => opRunner(gpu, opOf[pass], sets, attrsOf(pass, N)),
        tfjs: (p, sets) => {
          const tf = p.tf;
          if (pass === 'fwd')
            return p.prepare('Conv2D', sets, ([x, w]) =>
              tf.conv2d(x as never, w as never, c.stride, c.padding, 'NHWC', c.dilation),
            );
          if (c.dilation !== 1) throw new Error(`TF.js ${pass} takes no dilation (its WebGPU kernel fixes it at 1)`);
          // tf.conv2dTranspose(dy, w, xShape) is a direct call of the Conv2DBackpropInput kernel (the gradient of conv2d
          // with respect to x); by default (WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE) TF.js's direct, not matmul-based, program.
          if (pass === 'bwd_x') {
            return p.prepare('Conv2DBackpropInput', sets, ([dy, w]) =>
              tf.conv2dTranspose(
                dy as never,
                w as never,
                xShape as [number, number, number, number],
                c.stride,
                c.padding,
              ),
            );
          }
          // Conv2DBackpropFilter has no public op; tf.grad(conv2d) would also run the forward, so call the kernel.
          return p.prepare(
            'Conv2DBackpropFilter',
            sets,
            ([x, dy]) =>
              tf.engine().runKernel('Conv2DBackpropFilter', { x: x!, dy: dy! }, {
                strides: c.stride,
                pad: c.padding,
                dataFormat: 'NHWC',
                dimRoundingMode: undefined,
                filterShape: wShape,
              } as never) as never,
          );
        },
        jax: (p, sets) => {
          const { lax, numpy: np, vjp } = p.jax;
          const pad = c.padding === 'same' ? 'SAME' : 'VALID';
          const conv = (x: JaxArray, w: JaxArray): JaxArray =>
            lax.convGeneralDilated(x, w, [c.stride, c.stride], pad, { rhsDilation: [c.dilation, c.dilation] });
          // Inputs go in as NCHW / OIHW copies; results come back to NHWC / RSCK.
          const pre = (h: HostTensor, i: number): HostTensor => (pass !== 'bwd_w' && i === 1 ? toOihw(h) : toNchw(h));
          const post =
            pass === 'bwd_w' ? (d: Float32Array) => fromOihw(d, wShape) : (d: Float32Array) => fromNchw(d, outOf[pass]);
          const opts = {
            pre,
            post,
            ...(pass === 'fwd' ? {} : { note: "jit(vjp) at zeros: a linear map's gradient ignores the primal" }),
          };
          // The gradient of a linear map does not depend on the primal, so vjp is taken at zeros of its shape.
          const nchw = (s: number[]): number[] => [s[0]!, s[3]!, s[1]!, s[2]!];
          const oihw = [g.K, g.C, g.R, g.S];
          const grad = (f: (v: JaxArray) => JaxArray, at: number[], dy: JaxArray): JaxArray => {
            const [y, back] = vjp(f, [np.zeros(at)]);
            y.dispose();
            const [d] = back(dy) as unknown as JaxArray[];
            (back as { dispose?: () => void }).dispose?.();
            return d!;
          };
          if (pass === 'fwd') return p.prepare('conv_general_dilated', sets, (x, w) => conv(x!, w!), opts);
          if (pass === 'bwd_x')
            return p.prepare('vjp(conv) wrt x', sets, (dy, w) => grad((x) => conv(x, w!), nchw(xShape), dy!), opts);
          return p.prepare('vjp(conv) wrt w', sets, (x, dy) => grad((w) => conv(x!, w), oihw, dy!), opts);
        },
      };
    });
  });
}

/**
 * fwd and bwd_x: the op on wgnn's CPU backend over the first images (one or two), compared with those images of the
 * result. bwd_w: the CPU backend over the whole batch when that costs under CPU_MACS, else float64 sums at samples.
 */
async function convCheck(
  pass: Pass,
  g: Geom,
  op: AnyOp,
  inp: HostTensor[],
  attrsOf: (p: Pass, n: number) => object,
  seed: number,
): Promise<Check> {
  const macsPerImage = g.P * g.Q * g.K * g.R * g.S * g.C;
  const lengths: Record<Pass, number> = { fwd: g.R * g.S * g.C, bwd_x: g.R * g.S * g.K, bwd_w: g.N * g.P * g.Q };
  if (pass !== 'bwd_w') {
    const n = Math.min(g.N, Math.max(1, Math.min(2, Math.floor(CPU_MACS / macsPerImage))));
    const first = inp[0]!;
    const per = sizeOfShape(first.shape.slice(1));
    const sliced: HostTensor = { data: first.data.subarray(0, n * per), shape: [n, ...first.shape.slice(1)] };
    const want = await cpuRun(op, [sliced, inp[1]!], attrsOf(pass, n));
    return checkAgainst(
      n === g.N ? 'cpu reference' : `cpu reference (first ${n} of ${g.N} images)`,
      op.name,
      want,
      op.tol,
      seed,
      { length: lengths[pass] },
    );
  }
  if (macsPerImage * g.N <= CPU_MACS) {
    return checkAgainst('cpu reference', op.name, await cpuRun(op, inp, attrsOf(pass, g.N)), op.tol, seed, {
      length: lengths[pass],
    });
  }
  const [x, dy] = inp.map((h) => h.data as Float32Array) as [Float32Array, Float32Array];
  const size = g.R * g.S * g.C * g.K;
  const rng = new Rng(seed);
  const at = Int32Array.from({ length: Math.min(SAMPLES, size) }, (_, i) =>
    i === 0 ? 0 : i === 1 ? size - 1 : rng.int(0, size),
  );
  const want = Float64Array.from(at, (idx) => dwExact(g, idx, x, dy));
  return checkAgainst(`float64 sums (${at.length} sampled entries)`, op.name, want, op.tol, seed, {
    at,
    length: lengths[pass],
  });
}

/** dw[r,s,c,k] = Σ_{n,p,q} x[n, p·st − pt + r·d, q·st − pl + s·d, c]·dy[n,p,q,k], in float64 from the definition. */
function dwExact(g: Geom, idx: number, x: Float32Array, dy: Float32Array): number {
  const { H, W, C, S, K, P, Q, padTop, padLeft, stride: st, dil: d } = g;
  const k = idx % K;
  const c = Math.floor(idx / K) % C;
  const s = Math.floor(idx / (K * C)) % S;
  const r = Math.floor(idx / (K * C * S));
  let want = 0;
  for (let n = 0; n < g.N; n++) {
    for (let p = 0; p < P; p++) {
      const h = p * st - padTop + r * d;
      if (h < 0 || h >= H) continue;
      for (let q = 0; q < Q; q++) {
        const v = q * st - padLeft + s * d;
        if (v >= 0 && v < W) want += x[((n * H + h) * W + v) * C + c]! * dy[((n * P + p) * Q + q) * K + k]!;
      }
    }
  }
  return want;
}

// Layout copies for jax-js (NCHW images, OIHW filters) and back.
function permute(data: ArrayLike<number>, shape: number[], perm: number[]): Float32Array {
  const out = new Float32Array(data.length);
  const outShape = perm.map((p) => shape[p]!);
  const inStride = shape.map((_, i) => sizeOfShape(shape.slice(i + 1)));
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let j = 0; j < perm.length; j++) src += idx[j]! * inStride[perm[j]!]!;
    out[o] = data[src]!;
    for (let j = idx.length - 1; j >= 0 && ++idx[j]! === outShape[j]; j--) idx[j] = 0;
  }
  return out;
}
const toNchw = (h: HostTensor): HostTensor => ({
  data: permute(h.data, h.shape, [0, 3, 1, 2]),
  shape: [h.shape[0]!, h.shape[3]!, h.shape[1]!, h.shape[2]!],
});
const toOihw = (h: HostTensor): HostTensor => ({
  data: permute(h.data, h.shape, [3, 2, 0, 1]),
  shape: [h.shape[3]!, h.shape[2]!, h.shape[0]!, h.shape[1]!],
});
/** NCHW data of an NHWC `shape` back to NHWC. */
const fromNchw = (d: Float32Array, s: number[]): Float32Array => permute(d, [s[0]!, s[3]!, s[1]!, s[2]!], [0, 2, 3, 1]);
/** OIHW data of an RSCK `shape` back to RSCK. */
const fromOihw = (d: Float32Array, s: number[]): Float32Array => permute(d, [s[3]!, s[2]!, s[0]!, s[1]!], [2, 3, 1, 0]);
