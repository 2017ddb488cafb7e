// A captured step as the WASM backend records it: the kernel calls of every op (exported function, arguments, task
// count) in order, with the shape descriptors they read, copies and writes; ops whose arguments depend on per-step
// host state (an optimizer's step, a dropout seed) are re-run through their wrapper on the recorded memory instead.
// A replay runs the list straight into the thread pool: no tensors, tape or allocation.
import type { DispatchInfo } from '../backend.js';

/** One recorded action of a step. */
export type Entry =
  /** An exported kernel run as `parallel(fn, args, tasks)`. */
  | { kind: 'call'; fn: string; args: readonly number[]; tasks: number }
  /** Int32 values a kernel reads (shape descriptors in scratch memory a later op may have overwritten). */
  | { kind: 'ints'; ptr: number; values: Int32Array }
  /**
   * Host code run again: an op wrapper whose arguments come from per-step state (its kernel calls timed one by one
   * when profiled), or a CPU reference (`timed`: timed as one dispatch).
   */
  | { kind: 'rerun'; run: () => void; timed: boolean };

/** A captured step: its entries, what `describe` says about its kernel calls, and the memory blocks it touches. */
export class Recording {
  readonly entries: Entry[] = [];
  readonly infos: DispatchInfo[] = [];
  /** Blocks (offset → size class) the recorded work reads or writes: pinned while the recording lives. */
  readonly used = new Map<number, number>();
  /** Blocks uploaded during the capture (constants the replays read again): pinned from their upload. */
  readonly constants = new Map<number, number>();

  use(ptr: number, size: number): void {
    this.used.set(ptr, size);
  }

  /** Every block the recording holds pinned once it has ended. */
  pinned(): Map<number, number> {
    return new Map([...this.used, ...this.constants]);
  }
}

/**
 * Whether an op's attributes are fixed data (numbers, strings, booleans, arrays of them), so that the kernel calls
 * recorded once hold for every replay. A function or a nested object (an optimizer's live step, a dropout seed box)
 * may change between steps: that op is re-run through its wrapper at each replay.
 */
export function fixedAttrs(attrs: unknown): boolean {
  if (attrs === null || attrs === undefined) return true;
  if (typeof attrs !== 'object') return typeof attrs !== 'function';
  const values = Array.isArray(attrs) ? attrs : Object.values(attrs);
  return values.every((v) =>
    Array.isArray(v)
      ? v.every((x) => typeof x !== 'object' && typeof x !== 'function')
      : typeof v !== 'object' && typeof v !== 'function',
  );
}
