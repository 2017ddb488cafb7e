// Anomaly mode (opt-in, for debugging NaNs): after every op, a tiny kernel (anomaly_check in src/ops/inplace.ts)
// checks the op's output for NaN/Inf and writes the op's sequence number into a flag with an integer atomicMin, so
// `checkAnomalies()` can name the FIRST op (in queue order, forward or backward) that produced a non-finite value.
// Off, it costs apply() one test.
import type { Backend } from '../backend/backend.js';
import { inBackward, isGradEnabled } from '../autograd/tape.js';
import { AnomalyError, DeviceLostError, fmtShape } from '../errors.js';
import { onOutput } from '../ops/apply.js';
import { anomalyCheck } from '../ops/inplace.js';
import type { Shape } from '../shape.js';
import { keep, tensor, type Tensor } from '../tensor.js';

/** What the error says about a checked op. */
interface OpInfo {
  op: string;
  inputs: Shape[];
  output: Shape;
  gradEnabled: boolean;
  backward: boolean;
}

/** One backend's flag (int32 [1]: the smallest flagged sequence number, or CLEAN) and the ops checked since the last read. */
interface State {
  flag: Tensor;
  /** log[seq]: the op checked with that sequence number. */
  log: OpInfo[];
}

const CLEAN = 0x7fffffff;
const states = new Map<Backend, State>();

/** The next sequence number for `info` on this backend; CLEAN (never flags) once anomaly mode is off. */
function nextSeq(backend: Backend, info: OpInfo): number {
  const s = states.get(backend);
  if (!s) return CLEAN;
  s.log.push(info);
  return s.log.length - 1;
}

function check(op: string, inputs: readonly Tensor[], out: Tensor): void {
  if (out.dtype !== 'float32' || out.size === 0) return;
  const backend = out.backend;
  let s = states.get(backend);
  if (!s) {
    s = { flag: keep(tensor(new Int32Array([CLEAN]), [1], { backend, dtype: 'int32' })), log: [] };
    states.set(backend, s);
  }
  const info: OpInfo = {
    op,
    inputs: inputs.map((t) => t.shape),
    output: out.shape,
    gradEnabled: isGradEnabled(),
    backward: inBackward(),
  };
  const flag = s.flag.live('anomaly_check');
  const x = out.live('anomaly_check');
  backend.runInPlace(anomalyCheck, [{ handle: flag.handle, spec: s.flag }], [{ handle: x.handle, spec: out }], {
    seq: () => nextSeq(backend, info),
  });
}

/**
 * Turns anomaly mode on or off. On, every op's output (forward and backward, and in-place updates) is checked for
 * NaN/Inf where it is computed; `checkAnomalies()` reports the first op that produced one. Off, unreported
 * anomalies are dropped and the flags freed.
 */
export function setAnomalyMode(on: boolean): void {
  onOutput(on ? check : undefined);
  if (on) return;
  for (const s of states.values()) s.flag.dispose();
  states.clear();
}

/** The flag's value, the flag reset behind the read. A backend whose device was lost (a new init()) is forgotten. */
async function readAndReset(backend: Backend, s: State): Promise<number> {
  try {
    const flag = s.flag.live('checkAnomalies');
    const value = backend.read(flag.handle, s.flag);
    backend.write(flag.handle, new Int32Array([CLEAN]));
    return (await value)[0]!;
  } catch (e) {
    if (!(e instanceof DeviceLostError)) throw e;
    states.delete(backend);
    return CLEAN;
  }
}

/**
 * Waits for the checks of every op queued so far and throws `AnomalyError` naming the first op whose output held
 * a NaN or an Inf, with its input and output shapes; then starts afresh (the next call reports only later ops).
 */
export async function checkAnomalies(): Promise<void> {
  // Read each flag, then reset it right behind the read in queue order: checks queued later land in a fresh flag
  // and a fresh log, so nothing between the read and the reset is lost.
  const pending = [...states].map(([backend, s]) => {
    const log = s.log;
    s.log = [];
    return { log, value: readAndReset(backend, s) };
  });
  const seqs = await Promise.all(pending.map((p) => p.value));
  for (const [i, { log }] of pending.entries()) {
    const seq = seqs[i]!;
    if (seq === CLEAN) continue;
    const o = log[seq]!;
    const where = o.backward
      ? 'in backward'
      : o.gradEnabled
        ? 'in forward, recording gradients'
        : 'in forward, without gradient recording';
    throw new AnomalyError(
      `${o.op}: produced a non-finite value (NaN or Inf), the first of the ${log.length} ops checked since the last checkAnomalies(); ` +
        `inputs ${o.inputs.map(fmtShape).join(', ') || '(none)'} -> output ${fmtShape(o.output)}, ${where}`,
      o.op,
      o.inputs,
      o.output,
      o.gradEnabled,
    );
  }
}
