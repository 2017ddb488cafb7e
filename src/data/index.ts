// Datasets, the package's `wg.data`: IDX parsing, the embedded MNIST digits, IDX folders (Fashion-MNIST), host-side
// batching and augmentation, text (tokenizer, corpora, token windows). idx.ts, dataset.ts, augment.ts, mnist-rows.ts
// and text.ts are pure (browsers too; text.ts's file readers load platform/fs.ts when called); files.ts, mnist.ts and
// fashion.ts read files and need Node (they import node: modules only as namespaces, used in calls).
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
export {
  CharTokenizer,
  TokenDataset,
  textDataset,
  decodeText,
  readText,
  readFortunes,
  parseFortunes,
  describeChar,
  MAX_VOCAB,
  TEXT_MAX_BYTES,
  FORTUNES_DIR,
  type CharTokenizerJSON,
  type TokenBatch,
  type TextDatasetOptions,
} from './text.js';
