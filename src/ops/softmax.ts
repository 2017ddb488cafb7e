// (being written)
import type { AnyOp } from './op.js';

export const softmaxOps: Record<string, AnyOp> = {};
