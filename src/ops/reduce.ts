// (being written)
import type { AnyOp } from './op.js';

export const reduceOps: Record<string, AnyOp> = {};
