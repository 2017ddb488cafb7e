// The WASM backend: tensors live in one shared WebAssembly.Memory, ops run as AssemblyScript SIMD128 kernels
// (src/backend/wasm/assembly/, compiled at `npm run gen`), spread over worker threads that instantiate the same
// module on the same memory. AssemblyScript because kernels stay readable TypeScript-like code with SIMD intrinsics,
// optimised by Binaryen, with shared memory and threads; emitting bytecode by hand would be far more code.
// Ops without a wasm kernel yet run their CPU reference on views of the shared memory (table.ts lists them).
import { ArgumentError, BackendError, DTypeError } from '../../errors.js';
import { canShareMemory, hardwareThreads } from '../../platform/threads.js';
import { sizeOf } from '../../shape.js';
import type {
  Backend,
  CpuInput,
  Handle,
  InPlaceKernel,
  Kernel,
  MemoryInfo,
  RunResult,
  StorageInput,
  TensorSpec,
  TypedArray,
} from '../backend.js';
import { Arena } from './arena.js';
import type { WasmTensor } from './kernel.js';
import { KERNELS_WASM_BASE64 } from './kernels.gen.js';
import { WASM_INPLACE, WASM_KERNELS } from './table.js';
import { CONTROL_BYTES, ThreadPool } from './threads.js';

/**
 * Threads by default at most: every multi-task kernel call ends in a barrier that each worker checks in at, and
 * products of training-sized shapes are cut into as few as 8 tiles (ops/matmul.ts MIN_TILES) for all threads to share.
 */
const MAX_DEFAULT_THREADS = 4;

export interface WasmOptions {
  /**
   * Threads running kernels, the calling one included; default min(hardware threads, 4): the logical cores
   * (`os.availableParallelism()` in Node, `navigator.hardwareConcurrency` in a browser). 1 without shared memory.
   */
  threads?: number;
}

/** One tensor's block in the shared memory. */
class Block {
  constructor(
    readonly ptr: number,
    readonly size: number,
    readonly bytes: number,
  ) {}
  released = false;
}

let compiled: Promise<WebAssembly.Module> | undefined;
function kernelModule(): Promise<WebAssembly.Module> {
  compiled ??= WebAssembly.compile(Uint8Array.from(atob(KERNELS_WASM_BASE64), (c) => c.charCodeAt(0)));
  return compiled;
}

/** A shared memory as large as the platform allows (the module declares at most 4 GiB); a plain one without SAB. */
function newMemory(shared: boolean): { memory: WebAssembly.Memory; maxPages: number } {
  for (const maxPages of [65536, 16384, 4096]) {
    try {
      return { memory: new WebAssembly.Memory({ initial: 64, maximum: maxPages, shared }), maxPages };
    } catch {
      // address space too small for this reservation: try a smaller maximum
    }
  }
  throw new BackendError('wasm: cannot create a WebAssembly memory of 256 MiB');
}

export class WasmBackend implements Backend {
  readonly name = 'wasm' as const;
  readonly description: string;
  private u8: Uint8Array;
  private readonly arena: Arena;

  private constructor(
    private readonly mem: WebAssembly.Memory,
    maxPages: number,
    heapBase: number,
    private readonly pool: ThreadPool,
    note: string,
  ) {
    this.u8 = new Uint8Array(mem.buffer);
    this.arena = new Arena(mem, heapBase + CONTROL_BYTES, maxPages, () => {
      this.u8 = new Uint8Array(this.mem.buffer);
    });
    this.description = `WebAssembly SIMD128, ${pool.threads} thread${pool.threads > 1 ? 's' : ''}${note}`;
  }

  /** Compiles the kernel module, makes the shared memory and starts the worker threads. */
  static async create(opts: WasmOptions = {}): Promise<WasmBackend> {
    const want = opts.threads ?? Math.min(await hardwareThreads(), MAX_DEFAULT_THREADS);
    if (!Number.isInteger(want) || want < 1) {
      throw new ArgumentError(`wasm: threads is ${opts.threads}; expected a whole number >= 1`);
    }
    const shared = canShareMemory();
    const module = await kernelModule();
    const { memory, maxPages } = newMemory(shared);
    const instance = await WebAssembly.instantiate(module, {
      env: {
        memory,
        abort: () => {
          throw new BackendError('wasm: a kernel aborted');
        },
      },
    });
    const heapBase = (instance.exports.heap_base as () => number)();
    const threads = shared ? want : 1;
    const pool = await ThreadPool.start(module, memory, alignUp(heapBase), instance.exports, threads);
    const note = shared ? '' : ' (no SharedArrayBuffer: the page is not cross-origin isolated, so no worker threads)';
    return new WasmBackend(memory, maxPages, alignUp(heapBase), pool, note);
  }

  /** Threads running kernels, the calling one included. */
  get threads(): number {
    return this.pool.threads;
  }

  upload(data: TypedArray, spec: TensorSpec): Handle {
    const b = this.allocate(spec);
    this.view(b, spec.dtype).set(data);
    return b;
  }

  async read(handle: Handle, spec: TensorSpec): Promise<TypedArray> {
    return this.view(this.block(handle), spec.dtype).slice();
  }

  async readMany(items: readonly StorageInput[]): Promise<TypedArray[]> {
    return items.map((i) => this.view(this.block(i.handle), i.spec.dtype).slice());
  }

