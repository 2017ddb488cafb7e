// Optimizer: the base of the update rules. It keeps each parameter's state tensors (created lazily on the
// parameter's backend), evaluates the learning rate on the host, and runs one fused in-place kernel per parameter
// per step, which can also check the new values for NaN/Inf. A step never reads device data, so it queues behind
// the backward pass without waiting for it.
import { zeroGrad as clearGrads } from '../autograd/tape.js';
import type { Backend, DType } from '../backend/backend.js';
import { BackendError, DTypeError, ShapeError, WgnnError, fmtShape } from '../errors.js';
import { checkBoolean, checkNumber, knownKeys, optionsObject, show, type Bounds } from '../options.js';
import { sameShape } from '../shape.js';
import { full, keep, tensor, view, type Tensor } from '../tensor.js';
import { clipGradNorm, dropGradScales, purgeGradScales, takeGradScale } from './clip.js';
import type { Schedule } from './schedules.js';
import type { Live } from './kernel.js';
import { isCapturing, onReplay } from '../autograd/step.js';

/** A state tensor a rule keeps per parameter (same shape): its name, initial value, and whether these options use it. */
export interface Slot {
  readonly name: string;
  readonly init: number;
  readonly used: boolean;
}

/** One parameter's state: its own step count (bias corrections use it) and its state tensors by slot name. */
export interface ParamState {
  step: number;
  slots: Record<string, Tensor>;
}

interface LiveState extends ParamState {
  live: Live;
}

/**
 * A finiteness check folded into the update kernels (TrainStep's check of the weights, src/nn/train.ts): each
 * parameter's update lowers `flag` to `seq(p)` (an integer atomicMin) when it writes a NaN or ±Inf into p.
 */
export interface FiniteCheck {
  /** int32 [1], on the parameters' backend. */
  readonly flag: Tensor;
  /** p's sequence number: called when p's update is encoded and again at each replay of a captured step. */
  seq(p: Tensor): number;
}

/** What `step` takes besides the parameters. */
export interface UpdateOptions {
  /** Check every new parameter value for NaN/Inf in the update kernels (no extra dispatch). */
  check?: FiniteCheck;
}

/** An optimizer's state by parameter index (the order of the `params` given), for checkpoints. */
export interface OptimizerState extends OptimizerStateSpec {
  params: (ParamState | null)[];
}

/** What `checkState` looks at: an OptimizerState, or one whose slots are only described (shape and dtype). */
export interface OptimizerStateSpec {
  stepCount: number;
  /** null: that parameter has no state yet (it never had a gradient at a step). */
  params: readonly ({
    step: number;
    slots: Record<string, { readonly shape: readonly number[]; readonly dtype: DType }>;
  } | null)[];
}

/** The options every rule takes besides its own. */
export interface CommonOptions {
  /**
   * Clip the gradients of the parameters each `step()` updates by their global L2 norm first, as Keras's
   * `global_clipnorm` (torch.nn.utils.clip_grad_norm_ before `opt.step()`): each is scaled by
   * min(1, globalClipnorm / (norm + 1e-6)). A number > 0; default: no clipping.
   */
  globalClipnorm?: number;
}

/** The option names of CommonOptions, which every rule accepts besides its own. */
const COMMON: readonly (keyof CommonOptions)[] = ['globalClipnorm'];

/** The base of the optimizers: per-parameter state slots, one fused update kernel per parameter, learning-rate schedules, gradient clipping, state for checkpoints. */
export abstract class Optimizer {
  /** Steps taken (calls to `step()`); a learning-rate schedule is evaluated at it. */
  stepCount = 0;
  /** The global norm each step clips the gradients to (see `CommonOptions`), or undefined. */
  readonly globalClipnorm: number | undefined;
  private rate: number | Schedule;
  private states = new Map<Tensor, LiveState>();
  // NOTE: a slot these options do not use (SGD without momentum), and the flag of an unchecked step, are bound to a
  // [1] placeholder, one per slot and backend (the flag's after the rule's slots), so that each rule has one binding
  // layout; the kernel's override flags keep it from touching them.
  private placeholders = new Map<Backend, Tensor[]>();

