// The WASM backend's kernels, one module (scripts/build-wasm.mjs): every file's exported functions are its exports.
export * from './elementwise';
export * from './rows';
export * from './optim';
export * from './matmul';
export * from './conv';
export * from './pool';

/** Where the module's static data ends: tensor storage starts above it. */
export function heap_base(): usize {
  return __heap_base;
}
