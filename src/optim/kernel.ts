// What the fused update kernels share: a flat grid of threads updating 4 parameter elements each (the entry point
// shaders/_update.wgsl), bindings [param, ...state] (read-write) then [grad, scale] (read-only) then the uniforms,
// the optional clip scale on the CPU side, and the shape of their test samples.
import type { CpuInput } from '../backend/backend.js';
import { grid1d, u32, type InPlaceGpuArgs, type UniformWord } from '../backend/kernel.js';
import type { InPlaceSample } from '../ops/inplace.js';
import type { SampleInput } from '../ops/op.js';
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

/** One test case of an update rule (see updateSamples). */
export interface UpdateCase<A> {
  label: string;
  attrs: A;
  /** Each state slot's value range, or null for the [1] placeholder bound where these options leave it unused. */
  slots: readonly ([number, number] | null)[];
  /** The clip scale bound as inputs[1] (HAS_SCALE), or none. */
  scale?: number;
}

/**
 * Parameter shapes the cases take in turn: 4 elements per thread, so sizes off a multiple of 4 end in a partial
 * quad; 1031 elements span five workgroups of 256 threads.
 */
const UPDATE_SHAPES = [[1], [7], [33], [65], [129], [1031], [4, 33]];

/** Samples of a fused update: targets [param in [-2, 2], ...slots], inputs [grad in [-1, 1], scale?]. */
export function updateSamples<A>(cases: readonly UpdateCase<A>[]): InPlaceSample<A>[] {
  return cases.map((c, i) => {
    const shape = UPDATE_SHAPES[i % UPDATE_SHAPES.length]!;
    const slot = (r: [number, number] | null): SampleInput => (r ? { shape, range: r } : { shape: [1], values: [0] });
    return {
      name: `${c.label} [${shape.join(',')}]`,
      targets: [{ shape, range: [-2, 2] }, ...c.slots.map(slot)],
      inputs: [{ shape, range: [-1, 1] }, ...(c.scale === undefined ? [] : [{ shape: [1], values: [c.scale] }])],
      attrs: c.attrs,
    };
  });
}
