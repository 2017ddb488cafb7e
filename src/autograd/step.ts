// Step capture and replay: the first run of a training step (forward, loss, backward, optimizer update) records
// every dispatch with its pipeline, bind group and uniforms; later runs write only the new batch and the per-step
// scalars, then replay the recording: one submit per step, with a read's copy in it. Losses and metrics accumulate on
// the GPU and are read whenever wanted. A change of input shapes or of the `key` re-captures; eager and replay run the
// same kernels with the same uniforms, so their results are bitwise identical. `prepare` captures without running, so
// every pipeline of the step compiles at once, asynchronously, before the first `run`.
import type { Backend, DispatchInfo, TypedArray } from '../backend/backend.js';
import { CaptureError, ShapeError, WgnnError, fmtShape } from '../errors.js';
import { applyInPlace } from '../ops/apply.js';
import { accumulate } from '../ops/inplace.js';
import { defaultBackend, keep, tensor, view, zeros, type Tensor } from '../tensor.js';

let hooks: (() => void)[] | undefined;

/** True while a step is being captured: code with per-step host state registers an `onReplay` hook. */
export const isCapturing = (): boolean => hooks !== undefined;

/**
 * Registers host bookkeeping to run before every replay of the step being captured (e.g. the optimizer's step
 * counters, read by its uniforms). Outside a capture it does nothing.
 */
export function onReplay(fn: () => void): void {
  hooks?.push(fn);
}

/** Host data for a step input: written straight into the captured input buffer on replay. */
export interface HostInput {
  data: TypedArray;
  shape: readonly number[];
}
export type StepInput = Tensor | HostInput;

/** A tensor the step writes, read back with its sums (same copy, same map) and reset behind the read. */
export interface ReadAlong {
  tensor: Tensor;
  /** Its data after the read. */
  reset: TypedArray;
}

/** What `read` returns: the steps since the last read, the sums of each output, the data of each `along` tensor. */
export interface StepRead {
  steps: number;
  sums: Record<string, number>;
  along: TypedArray[];
}

export interface StepOptions {
  /** Capture and replay (default true where the backend can); false runs every step eagerly. */
  replay?: boolean;
  /** Anything else a capture depends on (parameters, optimizer settings); a new value re-captures. */
  key?: () => string;
}

interface Captured {
  recording: unknown;
  backend: Backend;
  inputs: Tensor[];
  hooks: (() => void)[];
  /** Captured dry by `prepare`: its first run is the step it recorded (no hooks: its JavaScript ran at the capture). */
  owed: boolean;
}

const MAX_CAPTURES = 4;
const isTensor = (x: StepInput): x is Tensor => 'live' in x;

/**
 * A training step that runs eagerly once per shape and is replayed afterwards. `fn` takes the step's inputs and
 * returns named scalars (loss, correct predictions, ...) that are summed on the GPU; `read()` returns the sums.
 */
export class CompiledStep {
  captures = 0;
  replays = 0;
  eagerSteps = 0;
  private cache = new Map<string, Captured>();
  /** The most recent capture (the one `dispatches` and `profile` look at). */
  private latest: Captured | undefined;
  private sums = new Map<string, Tensor>();
  private steps = 0;
  private uncapturable = false;

  constructor(
    private readonly fn: (...inputs: Tensor[]) => Record<string, Tensor>,
    private readonly opts: StepOptions = {},
  ) {}

