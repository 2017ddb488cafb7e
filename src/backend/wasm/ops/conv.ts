// conv2d / conv2d_bias / conv2d_bwd_x / conv2d_bwd_w on the wasm backend (assembly/conv.ts): implicit GEMMs over the
// matmul micro-kernel and its tiling plan, each task packing its block of the im2col matrix from the image.
import type { Conv2dAttrs, Conv2dBwdWAttrs, Conv2dBwdXAttrs, ConvAttrs } from '../../../ops/conv.js';
import type { OpName } from '../../../ops/registry.js';
import { slideWindow } from '../../../ops/window.js';
import type { Shape } from '../../../shape.js';
import type { WasmCtx, WasmKernel } from '../kernel.js';
import { ACTIVATION_CODES, KC, MAX_TASKS, MIN_TILES, NR, PARALLEL_FLOPS, gemmPlan, packTasks } from './matmul.js';

/** x [N,H,W,C], w [R,S,C,K] and the window, as the op's shape rule resolved them (it has already checked them). */
function geometry(op: string, xs: Shape, ws: Shape, a: ConvAttrs) {
  const [N, H, W, C] = xs as [number, number, number, number];
  const [R, S, , K] = ws as [number, number, number, number];
  const win = slideWindow(op, 'x and w', H, W, [R, S], a, { noun: 'kernel', strideAttr: 'stride' });
  return { N, H, W, C, R, S, K, ...win };
}
type Geom = ReturnType<typeof geometry>;

/** The geometry words every conv kernel takes, in its argument order. */
const words = (g: Geom): number[] => [g.N, g.H, g.W, g.C, g.R, g.S, g.K, g.P, g.Q, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl];

/** Packs a row-major [Kr, N] matrix (w as [R·S·C, K], or dy as [N·P·Q, K]) into B panels; returns their offset. */
function packRows(ctx: WasmCtx<unknown>, src: number, Kr: number, N: number): number {
  const panels = Math.ceil(N / NR);
  const pb = ctx.scratch(Math.max(16, 4 * panels * NR * Kr));
  if (Kr > 0) ctx.parallel('matmul_pack_b', [src, pb, Kr, N, 0, 1, 1, 1, 1, 0, 0, 0, 0], packTasks(panels, Kr));
  return pb;
}

