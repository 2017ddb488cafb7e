// The op table: every op wgnn has, by name. Tests walk it; the functional API is built from it.
import type { AnyOp } from './op.js';
import { unaryOps } from './unary.js';

export const OPS = {
  ...unaryOps,
} satisfies Record<string, AnyOp>;

export type OpName = keyof typeof OPS;
