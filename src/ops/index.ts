// The functional API: one function per op in the table, e.g. `relu(x)`, `matmul(a, b, { transB: true })`.
export * from './unary.js';
export * from './binary.js';
export * from './reduce.js';
export * from './softmax.js';
export * from './norm.js';
export * from './matmul.js';
export * from './layout.js';
export * from './loss.js';
export * from './conv.js';
export * from './pool.js';
export * from './random.js';
export * from './metrics.js';
export * from './gather.js';
export { attention, type AttentionOptions } from './attention.js';