  protected constructor(
    /** The rule's name, as in error messages ('sgd', 'adam', ...). */
    readonly name: string,
    lr: number | Schedule,
    globalClipnorm?: unknown,
  ) {
    this.rate = this.checkLr(lr);
    if (globalClipnorm !== undefined)
      this.globalClipnorm = checkNumber(name, 'globalClipnorm', globalClipnorm, { above: 0 });
  }

  /**
   * The options object given to a rule's constructor: an object whose keys are all `known` (or common to every rule,
   * see `CommonOptions`), none of them null. A misspelt option (`learningRate` for `lr`) or a null one is a WgnnError
   * naming it, not a default left in place without a word.
   */
  protected static options<T extends object>(rule: string, opts: T, known: readonly (keyof T & string)[]): T {
    const o = optionsObject(rule, 'options', opts);
    knownKeys(rule, o, [...known, ...COMMON]);
    for (const [k, v] of Object.entries(o))
      if (v === null) throw new WgnnError(`${rule}: ${k} is null; expected a value, or leave it out for the default`);
    return opts;
  }

  /** A boolean option, or `fallback` when it is not given. */
  protected static flag(rule: string, option: string, v: unknown, fallback: boolean): boolean {
    return v === undefined ? fallback : checkBoolean(rule, option, v);
  }

  /** An option that is an array of `length` entries (each checked by the caller). */
  protected static tuple(rule: string, option: string, v: unknown, length: number): unknown[] {
    if (!Array.isArray(v) || v.length !== length)
      throw new WgnnError(`${rule}: ${option} must be an array of ${length} numbers, got ${show(v)}`);
    return v;
  }

  /** The rule's state slots, in the kernel's target order after the parameter. */
  protected abstract readonly slots: readonly Slot[];
  /**
   * Runs the fused kernel: targets [param, ...slots, flag], inputs [grad, scale?]. `live` holds this parameter's
   * learning rate and step (1 first); the kernel's uniforms read it (and `seq`, the finiteness check's sequence
   * number, when the flag is a check's) when encoded and again at every replay of a captured step.
   */
  protected abstract update(targets: Tensor[], inputs: Tensor[], live: Live, seq: (() => number) | undefined): void;

  /** The learning rate of the next step. Assign a number, or a schedule (a function of `stepCount`). */
  get lr(): number {
    return typeof this.rate === 'number' ? this.rate : this.rate(this.stepCount);
  }
  set lr(v: number | Schedule) {
    this.rate = this.checkLr(v);
  }

  /**
   * Updates every parameter that has a `.grad`, in place, with one fused kernel each (applying the factor of a
   * pending `clipGradNorm`), and counts a step. With `globalClipnorm`, the gradients of these parameters are clipped
   * by their global norm first (`clipGradNorm`: on the device, also inside a captured step). State is created on
   * first use, on the parameter's backend. With `check`, the same kernels flag a NaN or an Inf they write. Returns the
   * parameters updated (and so checked).
   */
  step(params: Iterable<Tensor>, opts: UpdateOptions = {}): Tensor[] {
    const ps = [...new Set(params)].filter((p) => p.grad !== undefined);
    const { check } = opts;
    for (const p of ps) {
      this.checkParam(p, p.grad!);
      if (check) this.checkFlag(p, check.flag);
    }
    const lr = this.lr;
    if (!(typeof lr === 'number' && lr >= 0 && lr < Infinity)) {
      throw new WgnnError(
        `${this.name}: the schedule gave learning rate ${show(lr)} at step ${this.stepCount}; expected a finite number >= 0`,
      );
    }
    if (this.globalClipnorm !== undefined && ps.length > 0) clipGradNorm(ps, this.globalClipnorm).dispose();
    else purgeGradScales();
    for (const p of ps) {
      const st = this.stateOf(p);
      st.step++;
      st.live.step = st.step;
      st.live.lr = lr;
      const grad = p.grad!;
      const scale = takeGradScale(grad);
      const targets = [p, ...this.slots.map((s, k) => (s.used ? st.slots[s.name]! : this.placeholder(p.backend, k)))];
      targets.push(check ? check.flag : this.placeholder(p.backend, this.slots.length, 'int32'));
      try {
        this.update(targets, scale ? [grad, scale] : [grad], st.live, check && (() => check.seq(p)));
      } finally {
        scale?.dispose();
      }
    }
    this.stepCount++;
    // A captured step replays these kernels without calling step(): the same bookkeeping runs before each replay.
    if (isCapturing()) {
      const states = ps.map((p) => this.states.get(p)!);
      onReplay(() => {
        const next = this.lr;
        for (const st of states) {
          st.step++;
          st.live.step = st.step;
          st.live.lr = next;
        }
        this.stepCount++;
      });
    }
    return ps;
  }

