// The Backend contract. A backend owns tensor storage and runs ops from the op table on it: `cpu` is the
// reference (the oracle), `webgpu` the fast one. Tensors, scopes and autograd live above and never see GPU objects.
import type { Shape } from '../shape.js';
import type { GpuArgs, InPlaceGpuArgs } from './webgpu/context.js';

export type DType = 'float32' | 'int32';
/** Float data: f32 on the GPU; the CPU backend may hold f64 (for finite-difference gradient checks). */
export type FloatArray = Float32Array | Float64Array;
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

/** What a backend stores for one tensor's data. Opaque to everything above the backend. */
export type Handle = unknown;

export interface MemoryInfo {
  backend: string;
  /** Tensors alive (not disposed), counted by the engine. */
  liveTensors: number;
  /** Bytes held by live tensors' storage (on the GPU, their buffers' size classes). */
  liveBytes: number;
  /** Bytes held in the buffer pool, free for reuse. */
  pooledBytes: number;
  /** Highest liveBytes + pooledBytes seen. */
  peakBytes: number;
  /** GPU buffers created since init (the CPU backend counts arrays). */
  buffersCreated: number;
  /** Allocations served from the pool. */
  poolHits: number;
}

export interface StorageInput {
  handle: Handle;
  spec: TensorSpec;
}

/** A backend's step capture: record the dispatches of a step once, then replay them with one submit per step. */
export interface CaptureSupport {
  begin(): void;
  /** Ends the recording and returns it (opaque). */
  end(): unknown;
  /** Drops a recording that failed halfway. */
  abort(): void;
  replay(recording: unknown): void;
  release(recording: unknown): void;
}

export interface RunResult {
  out: Handle;
  aux?: Handle | undefined;
}

export interface Backend {
  readonly name: 'cpu' | 'webgpu';
  /** Human-readable device description (adapter vendor/architecture/description). */
  readonly description: string;
  upload(data: TypedArray, spec: TensorSpec): Handle;
  /** Reads a tensor's data; resolves after the work that produces it has finished. */
  read(handle: Handle, spec: TensorSpec): Promise<TypedArray>;
  /**
   * Runs one op and returns the output's storage (and the auxiliary output's, when `aux` is given). Shapes were
   * checked by the op's `infer` before this.
   */
  run<A>(op: Kernel<A>, inputs: StorageInput[], out: TensorSpec, attrs: A, aux?: TensorSpec): RunResult;
  /** Overwrites a tensor's storage with host data, after all work queued before it. */
  write(handle: Handle, data: TypedArray): void;
  /** Copies `src`'s data into `dst` (same size), in queue order. */
  copy(dst: Handle, src: Handle): void;
  /** Step capture and replay, where the backend has it (WebGPU); the CPU runs every step eagerly. */
  readonly capture?: CaptureSupport;
  /** Runs an in-place kernel: `targets` are updated where they are. */
  runInPlace<A>(op: InPlaceKernel<A>, targets: StorageInput[], inputs: StorageInput[], attrs: A): void;
  release(handle: Handle): void;
  memory(): Omit<MemoryInfo, 'liveTensors'>;
  /** Submits queued work; a no-op on the CPU. */
  flush(): void;
  /** Frees the device; the backend is unusable after. */
  destroy(): void;
}
