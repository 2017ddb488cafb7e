// The functional API: one function per op in the table, e.g. `relu(x)`, `matmul(a, b, { transB: true })`.
import type { Tensor } from '../tensor.js';
import { apply } from './apply.js';
import { OPS } from './registry.js';
import type { UnaryAttrs } from './unary.js';

const unary =
  (op: (typeof OPS)[keyof typeof OPS]) =>
  (x: Tensor): Tensor =>
    apply(op, [x]);

export const relu = unary(OPS.relu);
export const sigmoid = unary(OPS.sigmoid);
export const tanh = unary(OPS.tanh);
export const gelu = unary(OPS.gelu);
export const exp = unary(OPS.exp);
export const log = unary(OPS.log);
export const neg = unary(OPS.neg);
export const sqrt = unary(OPS.sqrt);
export const square = unary(OPS.square);
export const abs = unary(OPS.abs);
export const leakyRelu = (x: Tensor, alpha = 0.2): Tensor => apply(OPS.leaky_relu, [x], { alpha } satisfies Partial<UnaryAttrs>);
export * from './binary.js';
export * from './reduce.js';
export * from './softmax.js';
export * from './matmul.js';
export * from './layout.js';
