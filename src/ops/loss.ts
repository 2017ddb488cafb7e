// (being written)
import type { AnyOp } from './op.js';

export const lossOps: Record<string, AnyOp> = {};