  /** Runs one step on these inputs (same shapes as the capture: replay; otherwise eager, capturing). */
  run(...inputs: StepInput[]): void {
    const backend = inputs.find(isTensor)?.backend ?? defaultBackend();
    const key = this.keyOf(backend, inputs);
    const hit = this.cache.get(key);
    if (hit) {
      hit.inputs.forEach((dst, i) => {
        const src = inputs[i]!;
        if (isTensor(src)) {
          const [d, s] = [dst.live('step').handle, src.live('step').handle];
          // The same tensor as the capture's (or a view of it) is already in place; copying a buffer onto itself is an error.
          if (d !== s) backend.copy(d, s);
        } else backend.write(dst.live('step').handle, src.data);
      });
      if (hit.owed) {
        // The capture's run, which prepare() recorded without running: counted as the eager step it was then.
        hit.owed = false;
        backend.capture!.replay(hit.recording, { asRecorded: true });
      } else {
        for (const h of hit.hooks) h();
        backend.capture!.replay(hit.recording);
        this.replays++;
      }
      this.steps++;
      return;
    }
    const tensors = this.tensorsOf(backend, inputs);
    try {
      if (this.canCapture(backend)) this.capture(key, backend, tensors, false);
      else this.eager(tensors);
    } finally {
      tensors.forEach((t, i) => t !== inputs[i] && t.dispose());
    }
    this.steps++;
  }

  /**
   * Gets `run` ready for inputs of these shapes (the data is not used: the step's first `run` computes on its own
   * inputs): captures the step without running it (its JavaScript runs once; nothing reaches the GPU) while every
   * pipeline it uses is created at once, asynchronously, and resolves when they all exist. `run` then gives the same
   * results as without `prepare`. A no-op where these shapes are captured already, or the backend cannot capture
   * (CPU, WASM: nothing to compile) or replay is off. Rejects with a BackendError naming a pipeline the device refused.
   */
  async prepare(...inputs: StepInput[]): Promise<void> {
    const backend = inputs.find(isTensor)?.backend ?? defaultBackend();
    const key = this.keyOf(backend, inputs);
    const hit = this.cache.get(key);
    if (hit) return backend.capture!.ready(hit.recording);
    if (!this.canCapture(backend) || !backend.capture!.dry) return;
    const tensors = this.tensorsOf(backend, inputs);
    try {
      this.capture(key, backend, tensors, true);
    } finally {
      tensors.forEach((t, i) => t !== inputs[i] && t.dispose());
    }
    await backend.capture!.ready(this.cache.get(key)!.recording);
  }

  private keyOf(backend: Backend, inputs: readonly StepInput[]): string {
    return `${backend.name}|${inputs.map((x) => `${dtypeOf(x)}${fmtShape(x.shape)}`).join(',')}|${this.opts.key?.() ?? ''}`;
  }

  private canCapture(backend: Backend): boolean {
    return this.opts.replay !== false && !!backend.capture && !this.uncapturable;
  }

  private tensorsOf(backend: Backend, inputs: readonly StepInput[]): Tensor[] {
    return inputs.map((x) =>
      isTensor(x) ? x : tensor(x.data, x.shape, { backend, dtype: x.data instanceof Int32Array ? 'int32' : 'float32' }),
    );
  }

  private eager(inputs: Tensor[]): void {
    const outs = this.fn(...inputs);
    this.accumulate(outs);
    this.eagerSteps++;
  }

  private capture(key: string, backend: Backend, inputs: Tensor[], dry: boolean): void {
    const cap = backend.capture!;
    const registered: (() => void)[] = [];
    cap.begin({ dry });
    hooks = registered;
    try {
      this.eager(inputs);
    } catch (e) {
      hooks = undefined;
      cap.abort();
      if (!(e instanceof CaptureError)) throw e;
      // The step holds something a replay cannot repeat. It ran up to that point (gradients may have accumulated),
      // so it is not silently run again: later runs are eager.
      this.uncapturable = true;
      throw new CaptureError(
        `step: cannot be captured (${e.message}); this step ran only partly; later steps run eagerly (or pass { replay: false })`,
      );
    } finally {
      hooks = undefined;
    }
    if (this.cache.size >= MAX_CAPTURES) {
      const [oldest, c] = this.cache.entries().next().value as [string, Captured];
      this.drop(c);
      this.cache.delete(oldest);
    }
    // The inputs' buffers are the ones the recording reads: keep them (as views) to write each new batch into.
    this.latest = {
      recording: cap.end(),
      backend,
      inputs: inputs.map((t) => keep(view(t, t.shape, 'step'))),
      hooks: registered,
      owed: dry,
    };
    this.cache.set(key, this.latest);
    this.captures++;
  }

