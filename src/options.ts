// Checks for the options users pass where they enter (layer configs, optimizer settings, schedules, fit/evaluate/
// predict), from code or from a file: each failure is a WgnnError (or the subclass given; ArgumentError for the
// rule tables below) naming who, the option, what was expected and the value given.
import { ArgumentError, WgnnError } from './errors.js';

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

// Rule tables: one rule per option of an options type (fit's, evaluate's), so an option without a rule does not
// compile, and an option name nobody reads (a typo such as `epoch`) is refused, as Keras refuses unknown keywords.

/** What a valid value is, in words (`an integer >= 1`), or undefined when `v` is one. */
export type Rule = (v: unknown, option: string, op: string) => string | undefined;
/** One rule per option of `T`: a table for an options type that leaves an option out does not compile. */
export type Rules<T> = { readonly [K in keyof T]-?: Rule };

export const integer =
  (min: number): Rule =>
  (v) =>
    typeof v === 'number' && Number.isSafeInteger(v) && v >= min ? undefined : `an integer >= ${min}`;
export const anyInteger: Rule = (v) => (typeof v === 'number' && Number.isSafeInteger(v) ? undefined : 'an integer');
export const boolean: Rule = (v) => (typeof v === 'boolean' ? undefined : 'true or false');
export const func: Rule = (v) => (typeof v === 'function' ? undefined : 'a function');
export const path: Rule = (v) => (typeof v === 'string' && v.length > 0 ? undefined : 'a non-empty path');
export const oneOf =
  (...values: readonly unknown[]): Rule =>
  (v) =>
    values.includes(v) ? undefined : `one of ${values.map(show).join(', ')}`;
/** A fraction strictly between 0 and 1, or 0 for none (Keras's default `validation_split=0.0`). */
export const fraction: Rule = (v) =>
  typeof v === 'number' && v >= 0 && v < 1 ? undefined : 'a number > 0 and < 1 (or 0: none)';
/** An array of `n` values (each checked where it is used). */
export const tuple =
  (n: number, what: string): Rule =>
  (v) =>
    Array.isArray(v) && v.length === n ? undefined : what;
/** An object whose fields follow `rules` (checked in turn, named `option.field`), with the `required` ones present. */
export const object =
  <T>(rules: Rules<T>, required: readonly (keyof T & string)[] = []): Rule =>
  (v, option, op) => {
    checkOptions(op, v, rules, `${option}.`, required);
    return undefined;
  };

/**
 * Throws ArgumentError for the first option of `opts` that `rules` does not know or that breaks its rule, naming it
 * (`fit: epochs is -1; expected an integer >= 0`). Options left undefined take their defaults, unless `required`.
 */
export function checkOptions<T>(
  op: string,
  opts: unknown,
  rules: Rules<T>,
  prefix = '',
  required: readonly (keyof T & string)[] = [],
): asserts opts is T | undefined {
  if (opts === undefined) return;
  const what = prefix ? prefix.slice(0, -1) : 'options';
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts))
    throw new ArgumentError(`${op}: ${what} is ${show(opts)}; expected an object`);
  for (const key of required) {
    if ((opts as Record<string, unknown>)[key] === undefined)
      throw new ArgumentError(
        `${op}: ${prefix}${key} is missing; expected ${(rules as Record<string, Rule>)[key]!(undefined, prefix + key, op)}`,
      );
  }
  for (const [key, v] of Object.entries(opts)) {
    const rule = Object.hasOwn(rules, key) ? (rules as Record<string, Rule>)[key] : undefined;
    if (!rule)
      throw new ArgumentError(
        `${op}: unknown option ${prefix}${key}; expected one of ${Object.keys(rules)
          .map((k) => prefix + k)
          .join(', ')}`,
      );
    if (v === undefined) continue;
    const expected = rule(v, prefix + key, op);
    if (expected) throw new ArgumentError(`${op}: ${prefix}${key} is ${show(v)}; expected ${expected}`);
  }
}
