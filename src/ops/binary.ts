// (being written)
import type { AnyOp } from './op.js';

export const binaryOps: Record<string, AnyOp> = {};
