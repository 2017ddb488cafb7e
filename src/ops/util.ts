// Small helpers shared by op definitions.
import type { TensorSpec } from '../backend/backend.js';
import { DTypeError, fmtShape } from '../errors.js';

/** Throws DTypeError unless every input is float32. */
export function requireFloat(op: string, inputs: readonly TensorSpec[]): void {
  inputs.forEach((t, i) => {
    if (t.dtype !== 'float32') {
      throw new DTypeError(`${op}: input ${i} ${fmtShape(t.shape)} is ${t.dtype}; expected float32`);
    }
  });
}

/** Float64 erf for the CPU references (JavaScript has none): Taylor series near 0, continued fraction beyond. */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (Number.isNaN(x)) return NaN;
  if (a < 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 80; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = exp(-a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...)))), evaluated from the tail.
  let f = a;
  for (let k = 120; k >= 1; k--) f = a + k / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}
