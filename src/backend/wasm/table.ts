// The WASM backend's kernel table: every op of the op table and every in-place kernel, mapped to its wasm kernel
// or, where none is written yet, explicitly to 'reference': the op's CPU reference run on float32 views of the
// shared memory (correct, slow; the transitional list the tests print). A missing name, or a name both with a
// kernel and on the reference list, is a compile error.
import type { InPlaceName } from '../../ops/inplace.js';
import type { OpName } from '../../ops/registry.js';
import type { WasmInPlaceKernel, WasmKernel } from './kernel.js';
import { convKernels } from './ops/conv.js';
import { matmulKernels } from './ops/matmul.js';
import { poolKernels } from './ops/pool.js';
import { binaryKernels, dropoutKernel, gatherBwdKernel, gatherKernel, unaryKernels } from './ops/elementwise.js';
import { layoutKernels } from './ops/layout.js';
import { optimKernels } from './ops/optim.js';
import { rowKernels } from './ops/rows.js';

/** An op's entry: its wasm kernel, or its CPU reference on the shared memory. */
export type WasmEntry = WasmKernel<any> | 'reference';
export type WasmInPlaceEntry = WasmInPlaceKernel<any> | 'reference';

const KERNELS = {
  ...unaryKernels,
  ...binaryKernels,
  ...layoutKernels,
  ...rowKernels,
  dropout: dropoutKernel,
  gather: gatherKernel,
  gather_bwd_table: gatherBwdKernel,
  ...matmulKernels,
  ...convKernels,
  ...poolKernels,
};
const INPLACE_KERNELS = optimKernels;

/** Ops still on their CPU reference: each name leaves when its kernel lands. */
const REFERENCE = [
  ...['attention', 'attention_bwd_q', 'attention_bwd_kv', 'attention_qkv', 'attention_qkv_bwd'],
] as const satisfies readonly Exclude<OpName, keyof typeof KERNELS>[];

const INPLACE_REFERENCE = [] as const satisfies readonly Exclude<InPlaceName, keyof typeof INPLACE_KERNELS>[];

const ref = <N extends string>(names: readonly N[]) =>
  Object.fromEntries(names.map((n) => [n, 'reference' as const])) as Record<N, 'reference'>;

/** Every op's entry on the wasm backend. */
export const WASM_KERNELS: { readonly [N in OpName]: WasmEntry } = { ...KERNELS, ...ref(REFERENCE) };

/** Every in-place kernel's entry on the wasm backend. */
export const WASM_INPLACE: { readonly [N in InPlaceName]: WasmInPlaceEntry } = {
  ...INPLACE_KERNELS,
  ...ref(INPLACE_REFERENCE),
};
