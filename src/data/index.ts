// Datasets, the package's `wg.data`: IDX parsing, the embedded MNIST digits, IDX folders (Fashion-MNIST), host-side
// batching and augmentation. idx.ts, dataset.ts, augment.ts and mnist-rows.ts are pure (browsers too); files.ts,
// mnist.ts and fashion.ts read files and need Node (they import node: modules only as namespaces, used in calls).
export {
  parseIdx,
  encodeIdx,
  isGzip,
  IDX_MAX_BYTES,
  IDX_MAX_RANK,
  type IdxArray,
  type IdxData,
  type IdxType,
  type IdxParseOptions,
} from './idx.js';
export { gunzipBounded, decodeIdx, readIdxFile } from './files.js';
export {
  Dataset,
  permutation,
  epochPermutation,
  batchRng,
  bytesToUnit,
  type Batch,
  type BatchOptions,
  type ImageDataset,
} from './dataset.js';
export { randomShift, type Augment, type RandomShiftOptions } from './augment.js';
export { loadMnist, type MnistDataset, type MnistOptions } from './mnist.js';
export { mnistRows, splitMnist, MNIST_ROW, MNIST_SIDE, type MnistSplitOptions } from './mnist-rows.js';
export { loadIdxDataset, loadFashionMnist, FASHION_MNIST_DIR, FASHION_MNIST_CLASSES } from './fashion.js';
