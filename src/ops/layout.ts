// (being written)
import type { AnyOp } from './op.js';

export const layoutOps: Record<string, AnyOp> = {};
