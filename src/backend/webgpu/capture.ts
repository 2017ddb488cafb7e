// A captured step as the WebGPU backend records it: each dispatch with its pipeline, bind group and uniform slot
// (and, for profiling, the op, kernel, grid and bytes it binds), the uniform buffers, and every storage buffer the
// step touches. Replayed as one compute pass in the backend's encoder; profiled per dispatch with timestamps.
import type { DispatchInfo } from '../backend.js';
import type { Dispatch, UniformWord } from '../kernel.js';
import type { ShaderName } from '../../shaders.gen.js';
import { sizeOf } from '../../shape.js';
import { BufferUsage, MapMode } from './flags.js';
import type { PipelineKey } from './pipelines.js';

/** Bytes of one uniform buffer of a recording: a uniform struct must fit one (dispatch checks it). */
export const CHUNK_BYTES = 1 << 16;
/** Queries of one timestamp query set at most (WebGPU's limit on a query set's count): 2 per timed dispatch. */
const QUERY_SET_MAX = 4096;

/** Where one dispatch's uniform struct lives: a buffer, its host copy and the struct's offset in both. */
export interface UniformSlot {
  buffer: GPUBuffer;
  view: DataView;
  offset: number;
}

/** One recorded dispatch: what a replay encodes, and what `describe` tells about it. */
export interface Recorded {
  /** Undefined while a dry capture's pipeline is being created (see `waiting`). */
  pipeline: GPUComputePipeline | undefined;
  key: PipelineKey;
  bindGroup: GPUBindGroup;
  x: number;
  y: number;
  z: number;
  /** Uniforms recomputed at every replay. */
  uniforms: { fn: () => readonly UniformWord[]; slot: UniformSlot } | undefined;
  /** The op (or in-place kernel) that encoded it. */
  op: string;
  shader: ShaderName;
  /** Bytes of the distinct storage buffers it binds (a tensor counts its own size, not its buffer's size class). */
  bytes: number;
}

/** Bytes of the distinct storage buffers a dispatch binds: a tensor's own size, a raw buffer's (scratch) size. */
export function boundBytes(d: Dispatch): number {
  const sizes = new Map<GPUBuffer, number>();
  for (const t of [...d.outputs, ...d.inputs]) {
    const [buffer, bytes] = 'buffer' in t ? [t.buffer, sizeOf(t.shape) * 4] : [t, t.size];
    sizes.set(buffer, Math.max(sizes.get(buffer) ?? 0, bytes));
  }
  let total = 0;
  for (const b of sizes.values()) total += b;
  return total;
}

/** Writes uniform words (WGSL struct order, 4 bytes each, little-endian) at `offset`. */
export function writeWords(view: DataView, offset: number, words: readonly UniformWord[]): void {
  words.forEach((w, i) => {
    const o = offset + i * 4;
    if ('u32' in w) view.setUint32(o, w.u32, true);
    else if ('i32' in w) view.setInt32(o, w.i32, true);
    else view.setFloat32(o, w.f32, true);
  });
}

/**
 * A captured step: its dispatches, the uniform buffers they bind, and every storage buffer they touch. A dry one was
 * recorded without running: its pipelines are asked for asynchronously, and its first replay is the step it recorded.
 */
export class Recording {
  constructor(readonly dry = false) {}

  readonly dispatches: Recorded[] = [];
  readonly buffers = new Set<GPUBuffer>();
  /** Buffers uploaded during the capture (constants such as a scalar operand or backward's seed of ones). */
  readonly constants = new Set<GPUBuffer>();
  /** Constants released during the capture, pinned then so nothing reuses them. */
  readonly extraPins: GPUBuffer[] = [];
  /** A dry capture's pipelines on their way (each sets its dispatches' `pipeline` when created). */
  readonly waiting: Promise<void>[] = [];
  private chunks: { buffer: GPUBuffer; host: ArrayBuffer; view: DataView; used: number; dirty: boolean }[] = [];

  add(r: Recorded, buffers: readonly GPUBuffer[]): void {
    this.dispatches.push(r);
    for (const b of buffers) this.buffers.add(b);
  }

  uniformSlot(device: GPUDevice, bytes: number, align: number): UniformSlot {
    let c = this.chunks[this.chunks.length - 1];
    if (!c || c.used + bytes > CHUNK_BYTES) {
      const host = new ArrayBuffer(CHUNK_BYTES);
      c = {
        buffer: device.createBuffer({ size: CHUNK_BYTES, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST }),
        host,
        view: new DataView(host),
        used: 0,
        dirty: false,
      };
      this.chunks.push(c);
    }
    const offset = c.used;
    c.used = Math.ceil((offset + bytes) / align) * align;
    c.dirty = true;
    return { buffer: c.buffer, view: c.view, offset };
  }

