// The kernel API, below the Backend contract: the tensor specs and typed arrays kernels see, what an op's CPU
// reference and WebGPU encoder receive, and the helpers kernels use for uniforms and grids.
import type { ShaderName } from '../shaders.gen.js';
import type { Shape } from '../shape.js';

/** A tensor's element type: float32 (data, weights) or int32 (labels, token ids, indices). */
export type DType = 'float32' | 'int32';
/** Float data: f32 on the GPU; the CPU backend may hold f64 (for finite-difference gradient checks). */
export type FloatArray = Float32Array | Float64Array;
/** A tensor's host data. */
export type TypedArray = FloatArray | Int32Array;
export interface TensorSpec {
  readonly shape: Shape;
  readonly dtype: DType;
}

export interface CpuInput {
  data: TypedArray;
  shape: Shape;
  dtype: DType;
}
export interface CpuArgs<A> {
  inputs: CpuInput[];
  out: TensorSpec;
  attrs: A;
  /** A float output array of n elements at the backend's precision (f32, or f64 in a float64 CPU backend). */
  alloc(n: number): FloatArray;
  /** The auxiliary output's spec, for ops that write one (max_pool2d's argmax). */
  aux?: TensorSpec | undefined;
}

/** What a CPU reference returns: the output, or the output and the auxiliary output. */
export type CpuResult = TypedArray | { out: TypedArray; aux: TypedArray };

/** What a backend needs of an op: its name and its two independent implementations. */
export interface Kernel<A> {
  readonly name: string;
  /** Reference implementation: plain loops, float64 accumulation. Never derived from the WGSL. */
  cpu(args: CpuArgs<A>): CpuResult;
  /** Encodes the op's dispatches. */
  gpu(args: GpuArgs<A>): void;
}

/**
 * A kernel that updates tensors in place (optimizer steps): `targets` are read and written, `inputs` only read.
 * Shapes are the caller's to check.
 */
export interface InPlaceKernel<A> {
  readonly name: string;
  /** Reference: mutates `targets[i].data` with plain loops in float64. */
  cpu(args: { targets: CpuInput[]; inputs: CpuInput[]; attrs: A }): void;
  gpu(args: InPlaceGpuArgs<A>): void;
}

export interface GpuTensor extends TensorSpec {
  readonly buffer: GPUBuffer;
  readonly shape: Shape;
  readonly dtype: DType;
}

/** Uniform struct contents: 4-byte words, in WGSL struct order (u32/i32/f32 scalars; vec4<u32> = 4 words). */
export type UniformWord = { u32: number } | { i32: number } | { f32: number };
export const u32 = (v: number): UniformWord => ({ u32: v });
export const i32 = (v: number): UniformWord => ({ i32: v });
export const f32 = (v: number): UniformWord => ({ f32: v });

export interface Dispatch {
  shader: ShaderName;
  /** Text substituted for `@NAME` markers (elementwise expressions from the op table). Part of the pipeline key. */
  defines?: Record<string, string>;
  /** WGSL `override` constants (tile sizes, flags). Part of the pipeline key. */
  overrides?: Record<string, number | boolean>;
  /** Workgroup counts. Use `grid1d` for flat kernels. */
  workgroups: readonly [number, number?, number?];
  /** Outputs first, then inputs (bindings 0..n-1); the uniform struct, if any, is binding n. */
  outputs: readonly (GpuTensor | GPUBuffer)[];
  inputs: readonly (GpuTensor | GPUBuffer)[];
  /**
   * The uniform struct's words, or a function giving them: a captured step calls it again at every replay, so
   * values that change per step (an optimizer's learning rate and bias corrections) stay live.
   */
  uniforms?: readonly UniformWord[] | (() => readonly UniformWord[]);
}

export interface GpuContext {
  dispatch(d: Dispatch): void;
  /** A scratch buffer, returned to the pool when the op has been encoded. */
  scratch(bytes: number): GPUBuffer;
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;
  /** A CPU implementation of WebGPU (lavapipe, SwiftShader): few cores, so kernels may pick fewer, larger tiles. */
  readonly software?: boolean;
  /**
   * A software adapter with subgroups of 8 (lavapipe: one SIMD vector of 8 consecutive invocations): where a tile's
   * threads share rows 8 abreast, one read per lane and subgroup broadcasts replace 8 reads of the same address
   * (the register-blocked multiply of _tile_mma.wgsl: {@link subgroupRowDefines}), and the fused attention kernels
   * keep whole rows per lane, passing the other side's rows by broadcast (_attention_lanes.wgsl).
   */
  readonly subgroupRows?: boolean;
}

/**
 * The defines of _tile_mma.wgsl's SUBGROUP_ROWS for a workgroup `wx` threads wide: on where the context has
 * subgroupRows and each row of threads is whole subgroups (wx a multiple of 8), with the extension it needs.
 */
export function subgroupRowDefines(ctx: GpuContext, wx: number): Record<string, string> {
  const on = !!ctx.subgroupRows && wx % 8 === 0;
  return on ? { SUBGROUP_ROWS: 'true', ENABLE: 'subgroups' } : { SUBGROUP_ROWS: 'false' };
}

export interface GpuArgs<A> {
  inputs: GpuTensor[];
  out: GpuTensor;
  /** The auxiliary output (max_pool2d's argmax), for ops that declare one. */
  aux?: GpuTensor | undefined;
  attrs: A;
  ctx: GpuContext;
}

/**
 * Workgroups for `threads` independent threads of `wg` invocations each, folded into 2D when past the
 * per-dimension limit. Kernels rebuild the flat index as `gid.x + gid.y * num_workgroups.x * WG`.
 */
export function grid1d(threads: number, wg: number, maxPerDim = 65535): [number, number] {
  const groups = Math.max(1, Math.ceil(threads / wg));
  if (groups <= maxPerDim) return [groups, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y];
}

export interface InPlaceGpuArgs<A> {
  /** Bound read-write: the kernel updates them where they are. */
  targets: GpuTensor[];
  inputs: GpuTensor[];
  attrs: A;
  ctx: GpuContext;
}