  run<A>(op: Kernel<A>, inputs: StorageInput[], out: TensorSpec, attrs: A, aux?: TensorSpec): RunResult {
    const kernel = WASM_KERNELS[op.name as keyof typeof WASM_KERNELS];
    if (kernel === undefined) throw new BackendError(`wasm: no kernel for op '${op.name}'`);
    if (kernel === 'reference') return this.reference(op, inputs, out, attrs, aux);
    const o = this.allocate(out);
    const x = aux && this.allocate(aux);
    this.withScratch((scratch, ints) =>
      kernel({
        inputs: inputs.map((i) => this.tensor(i)),
        out: { ptr: o.ptr, shape: out.shape, dtype: out.dtype },
        aux: x && aux && { ptr: x.ptr, shape: aux.shape, dtype: aux.dtype },
        attrs,
        parallel: (fn, args, tasks) => this.pool.parallel(fn, args, tasks),
        scratch,
        ints,
      }),
    );
    return { out: o, aux: x };
  }

  runInPlace<A>(op: InPlaceKernel<A>, targets: StorageInput[], inputs: StorageInput[], attrs: A): void {
    const kernel = WASM_INPLACE[op.name as keyof typeof WASM_INPLACE];
    if (kernel === undefined) throw new BackendError(`wasm: no in-place kernel '${op.name}'`);
    if (kernel === 'reference') {
      op.cpu({ targets: targets.map((t) => this.cpuInput(t)), inputs: inputs.map((i) => this.cpuInput(i)), attrs });
      return;
    }
    this.withScratch((scratch, ints) =>
      kernel({
        targets: targets.map((t) => this.tensor(t)),
        inputs: inputs.map((i) => this.tensor(i)),
        attrs,
        parallel: (fn, args, tasks) => this.pool.parallel(fn, args, tasks),
        scratch,
        ints,
      }),
    );
  }

  write(handle: Handle, data: TypedArray): void {
    const b = this.block(handle);
    this.view(b, data instanceof Int32Array ? 'int32' : 'float32').set(data);
  }

  copy(dst: Handle, src: Handle): void {
    const s = this.block(src);
    this.u8.copyWithin(this.block(dst).ptr, s.ptr, s.ptr + s.bytes);
  }

  release(handle: Handle): void {
    const b = this.block(handle);
    b.released = true;
    this.arena.release(b.ptr, b.size);
  }

  memory(): Omit<MemoryInfo, 'liveTensors'> {
    const a = this.arena;
    return {
      backend: 'wasm',
      liveBytes: a.liveBytes,
      pooledBytes: a.pooledBytes,
      peakBytes: a.peakBytes,
      buffersCreated: a.created,
      poolHits: a.poolHits,
    };
  }

  flush(): void {}

  destroy(): void {
    this.pool.destroy();
  }

  private allocate(spec: TensorSpec): Block {
    const bytes = 4 * sizeOf(spec.shape);
    const { ptr, size } = this.arena.alloc(bytes);
    return new Block(ptr, size, bytes);
  }

  private block(handle: Handle): Block {
    const b = handle as Block;
    if (!(b instanceof Block) || b.released) throw new BackendError('wasm: a handle that is not a live wasm tensor');
    return b;
  }

  private view(b: Block, dtype: TensorSpec['dtype']): Float32Array | Int32Array {
    const buf = this.u8.buffer;
    return dtype === 'int32' ? new Int32Array(buf, b.ptr, b.bytes / 4) : new Float32Array(buf, b.ptr, b.bytes / 4);
  }

  private tensor(i: StorageInput): WasmTensor {
    return { ptr: this.block(i.handle).ptr, shape: i.spec.shape, dtype: i.spec.dtype };
  }

  private cpuInput(i: StorageInput): CpuInput {
    return { data: this.view(this.block(i.handle), i.spec.dtype), shape: i.spec.shape, dtype: i.spec.dtype };
  }

  /** Runs `k` with scratch allocators whose blocks go back to the pool when it returns. */
  private withScratch(
    k: (scratch: (bytes: number) => number, ints: (values: readonly number[]) => number) => void,
  ): void {
    const taken: { ptr: number; size: number }[] = [];
    const scratch = (bytes: number): number => {
      const s = this.arena.alloc(bytes);
      taken.push(s);
      return s.ptr;
    };
    try {
      k(scratch, (values) => {
        const ptr = scratch(4 * values.length);
        new Int32Array(this.u8.buffer, ptr, values.length).set(values);
        return ptr;
      });
    } finally {
      for (const s of taken) this.arena.release(s.ptr, s.size);
    }
  }

  /** The op's CPU reference on views of the shared memory, its result copied into a new block. */
  private reference<A>(op: Kernel<A>, inputs: StorageInput[], out: TensorSpec, attrs: A, aux?: TensorSpec): RunResult {
    const r = op.cpu({
      inputs: inputs.map((i) => this.cpuInput(i)),
      out,
      attrs,
      alloc: (n) => new Float32Array(n),
      aux,
    });
    const put = (data: TypedArray, spec: TensorSpec): Block => {
      if (data.length !== sizeOf(spec.shape)) {
        throw new BackendError(
          `${op.name}: the CPU reference wrote ${data.length} values; expected ${sizeOf(spec.shape)}`,
        );
      }
      if (data instanceof Int32Array !== (spec.dtype === 'int32')) {
        throw new DTypeError(`${op.name}: the CPU reference's output type does not match ${spec.dtype}`);
      }
      return this.upload(data, spec) as Block;
    };
    if (ArrayBuffer.isView(r)) return { out: put(r, out) };
    return { out: put(r.out, out), aux: aux ? put(r.aux, aux) : undefined };
  }
}

const alignUp = (n: number): number => Math.ceil(n / 16) * 16;