  /** Disposes the gradients of `params` and clears `.grad` (and any clip factor waiting for them). */
  zeroGrad(params: Iterable<Tensor>): void {
    const ps = [...params];
    dropGradScales(ps.map((p) => p.grad));
    clearGrads(ps);
  }

  /**
   * The state of `params`, by index. The tensors are views sharing the optimizer's storage: they see later steps
   * (read or save them before the next one) and are the caller's to dispose.
   */
  state(params: readonly Tensor[]): OptimizerState {
    return {
      stepCount: this.stepCount,
      params: params.map((p) => {
        const st = this.states.get(p);
        if (!st) return null;
        const slots: Record<string, Tensor> = {};
        for (const [k, t] of Object.entries(st.slots)) slots[k] = keep(view(t, t.shape, `${this.name}.state`));
        return { step: st.step, slots };
      }),
    };
  }

  /**
   * Throws, naming the first way `state` does not fit `params` and this optimizer's options, and changes nothing:
   * `stepCount` and each parameter's `step` non-negative integers, one entry per parameter, and each entry's slots
   * exactly the ones these options use (no more, no fewer), float32 and shaped as their parameter. A wrong shape is a
   * ShapeError, anything else a WgnnError; `what` begins each message. `loadState` runs this first; a checkpoint
   * reader runs it before it assigns anything.
   */
  checkState(
    params: readonly { readonly shape: readonly number[] }[],
    state: OptimizerStateSpec,
    what = `${this.name}.checkState`,
  ): void {
    const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
    if (!count(state.stepCount))
      throw new WgnnError(`${what}: stepCount ${String(state.stepCount)}; expected an integer >= 0`);
    if (!Array.isArray(state.params) || state.params.length !== params.length) {
      throw new WgnnError(
        `${what}: state for ${Array.isArray(state.params) ? state.params.length : 'no'} parameters, ${params.length} given`,
      );
    }
    const used = this.slots.filter((s) => s.used);
    params.forEach((p, i) => {
      const ps = state.params[i];
      if (!ps) return;
      if (!count(ps.step))
        throw new WgnnError(`${what}: parameter ${i} has step ${String(ps.step)}; expected an integer >= 0`);
      for (const s of used) {
        const t = Object.hasOwn(ps.slots, s.name) ? ps.slots[s.name] : undefined;
        if (!t)
          throw new WgnnError(
            `${what}: parameter ${i} has no '${s.name}' state; expected ${used.map((u) => u.name).join(', ')}`,
          );
        if (!sameShape(t.shape, p.shape) || t.dtype !== 'float32') {
          throw new ShapeError(
            `${what}: '${s.name}' of parameter ${i} is ${t.dtype}${fmtShape(t.shape)}; expected float32${fmtShape(p.shape)}`,
          );
        }
      }
      const extra = Object.keys(ps.slots).find((k) => !used.some((s) => s.name === k));
      if (extra !== undefined) {
        throw new WgnnError(
          `${what}: parameter ${i} has '${extra}' state, which ${this.name} with these options does not keep; expected ${used.map((u) => u.name).join(', ') || 'none'}`,
        );
      }
    });
  }

