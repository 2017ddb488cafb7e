// What the WASM backend's op wrappers share: task counts from sizes alone (never from the thread count, so results
// do not depend on it) and index spaces with size-1 dims dropped and contiguous dims merged.
import type { Shape } from '../../../shape.js';

/** Elements one task takes at least: smaller ops run as one task on the calling thread, waking no worker. */
export const CHUNK = 1 << 15;

/** Tasks for `n` elements of work (at least 1, so empty ops still call their kernel once). */
export const tasksFor = (n: number): number => Math.max(1, Math.ceil(n / CHUNK));

/** Tasks for `rows` rows of `inner` elements each, whole rows per task. */
export const rowTasks = (rows: number, inner: number): number => Math.max(1, Math.min(rows, tasksFor(rows * inner)));

/** An index space: dims outermost first, and per operand its element strides along them. */
export interface Space {
  dims: number[];
  strides: number[][];
}

/**
 * `shape` read through each operand's `strides`, as few dims as possible: size-1 dims dropped, and a dim merged into
 * the one outside it where every operand steps through the pair as one (outer stride = inner stride · inner size).
 */
export function coalesce(shape: Shape, strides: readonly (readonly number[])[]): Space {
  const s: Space = { dims: [], strides: strides.map(() => []) };
  shape.forEach((size, d) => {
    if (size === 1) return;
    const last = s.dims.length - 1;
    if (last >= 0 && strides.every((st, k) => s.strides[k]![last] === st[d]! * size)) {
      s.dims[last]! *= size;
      strides.forEach((st, k) => (s.strides[k]![last] = st[d]!));
    } else {
      s.dims.push(size);
      strides.forEach((st, k) => s.strides[k]!.push(st[d]!));
    }
  });
  return s;
}
