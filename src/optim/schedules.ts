// Learning-rate schedules: functions of the step number (the optimizer's `stepCount`, 0 on the first update, as
// Keras's `optimizer.iterations`), evaluated on the host. Pass one as `lr` to any optimizer.

/** A learning rate as a function of the number of steps already taken. */
export type Schedule = (step: number) => number;

function positive(what: string, field: string, v: number): void {
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`${what}: ${field} must be a positive finite number, got ${v}`);
}

/** `initial · gamma^⌊step / stepSize⌋`, as torch.optim.lr_scheduler.StepLR (gamma defaults to 0.1). */
export function stepDecay({ initial, stepSize, gamma = 0.1 }: { initial: number; stepSize: number; gamma?: number }): Schedule {
  positive('stepDecay', 'stepSize', stepSize);
  return (step) => initial * gamma ** Math.floor(step / stepSize);
}

/**
 * `initial · decayRate^(step / decaySteps)`, the exponent floored when `staircase`, as
 * keras.optimizers.schedules.ExponentialDecay.
 */
export function exponentialDecay({
  initial,
  decayRate,
  decaySteps,
  staircase = false,
}: {
  initial: number;
  decayRate: number;
  decaySteps: number;
  staircase?: boolean;
}): Schedule {
  positive('exponentialDecay', 'decaySteps', decaySteps);
  return (step) => {
    const e = step / decaySteps;
    return initial * decayRate ** (staircase ? Math.floor(e) : e);
  };
}

/**
 * Cosine decay from `initial` to `alpha · initial` over `decaySteps`, then constant, as
 * keras.optimizers.schedules.CosineDecay (no warmup): `initial · ((1 − α)·½(1 + cos(π·min(step, D)/D)) + α)`.
 */
export function cosineDecay({ initial, decaySteps, alpha = 0 }: { initial: number; decaySteps: number; alpha?: number }): Schedule {
  positive('cosineDecay', 'decaySteps', decaySteps);
  return (step) => {
    const t = Math.min(step, decaySteps) / decaySteps;
    return initial * ((1 - alpha) * 0.5 * (1 + Math.cos(Math.PI * t)) + alpha);
  };
}