// y [N,P,Q,K] = act(im2col(x) [N·P·Q, R·S·C] @ w [R·S·C, K] + bias).
function convKernel(withBias: boolean): WasmKernel<Conv2dAttrs> {
  return (ctx) => {
    const [x, w, bias] = ctx.inputs;
    const g = geometry('conv2d', x!.shape, w!.shape, ctx.attrs);
    const M = g.N * g.P * g.Q;
    if (M * g.K === 0) return;
    const Kr = g.R * g.S * g.C;
    const pb = packRows(ctx, w!.ptr, Kr, g.K);
    const plan = gemmPlan(M, g.K, Kr);
    const scratch = ctx.scratch(plan.tasks * plan.taskBytes);
    ctx.parallel(
      'conv2d_tiles',
      [
        x!.ptr,
        pb,
        ctx.out.ptr,
        withBias ? bias!.ptr : 0,
        +withBias,
        ACTIVATION_CODES[ctx.attrs.activation],
        ctx.attrs.alpha,
        ...words(g),
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

/** Pixels of phase ph along an axis of H pixels (those with (h + pt) % sh = ph), as assembly/conv.ts counts them. */
function phasePixels(H: number, pt: number, sh: number, ph: number): number {
  const h0 = (((ph - pt) % sh) + sh) % sh;
  return h0 < H ? Math.ceil((H - h0) / sh) : 0;
}

// In the forward pass x[n,h,w,c] fed y[n,p,q,k] through w[r,s,c,k]; so now dx [N·H·W, C] gathers, for each of its
// elements, dy[n,p,q,k]·w[r,s,c,k] over the (r, s, k) whose tap read it: A [N·H·W, R·S·K] @ B [R·S·K, C].
// At stride > 1 (dilation 1) by phases (assembly/conv.ts conv2d_bwd_x_phases): a pixel is reached by only the taps
// of its phase, and the plain gather would multiply the other taps' zeros.
// NOTE: strided and dilated at once still takes the plain gather, zeros included.
const bwdX: WasmKernel<Conv2dBwdXAttrs> = (ctx) => {
  const [dy, w] = ctx.inputs;
  const g = geometry('conv2d_bwd_x', ctx.attrs.xShape, w!.shape, ctx.attrs);
  const M = g.N * g.H * g.W;
  if (M * g.C === 0) return;
  const Kr = g.R * g.S * g.K;
  const panels = Math.ceil(g.C / NR);
  const pb = ctx.scratch(Math.max(16, 4 * panels * NR * Kr));
  if ((g.sh > 1 || g.sw > 1) && g.dh === 1 && g.dw === 1) {
    const packArgs = [w!.ptr, pb, g.R, g.S, g.C, g.K, g.sh, g.sw];
    ctx.parallel('conv2d_bwd_x_pack_w_phases', packArgs, packTasks(g.sh * g.sw * panels, Kr / (g.sh * g.sw)));
    const KrMax = Math.ceil(g.R / g.sh) * Math.ceil(g.S / g.sw) * g.K;
    const plan = gemmPlan(Math.ceil(g.W / g.sw), g.C, KrMax);
    let units = 0;
    for (let ph = 0; ph < g.sh; ph++) {
      for (let pw = 0; pw < g.sw; pw++) {
        const lines = g.N * phasePixels(g.H, g.pt, g.sh, ph);
        units += lines * Math.ceil(phasePixels(g.W, g.pl, g.sw, pw) / plan.mc) * Math.ceil(g.C / plan.nc);
      }
    }
    const tasks = Math.max(1, Math.min(units, MAX_TASKS));
    const scratch = ctx.scratch(tasks * plan.taskBytes);
    const dims = [g.N, g.H, g.W, g.C, g.R, g.S, g.K, g.P, g.Q, g.sh, g.sw, g.pt, g.pl];
    const args = [dy!.ptr, pb, ctx.out.ptr, ...dims, plan.mc, plan.nc, plan.kcb, scratch, plan.taskBytes];
    ctx.parallel('conv2d_bwd_x_phases', args, tasks);
    return;
  }
  if (Kr > 0) ctx.parallel('conv2d_bwd_x_pack_w', [w!.ptr, pb, g.R * g.S, g.C, g.K], packTasks(panels, Kr));
  const plan = gemmPlan(M, g.C, Kr);
  const scratch = ctx.scratch(plan.tasks * plan.taskBytes);
  ctx.parallel(
    'conv2d_bwd_x_tiles',
    [dy!.ptr, pb, ctx.out.ptr, ...words(g), plan.mc, plan.nc, plan.kcb, scratch, plan.taskBytes],
    plan.tasks,
  );
};

// dw [R·S·C, K] = im2col(x)ᵀ @ dy [N·P·Q, K]. Few outputs, a long sum: the N·P·Q terms are cut into spans of whole
// K blocks (from the shapes alone) summed by separate tasks, then added in span order: deterministic, no atomics.
const bwdW: WasmKernel<Conv2dBwdWAttrs> = (ctx) => {
  const [x, dy] = ctx.inputs;
  const g = geometry('conv2d_bwd_w', x!.shape, ctx.attrs.wShape, ctx.attrs);
  const M = g.R * g.S * g.C;
  if (M * g.K === 0) return;
  const Kr = g.N * g.P * g.Q;
  const pb = packRows(ctx, dy!.ptr, Kr, g.K);
  const plan = gemmPlan(M, g.K, Kr);
  const tiles = Math.ceil(M / plan.mc) * Math.ceil(g.K / plan.nc);
  const blocks = Math.max(1, Math.ceil(Kr / KC));
  const want = 2 * M * g.K * Kr >= PARALLEL_FLOPS ? Math.min(blocks, Math.ceil((2 * MIN_TILES) / tiles)) : 1;
  const span = Math.ceil(blocks / want) * KC;
  const splits = Math.max(1, Math.ceil(Kr / span));
  const out = splits > 1 ? ctx.scratch(4 * splits * M * g.K) : ctx.out.ptr;
  const tasks = Math.min(tiles * splits, MAX_TASKS);
  const scratch = ctx.scratch(tasks * plan.taskBytes);
  ctx.parallel(
    'conv2d_bwd_w_tiles',
    [x!.ptr, pb, out, ...words(g), span, splits, plan.mc, plan.nc, plan.kcb, scratch, plan.taskBytes],
    tasks,
  );
  if (splits > 1) {
    const count = M * g.K;
    ctx.parallel(
      'conv2d_bwd_w_reduce',
      [out, ctx.out.ptr, count, splits],
      Math.max(1, Math.min(MAX_TASKS, Math.floor(count / 4096))),
    );
  }
};

/** The wasm kernels of src/ops/conv.ts. */
export const convKernels = {
  conv2d: convKernel(false),
  conv2d_bias: convKernel(true),
  conv2d_bwd_x: bwdX,
  conv2d_bwd_w: bwdW,
} satisfies Partial<Record<OpName, WasmKernel<never>>>;
