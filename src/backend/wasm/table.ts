// The WASM backend's kernel table: every op of the op table and every in-place kernel, mapped to its wasm kernel
// or, where none is written yet, explicitly to 'reference': the op's CPU reference run on float32 views of the
// shared memory (correct, slow; the transitional list the tests print). A missing name is a compile error.
import type { InPlaceName } from '../../ops/inplace.js';
import type { OpName } from '../../ops/registry.js';
import type { WasmInPlaceKernel, WasmKernel } from './kernel.js';

/** An op's entry: its wasm kernel, or its CPU reference on the shared memory. */
export type WasmEntry = WasmKernel<any> | 'reference';
export type WasmInPlaceEntry = WasmInPlaceKernel<any> | 'reference';

/** Ops still on their CPU reference: each line leaves when its kernel lands. */
const REFERENCE = [
  ...['relu', 'leaky_relu', 'sigmoid', 'tanh', 'gelu', 'gelu_tanh', 'exp', 'log', 'neg', 'sqrt', 'square', 'abs'],
  ...['relu_bwd_x', 'leaky_relu_bwd_x', 'sigmoid_bwd_x', 'tanh_bwd_x', 'gelu_bwd_x', 'gelu_tanh_bwd_x'],
  ...['exp_bwd_x', 'log_bwd_x', 'neg_bwd_x', 'sqrt_bwd_x', 'square_bwd_x', 'abs_bwd_x'],
  ...['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'pow', 'pow_grad_base', 'pow_grad_exponent'],
  ...['binary_cross_entropy_with_logits', 'step_mask', 'eq_mask', 'mask_keep', 'mask_drop'],
  ...['sum', 'mean', 'max', 'argmax', 'softmax', 'log_softmax'],
  ...['layer_norm', 'layer_norm_bwd_x', 'layer_norm_bwd_params', 'matmul', 'matmul_bias'],
  ...[
    'reshape',
    'transpose',
    'slice',
    'concat',
    'broadcast_to',
    'softmax_cross_entropy',
    'softmax_cross_entropy_bwd_x',
  ],
  ...['conv2d', 'conv2d_bias', 'conv2d_bwd_x', 'conv2d_bwd_w'],
  ...['max_pool2d', 'max_pool2d_bwd_x', 'avg_pool2d', 'avg_pool2d_bwd_x'],
  ...['dropout', 'count_correct', 'gather', 'gather_bwd_table', 'attention', 'attention_bwd_q', 'attention_bwd_kv'],
] as const satisfies readonly OpName[];

const INPLACE_REFERENCE = [
  'accumulate',
  'ema_update',
  'anomaly_check',
  'sgd',
  'adam',
  'rmsprop',
  'adagrad',
] as const satisfies readonly InPlaceName[];

const ref = <N extends string>(names: readonly N[]) =>
  Object.fromEntries(names.map((n) => [n, 'reference' as const])) as Record<N, 'reference'>;

/** Every op's entry on the wasm backend. */
export const WASM_KERNELS: { readonly [N in OpName]: WasmEntry } = {
  ...ref(REFERENCE),
};

/** Every in-place kernel's entry on the wasm backend. */
export const WASM_INPLACE: { readonly [N in InPlaceName]: WasmInPlaceEntry } = {
  ...ref(INPLACE_REFERENCE),
};
