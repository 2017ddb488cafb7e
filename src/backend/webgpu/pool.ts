// Buffer pool: buffers are handed out by size class (not exact size) and usage, returned to per-class free lists,
// and destroyed when the pooled total would pass the cap. Counts what memory() reports. Sizes past a device limit
// throw LimitError; an allocation that fails empties the pool and retries once, then throws OutOfMemoryError.
import { LimitError, OutOfMemoryError } from '../../errors.js';
import { BufferUsage } from './flags.js';

/** Size classes: 256 B minimum, then four classes per power of two (at most 25% slack). */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes - 1));
  const step = p / 4;
  return Math.ceil(bytes / step) * step;
}

export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  /** Buffers a captured step uses, with the number of captures using each: never handed out again while pinned. */
  private pins = new Map<GPUBuffer, number>();
  /** Pinned buffers no tensor holds any more: kept for the captures, freed when unpinned. */
  private held = new Set<GPUBuffer>();
  heldBytes = 0;
  /** Buffers released since the last submit: reusing one for an upload must wait for that submit. */
  readonly releasedSinceSubmit = new Set<GPUBuffer>();
  private doomed: GPUBuffer[] = [];
  liveBytes = 0;
  pooledBytes = 0;
  peakBytes = 0;
  created = 0;
  hits = 0;

  /** Test hook (fault injection): the next `failNext` buffer creations fail as on a device out of memory. */
  failNext = 0;
  /** Submits the work still encoded (set by the backend), so that buffers emptied before a retry can go at once. */
  flushPending: () => void = () => {};
  /**
   * Out-of-memory errors the device reported after the fact (its error scopes answer asynchronously) for buffers
   * already handed out; the backend's next read throws the first.
   */
  readonly lateFailures: OutOfMemoryError[] = [];

  constructor(
    private device: GPUDevice,
    private limits: Pick<GPUSupportedLimits, 'maxBufferSize' | 'maxStorageBufferBindingSize'>,
    /** Most bytes kept in free lists; beyond it released buffers are destroyed. */
    public capBytes: number,
  ) {}

  /** The largest buffer of this usage: a storage buffer is bound whole, so it must fit one binding. */
  maxSize(usage: GPUBufferUsageFlags): number {
    const { maxBufferSize, maxStorageBufferBindingSize } = this.limits;
    return usage & BufferUsage.STORAGE ? Math.min(maxBufferSize, maxStorageBufferBindingSize) : maxBufferSize;
  }

  /** The size class of `bytes`, or the exact size (in whole words) where the class would pass the usage's limit. */
  classOf(bytes: number, usage: GPUBufferUsageFlags): number {
    const c = sizeClass(bytes);
    return c <= this.maxSize(usage) ? c : Math.ceil(bytes / 4) * 4;
  }

  /**
   * A buffer of at least `bytes`, none of `avoid` (buffers a capture in progress has used). `what` names it in
   * errors (the op and the tensor).
   */
  acquire(bytes: number, usage: GPUBufferUsageFlags, avoid?: ReadonlySet<GPUBuffer>, what = 'buffer'): GPUBuffer {
    const max = this.maxSize(usage);
    if (bytes > max) {
      const limit =
        max === this.limits.maxStorageBufferBindingSize && usage & BufferUsage.STORAGE
          ? 'maxStorageBufferBindingSize'
          : 'maxBufferSize';
      throw new LimitError(`${what} needs ${bytes} bytes, over this device's ${limit} of ${max}`);
    }
    const size = this.classOf(bytes, usage);
    const list = this.free.get(key(size, usage));
    let buf: GPUBuffer | undefined;
    if (list && avoid) {
      let i = list.length - 1;
      while (i >= 0 && avoid.has(list[i]!)) i--;
      if (i >= 0) buf = list.splice(i, 1)[0];
    } else buf = list?.pop();
    if (buf) {
      this.hits++;
      this.pooledBytes -= size;
    } else {
      buf = this.create(size, usage, what);
    }
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes + this.pooledBytes);
    return buf;
  }

  /** A new buffer; on failure, the pool emptied and one retry, then OutOfMemoryError. */
  private create(size: number, usage: GPUBufferUsageFlags, what: string): GPUBuffer {
    const pooled = this.pooledBytes;
    try {
      return this.createOnce(size, usage, what);
    } catch {
      this.flushPending();
      this.empty();
      this.submitted();
      try {
        return this.createOnce(size, usage, what);
      } catch (e) {
        throw new OutOfMemoryError(
          `${what}: the device could not allocate ${size} bytes, even after the pool freed its ${pooled} bytes; ${this.liveBytes} bytes are held by live tensors (${(e as Error).message})`,
          size,
          this.liveBytes,
          pooled,
        );
      }
    }
  }

  // NOTE: Dawn never throws here: a size past maxBufferSize is a validation error (ruled out in acquire), and running
  // out of memory is reported by the error scope, asynchronously, after the buffer has been handed out; on lavapipe
  // not even then (host memory, overcommitted: 12 buffers of 4000 MiB were created on a 23 GiB machine without an
  // error). So a failure caught here is a throw (a browser's, or the test hook), retried at once; one the scope
  // reports later empties the pool and surfaces at the next read.
  private createOnce(size: number, usage: GPUBufferUsageFlags, what: string): GPUBuffer {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('out of memory (injected by BufferPool.failNext)');
    }
    this.device.pushErrorScope('out-of-memory');
    let buf: GPUBuffer;
    try {
      buf = this.device.createBuffer({ size, usage });
    } finally {
      const live = this.liveBytes;
      void this.device.popErrorScope().then((err) => {
        if (!err) return;
        const pooled = this.pooledBytes;
        this.empty();
        this.lateFailures.push(
          new OutOfMemoryError(
            `${what}: the device ran out of memory allocating ${size} bytes (${live} bytes held by live tensors, ${pooled} pooled bytes freed since): ${err.message}`,
            size,
            live,
            pooled,
          ),
        );
      });
    }
    this.created++;
    return buf;
  }

  release(buf: GPUBuffer): void {
    const size = buf.size;
    this.liveBytes -= size;
    this.releasedSinceSubmit.add(buf);
    if (this.pins.has(buf)) {
      // A captured step still replays into it: held apart until the last capture using it goes.
      this.held.add(buf);
      this.heldBytes += size;
      return;
    }
    this.toFree(buf);
  }

  private toFree(buf: GPUBuffer): void {
    const size = buf.size;
    if (this.pooledBytes + size > this.capBytes) {
      this.doomed.push(buf); // may still be used by unsubmitted commands: destroyed after the submit
      return;
    }
    const k = key(size, buf.usage);
    let list = this.free.get(k);
    if (!list) this.free.set(k, (list = []));
    list.push(buf);
    this.pooledBytes += size;
  }

  /** Pins buffers for a capture: those free now leave the free lists, those live stay out of them when released. */
  pin(bufs: Iterable<GPUBuffer>): void {
    for (const b of bufs) {
      const n = this.pins.get(b) ?? 0;
      this.pins.set(b, n + 1);
      if (n > 0) continue;
      const list = this.free.get(key(b.size, b.usage));
      const i = list ? list.indexOf(b) : -1;
      if (i >= 0) {
        list!.splice(i, 1);
        this.pooledBytes -= b.size;
        this.held.add(b);
        this.heldBytes += b.size;
      }
    }
  }

  /** Undoes `pin`: buffers no capture and no tensor uses go back to the pool. */
  unpin(bufs: Iterable<GPUBuffer>): void {
    for (const b of bufs) {
      const n = (this.pins.get(b) ?? 1) - 1;
      if (n > 0) {
        this.pins.set(b, n);
        continue;
      }
      this.pins.delete(b);
      if (this.held.delete(b)) {
        this.heldBytes -= b.size;
        this.toFree(b);
      }
    }
  }

  /** Called after each submit. */
  submitted(): void {
    this.releasedSinceSubmit.clear();
    for (const b of this.doomed) b.destroy();
    this.doomed = [];
  }

  /** Frees every pooled buffer (after a submit, or when allocation failed). */
  empty(): void {
    for (const list of this.free.values()) for (const b of list) this.doomed.push(b);
    this.free.clear();
    this.pooledBytes = 0;
  }
}

const key = (size: number, usage: number): string => `${usage}:${size}`;
