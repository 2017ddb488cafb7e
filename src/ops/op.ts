// The shape of one op's definition. Everything about an op lives in one `defineOp({...})`: shape rule, CPU
// reference, WebGPU kernel, samples for tests and tolerance. A missing field is a compile error.
import type { Kernel, TensorSpec, DType } from '../backend/backend.js';
import type { WgnnError } from '../errors.js';
import type { Rng } from '../rng.js';

export interface Tol {
  atol: number;
  rtol: number;
}

export interface SampleInput {
  shape: number[];
  dtype?: DType;
  /** Explicit values (cycled to fill the tensor), e.g. to place 0, NaN, Inf, ties. */
  values?: number[];
  /** Range for uniform random values (default [-2, 2]). */
  range?: [number, number];
}

export interface Sample<A> {
  name: string;
  inputs: SampleInput[];
  attrs?: Partial<A>;
}

export interface BadCase<A> {
  name: string;
  inputs: SampleInput[];
  attrs?: Partial<A>;
  error: new (...args: never[]) => WgnnError;
  /** The message must name the op and the offending shapes. */
  message: RegExp;
}

export interface OpDef<A extends object> extends Kernel<A> {
  readonly name: string;
  /** Number of tensor inputs, or 'variadic' (concat). */
  readonly arity: number | 'variadic';
  /** Attribute defaults; callers pass a Partial<A>. */
  readonly attrs: A;
  /** Shape and dtype rule. Throws ShapeError/DTypeError naming the op and shapes. */
  infer(inputs: readonly TensorSpec[], attrs: A): TensorSpec;
  /** The output is a view of input 0's storage (reshape): no kernel runs. */
  readonly alias?: boolean;
  samples(rng: Rng): Iterable<Sample<A>>;
  readonly bad: readonly BadCase<A>[];
  readonly tol: Tol;
}

// eslint-style identity helper so each definition is checked against OpDef with its own attribute type.
export const defineOp = <A extends object>(def: OpDef<A>): OpDef<A> => def;

export type NoAttrs = Record<string, never>;

/** Any op of the table, whatever its attributes (the table's element type). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyOp = OpDef<any>;
