// The WebGPU backend: tensors live in pooled GPU buffers; ops encode dispatches into one command encoder that is
// submitted at a readback, an upload that reuses a buffer, or every MAX_BATCH dispatches. Uniform parameters are
// written into one arena per submit, not a new buffer per dispatch.
import type { Backend, Handle, InPlaceKernel, Kernel, MemoryInfo, RunResult, StorageInput, TensorSpec, TypedArray } from '../backend.js';
import { DeviceLostError, LimitError, fmtShape } from '../../errors.js';
import { sizeOf } from '../../shape.js';
import type { AdapterInfo } from '../../platform/gpu.js';
import type { Dispatch, GpuContext, GpuTensor, UniformWord } from './context.js';
import { BufferPool } from './pool.js';
import { BufferUsage, MapMode } from './flags.js';
import { PipelineCache } from './pipelines.js';

const TENSOR_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
const STAGING_USAGE = BufferUsage.MAP_READ | BufferUsage.COPY_DST;
/** Dispatches per submit: enough to amortise the submit, few enough to keep the GPU fed while JS encodes. */
const MAX_BATCH = 512;
const ARENA_BYTES = 1 << 18;

interface GpuHandle {
  buffer: GPUBuffer;
}

export interface WebGpuOptions {
  /** Most bytes the pool keeps for reuse (default 1 GiB or a quarter of the max buffer size, the larger). */
  poolCapBytes?: number;
}

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  readonly description: string;
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  /** Validation and other errors the device reported outside any error scope; the next read rejects with them. */
  readonly errors: string[] = [];
  private lost: GPUDeviceLostInfo | undefined;
  private pendingReads = new Set<(e: Error) => void>();
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private batched = 0;
  submits = 0;
  dispatches = 0;
  // Uniform arena: host bytes filled per dispatch, written to the GPU once per submit.
  private arena: GPUBuffer;
  private arenaHost = new ArrayBuffer(ARENA_BYTES);
  private arenaView = new DataView(this.arenaHost);
  private arenaUsed = 0;
  private readonly uniformAlign: number;

  constructor(readonly device: GPUDevice, readonly info: AdapterInfo, opts: WebGpuOptions = {}) {
    this.limits = device.limits;
    this.features = new Set(device.features as unknown as Iterable<string>);
    this.description = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' / ') || 'unknown adapter';
    const cap = opts.poolCapBytes ?? Math.max(1 << 30, this.limits.maxBufferSize / 4);
    this.pool = new BufferPool(device, this.limits.maxBufferSize, cap);
    this.pipelines = new PipelineCache(device);
    this.uniformAlign = this.limits.minUniformBufferOffsetAlignment;
    this.arena = device.createBuffer({ size: ARENA_BYTES, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
    device.addEventListener('uncapturederror', (ev) => {
      const msg = (ev as GPUUncapturedErrorEvent).error.message;
      this.errors.push(msg);
      console.error(`wgnn: WebGPU error: ${msg}`);
    });
    void device.lost.then((info) => {
      this.lost = info;
      const err = new DeviceLostError(`webgpu: device lost (${info.reason}): ${info.message}`);
      for (const reject of this.pendingReads) reject(err);
      this.pendingReads.clear();
    });
  }

  get isLost(): boolean {
    return this.lost !== undefined;
  }

  private checkLost(op: string): void {
    if (this.lost) {
      throw new DeviceLostError(`${op}: the WebGPU device was lost (${this.lost.reason}: ${this.lost.message}); call wg.init() again`);
    }
  }

  private alloc(op: string, spec: TensorSpec): GPUBuffer {
    const bytes = sizeOf(spec.shape) * 4;
    if (bytes > this.limits.maxStorageBufferBindingSize) {
      throw new LimitError(
        `${op}: tensor ${fmtShape(spec.shape)} needs ${bytes} bytes, over this device's maxStorageBufferBindingSize of ${this.limits.maxStorageBufferBindingSize}`,
      );
    }
    return this.pool.acquire(bytes, TENSOR_USAGE);
  }

  upload(data: TypedArray, spec: TensorSpec): Handle {
    this.checkLost('upload');
    const buffer = this.alloc('upload', spec);
    // queue.writeBuffer runs before commands still waiting in our encoder: never overwrite a buffer they use.
    if (this.pool.releasedSinceSubmit.has(buffer)) this.flush();
    const words = data instanceof Float64Array ? Float32Array.from(data) : data;
    if (words.byteLength > 0) this.device.queue.writeBuffer(buffer, 0, words.buffer, words.byteOffset, words.byteLength);
    return { buffer } satisfies GpuHandle;
  }

  run<A>(op: Kernel<A>, inputs: StorageInput[], out: TensorSpec, attrs: A, aux?: TensorSpec): RunResult {
    this.checkLost(op.name);
    const buffer = this.alloc(op.name, out);
    const auxBuffer = aux && this.alloc(op.name, aux);
    const scratch: GPUBuffer[] = [];
    const ctx: GpuContext = {
      dispatch: (d) => this.dispatch(op.name, d),
      scratch: (bytes) => {
        const b = this.pool.acquire(Math.max(bytes, 4), TENSOR_USAGE);
        scratch.push(b);
        return b;
      },
      limits: this.limits,
      features: this.features,
    };
    const tensorOf = (b: GPUBuffer, s: TensorSpec): GpuTensor => ({ buffer: b, shape: s.shape, dtype: s.dtype });
    try {
      op.gpu({
        inputs: inputs.map((i) => tensorOf((i.handle as GpuHandle).buffer, i.spec)),
        out: tensorOf(buffer, out),
        aux: auxBuffer && aux ? tensorOf(auxBuffer, aux) : undefined,
        attrs,
        ctx,
      });
    } catch (e) {
      this.pool.release(buffer);
      if (auxBuffer) this.pool.release(auxBuffer);
      throw e;
    } finally {
      for (const b of scratch) this.pool.release(b);
    }
    return { out: { buffer } satisfies GpuHandle, aux: auxBuffer && ({ buffer: auxBuffer } satisfies GpuHandle) };
  }

  runInPlace<A>(op: InPlaceKernel<A>, targets: StorageInput[], inputs: StorageInput[], attrs: A): void {
    this.checkLost(op.name);
    const t = (i: StorageInput): GpuTensor => ({ buffer: (i.handle as GpuHandle).buffer, shape: i.spec.shape, dtype: i.spec.dtype });
    op.gpu({
      targets: targets.map(t),
      inputs: inputs.map(t),
      attrs,
      ctx: {
        dispatch: (d) => this.dispatch(op.name, d),
        scratch: () => {
          throw new Error(`${op.name}: in-place kernels get no scratch buffers`);
        },
        limits: this.limits,
        features: this.features,
      },
    });
  }

  /** Encodes one kernel launch into the open compute pass. */
  dispatch(op: string, d: Dispatch): void {
    const [x, y = 1, z = 1] = d.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim) {
      throw new LimitError(`${op}: ${d.shader} needs workgroups [${x},${y},${z}], over this device's ${maxDim} per dimension`);
    }
    const uniformBytes = d.uniforms ? Math.ceil((d.uniforms.length * 4) / 16) * 16 : 0;
    if (d.uniforms && this.arenaUsed + uniformBytes > ARENA_BYTES) this.flush();
    const { pipeline, layout } = this.pipelines.get({
      shader: d.shader,
      defines: d.defines,
      overrides: d.overrides,
      outputs: d.outputs.length,
      inputs: d.inputs.length,
      uniform: !!d.uniforms,
    });
    const entries: GPUBindGroupEntry[] = [...d.outputs, ...d.inputs].map((t, i) => ({
      binding: i,
      resource: { buffer: 'buffer' in t ? t.buffer : t },
    }));
    if (d.uniforms) {
      const offset = this.arenaUsed;
      writeWords(this.arenaView, offset, d.uniforms);
      this.arenaUsed = Math.ceil((offset + uniformBytes) / this.uniformAlign) * this.uniformAlign;
      entries.push({ binding: entries.length, resource: { buffer: this.arena, offset, size: uniformBytes } });
    }
    const bindGroup = this.device.createBindGroup({ layout, entries });
    const pass = this.openPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
    if (++this.batched >= MAX_BATCH) this.flush();
  }

  private openPass(): GPUComputePassEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    this.pass ??= this.encoder.beginComputePass();
    return this.pass;
  }

  private closePass(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    this.pass?.end();
    this.pass = undefined;
    return this.encoder;
  }

  /** Submits everything encoded so far (uniforms first). */
  flush(): void {
    if (!this.encoder) return;
    const enc = this.closePass();
    if (this.arenaUsed > 0) this.device.queue.writeBuffer(this.arena, 0, this.arenaHost, 0, this.arenaUsed);
    this.device.queue.submit([enc.finish()]);
    this.submits++;
    this.encoder = undefined;
    this.batched = 0;
    this.arenaUsed = 0;
    this.pool.submitted();
  }

  async read(handle: Handle, spec: TensorSpec): Promise<TypedArray> {
    this.checkLost('data');
    const bytes = sizeOf(spec.shape) * 4;
    const Ctor = spec.dtype === 'int32' ? Int32Array : Float32Array;
    if (bytes === 0) return new Ctor(0);
    const staging = this.pool.acquire(bytes, STAGING_USAGE);
    if (staging.mapState !== 'unmapped') throw new Error(`data: staging buffer is ${staging.mapState}; expected unmapped`);
    this.closePass().copyBufferToBuffer((handle as GpuHandle).buffer, 0, staging, 0, bytes);
    this.flush();
    let reject!: (e: Error) => void;
    const lost = new Promise<never>((_, r) => (reject = r));
    this.pendingReads.add(reject);
    try {
      await Promise.race([staging.mapAsync(MapMode.READ, 0, bytes), lost]);
      const out = new Ctor(staging.getMappedRange(0, bytes).slice(0));
      staging.unmap();
      this.pool.release(staging);
      if (this.errors.length) throw new Error(`webgpu: device reported errors: ${this.errors.join('; ')}`);
      return out;
    } finally {
      this.pendingReads.delete(reject);
    }
  }

  release(handle: Handle): void {
    if (this.lost) return;
    this.pool.release((handle as GpuHandle).buffer);
  }

  memory(): Omit<MemoryInfo, 'liveTensors'> {
    const p = this.pool;
    return { backend: 'webgpu', liveBytes: p.liveBytes, pooledBytes: p.pooledBytes, peakBytes: p.peakBytes, buffersCreated: p.created, poolHits: p.hits };
  }

  /** Waits until the GPU has finished everything submitted. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
  }

  destroy(): void {
    this.flush();
    this.pool.empty();
    this.pool.submitted();
    this.device.destroy();
  }
}

function writeWords(view: DataView, offset: number, words: readonly UniformWord[]): void {
  words.forEach((w, i) => {
    const o = offset + i * 4;
    if ('u32' in w) view.setUint32(o, w.u32, true);
    else if ('i32' in w) view.setInt32(o, w.i32, true);
    else view.setFloat32(o, w.f32, true);
  });
}
