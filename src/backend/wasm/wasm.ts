// The WASM backend: tensors live in one shared WebAssembly.Memory, ops run as AssemblyScript SIMD128 kernels
// (src/backend/wasm/assembly/, compiled at `npm run gen`), spread over worker threads that instantiate the same
// module on the same memory. AssemblyScript because kernels stay readable TypeScript-like code with SIMD intrinsics,
// optimised by Binaryen, with shared memory and threads; emitting bytecode by hand would be far more code.
// Ops without a wasm kernel yet run their CPU reference on views of the shared memory (table.ts lists them).
import { ArgumentError, BackendError, CaptureError, DTypeError, WgnnError } from '../../errors.js';
import { canShareMemory, hardwareThreads } from '../../platform/threads.js';
import { sizeOf } from '../../shape.js';
import type {
  Backend,
  CaptureSupport,
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
import { Recording, fixedAttrs, type Entry } from './capture.js';
import type { WasmCtx, WasmTensor } from './kernel.js';
import { KERNELS_WASM_BASE64 } from './kernels.gen.js';
import { WASM_INPLACE, WASM_KERNELS } from './table.js';
import { CONTROL_BYTES, ThreadPool } from './threads.js';
import { unsharedModule } from './unshared.js';

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

/** What an op's wrapper gets from the backend besides its tensors and attributes. */
type HostCtx = Pick<WasmCtx<unknown>, 'parallel' | 'scratch' | 'ints'>;

/** One tensor's block in the shared memory. */
class Block {
  constructor(
    readonly ptr: number,
    readonly size: number,
    readonly bytes: number,
  ) {}
  released = false;
}

const compiled = new Map<boolean, Promise<WebAssembly.Module>>();
/** The kernel module, importing a shared memory or (a page that is not cross-origin isolated) a plain one. */
function kernelModule(shared: boolean): Promise<WebAssembly.Module> {
  let m = compiled.get(shared);
  if (!m) {
    const bytes = Uint8Array.from(atob(KERNELS_WASM_BASE64), (c) => c.charCodeAt(0));
    m = WebAssembly.compile(shared ? bytes : unsharedModule(bytes));
    compiled.set(shared, m);
  }
  return m;
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
  /** The step being captured. */
  private recording: Recording | undefined;
  /** Milliseconds of each kernel call while a recording is profiled. */
  private times: number[] | undefined;

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
    const module = await kernelModule(shared);
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
    // Inside a captured step an upload is a constant the replays read again: a block no recorded kernel has
    // written, pinned at once so that nothing written later in the step reuses it.
    const rec = this.recording;
    const b = this.allocate(spec, !!rec);
    if (rec) {
      rec.constants.set(b.ptr, b.size);
      this.arena.pin(new Map([[b.ptr, b.size]]));
    }
    this.view(b, spec.dtype).set(data);
    return b;
  }

  /** Throws at once (not in the promise) when the read cannot happen, so a capture sees it synchronously. */
  read(handle: Handle, spec: TensorSpec): Promise<TypedArray> {
    return this.readMany([{ handle, spec }]).then((r) => r[0]!);
  }

  readMany(items: readonly StorageInput[]): Promise<TypedArray[]> {
    if (this.recording)
      throw new CaptureError('data: a captured step cannot read tensors back (read them after the step)');
    return Promise.resolve(items.map((i) => this.view(this.block(i.handle), i.spec.dtype).slice()));
  }

  run<A>(op: Kernel<A>, inputs: StorageInput[], out: TensorSpec, attrs: A, aux?: TensorSpec): RunResult {
    const kernel = WASM_KERNELS[op.name as keyof typeof WASM_KERNELS];
    if (kernel === undefined) throw new BackendError(`wasm: no kernel for op '${op.name}'`);
    const o = this.allocate(out);
    const x = aux && this.allocate(aux);
    const blocks = [...inputs.map((i) => this.block(i.handle)), o, ...(x ? [x] : [])];
    try {
      if (kernel === 'reference') {
        // The blocks, not the handles: a replay runs after the capture's tensors were disposed (their blocks pinned).
        const ins = inputs.map((i, k) => ({ block: blocks[k]!, spec: i.spec }));
        const ref = () => this.reference(op, ins, out, attrs, o, aux && x && { spec: aux, block: x });
        ref();
        this.recordRerun(op.name, blocks, ref);
        return { out: o, aux: x };
      }
      const ctx = {
        inputs: inputs.map((i) => this.tensor(i)),
        out: { ptr: o.ptr, shape: out.shape, dtype: out.dtype },
        aux: x && aux && { ptr: x.ptr, shape: aux.shape, dtype: aux.dtype },
        attrs,
      };
      this.launch(op.name, blocks, fixedAttrs(attrs), (host) => kernel({ ...ctx, ...host }));
    } catch (e) {
      this.release(o);
      if (x) this.release(x);
      throw e;
    }
    return { out: o, aux: x };
  }

  runInPlace<A>(op: InPlaceKernel<A>, targets: StorageInput[], inputs: StorageInput[], attrs: A): void {
    const kernel = WASM_INPLACE[op.name as keyof typeof WASM_INPLACE];
    if (kernel === undefined) throw new BackendError(`wasm: no in-place kernel '${op.name}'`);
    const blocks = [...targets, ...inputs].map((i) => this.block(i.handle));
    if (kernel === 'reference') {
      const on = (list: StorageInput[], from: number) =>
        list.map((i, k) => ({ block: blocks[from + k]!, spec: i.spec }));
      const [ts, ins] = [on(targets, 0), on(inputs, targets.length)];
      const ref = () =>
        op.cpu({ targets: ts.map((t) => this.cpuInput(t)), inputs: ins.map((i) => this.cpuInput(i)), attrs });
      ref();
      this.recordRerun(op.name, blocks, ref);
      return;
    }
    const ctx = { targets: targets.map((t) => this.tensor(t)), inputs: inputs.map((i) => this.tensor(i)), attrs };
    this.launch(op.name, blocks, fixedAttrs(attrs), (host) => kernel({ ...ctx, ...host }));
  }

  /**
   * Runs one op's kernel wrapper with scratch memory freed when it returns. While a step is captured its kernel
   * calls are recorded (with the shape descriptors they read); an op whose attributes may change between steps is
   * recorded as a re-run of its wrapper on the same scratch offsets instead.
   */
  private launch(op: string, blocks: readonly Block[], fixed: boolean, k: (host: HostCtx) => void): void {
    const rec = this.recording;
    const parallel = (fn: string, args: readonly number[], tasks: number) => this.call(fn, args, tasks);
    if (!rec) {
      this.withScratch((scratch, ints) => k({ parallel, scratch, ints }));
      return;
    }
    const bytes = blocks.reduce((n, b) => n + b.bytes, 0);
    for (const b of blocks) rec.use(b.ptr, b.size);
    const own: Entry[] = [];
    const offsets: number[] = [];
    this.withScratch(
      (scratch, ints) =>
        k({
          parallel: (fn, args, tasks) => {
            own.push({ kind: 'call', fn, args: [...args], tasks });
            rec.infos.push({ op, shader: fn, workgroups: [tasks, 1, 1], bytes });
            parallel(fn, args, tasks);
          },
          scratch: (n) => {
            offsets.push(scratch(n));
            return offsets[offsets.length - 1]!;
          },
          ints: (values) => {
            const ptr = ints(values);
            offsets.push(ptr);
            own.push({ kind: 'ints', ptr, values: Int32Array.from(values) });
            return ptr;
          },
        }),
      (ptr, size) => rec.use(ptr, size),
    );
    if (fixed) {
      rec.entries.push(...own);
      return;
    }
    const run = (): void => {
      let i = 0;
      const next = () => offsets[i++]!;
      k({
        parallel,
        scratch: next,
        ints: (values) => {
          const ptr = next();
          new Int32Array(this.u8.buffer, ptr, values.length).set(values);
          return ptr;
        },
      });
    };
    rec.entries.push({ kind: 'rerun', run, timed: false });
  }

  /** One exported kernel over its tasks (timed, one figure per call, while a recording is profiled). */
  private call(fn: string, args: readonly number[], tasks: number): void {
    if (!this.times) return this.pool.parallel(fn, args, tasks);
    const t = performance.now();
    this.pool.parallel(fn, args, tasks);
    this.times.push(performance.now() - t);
  }

  /** Records a CPU reference a replay runs again, as one dispatch for `describe`. */
  private recordRerun(op: string, blocks: readonly Block[], run: () => void): void {
    const rec = this.recording;
    if (!rec) return;
    for (const b of blocks) rec.use(b.ptr, b.size);
    rec.entries.push({ kind: 'rerun', run, timed: true });
    rec.infos.push({ op, shader: 'reference', workgroups: [1, 1, 1], bytes: blocks.reduce((n, b) => n + b.bytes, 0) });
  }

  /** Records a write or copy of the step (not a dispatch). */
  private recordHost(blocks: readonly Block[], run: () => void): void {
    const rec = this.recording!;
    for (const b of blocks) rec.use(b.ptr, b.size);
    rec.entries.push({ kind: 'rerun', run, timed: false });
  }

  write(handle: Handle, data: TypedArray): void {
    const b = this.block(handle);
    const kept = this.recording ? data.slice() : data; // a replay writes the data as it was at the capture
    const put = () => this.view(b, data instanceof Int32Array ? 'int32' : 'float32').set(kept);
    put();
    if (this.recording) this.recordHost([b], put);
  }

  copy(dst: Handle, src: Handle): void {
    const [s, d] = [this.block(src), this.block(dst)];
    const put = () => this.u8.copyWithin(d.ptr, s.ptr, s.ptr + Math.min(s.bytes, d.bytes));
    put();
    if (this.recording) this.recordHost([s, d], put);
  }

  readonly capture: CaptureSupport = {
    dry: false, // nothing to compile: prepare() is a no-op here
    ready: () => Promise.resolve(),
    begin: (opts) => {
      if (opts?.dry) throw new CaptureError('beginCapture: the wasm backend has no dry capture (capture.dry is false)');
      if (this.recording)
        throw new CaptureError(
          'beginCapture: a capture is already in progress (a compiled step run inside the capture of another step?)',
        );
      this.recording = new Recording();
    },
    end: () => {
      const rec = this.recording;
      if (!rec) throw new CaptureError('endCapture: no capture in progress');
      this.recording = undefined;
      // The constants were pinned at their upload.
      this.arena.pin(new Map([...rec.used].filter(([ptr]) => !rec.constants.has(ptr))));
      return rec;
    },
    abort: () => {
      const rec = this.recording;
      this.recording = undefined;
      if (rec) this.arena.unpin(rec.constants);
    },
    replay: (r) => this.replay(r as Recording),
    release: (r) => this.arena.unpin((r as Recording).pinned()),
    describe: (r) => [...(r as Recording).infos],
    profile: (r, runs) => Promise.resolve(this.profile(r as Recording, runs)),
  };

  /**
   * Runs a recorded step (its inputs written before with `write`/`copy`): each kernel call straight into the thread
   * pool with its recorded arguments, the shape descriptors rewritten first, the per-step ops' wrappers re-run.
   */
  private replay(rec: Recording): void {
    if (this.recording) throw new CaptureError('replay: a capture is in progress');
    const i32 = new Int32Array(this.u8.buffer);
    for (const e of rec.entries) {
      if (e.kind === 'call') this.call(e.fn, e.args, e.tasks);
      else if (e.kind === 'ints') i32.set(e.values, e.ptr >> 2);
      else e.run();
    }
  }

  /**
   * Milliseconds of each recorded kernel call (a CPU reference as one), the least over `runs` replays: the runs
   * execute the step as a replay does (an optimizer update included).
   */
  private profile(rec: Recording, runs: number): number[] {
    if (!Number.isInteger(runs) || runs < 1)
      throw new WgnnError(`profile: runs is ${runs}; expected a whole number >= 1`);
    if (this.recording)
      throw new CaptureError('profile: a capture is in progress; expected a recording that has ended');
    const best = rec.infos.map(() => Infinity);
    for (let run = 0; run < runs; run++) {
      const times: number[] = [];
      this.times = times;
      try {
        const i32 = new Int32Array(this.u8.buffer);
        for (const e of rec.entries) {
          if (e.kind === 'call') this.call(e.fn, e.args, e.tasks);
          else if (e.kind === 'ints') i32.set(e.values, e.ptr >> 2);
          else if (!e.timed) e.run();
          else {
            const t = performance.now();
            e.run();
            times.push(performance.now() - t);
          }
        }
      } finally {
        this.times = undefined;
      }
      times.forEach((ms, i) => (best[i] = Math.min(best[i]!, ms)));
    }
    return best;
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
      pooledBytes: a.pooledBytes + a.heldBytes, // as WebGPU's pool: blocks kept for captured steps count as pooled
      peakBytes: a.peakBytes,
      buffersCreated: a.created,
      poolHits: a.poolHits,
    };
  }

  flush(): void {}

  destroy(): void {
    this.pool.destroy();
  }

  private allocate(spec: TensorSpec, fresh = false): Block {
    const bytes = 4 * sizeOf(spec.shape);
    const { ptr, size } = this.arena.alloc(bytes, fresh);
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

  /** A view of a block for a CPU reference, made when it runs (the memory may have grown since the block was made). */
  private cpuInput({ block, spec }: { block: Block; spec: TensorSpec }): CpuInput {
    return { data: this.view(block, spec.dtype), shape: spec.shape, dtype: spec.dtype };
  }

  /** Runs `k` with scratch allocators whose blocks go back to the pool when it returns. */
  private withScratch(
    k: (scratch: (bytes: number) => number, ints: (values: readonly number[]) => number) => void,
    onBlock?: (ptr: number, size: number) => void,
  ): void {
    const taken: { ptr: number; size: number }[] = [];
    const scratch = (bytes: number): number => {
      const s = this.arena.alloc(bytes);
      taken.push(s);
      onBlock?.(s.ptr, s.size);
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

  /** The op's CPU reference on views of the shared memory, its result written into the op's blocks. */
  private reference<A>(
    op: Kernel<A>,
    inputs: { block: Block; spec: TensorSpec }[],
    out: TensorSpec,
    attrs: A,
    o: Block,
    aux?: { spec: TensorSpec; block: Block },
  ): void {
    const r = op.cpu({
      inputs: inputs.map((i) => this.cpuInput(i)),
      out,
      attrs,
      alloc: (n) => new Float32Array(n),
      aux: aux?.spec,
    });
    const put = (data: TypedArray, spec: TensorSpec, b: Block): void => {
      if (data.length !== sizeOf(spec.shape)) {
        throw new BackendError(
          `${op.name}: the CPU reference wrote ${data.length} values; expected ${sizeOf(spec.shape)}`,
        );
      }
      if (data instanceof Int32Array !== (spec.dtype === 'int32')) {
        throw new DTypeError(`${op.name}: the CPU reference's output type does not match ${spec.dtype}`);
      }
      this.view(b, spec.dtype).set(data);
    };
    if (ArrayBuffer.isView(r)) return put(r, out, o);
    put(r.out, out, o);
    if (aux) put(r.aux, aux.spec, aux.block);
  }
}

const alignUp = (n: number): number => Math.ceil(n / 16) * 16;
