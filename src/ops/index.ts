// The functional API: one function per op in the table, e.g. `relu(x)`, `matmul(a, b, { transB: true })`, with the
// option types they take. The op definitions and kernel tables behind them stay inside (src/internal.ts for bench/).
export { relu, leakyRelu, sigmoid, tanh, gelu, exp, log, neg, sqrt, square, abs, type GeluOptions } from './unary.js';
export {
  add,
  sub,
  mul,
  div,
  maximum,
  minimum,
  pow,
  where,
  maskedFill,
  stepMask,
  eqMask,
  binaryCrossEntropyWithLogits,
  sumTo,
  type Operand,
} from './binary.js';
export { sum, mean, max, argmax, type ReduceAttrs, type ArgmaxAttrs } from './reduce.js';
export { softmax, logSoftmax, type SoftmaxAttrs } from './softmax.js';
export { layerNorm, type LayerNormAttrs } from './norm.js';
export { matmul, linear, type Activation, type MatmulAttrs } from './matmul.js';
export {
  reshape,
  transpose,
  slice,
  concat,
  broadcastTo,
  type TransposeAttrs,
  type SliceAttrs,
  type ConcatAttrs,
} from './layout.js';
export { softmaxCrossEntropy, mseLoss, type CrossEntropyAttrs, type LossReduction } from './loss.js';
export { conv2d, conv2dBias, type ConvAttrs, type Pair, type Padding } from './conv.js';
export { maxPool2d, avgPool2d, globalAvgPool2d, type Pool2dAttrs, type AvgPool2dAttrs } from './pool.js';
export { dropout, type DropoutAttrs } from './random.js';
export { countCorrect, type CountCorrectAttrs } from './metrics.js';
export { gather } from './gather.js';
export { attention, type AttentionOptions } from './attention.js';
