// Shape arithmetic shared by ops and backends: sizes, strides, broadcasting, axis normalisation.
import { ShapeError, fmtShape } from './errors.js';

export type Shape = readonly number[];

export const sizeOf = (s: Shape): number => s.reduce((a, b) => a * b, 1);

/** Row-major strides: stride[i] = prod(s[i+1..]). */
export function stridesOf(s: Shape): number[] {
  const st = new Array<number>(s.length);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s[i]!;
  }
  return st;
}

export const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** NumPy broadcasting of two shapes; throws ShapeError naming the op. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(
        `${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast (dim ${i}: ${da} vs ${db}); expected equal sizes or 1`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides for reading `inShape` as if broadcast to `outShape` (0 on broadcast dims). */
export function broadcastStrides(inShape: Shape, outShape: Shape): number[] {
  const st = stridesOf(inShape);
  const off = outShape.length - inShape.length;
  return outShape.map((_, i) => (i < off || inShape[i - off] === 1 ? 0 : st[i - off]!));
}

/** Normalises possibly negative axes against a rank; throws ShapeError on out-of-range or repeated axes. */
export function normAxes(op: string, axes: number | readonly number[] | undefined, shape: Shape): number[] {
  const r = shape.length;
  if (axes === undefined) return [...Array(r).keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    if (!Number.isInteger(a) || a < -r || a >= Math.max(r, 1)) {
      throw new ShapeError(`${op}: axis ${a} is out of range for shape ${fmtShape(shape)} (rank ${r})`);
    }
    return a < 0 ? a + Math.max(r, 1) : a; // NOTE: a rank-0 tensor takes axis 0 or -1, as PyTorch
  });
  if (new Set(out).size !== out.length)
    throw new ShapeError(`${op}: repeated axis in [${list.join(',')}] for shape ${fmtShape(shape)}`);
  return out.sort((x, y) => x - y);
}

export function checkShape(op: string, s: Shape): void {
  for (const d of s) {
    if (!Number.isInteger(d) || d < 0)
      throw new ShapeError(`${op}: invalid shape ${fmtShape(s)}; expected non-negative integer dims`);
  }
}
