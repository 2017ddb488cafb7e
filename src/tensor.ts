// Tensor: a shape, a dtype and refcounted backend storage; scopes (`tidy`) free what a block created.
// Ops return new tensors at once; the GPU work behind them is queued, so chains never wait on the host.
import type { Backend, DType, Handle, MemoryInfo, TypedArray, TensorSpec } from './backend/backend.js';
import { BackendError, DisposedError, DTypeError, ShapeError, fmtShape } from './errors.js';
import { checkShape, sizeOf, type Shape } from './shape.js';

/** Storage shared by a tensor and its views (reshape); released when the last one is disposed. */
class Storage {
  refs = 1;
  constructor(
    readonly backend: Backend,
    readonly handle: Handle,
  ) {}
}

const registry = {
  defaultBackend: undefined as Backend | undefined,
  scopes: [] as Set<Tensor>[],
  /** Live tensors per backend. */
  live: new Map<Backend, number>(),
  nextId: 1,
};

/** Options of `backward()` (defined by the tape, above this layer). */
export interface BackwardOptions {
  /** Keep saved tensors so backward can run again through the same graph. */
  retainGraph?: boolean;
}
type BackwardFn = (root: Tensor, dy: Tensor | undefined, opts: BackwardOptions) => void;
let backwardFn: BackwardFn | undefined;
/** The autograd tape registers its backward here (it sits above tensors and imports them, not the reverse). */
export function onBackward(f: BackwardFn): void {
  backwardFn = f;
}

export function setDefaultBackend(b: Backend | undefined): void {
  registry.defaultBackend = b;
}

export function defaultBackend(): Backend {
  const b = registry.defaultBackend;
  if (!b) throw new BackendError('wgnn: no backend; call `await wg.init()` first');
  return b;
}

/** An n-dimensional array on a backend (GPU buffer or host array): shape, dtype, `data()` to read it, `backward()` for gradients, `dispose()` to free it. */
export class Tensor implements TensorSpec {
  readonly id = registry.nextId++;
  readonly size: number;
  private storage: Storage | null;
  /** Record ops on this tensor so `backward()` can reach it (leaves: set it; op outputs inherit it). */
  requiresGrad = false;
  /** Accumulated gradient of a leaf after `backward()` (`+=`, as PyTorch); `zeroGrad()` clears it. */
  grad: Tensor | undefined;

  /** @internal Use `tensor()`, `zeros()` or an op to make tensors. */
  constructor(
    readonly shape: Shape,
    readonly dtype: DType,
    storage: Storage,
  ) {
    this.size = sizeOf(shape);
    this.storage = storage;
    registry.live.set(storage.backend, (registry.live.get(storage.backend) ?? 0) + 1);
    registry.scopes[registry.scopes.length - 1]?.add(this);
  }

  get rank(): number {
    return this.shape.length;
  }
  get isDisposed(): boolean {
    return this.storage === null;
  }
  get backend(): Backend {
    return this.live('backend').backend;
  }

  /** @internal The storage, or a DisposedError naming the op that wanted it. */
  live(op: string): Storage {
    if (!this.storage) throw new DisposedError(`${op}: tensor #${this.id} ${fmtShape(this.shape)} was disposed`);
    return this.storage;
  }

  /** Copies the data to the host. Resolves when the GPU work producing it is done. */
  data(): Promise<TypedArray> {
    const s = this.live('data');
    return s.backend.read(s.handle, this);
  }

  /**
   * Accumulates d(this)/d(leaf) into every leaf's `.grad` (`+=`); `dy` defaults to 1 for a scalar, as
   * PyTorch's `loss.backward()`.
   */
  backward(dy?: Tensor, opts: BackwardOptions = {}): void {
    if (!backwardFn) throw new BackendError('backward: the autograd tape is not loaded (import wgnn, not its parts)');
    backwardFn(this, dy, opts);
  }

  /** Marks a leaf as trainable (records the ops that use it); returns this. */
  variable(requiresGrad = true): this {
    this.requiresGrad = requiresGrad;
    return this;
  }

