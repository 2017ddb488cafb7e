// What every engine in the benchmark offers: runners that enqueue one computation on GPU-resident inputs (one copy per
// rotated input set), a wait for the GPU, and the device it runs on (for the pass timer).

/** Host data and its shape, in wgnn's layout (NHWC images, [R,S,C,K] filters, [M,K] matrices). */
export interface HostTensor {
  data: Float32Array | Int32Array;
  shape: number[];
}

/** One computation on fixed GPU-resident inputs, in one engine. */
export interface Runner {
  /** What runs (a kernel name, or the ops it is composed of), for the report. */
  readonly kernel?: string;
  /** A caveat for the reader (e.g. 'vjp: recomputes the forward'). */
  readonly note?: string;
  /** Enqueues one run on input set `set` and frees its result (no wait). */
  enqueue(set: number): void;
  /** Runs once on set 0 and reads the result back, in wgnn's layout. */
  result(): Promise<Float32Array | Int32Array>;
  dispose(): void;
}

export interface Peer {
  /** 'TF.js' or 'jax-js'. */
  readonly name: string;
  /** Version and adapter, for the report. */
  readonly description: string;
  readonly device: GPUDevice;
  /** Submits what the engine has queued and waits until the GPU has run it. */
  sync(): Promise<void>;
  close(): void;
}

export const msg = (e: unknown): string => (e instanceof Error ? e.message : String(e));
