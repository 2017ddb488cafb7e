// Numbers as the bench and results pages print them: three significant digits, times with their unit ("2.53 s",
// "12.4 ms", "52.3 µs") rather than raw milliseconds ("2529.400").

/** `x` to three significant digits, without an exponent (1000 and above: a whole number). */
export function sig3(x: number): string {
  if (!Number.isFinite(x)) return '—';
  return Math.abs(x) >= 1000 ? Math.round(x).toString() : x.toPrecision(3);
}

const UNITS: [string, number][] = [
  ['s', 1000],
  ['ms', 1],
  ['µs', 1e-3],
];

/** A duration given in ms, in s, ms or µs, whichever puts 1 to 999 before the unit; three significant digits. */
export function fmtTime(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  // Rounded first, so that 999.96 ms reads "1.00 s", not "1000 ms".
  const [unit, scale] = UNITS.find(([, s]) => Number((ms / s).toPrecision(3)) >= 1) ?? UNITS[UNITS.length - 1]!;
  return `${sig3(ms / scale)} ${unit}`;
}

/** A rate (GFLOP/s, GB/s, steps/s) to three significant digits. */
export const fmtRate = (x: number): string => sig3(x);
