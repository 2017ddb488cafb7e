// Typed errors. Each names the op, the shapes or sizes involved, and what was expected; the engine stays usable.

/** The base class of wgnn's errors: every failure the engine reports is one of its subclasses. */
export class WgnnError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Shapes that do not fit the op's rule (rank, broadcast, mismatched dims). */
export class ShapeError extends WgnnError {}
/** A tensor of the wrong dtype for the op. */
export class DTypeError extends WgnnError {}
/** A tensor used after `dispose()`. */
export class DisposedError extends WgnnError {}
/** Work or a buffer beyond a device limit. */
export class LimitError extends WgnnError {}
/** A GPU allocation that failed even after emptying the pool. */
export class OutOfMemoryError extends WgnnError {
  constructor(
    message: string,
    readonly requestedBytes: number,
    readonly liveBytes: number,
    readonly pooledBytes: number,
  ) {
    super(message);
  }
}
/** Anomaly mode found a NaN or an Inf: names the first op (in queue order) whose output held one. */
export class AnomalyError extends WgnnError {
  constructor(
    message: string,
    readonly op: string,
    readonly inputShapes: readonly (readonly number[])[],
    readonly outputShape: readonly number[],
    /** False when the op ran with gradient recording off: in backward, or in a `noGrad` block. */
    readonly gradEnabled: boolean,
  ) {
    super(message);
  }
}
/**
 * A NaN or an Inf where finite values are needed: in the data given to `fit`, `evaluate` or `predict` (the message
 * names the first index and value), or in the weights after a training step (training diverged: the message names
 * the step and the first non-finite tensor).
 */
export class NonFiniteError extends WgnnError {}
/** An argument or option with a value outside what it accepts (an epoch count of −1, a label past the last class). */
export class ArgumentError extends WgnnError {}
/**
 * Text that does not fit a tokenizer's vocabulary: a character it lacks (named with its code point and position), an
 * id outside 0..vocabSize−1, or a corpus with more distinct characters than the limit (the count and the limit).
 */
export class VocabularyError extends ArgumentError {}
/** A second `fit`, `evaluate` or `predict` on a model while one is running: names the call that runs. */
export class BusyError extends WgnnError {}
/** The GPU device was lost; pending reads reject with this and `init()` gets a new one. */
export class DeviceLostError extends WgnnError {}
/** No usable backend (e.g. `init({ backend: 'webgpu' })` without an adapter). */
export class BackendError extends WgnnError {}
/** A file (IDX, gzip, cache) that is malformed or hostile: the message says what, at which offset, and the sizes. */
export class ParseError extends WgnnError {}

/**
 * A file that could not be read or written (a missing folder, permissions, a full disk, no file system): names the
 * path and the system's reason, with its code (e.g. ENOENT).
 */
export class FileError extends WgnnError {
  constructor(
    message: string,
    readonly path: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/**
 * A state dict (a PyTorch checkpoint) that does not fit the model: every missing, unexpected and mis-shaped key, so
 * one error says all that is wrong.
 */
export class StateDictError extends ParseError {
  constructor(
    who: string,
    readonly missing: readonly string[],
    readonly unexpected: readonly string[],
    readonly mismatched: readonly string[],
  ) {
    const part = (what: string, keys: readonly string[]) => (keys.length ? [`${what}: ${keys.join('; ')}`] : []);
    super(
      `${who}: the state dict does not fit the model (${[
        ...part('missing', missing),
        ...part('unexpected', unexpected),
        ...part('mismatched', mismatched),
      ].join('. ')})`,
    );
  }
}

/**
 * An ONNX graph wgnn cannot run: an operator it does not implement, or an attribute value it does not support. Names
 * the node, its operator and the model's opset, and what is supported instead.
 */
export class OnnxError extends WgnnError {
  constructor(
    message: string,
    readonly node: string,
    readonly op: string,
    readonly opset: number,
  ) {
    super(`onnx: node ${JSON.stringify(node)} (${op}, opset ${opset}): ${message}`);
  }
}

/** A shape as error messages print it: `[2,3]`. */
export const fmtShape = (s: readonly number[]): string => `[${s.join(',')}]`;

/** Work that a captured (replayed) training step cannot contain, such as a read-back; the step runs eagerly instead. */
export class CaptureError extends WgnnError {}
