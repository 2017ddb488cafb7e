// Checks of API options where they enter (fit, evaluate, predict): a bad value is an ArgumentError naming the
// option, its value and what it accepts, and so is an option name nobody reads (a typo such as `epoch`), as Keras
// refuses unknown keyword arguments.
import { ArgumentError } from '../errors.js';

/** What a valid value is, in words (`an integer >= 1`), or undefined when `v` is one. */
export type Rule = (v: unknown, option: string, op: string) => string | undefined;
/** One rule per option of `T`: a table for an options type that leaves an option out does not compile. */
export type Rules<T> = { readonly [K in keyof T]-?: Rule };

/** A value as a message shows it: numbers and booleans as written, strings quoted, anything else by its kind. */
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || v === null || v === undefined)
    return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

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
