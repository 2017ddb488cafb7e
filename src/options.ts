// Checks for the options users pass (layer configs, optimizer settings, schedules), from code or from a file: each
// failure is a WgnnError (or the subclass given) naming who, the option, what was expected and the value given.
import { WgnnError } from './errors.js';

type ErrorClass = new (message: string) => WgnnError;

/** A value as an error message shows it: short, and never throwing (unlike JSON.stringify on a cycle or a bigint). */
export function show(v: unknown, depth = 0): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (v === null || typeof v !== 'object') return typeof v === 'function' ? 'a function' : String(v);
  if (!Array.isArray(v)) return 'an object';
  if (depth > 1) return '[...]';
  return `[${v
    .slice(0, 8)
    .map((x) => show(x, depth + 1))
    .join(',')}${v.length > 8 ? `,... (${v.length})` : ''}]`;
}

/** `v` as an options object (a plain object, not null or an array), else throws naming `who`. */
export function optionsObject(
  who: string,
  what: string,
  v: unknown,
  error: ErrorClass = WgnnError,
): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new error(`${who}: ${what} must be an object, got ${show(v)}`);
  return v as Record<string, unknown>;
}

/**
 * Throws unless every key of `opts` is one of `known`: a misspelt option (`learningRate` for `lr`, Keras's
 * `trainable`) would otherwise be ignored without a word.
 */
export function knownKeys(who: string, opts: object, known: readonly string[], error: ErrorClass = WgnnError): void {
  for (const k of Object.keys(opts)) {
    if (!known.includes(k))
      throw new error(`${who}: unknown option ${JSON.stringify(k)}; expected one of ${known.join(', ')}`);
  }
}

/** Bounds of a numeric option; a number given must also be finite. */
export interface Bounds {
  /** v >= min */
  min?: number;
  /** v > above */
  above?: number;
  /** v <= max */
  max?: number;
  /** v < below */
  below?: number;
  integer?: boolean;
}

function describe(b: Bounds): string {
  const lo = b.min !== undefined ? `[${b.min}` : b.above !== undefined ? `(${b.above}` : undefined;
  const hi = b.max !== undefined ? `${b.max}]` : b.below !== undefined ? `${b.below})` : undefined;
  const kind = b.integer ? 'an integer ' : '';
  if (lo && hi) return `${kind}in ${lo}, ${hi}`;
  if (lo) return `${kind}${b.min !== undefined ? '>=' : '>'} ${lo.slice(1)}`;
  if (hi) return `${kind}${b.max !== undefined ? '<=' : '<'} ${hi.slice(0, -1)}`;
  return b.integer ? 'an integer' : 'a finite number';
}

/** `v` if it is a finite number (an integer if asked) within the bounds, else throws naming the option. */
export function checkNumber(
  who: string,
  option: string,
  v: unknown,
  b: Bounds = {},
  error: ErrorClass = WgnnError,
): number {
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (!b.integer || Number.isInteger(v)) &&
    (b.min === undefined || v >= b.min) &&
    (b.above === undefined || v > b.above) &&
    (b.max === undefined || v <= b.max) &&
    (b.below === undefined || v < b.below);
  if (!ok)
    throw new error(
      `${who}: ${option} must be ${describe(b)}, got ${show(v)}${typeof v === 'string' ? ' (a string)' : ''}`,
    );
  return v as number;
}

/** `v` if it is a boolean, else throws naming the option. */
export function checkBoolean(who: string, option: string, v: unknown, error: ErrorClass = WgnnError): boolean {
  if (typeof v !== 'boolean') throw new error(`${who}: ${option} must be true or false, got ${show(v)}`);
  return v;
}

/** `v` if it is one of `values` (compared as own entries, so 'constructor' or '__proto__' never match), else throws. */
export function checkOneOf<T extends string>(
  who: string,
  option: string,
  v: unknown,
  values: readonly T[],
  error: ErrorClass = WgnnError,
): T {
  if (typeof v !== 'string' || !values.includes(v as T))
    throw new error(`${who}: ${option} must be one of ${values.join(', ')}, got ${show(v)}`);
  return v as T;
}
