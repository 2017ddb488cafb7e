// The WebGPU backend: tensors live in pooled GPU buffers; ops encode dispatches, checked against the device's limits,
// into one command encoder submitted at a readback, an upload that reuses a buffer, or every MAX_BATCH dispatches.
// Uniforms go to one arena per submit. A step capture records into a Recording (capture.ts), replayed into the encoder;
// a dry capture records without running and asks for all of the step's pipelines at once (createComputePipelineAsync).
import type {
  Backend,
  CaptureSupport,
  Handle,
  InPlaceKernel,
  Kernel,
  MemoryInfo,
  RunResult,
  StorageInput,
  TensorSpec,
  TypedArray,
} from '../backend.js';
import { BackendError, CaptureError, DeviceLostError, LimitError, WgnnError, fmtShape } from '../../errors.js';
import { sizeOf } from '../../shape.js';
import type { AdapterInfo } from '../../platform/gpu.js';
import type { Dispatch, GpuContext, GpuTensor } from '../kernel.js';
import { BufferPool } from './pool.js';
import { BufferUsage, MapMode } from './flags.js';
import { PipelineCache, shaderSource } from './pipelines.js';
import { CHUNK_BYTES, Recording, boundBytes, writeWords, type Recorded, type UniformSlot } from './capture.js';
import { workgroupNeeds } from './wgsl-reflect.js';

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

