// What a Sequential's checkpoint holds beside its tensors (the training state), and the checks run before resuming
// from one: the state against its schema, then the whole checkpoint against the model and optimizer it is to resume
// (layer kinds and configs, tensor names, shapes and values, optimizer kind and slots, RNGs). Nothing here changes
// the model or the optimizer: Sequential.loadCheckpoint applies the plan only once every check has passed.
import { ParseError, WgnnError, fmtShape } from '../errors.js';
import type { CheckpointData } from '../io/checkpoint.js';
import type { LoadedTensor } from '../io/safetensors.js';
import type { Optimizer, OptimizerState } from '../optim/optimizer.js';
import { sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import type { Layer } from './layers.js';

/** Where training stands: the next epoch and the batches of it already trained. */
export interface Cursor {
  epoch: number;
  batch: number;
}

/** The JSON state of a Sequential's checkpoint. */
export interface TrainingState {
  cursor: Cursor;
  /** The layer stack it was written from: each layer's kind and `config()` (names are not kept: they are counters). */
  layers: { class: string; config: Record<string, unknown> }[];
  /** The optimizer's name, step count and each parameter's step (null: no state yet). */
  optimizer: { name: string; stepCount: number; steps: (number | null)[] };
  /** Each layer's RNG state (uint32). */
  rngs: number[];
}

/** Everything a resume assigns, checked: model tensors by name (without `model.`), the optimizer state, RNGs, cursor. */
export interface ResumePlan {
  model: Map<string, LoadedTensor>;
  optimizer: { stepCount: number; params: ({ step: number; slots: Record<string, LoadedTensor> } | null)[] };
  rngs: number[];
  cursor: Cursor;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isUint32 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

/** A value for a message, cut short (a hostile file can hold megabytes in one field). */
function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Array.isArray(v) ? '[...]' : typeof v === 'object' ? '{...}' : String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** The state a checkpoint of these layers, optimizer state and cursor records; checked as a reader would. */
export function trainingState(
  layers: readonly Layer[],
  optimizer: Optimizer,
  st: OptimizerState,
  cursor: Cursor,
): TrainingState {
  const state: TrainingState = {
    cursor: { epoch: cursor.epoch, batch: cursor.batch },
    layers: layers.map((l) => ({ class: l.kind, config: l.config() })),
    optimizer: { name: optimizer.name, stepCount: st.stepCount, steps: st.params.map((ps) => ps?.step ?? null) },
    rngs: layers.map((l) => l.rng.state),
  };
  // Never write what a resume would refuse (a cursor of -1, a NaN step count).
  return checkTrainingState(JSON.parse(JSON.stringify(state)), 'saveCheckpoint', WgnnError);
}

/** The state checked against the schema; anything else throws `error` naming the first field that is wrong. */
export function checkTrainingState(
  v: unknown,
  what: string,
  error: new (message: string) => WgnnError = ParseError,
): TrainingState {
  const fail = (field: string, value: unknown, expected: string): never => {
    throw new error(`${what}: state.${field} is ${show(value)}; expected ${expected}`);
  };
  // Each object holds its fields and no others: a field this version does not know is not silently ignored.
  const only = (o: Record<string, unknown>, at: string, keys: string[]) => {
    const extra = Object.keys(o).find((k) => !keys.includes(k));
    if (extra !== undefined) fail(`${at}${extra}`, o[extra], `no such field (${keys.join(', ')} only)`);
  };
  if (!isObject(v)) return fail('', v, 'an object {cursor, layers, optimizer, rngs}');
  only(v, '', ['cursor', 'layers', 'optimizer', 'rngs']);
  const { cursor, layers, optimizer, rngs } = v;
  if (!isObject(cursor)) return fail('cursor', cursor, 'an object {epoch, batch}');
  only(cursor, 'cursor.', ['epoch', 'batch']);
  if (!isCount(cursor.epoch)) fail('cursor.epoch', cursor.epoch, 'an integer >= 0');
  if (!isCount(cursor.batch)) fail('cursor.batch', cursor.batch, 'an integer >= 0');
  if (!Array.isArray(layers)) return fail('layers', layers, 'an array of {class, config}');
  layers.forEach((l, i) => {
    if (!isObject(l)) fail(`layers[${i}]`, l, 'an object {class, config}');
    else if (typeof l.class !== 'string') fail(`layers[${i}].class`, l.class, 'a string');
    else if (!isObject(l.config)) fail(`layers[${i}].config`, l.config, 'an object');
    else only(l, `layers[${i}].`, ['class', 'config']);
  });
  if (!isObject(optimizer)) return fail('optimizer', optimizer, 'an object {name, stepCount, steps}');
  only(optimizer, 'optimizer.', ['name', 'stepCount', 'steps']);
  if (typeof optimizer.name !== 'string') fail('optimizer.name', optimizer.name, 'a string');
  if (!isCount(optimizer.stepCount)) fail('optimizer.stepCount', optimizer.stepCount, 'an integer >= 0');
  if (!Array.isArray(optimizer.steps))
    return fail('optimizer.steps', optimizer.steps, 'an array of integers >= 0 or null');
  optimizer.steps.forEach(
    (s, i) => s === null || isCount(s) || fail(`optimizer.steps[${i}]`, s, 'an integer >= 0 or null'),
  );
  if (!Array.isArray(rngs)) return fail('rngs', rngs, 'an array of uint32 generator states');
  if (rngs.length !== layers.length)
    throw new error(`${what}: state.rngs has ${rngs.length} entries; expected one per layer (${layers.length})`);
  rngs.forEach((r, i) => isUint32(r) || fail(`rngs[${i}]`, r, 'an integer in [0, 2^32)'));
  return v as unknown as TrainingState;
}

/** The first layer config key whose value differs (compared as JSON), or undefined when they match. */
function configDiff(a: Record<string, unknown>, b: Record<string, unknown>): string | undefined {
  // NOTE: JSON.stringify recurses: a value nested thousands deep (JSON.parse takes any depth) overflows the stack,
  // and no config of ours is like that, so it differs.
  const text = (v: unknown) => {
    try {
      return JSON.stringify(v);
    } catch {
      return undefined;
    }
  };
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.find((k) => {
    const t = text(a[k]);
    return t === undefined || t !== text(b[k]);
  });
}

/** The index of the first NaN or ±Inf in a float tensor, or -1. */
function firstNonFinite(t: LoadedTensor): number {
  if (t.dtype !== 'float32') return -1;
  for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i]!)) return i;
  return -1;
}

