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

  acquire(bytes: number, usage: GPUBufferUsageFlags): GPUBuffer {
    const size = this.classOf(bytes);
    const list = this.free.get(key(size, usage));
    let buf = list?.pop();
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
