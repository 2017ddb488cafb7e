// Runs an op from the table on tensors: checks arity and liveness, infers the output, and asks the inputs'
// backend to run it (or makes a view for aliasing ops such as reshape).
import type { InPlaceKernel } from '../backend/backend.js';
import { BackendError, ShapeError } from '../errors.js';
import { defaultBackend, keep, view, wrap, type Tensor } from '../tensor.js';
import type { OpDef } from './op.js';

type Recorder = (
  op: OpDef<object>,
  inputs: readonly Tensor[],
  out: Tensor,
  attrs: object,
  aux: Tensor | undefined,
) => void;
let recorder: Recorder | undefined;
/** The autograd tape registers here to see every op that runs (it sits above the ops and is not imported by them). */
export function onApply(r: Recorder): void {
  recorder = r;
}

type OutputCheck = (op: string, inputs: readonly Tensor[], out: Tensor) => void;
let outputCheck: OutputCheck | undefined;
/** Anomaly mode (src/debug/anomaly.ts) registers here to check each op's output; undefined turns it off. */
export function onOutput(c: OutputCheck | undefined): void {
  outputCheck = c;
}

export function apply<A extends object>(op: OpDef<A>, inputs: readonly Tensor[], attrs: Partial<A> = {}): Tensor {
  if (op.arity !== 'variadic' && inputs.length !== op.arity) {
    throw new ShapeError(`${op.name}: expected ${op.arity} input tensor(s), got ${inputs.length}`);
  }
  const storages = inputs.map((t) => t.live(op.name));
  const backend = storages[0]?.backend ?? defaultBackend();
  if (storages.some((s) => s.backend !== backend)) {
    throw new BackendError(
      `${op.name}: inputs live on different backends (${storages.map((s) => s.backend.name).join(', ')})`,
    );
  }
  const full = { ...op.attrs, ...attrs } as A;
  const spec = op.infer(inputs, full);
  if (op.alias) {
    const out = view(inputs[0]!, spec.shape, op.name);
    recorder?.(op as unknown as OpDef<object>, inputs, out, full, undefined);
    return out;
  }
  const auxSpec = op.aux?.(inputs, full);
  const r = backend.run(
    op,
    inputs.map((t, i) => ({ handle: storages[i]!.handle, spec: t })),
    spec,
    full,
    auxSpec,
  );
  const out = wrap(backend, r.out, spec);
  const aux = auxSpec && r.aux !== undefined ? keep(wrap(backend, r.aux, auxSpec)) : undefined;
  if (outputCheck) outputCheck(op.name, inputs, out);
  recorder?.(op as unknown as OpDef<object>, inputs, out, full, aux);
  aux?.dispose(); // the tape keeps its own view when it records the op
  return out;
}

/**
 * Runs an in-place kernel (an optimizer step) on tensors of one backend: `targets` change where they are. Not
 * recorded by the tape. NOTE: a view of a target saved for a pending backward sees the new values (no version
 * counter as in PyTorch), so update parameters after backward, as every training loop does.
 */
export function applyInPlace<A>(
  op: InPlaceKernel<A>,
  targets: readonly Tensor[],
  inputs: readonly Tensor[],
  attrs: A,
): void {
  const all = [...targets, ...inputs];
  const storages = all.map((t) => t.live(op.name));
  const backend = storages[0]!.backend;
  if (storages.some((s) => s.backend !== backend)) {
    throw new BackendError(
      `${op.name}: tensors live on different backends (${storages.map((s) => s.backend.name).join(', ')})`,
    );
  }
  const si = (t: Tensor, i: number) => ({ handle: storages[i]!.handle, spec: t });
  backend.runInPlace(
    op,
    targets.map(si),
    inputs.map((t, i) => si(t, i + targets.length)),
    attrs,
  );
  if (outputCheck) for (const t of targets) outputCheck(op.name, inputs, t);
}