/** The WebGPU backend (Dawn in Node, navigator.gpu in a browser): buffer pool, pipeline cache, batched dispatch, step capture and replay. */
export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  readonly description: string;
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;
  /** A CPU implementation of WebGPU (Mesa's lavapipe, SwiftShader), told by the adapter's info. */
  readonly software: boolean;
  /** GpuContext.subgroupRows: a software adapter whose subgroups are always 8 invocations. */
  readonly subgroupRows: boolean;
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  /** Validation and other errors the device reported outside any error scope; the next read rejects with them. */
  readonly errors: string[] = [];
  private lost: GPUDeviceLostInfo | undefined;
  private pendingReads = new Set<(e: Error) => void>();
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private batched = 0;
  /** Queue submits, buffer maps (readbacks) and dispatches so far: what a step costs beyond its kernels. */
  submits = 0;
  maps = 0;
  dispatches = 0;
  /** A replay is encoded and not yet submitted; a microtask submits it if nothing else does first. */
  private replayPending = false;
  private flushQueued = false;
  // Uniform arena: host bytes filled per dispatch, written to the GPU once per submit.
  private arena: GPUBuffer;
  private arenaHost = new ArrayBuffer(ARENA_BYTES);
  private arenaView = new DataView(this.arenaHost);
  private arenaUsed = 0;
  private recording: Recording | undefined;
  private readonly uniformAlign: number;
  private readonly checkedPipelines = new Set<string>();

  constructor(
    readonly device: GPUDevice,
    readonly info: AdapterInfo,
    opts: WebGpuOptions = {},
  ) {
    this.limits = device.limits;
    this.features = new Set(device.features as unknown as Iterable<string>);
    this.software = /software|llvmpipe|lavapipe|swiftshader|cpu/i.test(
      `${info.architecture} ${info.device} ${info.description}`,
    );
    this.subgroupRows =
      this.software && this.features.has('subgroups') && info.subgroupMinSize === 8 && info.subgroupMaxSize === 8;
    this.description =
      [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' / ') || 'unknown adapter';
    const cap = opts.poolCapBytes ?? Math.max(1 << 30, this.limits.maxBufferSize / 4);
    this.pool = new BufferPool(device, this.limits, cap);
    this.pool.flushPending = () => this.flush();
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
      throw new DeviceLostError(
        `${op}: the WebGPU device was lost (${this.lost.reason}: ${this.lost.message}); call wg.init() again`,
      );
    }
  }

  private alloc(op: string, spec: TensorSpec, avoid?: ReadonlySet<GPUBuffer>): GPUBuffer {
    return this.pool.acquire(sizeOf(spec.shape) * 4, TENSOR_USAGE, avoid, `${op}: tensor ${fmtShape(spec.shape)}`);
  }

  upload(data: TypedArray, spec: TensorSpec): Handle {
    this.checkLost('upload');
    // Inside a captured step an upload is a constant the replays read again: it gets a buffer no recorded kernel
    // has written (a reused one would hold that kernel's output at replay), and keeps it (see release).
    const buffer = this.alloc('upload', spec, this.recording?.buffers);
    // queue.writeBuffer runs before commands still waiting in our encoder: never overwrite a buffer they use.
    if (this.pool.releasedSinceSubmit.has(buffer)) this.flush();
    const words = data instanceof Float64Array ? Float32Array.from(data) : data;
    if (words.byteLength > 0)
      this.device.queue.writeBuffer(buffer, 0, words.buffer, words.byteOffset, words.byteLength);
    this.recording?.constants.add(buffer);
    return { buffer } satisfies GpuHandle;
  }

  write(handle: Handle, data: TypedArray): void {
    this.checkLost('write');
    this.flush(); // queue.writeBuffer runs before anything still in the encoder
    const words = data instanceof Float64Array ? Float32Array.from(data) : data;
    this.device.queue.writeBuffer((handle as GpuHandle).buffer, 0, words.buffer, words.byteOffset, words.byteLength);
  }

  copy(dst: Handle, src: Handle): void {
    this.checkLost('copy');
    const s = (src as GpuHandle).buffer;
    this.closePass().copyBufferToBuffer(
      s,
      0,
      (dst as GpuHandle).buffer,
      0,
      Math.min(s.size, (dst as GpuHandle).buffer.size),
    );
  }

  readonly capture: CaptureSupport = {
    dry: true,
    begin: (opts) => this.beginCapture(opts?.dry),
    end: () => this.endCapture(),
    abort: () => this.abortCapture(),
    ready: (r) => this.ready(r as Recording),
    replay: (r, opts) => this.replay(r as Recording, opts?.asRecorded),
    release: (r) => this.releaseCapture(r as Recording),
    describe: (r) => (r as Recording).describe(),
    profile: (r, runs) => this.profile(r as Recording, runs),
  };

  run<A>(op: Kernel<A>, inputs: StorageInput[], out: TensorSpec, attrs: A, aux?: TensorSpec): RunResult {
    this.checkLost(op.name);
    // Limit errors name the op with its shapes.
    const where = () => `${op.name} ${inputs.map((i) => fmtShape(i.spec.shape)).join(', ')} -> ${fmtShape(out.shape)}`;
    const buffer = this.alloc(op.name, out);
    let auxBuffer: GPUBuffer | undefined;
    const scratch: GPUBuffer[] = [];
    const ctx: GpuContext = {
      dispatch: (d) => this.dispatch(op.name, d, where),
      scratch: (bytes) => {
        const b = this.pool.acquire(Math.max(bytes, 4), TENSOR_USAGE, undefined, `${where()}: scratch`);
        scratch.push(b);
        return b;
      },
      limits: this.limits,
      features: this.features,
      software: this.software,
      subgroupRows: this.subgroupRows,
    };
    const tensorOf = (b: GPUBuffer, s: TensorSpec): GpuTensor => ({ buffer: b, shape: s.shape, dtype: s.dtype });
    try {
      auxBuffer = aux && this.alloc(op.name, aux);
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
    const t = (i: StorageInput): GpuTensor => ({
      buffer: (i.handle as GpuHandle).buffer,
      shape: i.spec.shape,
      dtype: i.spec.dtype,
    });
    const where = () => `${op.name} on ${[...targets, ...inputs].map((i) => fmtShape(i.spec.shape)).join(', ')}`;
    op.gpu({
      targets: targets.map(t),
      inputs: inputs.map(t),
      attrs,
      ctx: {
        dispatch: (d) => this.dispatch(op.name, d, where),
        scratch: () => {
          throw new Error(`${op.name}: in-place kernels get no scratch buffers`);
        },
        limits: this.limits,
        features: this.features,
        software: this.software,
        subgroupRows: this.subgroupRows,
      },
    });
  }

  /**
   * Encodes one kernel launch into the open compute pass, after checking it against the device's limits (a
   * LimitError names `where`: the op and its shapes). Nothing is encoded when a check fails.
   */
  dispatch(op: string, d: Dispatch, where: () => string = () => op): void {
    const [x, y = 1, z = 1] = d.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const L = this.limits;
    const maxDim = L.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim) {
      throw new LimitError(
        `${where()}: ${d.shader} needs workgroups [${x},${y},${z}], over this device's maxComputeWorkgroupsPerDimension of ${maxDim}`,
      );
    }
    const storage = d.outputs.length + d.inputs.length;
    if (storage > L.maxStorageBuffersPerShaderStage) {
      throw new LimitError(
        `${where()}: ${d.shader} binds ${storage} storage buffers, over this device's maxStorageBuffersPerShaderStage of ${L.maxStorageBuffersPerShaderStage}`,
      );
    }
    const words = typeof d.uniforms === 'function' ? d.uniforms() : d.uniforms;
    const uniformBytes = words ? Math.ceil((words.length * 4) / 16) * 16 : 0;
    // A uniform struct fits one binding, and one arena or capture chunk.
    const maxUniform = Math.min(L.maxUniformBufferBindingSize, CHUNK_BYTES);
    if (uniformBytes > maxUniform) {
      throw new LimitError(
        `${where()}: ${d.shader} needs ${uniformBytes} bytes of uniforms, over ${maxUniform} (maxUniformBufferBindingSize ${L.maxUniformBufferBindingSize})`,
      );
    }
    this.checkPipeline(d, where);
    if (words && !this.recording && this.arenaUsed + uniformBytes > ARENA_BYTES) this.flush();
    const key = {
      shader: d.shader,
      defines: d.defines,
      overrides: d.overrides,
      outputs: d.outputs.length,
      inputs: d.inputs.length,
      uniform: !!words,
    };
    const dry = this.recording?.dry === true;
    const layout = this.pipelines.layoutOf(key);
    const pipeline = dry ? undefined : this.pipelines.get(key).pipeline;
    const buffers = [...d.outputs, ...d.inputs].map((t) => ('buffer' in t ? t.buffer : t));
    const entries: GPUBindGroupEntry[] = buffers.map((buffer, i) => ({ binding: i, resource: { buffer } }));
    let slot: UniformSlot | undefined;
    if (words) {
      // A captured step keeps its uniforms in its own buffers (a replay rewrites them); eager work uses the arena.
      slot = this.recording
        ? this.recording.uniformSlot(this.device, uniformBytes, this.uniformAlign)
        : this.arenaSlot(uniformBytes);
      writeWords(slot.view, slot.offset, words);
      entries.push({
        binding: entries.length,
        resource: { buffer: slot.buffer, offset: slot.offset, size: uniformBytes },
      });
    }
    const bindGroup = this.device.createBindGroup({ layout, entries });
    if (this.recording) {
      const dynamic = typeof d.uniforms === 'function' ? d.uniforms : undefined;
      const uniforms = dynamic && slot ? { fn: dynamic, slot } : undefined;
      const r: Recorded = { pipeline, key, bindGroup, x, y, z, uniforms, op, shader: d.shader, bytes: boundBytes(d) };
      this.recording.add(r, buffers);
      if (dry) {
        // Recorded, not run: the pipeline is asked for now, with every other one of the step, and compiled meanwhile.
        this.recording.waiting.push(this.pipelines.request(key).then((c) => void (r.pipeline ??= c.pipeline)));
        return;
      }
    }
    const pass = this.openPass();
    pass.setPipeline(pipeline!);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
    if (++this.batched >= MAX_BATCH) this.flush();
  }

  /** The shader's workgroup size and memory with these overrides, checked once per (shader, overrides). */
  private checkPipeline(d: Dispatch, where: () => string): void {
    const key = `${d.shader}|${JSON.stringify(d.overrides ?? {})}|${JSON.stringify(d.defines ?? {})}`;
    if (this.checkedPipelines.has(key)) return;
    const L = this.limits;
    const { size, storage } = workgroupNeeds(shaderSource(d.shader, d.defines), d.overrides);
    const over: string[] = [];
    if (storage > L.maxComputeWorkgroupStorageSize) {
      over.push(
        `${storage} bytes of workgroup memory, over this device's maxComputeWorkgroupStorageSize of ${L.maxComputeWorkgroupStorageSize}`,
      );
    }
    const threads = size[0] * size[1] * size[2];
    if (threads > L.maxComputeInvocationsPerWorkgroup) {
      over.push(
        `${threads} invocations per workgroup, over this device's maxComputeInvocationsPerWorkgroup of ${L.maxComputeInvocationsPerWorkgroup}`,
      );
    }
    const maxSize = [L.maxComputeWorkgroupSizeX, L.maxComputeWorkgroupSizeY, L.maxComputeWorkgroupSizeZ];
    if (size.some((s, i) => s > maxSize[i]!)) {
      over.push(
        `workgroup size [${size.join(',')}], over this device's maxComputeWorkgroupSize [${maxSize.join(',')}]`,
      );
    }
    if (over.length) {
      // Caught here rather than as the validation error createComputePipeline would raise later, asynchronously.
      const config = d.overrides ? ` ${JSON.stringify(d.overrides)}` : '';
      throw new LimitError(`${where()}: ${d.shader}${config} needs ${over.join('; and ')}`);
    }
    this.checkedPipelines.add(key);
  }

  private arenaSlot(bytes: number): UniformSlot {
    const offset = this.arenaUsed;
    this.arenaUsed = Math.ceil((offset + bytes) / this.uniformAlign) * this.uniformAlign;
    return { buffer: this.arena, view: this.arenaView, offset };
  }

  /**
   * Starts recording: every dispatch from now until `endCapture` runs as usual and is also kept, with its pipeline,
   * bind group and uniform values, so the whole step can be replayed without running any JavaScript op code. `dry`:
   * kept only, not run (the GPU does nothing), each pipeline asked for asynchronously (`ready` waits for them); the
   * first replay with `asRecorded` then runs the step as recorded, uniforms included.
   */
  beginCapture(dry = false): void {
    if (this.recording)
      throw new CaptureError(
        'beginCapture: a capture is already in progress (a compiled step run inside the capture of another step?)',
      );
    this.checkLost('capture');
    this.flush();
    this.recording = new Recording(dry);
  }

  /** Ends the recording; the buffers it used are pinned (never handed to anything else) until `releaseCapture`. */
  endCapture(): Recording {
    const rec = this.recording;
    if (!rec) throw new CaptureError('endCapture: no capture in progress');
    this.flush();
    this.recording = undefined;
    rec.writeUniforms(this.device.queue); // a dry capture encoded nothing, so the flush wrote none of them
    this.pool.pin(rec.buffers);
    return rec;
  }

  /** Resolves when every pipeline of a dry capture is created; rejects with the first that failed. */
  private async ready(rec: Recording): Promise<void> {
    await Promise.all(rec.waiting);
    rec.waiting.length = 0; // all there: fit asks before every step
  }

  /** Drops a recording that failed halfway (its work ran eagerly; nothing is kept). */
  abortCapture(): void {
    const rec = this.recording;
    this.recording = undefined;
    if (rec) {
      this.flush();
      this.pool.unpin(rec.extraPins);
      rec.destroy();
    }
  }

  /**
   * Replays a recorded step (its inputs written before with `write`/`copy`): refreshes the uniforms given as
   * functions, then encodes every recorded dispatch into the encoder, after the input copies. The submit waits for the
   * rest of this JavaScript task, so a read right after the step (its copy to a staging buffer) goes in the same
   * submit: one submit per step, read or not. A microtask submits it when nothing else has by the task's end.
   * `asRecorded`: the uniforms as the capture left them (a dry capture's first run: the step it recorded). A pipeline
   * still being created is made at once.
   */
  replay(rec: Recording, asRecorded = false): void {
    this.checkLost('replay');
    // A replay still in the encoder binds the uniforms this one rewrites (queue.writeBuffer runs before the encoder).
    if (this.replayPending) this.flush();
    rec.fillPipelines((k) => this.pipelines.get(k).pipeline);
    if (!asRecorded) rec.refreshUniforms(this.device.queue);
    rec.encode(this.closePass());
    this.replayPending = true;
    this.dispatches += rec.dispatches.length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => {
        this.flushQueued = false;
        if (this.replayPending) this.flush();
      });
    }
  }

  /**
   * Times each recorded dispatch on the GPU (see Recording.profile), after the work queued before it has finished;
   * undefined without timestamp queries.
   */
  private async profile(rec: Recording, runs: number): Promise<number[] | undefined> {
    if (!Number.isInteger(runs) || runs < 1)
      throw new WgnnError(`profile: runs is ${runs}; expected a whole number >= 1`);
    this.checkLost('profile');
    if (this.recording)
      throw new CaptureError('profile: a capture is in progress; expected a recording that has ended');
    await this.sync();
    rec.fillPipelines((k) => this.pipelines.get(k).pipeline);
    const ms = await rec.profile(this.device, runs);
    if (ms) {
      this.submits += runs;
      this.maps += runs;
      this.dispatches += runs * rec.dispatches.length;
    }
    return ms;
  }

  /** Frees a recording: its pinned buffers return to the pool once no tensor holds them. */
  releaseCapture(rec: Recording): void {
    if (this.lost) return; // its buffers went with the device
    this.flush();
    this.pool.unpin(rec.buffers);
    this.pool.unpin(rec.extraPins);
    rec.destroy();
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
    if (this.lost) {
      // Nothing reaches a lost device: drop what was encoded.
      this.encoder = undefined;
      this.pass = undefined;
      this.batched = 0;
      this.arenaUsed = 0;
      this.replayPending = false;
      return;
    }
    const enc = this.closePass();
    if (this.arenaUsed > 0) this.device.queue.writeBuffer(this.arena, 0, this.arenaHost, 0, this.arenaUsed);
    this.recording?.writeUniforms(this.device.queue);
    this.device.queue.submit([enc.finish()]);
    this.submits++;
    this.encoder = undefined;
    this.batched = 0;
    this.arenaUsed = 0;
    this.replayPending = false;
    this.pool.submitted();
  }

  /** Throws at once (not in the promise) when the read cannot happen, so a capture sees it synchronously. */
  read(handle: Handle, spec: TensorSpec): Promise<TypedArray> {
    return this.readMany([{ handle, spec }]).then((r) => r[0]!);
  }

  /**
   * Reads the tensors through one staging buffer: one copy each, encoded after the work waiting in the encoder (a
   * replayed step's, so step and read share one submit), one submit and one map. Queued before it returns.
   */
  readMany(items: readonly StorageInput[]): Promise<TypedArray[]> {
    this.checkLost('data');
    if (this.recording)
      throw new CaptureError('data: a captured step cannot read tensors back (read them after the step)');
    return this.readAsync(items);
  }

  private async readAsync(items: readonly StorageInput[]): Promise<TypedArray[]> {
    // Each tensor at its byte offset in the staging buffer: whole 4-byte words, as copyBufferToBuffer needs.
    const sizes = items.map((i) => sizeOf(i.spec.shape) * 4);
    const offsets = sizes.map((_, k) => sizes.slice(0, k).reduce((a, b) => a + b, 0));
    const bytes = sizes.reduce((a, b) => a + b, 0);
    const Ctor = (i: StorageInput) => (i.spec.dtype === 'int32' ? Int32Array : Float32Array);
    if (bytes === 0) return items.map((i) => new (Ctor(i))(0));
    const what = items.map((i) => fmtShape(i.spec.shape)).join(', ');
    const staging = this.pool.acquire(bytes, STAGING_USAGE, undefined, `data: staging for ${what}`);
    if (staging.mapState !== 'unmapped')
      throw new Error(`data: staging buffer is ${staging.mapState}; expected unmapped`);
    const enc = this.closePass();
    items.forEach((i, k) => {
      if (sizes[k]! > 0) enc.copyBufferToBuffer((i.handle as GpuHandle).buffer, 0, staging, offsets[k]!, sizes[k]!);
    });
    this.flush();
    this.maps++;
    let reject!: (e: Error) => void;
    const lost = new Promise<never>((_, r) => (reject = r));
    this.pendingReads.add(reject);
    try {
      await Promise.race([staging.mapAsync(MapMode.READ, 0, bytes), lost]);
      const mapped = staging.getMappedRange(0, bytes);
      const out = items.map((i, k) => new (Ctor(i))(mapped.slice(offsets[k]!, offsets[k]! + sizes[k]!)));
      staging.unmap();
      this.pool.release(staging);
      const oom = this.pool.lateFailures.splice(0);
      if (oom.length) throw oom[0]!;
      // Reported once, then cleared: the engine stays usable after a failed op.
      if (this.errors.length)
        throw new BackendError(`webgpu: device reported errors: ${this.errors.splice(0).join('; ')}`);
      return out;
    } finally {
      this.pendingReads.delete(reject);
    }
  }

  release(handle: Handle): void {
    if (this.lost) return;
    const buffer = (handle as GpuHandle).buffer;
    if (this.recording?.constants.has(buffer)) {
      this.recording.extraPins.push(buffer);
      this.pool.pin([buffer]);
    }
    this.pool.release(buffer);
  }

  memory(): Omit<MemoryInfo, 'liveTensors'> {
    const p = this.pool;
    return {
      backend: 'webgpu',
      liveBytes: p.liveBytes,
      pooledBytes: p.pooledBytes + p.heldBytes,
      peakBytes: p.peakBytes,
      buffersCreated: p.created,
      poolHits: p.hits,
    };
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
