// (being written)
import type { AnyOp } from './op.js';

export const poolOps: Record<string, AnyOp> = {};