  /** Frees the storage (shared storage when the last view goes). Safe to call twice. */
  dispose(): void {
    const s = this.storage;
    if (!s) return;
    this.storage = null;
    registry.live.set(s.backend, registry.live.get(s.backend)! - 1);
    if (--s.refs === 0) s.backend.release(s.handle);
  }

  toString(): string {
    return `Tensor#${this.id} ${this.dtype}${fmtShape(this.shape)}${this.isDisposed ? ' (disposed)' : ''}`;
  }
}

/** @internal Wraps fresh backend storage in a tensor. */
export function wrap(backend: Backend, handle: Handle, spec: TensorSpec): Tensor {
  return new Tensor(spec.shape, spec.dtype, new Storage(backend, handle));
}

/** @internal A tensor sharing `src`'s storage under another shape (reshape). */
export function view(src: Tensor, shape: Shape, op: string): Tensor {
  const s = src.live(op);
  s.refs++;
  return new Tensor(shape, src.dtype, s);
}

/** Options of the tensor factories: the dtype (default float32) and the backend (default `init()`'s). */
export interface CreateOptions {
  dtype?: DType;
  backend?: Backend;
}

/** A tensor from host values. `shape` defaults to [values.length]. */
export function tensor(values: ArrayLike<number>, shape?: readonly number[], opts: CreateOptions = {}): Tensor {
  const s = shape ?? [values.length];
  checkShape('tensor', s);
  if (sizeOf(s) !== values.length) {
    throw new ShapeError(`tensor: ${values.length} values do not fill shape ${fmtShape(s)} (${sizeOf(s)} elements)`);
  }
  const dtype = opts.dtype ?? (values instanceof Int32Array ? 'int32' : 'float32');
  if (dtype !== 'float32' && dtype !== 'int32')
    throw new DTypeError(`tensor: unsupported dtype ${String(dtype)}; expected float32 or int32`);
  // Float64 data goes to the backend as is: a float64 CPU backend keeps it, the GPU rounds it to f32.
  const data =
    dtype === 'int32' ? Int32Array.from(values) : values instanceof Float64Array ? values : Float32Array.from(values);
  const b = opts.backend ?? defaultBackend();
  return wrap(b, b.upload(data, { shape: s, dtype }), { shape: s, dtype });
}

/** A tensor of `shape` filled with `value`. */
export const full = (shape: readonly number[], value: number, opts: CreateOptions = {}): Tensor =>
  tensor(new (opts.dtype === 'int32' ? Int32Array : Float32Array)(sizeOf(shape)).fill(value), shape, opts);
/** A tensor of zeros. */
export const zeros = (shape: readonly number[], opts: CreateOptions = {}): Tensor => full(shape, 0, opts);
/** A tensor of ones. */
export const ones = (shape: readonly number[], opts: CreateOptions = {}): Tensor => full(shape, 1, opts);
/** A tensor of one value, shape []. */
export const scalar = (v: number, opts: CreateOptions = {}): Tensor => tensor([v], [], opts);

/**
 * Runs `fn` and disposes every tensor created inside it except those it returns (a tensor, or an array/object of
 * them) and those passed to `keep()`. Synchronous, like tf.tidy: GPU work stays queued.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  registry.scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    registry.scopes.pop();
  }
  const kept = new Set<Tensor>();
  collect(result, kept);
  const parent = registry.scopes[registry.scopes.length - 1];
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Keeps a tensor alive past the enclosing `tidy`. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of registry.scopes) s.delete(t);
  return t;
}

function collect(v: unknown, out: Set<Tensor>): void {
  if (v instanceof Tensor) out.add(v);
  else if (Array.isArray(v)) for (const x of v) collect(x, out);
  else if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collect(x, out);
  }
}

/** Memory of a backend (the default one unless given): live tensors and bytes, pool, peak, buffers created. */
export function memory(backend?: Backend): MemoryInfo {
  const b = backend ?? defaultBackend();
  return { ...b.memory(), liveTensors: registry.live.get(b) ?? 0 };
}
