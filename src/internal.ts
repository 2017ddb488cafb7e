// What only the benchmarks (bench/) need beyond the public API of src/index.ts: kernel and op tables, the apply
// functions, kernel types, the adapter's description and setting the default backend. Internal: not in the
// package's exports map, and it may change in any release; applications use src/index.ts (the package root).
export type { AnyOp, Tol } from './ops/op.js';
export { apply, applyInPlace } from './ops/apply.js';
export type { InPlaceKernel, TensorSpec } from './backend/backend.js';
export { MATMUL_KERNELS, matmulKernel, matmulOps, type MatmulAttrs, type MatmulKernelName } from './ops/matmul.js';
export { convOps } from './ops/conv.js';
export { poolOps } from './ops/pool.js';
export { UNARY, unaryOps, type UnaryName } from './ops/unary.js';
export { binaryOps } from './ops/binary.js';
export { reduceOps } from './ops/reduce.js';
export { softmaxOps } from './ops/softmax.js';
export { attentionComposed, attentionOps } from './ops/attention.js';
export { lossOps } from './ops/loss.js';
export { adamKernel, type AdamAttrs } from './optim/adam.js';
export { sgdKernel, type SgdAttrs } from './optim/sgd.js';
export type { AdapterInfo } from './platform/gpu.js';
export { setDefaultBackend } from './tensor.js';
export { WasmBackend } from './backend/wasm/wasm.js';
