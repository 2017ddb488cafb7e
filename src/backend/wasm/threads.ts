// The WASM backend's thread pool: workers instantiate the kernel module on the shared memory and wait on a small
// control block; `parallel` publishes (kernel, arguments, task count), wakes them, takes tasks on the calling thread
// too (claimed one at a time from a counter tagged with the round), and returns when every task is done: a worker
// that is late (descheduled on a busy machine) delays nothing, the caller runs the tasks it did not claim.
import { BackendError } from '../../errors.js';
import { canBlock, spawnWorker, type ThreadWorker } from '../../platform/threads.js';

// Control block words (Int32), then the arguments (Float64) at ARGS_AT bytes.
const GEN = 0; // round number: workers wait for it to change
const FN = 1; // kernel index in `names`
const TASKS = 2;
const CLAIM = 3; // the round's tag (high bits) and its next task (low TASK_BITS bits), taken by compare-and-swap
const DONE = 4; // tasks of this round finished
const NARGS = 5;
const QUIT = 6;
const FAILED = 7; // a kernel threw (trapped) on a worker
const ARGS_AT = 64;
const MAX_ARGS = 32;
const TASK_BITS = 20;
const MAX_TASKS = (1 << TASK_BITS) - 1;
/** A CLAIM value no round has: written first when a round starts, so no claim of the last round can succeed. */
const CLOSED = -1;
/**
 * Checks of the round number a worker makes before sleeping (a fraction of a millisecond): long enough to carry it
 * from one kernel of a step to the next, and across the step's read, without a wake-up, whose latency dominates a
 * small step. Seed MLP step b64, 2 threads on 2 cores, medians (1 thread: 0.90-0.96 ms quiet): 0.90 ms at 2000 checks,
 * 0.80 at 20000, 0.57 at 200000 on a quiet machine; 1.89 vs 0.95 ms at 2000 vs 200000 beside two busy processes, and
 * 1.40-1.73 vs 0.99-1.06 beside six. (An earlier measurement at load ~16 favoured 2000 over 20000: 1.92 vs 2.49 ms.)
 */
const SPIN = 200_000;
/** Bytes the control block needs in the shared memory. */
export const CONTROL_BYTES = ARGS_AT + 8 * MAX_ARGS;

// The worker's loop. It reads the round's kernel and arguments, then claims tasks while CLAIM still holds this
// round's tag: a claim can succeed only before the caller closes the round (after every task is done), so the
// arguments it read were this round's, never half of the next one's. A spin before sleeping saves the wake-up
// latency between the consecutive kernels of a step.
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
    const fn = fns[w[${FN}]], tasks = w[${TASKS}], n = w[${NARGS}];
    const args = new Array(n + 2);
    for (let i = 0; i < n; i++) args[i] = a[i];
    args[n + 1] = tasks;
    const tag = (gen << ${TASK_BITS}) | 0;
    for (;;) {
      const c = Atomics.load(w, ${CLAIM});
      const t = c & ${MAX_TASKS};
      if ((c ^ t) !== tag || t >= tasks) break; // the round is over, or every task is claimed
      if (Atomics.compareExchange(w, ${CLAIM}, c, c + 1) !== c) continue; // another thread claimed first
      args[n] = t;
      try {
        fn.apply(null, args);
      } catch (e) {
        Atomics.store(w, ${FAILED}, 1);
      }
      if (Atomics.add(w, ${DONE}, 1) + 1 === tasks) Atomics.notify(w, ${DONE});
    }
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
          w.post({ module, memory, ctl, names, spin: SPIN });
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
    if (tasks > MAX_TASKS) throw new BackendError(`wasm: ${fn} has ${tasks} tasks; at most ${MAX_TASKS}`);
    const c = this.ctl;
    // Close the last round first (an atomic exchange: every claim of it is ordered before), then publish this one.
    Atomics.exchange(c, CLAIM, CLOSED);
    const gen = (c[GEN]! + 1) & ((1 << (31 - TASK_BITS)) - 1);
    c[FN] = id;
    c[TASKS] = tasks;
    c[NARGS] = args.length;
    c[DONE] = 0;
    this.args.set(args);
    const tag = gen << TASK_BITS;
    Atomics.store(c, CLAIM, tag);
    Atomics.store(c, GEN, gen);
    Atomics.notify(c, GEN);
    const all = [...args, 0, tasks];
    let failed: unknown;
    for (let cl; (cl = Atomics.load(c, CLAIM)) - tag < tasks; ) {
      if (Atomics.compareExchange(c, CLAIM, cl, cl + 1) !== cl) continue;
      all[args.length] = cl - tag;
      try {
        f(...all);
      } catch (e) {
        failed ??= e;
      }
      Atomics.add(c, DONE, 1);
    }
    // Tasks a worker claimed may still run: wait for them (a short spin first: they are usually about to finish).
    for (let v, spin = 0; (v = Atomics.load(c, DONE)) < tasks; spin++) {
      if (this.block && spin > 1000) Atomics.wait(c, DONE, v);
    }
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