/**
 * Checks a verified checkpoint against the model that is to resume from it and returns what to assign, or throws a
 * ParseError naming the first mismatch: the state's schema; the layer stack (same count, kinds and configs); the
 * model's tensors (every one present, same dtype and shape, finite; none the model lacks); the optimizer (same
 * name, one entry per parameter, the slots its options keep, shaped as their parameter, finite); one RNG state per
 * layer. Reads the model (its layers, tensors' names and shapes) and changes nothing.
 */
export function planResume(
  what: string,
  ck: CheckpointData,
  layers: readonly Layer[],
  named: readonly [string, Tensor][],
  params: readonly Tensor[],
  optimizer: Optimizer,
): ResumePlan {
  const state = checkTrainingState(ck.state, what);
  if (state.layers.length !== layers.length) {
    throw new ParseError(`${what}: the checkpoint is of ${state.layers.length} layers, the model has ${layers.length}`);
  }
  layers.forEach((l, i) => {
    const saved = state.layers[i]!;
    if (saved.class !== l.kind)
      throw new ParseError(`${what}: layer ${i} is a ${show(saved.class)} in the checkpoint, a ${l.kind} in the model`);
    const mine = JSON.parse(JSON.stringify(l.config())) as Record<string, unknown>;
    const k = configDiff(saved.config, mine);
    if (k !== undefined) {
      throw new ParseError(
        `${what}: layer ${i} (${l.kind}) has ${k} ${show(saved.config[k])} in the checkpoint, ${show(mine[k])} in the model`,
      );
    }
  });

  if (state.optimizer.name !== optimizer.name) {
    throw new ParseError(
      `${what}: the checkpoint's optimizer is ${show(state.optimizer.name)}; this one is ${optimizer.name}`,
    );
  }
  if (state.optimizer.steps.length !== params.length) {
    throw new ParseError(
      `${what}: the checkpoint has optimizer state for ${state.optimizer.steps.length} parameters; the model has ${params.length}`,
    );
  }

  const model = new Map<string, LoadedTensor>();
  const slots = new Map<number, Record<string, LoadedTensor>>();
  const own = new Map(named);
  for (const [name, t] of ck.tensors) {
    const i = firstNonFinite(t);
    if (i >= 0)
      throw new ParseError(
        `${what}: tensor ${show(name)} holds ${t.data[i]} at index ${i}; a checkpoint must be finite`,
      );
    if (name.startsWith('model.') && own.has(name.slice(6))) {
      model.set(name.slice(6), t);
      continue;
    }
    const m = /^optim\.(0|[1-9][0-9]{0,8})\.(.+)$/s.exec(name);
    const p = m ? Number(m[1]) : -1;
    if (!m || p >= params.length) {
      throw new ParseError(
        `${what}: tensor ${show(name)} is not one of the model's (model.<name>) or its optimizer state for one of its ${params.length} parameters (optim.<index>.<slot>)`,
      );
    }
    if (state.optimizer.steps[p] === null) {
      throw new ParseError(
        `${what}: tensor ${show(name)} is state of parameter ${p}, which the checkpoint says has none (step null)`,
      );
    }
    let rec = slots.get(p);
    if (!rec) slots.set(p, (rec = Object.create(null) as Record<string, LoadedTensor>));
    rec[m[2]!] = t;
  }
  for (const [name, t] of named) {
    const saved = model.get(name);
    if (!saved) throw new ParseError(`${what}: the model's ${name} ${fmtShape(t.shape)} is not in the checkpoint`);
    if (saved.dtype !== t.dtype || !sameShape(saved.shape, t.shape)) {
      throw new ParseError(
        `${what}: model.${name} is ${saved.dtype}${fmtShape(saved.shape)} in the checkpoint; the model's is ${t.dtype}${fmtShape(t.shape)}`,
      );
    }
  }

  const opt = {
    stepCount: state.optimizer.stepCount,
    params: state.optimizer.steps.map((step, i) => (step === null ? null : { step, slots: slots.get(i) ?? {} })),
  };
  try {
    optimizer.checkState(params, opt, `${what}: optimizer`);
  } catch (e) {
    throw e instanceof WgnnError && !(e instanceof ParseError) ? new ParseError(e.message) : e;
  }
  return { model, optimizer: opt, rngs: state.rngs, cursor: state.cursor };
}