  /**
   * Replaces the state of `params` (by index) with copies of `state`'s tensors, on each parameter's backend (they may
   * come from another backend, e.g. a checkpoint read on the CPU). Reads their data, hence async. A state that does
   * not fit (see `checkState`) throws before anything changes.
   */
  async loadState(params: readonly Tensor[], state: OptimizerState): Promise<void> {
    this.checkState(params, state, `${this.name}.loadState`);
    const used = this.slots.filter((s) => s.used);
    const datas = await Promise.all(
      state.params.map((ps) => Promise.all(ps ? used.map((s) => ps.slots[s.name]!.data()) : [])),
    );
    params.forEach((p, i) => {
      this.drop(p);
      const ps = state.params[i];
      if (!ps) return;
      const slots: Record<string, Tensor> = {};
      used.forEach((s, k) => (slots[s.name] = keep(tensor(datas[i]![k]!, p.shape, { backend: p.backend }))));
      this.states.set(p, { step: ps.step, slots, live: { lr: 0, step: ps.step } });
    });
    this.stepCount = state.stepCount;
  }

  /** Frees all state (a later step starts afresh, as a new optimizer with this `stepCount`). */
  dispose(): void {
    for (const p of [...this.states.keys()]) this.drop(p);
    for (const ts of this.placeholders.values()) ts.forEach((t) => t.dispose()); // sparse: one per unused slot
    this.placeholders.clear();
  }

  private stateOf(p: Tensor): LiveState {
    let st = this.states.get(p);
    if (!st) {
      const slots: Record<string, Tensor> = {};
      for (const s of this.slots) if (s.used) slots[s.name] = keep(full(p.shape, s.init, { backend: p.backend }));
      st = { step: 0, slots, live: { lr: 0, step: 0 } };
      this.states.set(p, st);
    }
    return st;
  }

  private drop(p: Tensor): void {
    const st = this.states.get(p);
    if (!st) return;
    for (const t of Object.values(st.slots)) t.dispose();
    this.states.delete(p);
  }

  private placeholder(b: Backend, slot: number, dtype: DType = 'float32'): Tensor {
    let ts = this.placeholders.get(b);
    if (!ts) this.placeholders.set(b, (ts = []));
    return (ts[slot] ??= keep(full([1], 0, { backend: b, dtype })));
  }

  private checkParam(p: Tensor, g: Tensor): void {
    if (p.dtype !== 'float32' || g.dtype !== 'float32') {
      throw new DTypeError(
        `${this.name}: parameter #${p.id} is ${p.dtype} with a ${g.dtype} gradient; expected float32`,
      );
    }
    if (p.backend !== g.backend) {
      throw new BackendError(
        `${this.name}: parameter #${p.id} lives on ${p.backend.name}, its gradient on ${g.backend.name}`,
      );
    }
    if (!sameShape(p.shape, g.shape)) {
      throw new ShapeError(
        `${this.name}: parameter #${p.id} ${fmtShape(p.shape)} has a gradient of shape ${fmtShape(g.shape)}`,
      );
    }
  }

  private checkFlag(p: Tensor, flag: Tensor): void {
    if (flag.dtype !== 'int32' || !sameShape(flag.shape, [1])) {
      throw new DTypeError(
        `${this.name}: the finiteness check's flag is ${flag.dtype}${fmtShape(flag.shape)}; expected int32[1]`,
      );
    }
    if (flag.backend !== p.backend) {
      throw new BackendError(
        `${this.name}: parameter #${p.id} lives on ${p.backend.name}, the finiteness check's flag on ${flag.backend.name}`,
      );
    }
  }

  private checkLr(lr: number | Schedule): number | Schedule {
    return typeof lr === 'function' ? lr : checkNumber(this.name, 'lr', lr, { min: 0 });
  }
}

/** `v` if it is a finite number within `bounds`, else a WgnnError naming the rule and the option. */
export function checkRange(rule: string, option: string, v: unknown, bounds: Bounds): number {
  return checkNumber(rule, option, v, bounds);
}
