// The WASM backend's thread pool: workers instantiate the kernel module on the shared memory and wait on a small
// control block; `parallel` publishes (kernel, arguments, task count), wakes them, takes tasks on the calling thread
// too (handed out by an atomic counter), and returns when every worker has checked in (a barrier).
import { BackendError } from '../../errors.js';
import { canBlock, spawnWorker, type ThreadWorker } from '../../platform/threads.js';

// Control block words (Int32), then the arguments (Float64) at ARGS_AT bytes.
const GEN = 0; // round number: workers wait for it to change
const FN = 1; // kernel index in `names`
const TASKS = 2;
const NEXT = 3; // next task to hand out
const FINISHED = 4; // workers done with this round
const NARGS = 5;
const QUIT = 6;
const FAILED = 7; // a kernel threw (trapped) on a worker
const ARGS_AT = 64;
const MAX_ARGS = 32;
/** Bytes the control block needs in the shared memory. */
export const CONTROL_BYTES = ARGS_AT + 8 * MAX_ARGS;

// The worker's loop. It checks in (FINISHED) at every round, even with no task left for it, so that when the
// caller returns no worker still reads the control block: the next round cannot be torn. A short spin before
// sleeping saves the wake-up latency between the consecutive kernels of one op.
const WORKER = `
listen((m) => {
  const inst = new WebAssembly.Instance(m.module, { env: { memory: m.memory, abort() { throw new Error('abort'); } } });
  const fns = m.names.map((n) => inst.exports[n]);
  const w = new Int32Array(m.memory.buffer, m.ctl, ${ARGS_AT / 4});
  const a = new Float64Array(m.memory.buffer, m.ctl + ${ARGS_AT}, ${MAX_ARGS});
  post('ready');
  let gen = 0;
  for (;;) {
    for (let spin = 0; spin < m.spin && Atomics.load(w, ${GEN}) === gen; spin++);
    Atomics.wait(w, ${GEN}, gen);
    gen = Atomics.load(w, ${GEN});
    if (Atomics.load(w, ${QUIT})) return;
    try {
      const fn = fns[w[${FN}]], tasks = w[${TASKS}], n = w[${NARGS}];
      const args = new Array(n + 2);
      for (let i = 0; i < n; i++) args[i] = a[i];
      args[n + 1] = tasks;
      for (let t; (t = Atomics.add(w, ${NEXT}, 1)) < tasks; ) { args[n] = t; fn.apply(null, args); }
    } catch (e) {
      Atomics.store(w, ${FAILED}, 1);
    }
    Atomics.add(w, ${FINISHED}, 1);
    Atomics.notify(w, ${FINISHED});
  }
});
`;

export class ThreadPool {
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private readonly ids: Map<string, number>;
  private readonly block = canBlock();

  private constructor(
    memory: WebAssembly.Memory,
    ctl: number,
    names: readonly string[],
    private readonly fns: readonly ((...args: number[]) => void)[],
    private readonly workers: ThreadWorker[],
  ) {
    this.ctl = new Int32Array(memory.buffer, ctl, ARGS_AT / 4);
    this.args = new Float64Array(memory.buffer, ctl + ARGS_AT, MAX_ARGS);
    this.ids = new Map(names.map((n, i) => [n, i]));
  }

  /** Starts `threads - 1` workers (the caller is the other thread) and waits until each has its instance. */
  static async start(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    ctl: number,
    exports: WebAssembly.Exports,
    threads: number,
  ): Promise<ThreadPool> {
    const names = WebAssembly.Module.exports(module)
      .filter((e) => e.kind === 'function')
      .map((e) => e.name);
    const fns = names.map((n) => exports[n] as (...args: number[]) => void);
    const workers = await Promise.all(
      Array.from({ length: threads - 1 }, async () => {
        const w = await spawnWorker(WORKER);
        await new Promise<void>((resolve, reject) => {
          w.onMessage(() => resolve());
          w.onError((e) => reject(new BackendError(`wasm: a worker failed to start: ${String(e)}`)));
          w.post({ module, memory, ctl, names, spin: 20000 });
        });
        return w;
      }),
    );
    return new ThreadPool(memory, ctl, names, fns, workers);
  }

  /** Threads that run tasks, the caller's included. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** Runs `fn(...args, task, tasks)` for every task; on this thread alone when there is one task or no worker. */
  parallel(fn: string, args: readonly number[], tasks: number): void {
    const id = this.ids.get(fn);
    if (id === undefined) throw new BackendError(`wasm: no kernel '${fn}' in the module`);
    const f = this.fns[id]!;
    if (tasks <= 1 || this.workers.length === 0) {
      for (let t = 0; t < tasks; t++) f(...args, t, tasks);
      return;
    }
    if (args.length > MAX_ARGS)
      throw new BackendError(`wasm: ${fn} takes ${args.length} arguments; at most ${MAX_ARGS}`);
    const c = this.ctl;
    c[FN] = id;
    c[TASKS] = tasks;
    c[NARGS] = args.length;
    c[FINISHED] = 0;
    Atomics.store(c, NEXT, 0);
    this.args.set(args);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    const all = [...args, 0, tasks];
    let failed: unknown;
    try {
      for (let t; (t = Atomics.add(c, NEXT, 1)) < tasks; ) {
        all[args.length] = t;
        f(...all);
      }
    } catch (e) {
      failed = e; // still wait for the workers: they read the control block until they check in
    }
    const n = this.workers.length;
    for (let v; (v = Atomics.load(c, FINISHED)) < n; ) if (this.block) Atomics.wait(c, FINISHED, v);
    if (failed !== undefined || Atomics.exchange(c, FAILED, 0)) {
      throw new BackendError(`wasm: kernel ${fn} failed: ${failed === undefined ? 'on a worker' : String(failed)}`);
    }
  }

  /** Stops the workers (they leave their loop, then are terminated). */
  destroy(): void {
    Atomics.store(this.ctl, QUIT, 1);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}
