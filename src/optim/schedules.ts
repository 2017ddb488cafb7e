// Learning-rate schedules: functions of the step number (the optimizer's `stepCount`, 0 on the first update, as
// Keras's `optimizer.iterations`), evaluated on the host. Pass one as `lr` to any optimizer.
import { checkBoolean, checkNumber, knownKeys, optionsObject } from '../options.js';

/** A learning rate as a function of the number of steps already taken. */
export type Schedule = (step: number) => number;

/** A schedule's options: an object of known keys, with a finite `initial` >= 0 (WgnnError naming the option). */
function options<T extends { initial: number }>(what: string, opts: T, known: readonly (keyof T & string)[]): T {
  knownKeys(what, optionsObject(what, 'options', opts), known);
  checkNumber(what, 'initial', opts.initial, { min: 0 });
  return opts;
}

/** `initial · gamma^⌊step / stepSize⌋`, as torch.optim.lr_scheduler.StepLR (gamma defaults to 0.1). */
export function stepDecay(opts: { initial: number; stepSize: number; gamma?: number }): Schedule {
  const { initial, stepSize, gamma = 0.1 } = options('stepDecay', opts, ['initial', 'stepSize', 'gamma']);
  checkNumber('stepDecay', 'stepSize', stepSize, { above: 0 });
  checkNumber('stepDecay', 'gamma', gamma, { min: 0 });
  return (step) => initial * gamma ** Math.floor(step / stepSize);
}

/**
 * `initial · decayRate^(step / decaySteps)`, the exponent floored when `staircase`, as
 * keras.optimizers.schedules.ExponentialDecay.
 */
export function exponentialDecay(opts: {
  initial: number;
  decayRate: number;
  decaySteps: number;
  staircase?: boolean;
}): Schedule {
  const {
    initial,
    decayRate,
    decaySteps,
    staircase = false,
  } = options('exponentialDecay', opts, ['initial', 'decayRate', 'decaySteps', 'staircase']);
  checkNumber('exponentialDecay', 'decayRate', decayRate, { above: 0 });
  checkNumber('exponentialDecay', 'decaySteps', decaySteps, { above: 0 });
  checkBoolean('exponentialDecay', 'staircase', staircase);
  return (step) => {
    const e = step / decaySteps;
    return initial * decayRate ** (staircase ? Math.floor(e) : e);
  };
}

/**
 * Cosine decay from `initial` to `alpha · initial` over `decaySteps`, then constant, as
 * keras.optimizers.schedules.CosineDecay (no warmup): `initial · ((1 − α)·½(1 + cos(π·min(step, D)/D)) + α)`.
 */
export function cosineDecay(opts: { initial: number; decaySteps: number; alpha?: number }): Schedule {
  const { initial, decaySteps, alpha = 0 } = options('cosineDecay', opts, ['initial', 'decaySteps', 'alpha']);
  checkNumber('cosineDecay', 'decaySteps', decaySteps, { above: 0 });
  checkNumber('cosineDecay', 'alpha', alpha, { min: 0, max: 1 });
  return (step) => {
    const t = Math.min(step, decaySteps) / decaySteps;
    return initial * ((1 - alpha) * 0.5 * (1 + Math.cos(Math.PI * t)) + alpha);
  };
}

/**
 * Linear warmup then cosine decay, as nanoGPT's `get_lr`: `peak · (step + 1) / warmupSteps` for step < warmupSteps
 * (so the first step already moves), then `min + (peak − min)·½(1 + cos πt)` with
 * t = min(step − warmupSteps, decaySteps) / decaySteps, so `min` from step warmupSteps + decaySteps on.
 * NOTE: decaySteps counts from the end of the warmup (nanoGPT's lr_decay_iters − warmup_iters).
 */
export function warmupCosine(opts: { peak: number; warmupSteps: number; decaySteps: number; min?: number }): Schedule {
  const what = 'warmupCosine';
  knownKeys(what, optionsObject(what, 'options', opts), ['peak', 'warmupSteps', 'decaySteps', 'min']);
  const { peak, warmupSteps, decaySteps, min = 0 } = opts;
  checkNumber(what, 'peak', peak, { min: 0 });
  checkNumber(what, 'warmupSteps', warmupSteps, { min: 0, integer: true });
  checkNumber(what, 'decaySteps', decaySteps, { above: 0 });
  checkNumber(what, 'min', min, { min: 0, max: peak });
  return (step) => {
    if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
    const t = Math.min(step - warmupSteps, decaySteps) / decaySteps;
    return min + (peak - min) * 0.5 * (1 + Math.cos(Math.PI * t));
  };
}
