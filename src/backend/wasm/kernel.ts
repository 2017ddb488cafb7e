// The WASM backend's kernel API (the ABI in the lead's WASM_ABI.md): what one op's host side sees, tensors as byte
// offsets into the shared memory, and `parallel` to run an exported kernel's tasks over the threads.
import type { DType } from '../kernel.js';
import type { Shape } from '../../shape.js';

/** A tensor in the shared memory: `ptr` is a byte offset, 16-byte aligned. */
export interface WasmTensor {
  readonly ptr: number;
  readonly shape: Shape;
  readonly dtype: DType;
}

export interface WasmCtx<A> {
  readonly inputs: readonly WasmTensor[];
  readonly out: WasmTensor;
  /** The auxiliary output (max_pool2d's argmax), when the op has one. */
  readonly aux?: WasmTensor | undefined;
  readonly attrs: A;
  /**
   * Calls the exported kernel `fn(...args, task, tasks)` for every task in 0..tasks-1, spread over the threads;
   * returns when all are done (a barrier). Consecutive calls run in order.
   */
  parallel(fn: string, args: readonly number[], tasks: number): void;
  /** Scratch memory (16-byte aligned byte offset) valid until the op's kernel returns: packed panels, partials. */
  scratch(bytes: number): number;
  /** Scratch holding these int32 values (shape descriptors for a kernel), valid until the op's kernel returns. */
  ints(values: readonly number[]): number;
}

/** One op's implementation on the wasm backend. */
export type WasmKernel<A> = (ctx: WasmCtx<A>) => void;

export interface WasmInPlaceCtx<A> {
  readonly targets: readonly WasmTensor[];
  readonly inputs: readonly WasmTensor[];
  readonly attrs: A;
  parallel(fn: string, args: readonly number[], tasks: number): void;
  scratch(bytes: number): number;
  ints(values: readonly number[]): number;
}

export type WasmInPlaceKernel<A> = (ctx: WasmInPlaceCtx<A>) => void;
