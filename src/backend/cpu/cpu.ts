// The CPU reference backend: tensors are typed arrays and every op runs its `cpu` implementation
// (plain loops, float64 accumulation). It is the oracle the WebGPU kernels are checked against, and a slow fallback.
import type {
  Backend,
  Handle,
  InPlaceKernel,
  Kernel,
  MemoryInfo,
  RunResult,
  StorageInput,
  TensorSpec,
  TypedArray,
} from '../backend.js';

export interface CpuOptions {
  /** Keep float tensors in float64 (gradient checks by finite differences); default float32 like the GPU. */
  float64?: boolean;
}

/** The CPU reference backend: plain loops with float64 sums; the oracle the GPU kernels are tested against. */
export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly description: string;
  private live = 0;
  private peak = 0;
  private created = 0;
  private readonly Float: Float32ArrayConstructor | Float64ArrayConstructor;

  constructor(opts: CpuOptions = {}) {
    this.Float = opts.float64 ? Float64Array : Float32Array;
    this.description = `CPU reference backend (JavaScript, ${opts.float64 ? 'float64 storage' : 'float32 storage'}, float64 accumulation)`;
  }

  upload(data: TypedArray): Handle {
    return this.track(data instanceof Int32Array ? data.slice() : this.Float.from(data));
  }

  async read(handle: Handle): Promise<TypedArray> {
    return (handle as TypedArray).slice();
  }

  async readMany(items: readonly StorageInput[]): Promise<TypedArray[]> {
    return items.map((i) => (i.handle as TypedArray).slice());
  }

  run<A>(op: Kernel<A>, inputs: StorageInput[], out: TensorSpec, attrs: A, aux?: TensorSpec): RunResult {
    const r = op.cpu({
      inputs: inputs.map((i) => ({ data: i.handle as TypedArray, shape: i.spec.shape, dtype: i.spec.dtype })),
      out,
      attrs,
      alloc: (n) => new this.Float(n),
      aux,
    });
    if (ArrayBuffer.isView(r)) return { out: this.track(r) };
    return { out: this.track(r.out), aux: aux ? this.track(r.aux) : undefined };
  }

  runInPlace<A>(op: InPlaceKernel<A>, targets: StorageInput[], inputs: StorageInput[], attrs: A): void {
    const view = (i: StorageInput) => ({ data: i.handle as TypedArray, shape: i.spec.shape, dtype: i.spec.dtype });
    op.cpu({ targets: targets.map(view), inputs: inputs.map(view), attrs });
  }

  write(handle: Handle, data: TypedArray): void {
    (handle as TypedArray).set(data);
  }

  copy(dst: Handle, src: Handle): void {
    (dst as TypedArray).set(src as TypedArray);
  }

  release(handle: Handle): void {
    this.live -= (handle as TypedArray).byteLength;
  }

  memory(): Omit<MemoryInfo, 'liveTensors'> {
    return {
      backend: 'cpu',
      liveBytes: this.live,
      pooledBytes: 0,
      peakBytes: this.peak,
      buffersCreated: this.created,
      poolHits: 0,
    };
  }

  flush(): void {}
  destroy(): void {}

  private track(a: TypedArray): TypedArray {
    this.live += a.byteLength;
    this.created++;
    this.peak = Math.max(this.peak, this.live);
    return a;
  }
}
