// Buffer pool: buffers are handed out by size class (not exact size) and usage, returned to per-class free lists,
// and destroyed when the pooled total would pass the cap. Counts what memory() reports.

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

  constructor(
    private device: GPUDevice,
    private maxBufferSize: number,
    /** Most bytes kept in free lists; beyond it released buffers are destroyed. */
    public capBytes: number,
  ) {}

  classOf(bytes: number): number {
    const c = sizeClass(bytes);
    return c <= this.maxBufferSize ? c : Math.ceil(bytes / 4) * 4;
  }

  /** A buffer of at least `bytes`, none of `avoid` (buffers a capture in progress has used). */
  acquire(bytes: number, usage: GPUBufferUsageFlags, avoid?: ReadonlySet<GPUBuffer>): GPUBuffer {
    const size = this.classOf(bytes);
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
      buf = this.device.createBuffer({ size, usage });
      this.created++;
    }
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes + this.pooledBytes);
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