  /** Gives each dispatch still without a pipeline the one `get` makes now (a dry capture replayed before it is ready). */
  fillPipelines(get: (k: PipelineKey) => GPUComputePipeline): void {
    for (const r of this.dispatches) r.pipeline ??= get(r.key);
  }

  /** Writes uniforms filled since the last write (before the submit that reads them). */
  writeUniforms(queue: GPUQueue): void {
    for (const c of this.chunks) {
      if (!c.dirty) continue;
      queue.writeBuffer(c.buffer, 0, c.host, 0, c.used);
      c.dirty = false;
    }
  }

  /** Re-evaluates the uniforms given as functions and writes them. */
  refreshUniforms(queue: GPUQueue): void {
    for (const r of this.dispatches) {
      if (!r.uniforms) continue;
      writeWords(r.uniforms.slot.view, r.uniforms.slot.offset, r.uniforms.fn());
      this.chunks.find((c) => c.buffer === r.uniforms!.slot.buffer)!.dirty = true;
    }
    this.writeUniforms(queue);
  }

  /**
   * Encodes every dispatch into one compute pass of `enc` (after refreshUniforms): the backend's encoder, so the
   * step's input copies before it and a read's copy after it go in the same submit.
   */
  encode(enc: GPUCommandEncoder): void {
    const pass = enc.beginComputePass();
    for (const r of this.dispatches) {
      pass.setPipeline(r.pipeline!); // fillPipelines ran first
      pass.setBindGroup(0, r.bindGroup);
      pass.dispatchWorkgroups(r.x, r.y, r.z);
    }
    pass.end();
  }

  /** The dispatches, in order, as the Backend contract names them. */
  describe(): DispatchInfo[] {
    return this.dispatches.map((r) => ({ op: r.op, shader: r.shader, workgroups: [r.x, r.y, r.z], bytes: r.bytes }));
  }

  /**
   * GPU milliseconds of each dispatch: each runs in its own compute pass between two timestamps, the whole list
   * `runs` times (one submit each, with the uniforms as they stand: an optimizer update runs again), and each
   * dispatch keeps its least time. Undefined without 'timestamp-query'. Past one query set's 2048 dispatches, the
   * timestamps go to several query sets.
   */
  async profile(device: GPUDevice, runs: number): Promise<number[] | undefined> {
    if (!device.features.has('timestamp-query')) return undefined;
    const ds = this.dispatches;
    if (ds.length === 0) return [];
    const perSet = QUERY_SET_MAX / 2;
    const sets = Array.from({ length: Math.ceil(ds.length / perSet) }, (_, s) =>
      device.createQuerySet({ type: 'timestamp', count: 2 * Math.min(perSet, ds.length - s * perSet) }),
    );
    // Two u64 timestamps per dispatch; set s resolves at byte 16·perSet·s (a multiple of the 256 resolveQuerySet needs).
    const bytes = 16 * ds.length;
    const resolve = device.createBuffer({ size: bytes, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
    const staging = device.createBuffer({ size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    const best = ds.map(() => Infinity);
    try {
      for (let run = 0; run < runs; run++) {
        const enc = device.createCommandEncoder();
        ds.forEach((r, i) => {
          const j = i % perSet;
          const querySet = sets[Math.floor(i / perSet)]!;
          const pass = enc.beginComputePass({
            timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * j, endOfPassWriteIndex: 2 * j + 1 },
          });
          pass.setPipeline(r.pipeline!); // fillPipelines ran first
          pass.setBindGroup(0, r.bindGroup);
          pass.dispatchWorkgroups(r.x, r.y, r.z);
          pass.end();
        });
        sets.forEach((qs, s) => enc.resolveQuerySet(qs, 0, qs.count, resolve, 16 * perSet * s));
        enc.copyBufferToBuffer(resolve, 0, staging, 0, bytes);
        device.queue.submit([enc.finish()]);
        await staging.mapAsync(MapMode.READ);
        const t = new BigUint64Array(staging.getMappedRange().slice(0));
        staging.unmap();
        // NOTE: an end stamp not after its begin (a reset or wrapped counter) counts as 0 ms.
        // The least time of each dispatch over the runs: on a shared machine, the closest to its uncontended time.
        best.forEach((b, i) => {
          const ms = t[2 * i + 1]! > t[2 * i]! ? Number(t[2 * i + 1]! - t[2 * i]!) / 1e6 : 0;
          best[i] = Math.min(b, ms);
        });
      }
    } finally {
      for (const qs of sets) qs.destroy();
      resolve.destroy();
      staging.destroy();
    }
    return best;
  }

  destroy(): void {
    for (const c of this.chunks) c.buffer.destroy();
    this.chunks = [];
  }
}
