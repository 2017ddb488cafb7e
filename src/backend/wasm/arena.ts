// Tensor storage in the WASM backend's shared memory: blocks in size classes, 16-byte aligned, bump-allocated above
// the module's static data and recycled through one free list per class (memory never shrinks: blocks are reused).
import { OutOfMemoryError } from '../../errors.js';

const PAGE = 65536;
const ALIGN = 16;

/** The block size serving `bytes`: 16-byte steps up to 256 B, then four classes per power of two (≤ 25% waste). */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  const step = 2 ** (Math.floor(Math.log2(bytes - 1)) - 2);
  return Math.ceil(bytes / step) * step;
}

export class Arena {
  private top: number;
  /** The memory's size in bytes: kept here, as `memory.buffer` of a shared memory is slow to ask (only we grow it). */
  private capacity: number;
  private readonly free = new Map<number, number[]>();
  /** Blocks a captured step uses, with the number of recordings using each: never handed out while pinned. */
  private readonly pins = new Map<number, number>();
  /** Pinned blocks no tensor holds any more (offset → size): back to the free lists when the last pin goes. */
  private readonly held = new Map<number, number>();
  liveBytes = 0;
  pooledBytes = 0;
  /** Bytes of pinned blocks no tensor holds (kept for the recordings replaying into them). */
  heldBytes = 0;
  peakBytes = 0;
  created = 0;
  poolHits = 0;

  /** `grown` is called after the memory grew (typed-array views of the old size must be re-made). */
  constructor(
    private readonly memory: WebAssembly.Memory,
    base: number,
    private readonly maxPages: number,
    private readonly grown: () => void,
  ) {
    this.top = Math.ceil(base / ALIGN) * ALIGN;
    this.capacity = memory.buffer.byteLength;
  }

  /** A block of at least `bytes`; returns its offset and class size. `fresh`: never a block used before. */
  alloc(bytes: number, fresh = false): { ptr: number; size: number } {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    const reused = fresh ? undefined : list?.pop();
    if (reused !== undefined) {
      this.poolHits++;
      this.pooledBytes -= size;
      this.liveBytes += size;
      return { ptr: reused, size };
    }
    const end = this.top + size;
    const have = this.capacity;
    if (end > have) {
      // Grow by at least a quarter of what we have, so a growing model does not grow the memory at every tensor.
      const want = Math.min(this.maxPages, Math.max(Math.ceil(end / PAGE), Math.ceil((have * 1.25) / PAGE)));
      const need = Math.ceil(end / PAGE);
      try {
        if (need > this.maxPages) throw new RangeError('past the maximum');
        this.memory.grow(want - have / PAGE);
      } catch {
        throw new OutOfMemoryError(
          `wasm: cannot allocate ${bytes} B: the shared memory cannot grow past ${have} B (maximum ${this.maxPages * PAGE} B; live ${this.liveBytes} B, pooled ${this.pooledBytes} B)`,
          bytes,
          this.liveBytes,
          this.pooledBytes,
        );
      }
      this.capacity = this.memory.buffer.byteLength;
      this.grown();
    }
    const ptr = this.top;
    this.top = end;
    this.created++;
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes + this.pooledBytes);
    return { ptr, size };
  }

  release(ptr: number, size: number): void {
    this.liveBytes -= size;
    // A captured step still replays into it: held apart until the last recording using it goes.
    if (this.pins.has(ptr)) {
      this.held.set(ptr, size);
      this.heldBytes += size;
    } else this.toFree(ptr, size);
  }

  /** Pins blocks for a recording: those free now leave the free lists, those live stay out of them when released. */
  pin(blocks: ReadonlyMap<number, number>): void {
    for (const [ptr, size] of blocks) {
      const n = this.pins.get(ptr) ?? 0;
      this.pins.set(ptr, n + 1);
      const list = this.free.get(size);
      const at = n === 0 && list ? list.indexOf(ptr) : -1;
      if (at >= 0) {
        list!.splice(at, 1);
        this.pooledBytes -= size;
        this.held.set(ptr, size);
        this.heldBytes += size;
      }
    }
  }

  /** Drops a recording's pins: blocks no tensor holds and no other recording pins go back to the free lists. */
  unpin(blocks: ReadonlyMap<number, number>): void {
    for (const [ptr] of blocks) {
      const n = (this.pins.get(ptr) ?? 1) - 1;
      if (n > 0) {
        this.pins.set(ptr, n);
        continue;
      }
      this.pins.delete(ptr);
      const size = this.held.get(ptr);
      if (size === undefined) continue;
      this.held.delete(ptr);
      this.heldBytes -= size;
      this.toFree(ptr, size);
    }
  }

  private toFree(ptr: number, size: number): void {
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(ptr);
    this.pooledBytes += size;
  }
}
