// What the fused update kernels share: a flat grid of threads updating 4 parameter elements each (the entry point
// shaders/_update.wgsl), bindings [param, ...state] (read-write) then [grad, scale] (read-only) then the uniforms,
// and the optional clip scale on the CPU side.
import type { CpuInput } from '../backend/backend.js';
import { grid1d, u32, type InPlaceGpuArgs, type UniformWord } from '../backend/kernel.js';
import type { ShaderName } from '../shaders.gen.js';
import { sizeOf } from '../shape.js';

const WG = 256;

/** The per-step values of one parameter's update, updated in place by the optimizer (and by replays). */
export interface Live {
  lr: number;
  /** This parameter's step count, 1 on its first update. */
  step: number;
}

/**
 * Encodes one fused update over `targets[0]` (the parameter, n elements); `uniforms()` follow n in the struct.
 * NOTE: without a clip scale the gradient is bound a second time in the scale slot (two read-only bindings of one
 * buffer are legal), so each rule has one binding layout; HAS_SCALE = false keeps the kernel from reading it.
 */
export function dispatchUpdate<A>(
  shader: ShaderName,
  { targets, inputs, ctx }: InPlaceGpuArgs<A>,
  overrides: Record<string, boolean>,
  uniforms: () => readonly UniformWord[],
): void {
  const n = sizeOf(targets[0]!.shape);
  const grad = inputs[0]!;
  const scale = inputs[1];
  ctx.dispatch({
    shader,
    overrides: { WG, HAS_SCALE: scale !== undefined, ...overrides },
    workgroups: grid1d(Math.ceil(n / 4), WG, ctx.limits.maxComputeWorkgroupsPerDimension),
    outputs: targets,
    inputs: [grad, scale ?? grad],
    // A function: a replayed step re-evaluates it, reading the optimizer's live learning rate and step.
    uniforms: () => [u32(n), ...uniforms()],
  });
}

/** For CPU references: element i of the gradient (inputs[0]) times the clip scale (inputs[1], [1]) if given. */
export function cpuGrad(inputs: readonly CpuInput[]): (i: number) => number {
  const g = inputs[0]!.data;
  const s = inputs[1] ? inputs[1].data[0]! : 1;
  return (i) => g[i]! * s;
}
