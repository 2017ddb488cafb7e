// The op table: every op wgnn has, by name. Tests walk it; the functional API is built from it.
import { attentionOps } from './attention.js';
import { binaryOps } from './binary.js';
import { convOps } from './conv.js';
import { gatherOps } from './gather.js';
import { layoutOps } from './layout.js';
import { lossOps } from './loss.js';
import { matmulOps } from './matmul.js';
import { metricOps } from './metrics.js';
import { normOps } from './norm.js';
import { poolOps } from './pool.js';
import type { AnyOp } from './op.js';
import { randomOps } from './random.js';
import { reduceOps } from './reduce.js';
import { softmaxOps } from './softmax.js';
import { unaryOps } from './unary.js';

/** The op table: every op definition (shape rule, CPU reference, kernels, backward rule, test samples), by name. */
export const OPS = {
  ...unaryOps,
  ...binaryOps,
  ...reduceOps,
  ...softmaxOps,
  ...normOps,
  ...matmulOps,
  ...layoutOps,
  ...lossOps,
  ...convOps,
  ...poolOps,
  ...randomOps,
  ...metricOps,
  ...gatherOps,
  ...attentionOps,
} satisfies Record<string, AnyOp>;

/** The name of an op of {@link OPS}. */
export type OpName = keyof typeof OPS;
