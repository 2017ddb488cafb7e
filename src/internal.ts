// For the benchmarks only (bench/): engine internals they drive directly, beyond the public API of src/index.ts.
// Not a stable API: anything here may change or go without notice. scripts/check-imports.mjs allows bench/, demo/
// and examples/ to import this file and src/index.ts, nothing else in src/.
export { setDefaultBackend } from './tensor.js';
export { loadMnist } from './data/mnist.js';
