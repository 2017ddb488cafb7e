// The Backend contract. A backend owns tensor storage and runs ops from the op table on it: `cpu` is the
// reference (the oracle), `webgpu` the fast one, `wasm` the fast one without a GPU. Tensors, scopes and autograd
// live above and never see GPU objects.
import type { InPlaceKernel, Kernel, TensorSpec, TypedArray } from './kernel.js';

export type {
  CpuArgs,
  CpuInput,
  CpuResult,
  DType,
  FloatArray,
  InPlaceKernel,
  Kernel,
  TensorSpec,
  TypedArray,
} from './kernel.js';

/** What a backend stores for one tensor's data. Opaque to everything above the backend. */
export type Handle = unknown;

/** A backend's memory figures, as `wg.memory()` gives them. */
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

/** One dispatch of a recorded step, for profiling: the op that launched it, its kernel and size. */
export interface DispatchInfo {
  /** The op (or in-place kernel) that encoded it, e.g. `conv2d_bwd_w`. */
  readonly op: string;
  /** The WGSL kernel (file name without `.wgsl`); on the WASM backend, the exported kernel function. */
  readonly shader: string;
  /** Workgroups dispatched; on the WASM backend, [tasks, 1, 1]. */
  readonly workgroups: readonly [number, number, number];
  /** Bytes of the storage buffers it binds (outputs and inputs). */
  readonly bytes: number;
}

/** A backend's step capture: record the dispatches of a step once, then replay them with one submit per step. */
export interface CaptureSupport {
  /** The recording's dispatches, in order. */
  describe(recording: unknown): DispatchInfo[];
  /**
   * GPU milliseconds of each recorded dispatch, each timed in its own compute pass (timestamp queries), the least
   * over `runs` runs of the whole list. The runs execute the step as a replay does (an optimizer update included).
   * Undefined where the device has no timestamp queries.
   */
  profile(recording: unknown, runs: number): Promise<number[] | undefined>;
  /**
   * Whether `begin({ dry: true })` records without running (a backend with pipelines to create ahead). Where it is
   * false, `prepare` has nothing to do: a dry capture would run the step.
   */
  readonly dry: boolean;
  /**
   * Starts recording. `dry`: record without running (nothing reaches the GPU), asking for every pipeline the step
   * uses at once; `ready` waits for them, and the first replay `asRecorded` runs the step that was recorded.
   */
  begin(opts?: { dry?: boolean }): void;
  /** Ends the recording and returns it (opaque). */
  end(): unknown;
  /** Drops a recording that failed halfway. */
  abort(): void;
  /** Resolves when the recording's pipelines exist (at once unless it was dry). */
  ready(recording: unknown): Promise<void>;
  /** Runs the recording again; `asRecorded` keeps the uniforms the capture wrote instead of recomputing them. */
  replay(recording: unknown, opts?: { asRecorded?: boolean }): void;
  release(recording: unknown): void;
}

export interface RunResult {
  out: Handle;
  aux?: Handle | undefined;
}

/**
 * Where tensors live and ops run: WebGPU, the WASM CPU backend or the CPU reference. `init()` picks one; tensors
 * and autograd above never see its storage.
 */
export interface Backend {
  readonly name: 'cpu' | 'webgpu' | 'wasm';
  /** Human-readable device description (adapter vendor/architecture/description). */
  readonly description: string;
  /** Copies host data into new storage for a tensor of `spec`. */
  upload(data: TypedArray, spec: TensorSpec): Handle;
  /** Reads a tensor's data; resolves after the work that produces it has finished. */
  read(handle: Handle, spec: TensorSpec): Promise<TypedArray>;
  /**
   * Reads several tensors in one readback (on the GPU: one copy each into one staging buffer, one submit, one map).
   * The copies are queued before it returns: a `write` after the call lands after them.
   */
  readMany(items: readonly StorageInput[]): Promise<TypedArray[]>;
  /**
   * Runs one op and returns the output's storage (and the auxiliary output's, when `aux` is given). Shapes were
   * checked by the op's `infer` before this.
   */
  run<A>(op: Kernel<A>, inputs: StorageInput[], out: TensorSpec, attrs: A, aux?: TensorSpec): RunResult;
  /** Overwrites a tensor's storage with host data, after all work queued before it. */
  write(handle: Handle, data: TypedArray): void;
  /** Copies `src`'s data into `dst` (same size), in queue order. */
  copy(dst: Handle, src: Handle): void;
  /**
   * Step capture and replay, where the backend has it (WebGPU; WASM, whose replay runs the recorded kernel calls and
   * whose profile times each call on the wall clock); the CPU reference runs every step eagerly.
   */
  readonly capture?: CaptureSupport;
  /** Runs an in-place kernel: `targets` are updated where they are. */
  runInPlace<A>(op: InPlaceKernel<A>, targets: StorageInput[], inputs: StorageInput[], attrs: A): void;
  /** Frees a tensor's storage (to the pool, where the backend has one). */
  release(handle: Handle): void;
  /** Bytes held, pooled and at peak, and allocation counts (the engine adds the live tensor count). */
  memory(): Omit<MemoryInfo, 'liveTensors'>;
  /** Submits queued work; a no-op on the CPU. */
  flush(): void;
  /** Frees the device; the backend is unusable after. */
  destroy(): void;
}
