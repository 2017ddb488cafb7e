// (being written)
import type { AnyOp } from './op.js';

export const convOps: Record<string, AnyOp> = {};