  private accumulate(outs: Record<string, Tensor>): void {
    for (const [name, t] of Object.entries(outs)) {
      if (t.size !== 1 || t.dtype !== 'float32') {
        throw new ShapeError(
          `step: output '${name}' is ${t.dtype}${fmtShape(t.shape)}; expected a float32 scalar to accumulate`,
        );
      }
      // Made on first use (during the first capture, whose recording then adds into it every replay).
      let acc = this.sums.get(name);
      if (!acc) {
        acc = keep(zeros([1], { backend: t.backend }));
        this.sums.set(name, acc);
      }
      if (acc.backend !== t.backend)
        throw new WgnnError('step: inputs moved to another backend; create a new compileStep');
      applyInPlace(accumulate, [acc], [t], {});
      t.dispose();
    }
  }

  /**
   * The sums of each output since the last read and the number of steps; resets them. Waits for the GPU. The sums and
   * the `along` tensors come back in one readback (one copy each into one staging buffer, one map), in the submit of
   * the step just replayed when it has not gone yet; the resets are queued behind it before `read` returns.
   */
  read(along: readonly ReadAlong[] = []): Promise<StepRead> {
    const sums = [...this.sums];
    const tensors = [...sums.map(([, acc]) => acc), ...along.map((a) => a.tensor)];
    const steps = this.steps;
    if (tensors.length === 0) {
      this.steps = 0;
      return Promise.resolve({ steps, sums: {}, along: [] });
    }
    const backend = tensors[0]!.backend;
    let values: Promise<TypedArray[]>;
    try {
      values = backend.readMany(tensors.map((t) => ({ handle: t.live('step.read').handle, spec: t })));
    } catch (e) {
      return Promise.reject(e as Error);
    }
    this.steps = 0;
    for (const [, acc] of sums) backend.write(acc.live('step.read').handle, new Float32Array(1));
    for (const a of along) backend.write(a.tensor.live('step.read').handle, a.reset);
    return values.then((v) => ({
      steps,
      sums: Object.fromEntries(sums.map(([name], i) => [name, v[i]![0]!])),
      along: v.slice(sums.length),
    }));
  }

  /**
   * The dispatches of the latest capture, in order (op, kernel, workgroups, bytes bound), for profiling; empty when
   * the step has not been captured (replay off, or a backend without capture, such as the CPU).
   */
  dispatches(): DispatchInfo[] {
    const c = this.latest;
    return c ? c.backend.capture!.describe(c.recording) : [];
  }

  /**
   * GPU milliseconds of each of `dispatches()`, each timed in its own compute pass, the least over `runs` runs of the
   * whole list; undefined where the device has no timestamp queries. NOTE: the runs execute the step as a replay
   * does, on the inputs of its last run: the optimizer updates the weights `runs` more times.
   */
  async profile(runs: number): Promise<number[] | undefined> {
    const c = this.latest;
    if (!c)
      throw new CaptureError(
        'step.profile: the step has no capture to time (it ran eagerly: replay off, or a backend without capture)',
      );
    return c.backend.capture!.profile(c.recording, runs);
  }

  /** Frees every capture and accumulator. */
  dispose(): void {
    for (const c of this.cache.values()) this.drop(c);
    this.cache.clear();
    for (const s of this.sums.values()) s.dispose();
    this.sums.clear();
  }

  private drop(c: Captured): void {
    if (c === this.latest) this.latest = undefined;
    c.backend.capture!.release(c.recording);
    for (const t of c.inputs) t.dispose();
  }
}

const dtypeOf = (x: StepInput): string => (isTensor(x) ? x.dtype : x.data instanceof Int32Array ? 'int32' : 'float32');

/**
 * Compiles a training step (PyTorch loop style): `const step = compileStep((x, y) => { ...; loss.backward();
 * opt.step(params); zeroGrad(); return { loss } })`, then `step.run(xb, yb)` per batch and `await step.read()`.
 */
export const compileStep = (
  fn: (...inputs: Tensor[]) => Record<string, Tensor>,
  opts: StepOptions = {},
): CompiledStep => new CompiledStep(fn, opts);
