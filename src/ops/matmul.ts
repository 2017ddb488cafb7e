// (being written)
import type { AnyOp } from './op.js';

export const matmulOps: Record<string, AnyOp> = {};
