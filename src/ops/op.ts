// The shape of one op's definition. Everything about an op lives in one `defineOp({...})`: shape rule, CPU
// reference, WebGPU kernel, samples for tests and tolerance. A missing field is a compile error.
import type { Kernel, TensorSpec, DType } from '../backend/backend.js';
import type { WgnnError } from '../errors.js';
import type { Rng } from '../rng.js';
import type { Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';

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

/** What a backward rule sees: the tensors the op saved, the input shapes, which inputs need a gradient. */
export interface GradCtx<A> {
  /** Saved inputs (undefined where the op does not save that input). */
  readonly inputs: readonly (Tensor | undefined)[];
  /** The saved output, if the op saves it. */
  readonly output: Tensor | undefined;
  /** The auxiliary output the forward kernel wrote for backward (max_pool2d's argmax). */
  readonly aux: Tensor | undefined;
  readonly shapes: readonly Shape[];
  readonly attrs: A;
  /** needs[i]: input i requires a gradient (rules skip the others and return null for them). */
  readonly needs: readonly boolean[];
}

export interface Grad<A> {
  /** What backward needs kept alive: some inputs and/or the output. Freed after backward. */
  readonly saves: { readonly inputs?: readonly number[]; readonly output?: boolean };
  /** dy (the output's gradient) -> one gradient per input (null where not needed or not differentiable). */
  rule(ctx: GradCtx<A>, dy: Tensor): (Tensor | null)[];
}

/** An op with no gradient says why (e.g. argmax: piecewise constant). */
export interface NoGrad {
  readonly none: string;
}

export interface OpDef<A extends object> extends Kernel<A> {
  readonly name: string;
  /** Number of tensor inputs, or 'variadic' (concat). */
  readonly arity: number | 'variadic';
  /** Attribute defaults; callers pass a Partial<A>. */
  readonly attrs: A;
  /** Shape and dtype rule. Throws ShapeError/DTypeError naming the op and shapes. */
  infer(inputs: readonly TensorSpec[], attrs: A): TensorSpec;
  /**
   * A second output the same kernel writes for backward only (max_pool2d's argmax): saved with the node when the
   * op is recorded, freed at once otherwise; never returned to the caller.
   */
  aux?(inputs: readonly TensorSpec[], attrs: A): TensorSpec;
  /** The output is a view of input 0's storage (reshape): no kernel runs. */
  readonly alias?: boolean;
  samples(rng: Rng): Iterable<Sample<A>>;
  readonly bad: readonly BadCase<A>[];
  readonly tol: Tol;
  /** Tolerance of the backward pass GPU vs CPU where it differs from 10·tol (e.g. rules that reduce long axes). */
  readonly gradTol?: Tol;
  /** The backward rule, or why there is none (required: an op cannot forget to say). */
  readonly grad: Grad<A> | NoGrad;
}

// An identity, so each definition is checked against OpDef with its own attribute type.
export const defineOp = <A extends object>(def: OpDef<A>): OpDef<A> => def;

export type NoAttrs = Record<string, never>;

/** Any op of the table, whatever its attributes (the table's element type). */
export type AnyOp = OpDef<object>;
