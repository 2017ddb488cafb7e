// The tape: each op run on a tensor that requires grad records a node (op, attrs, inputs, saved tensors);
// `backward()` walks the nodes in reverse topological order and runs each op's backward rule on the same backend,
// accumulating gradients (`+=`) into leaves' `.grad`. Saved tensors are freed afterwards unless `retainGraph`.
import { ShapeError, WgnnError, fmtShape } from '../errors.js';
import { onApply } from '../ops/apply.js';
import { add } from '../ops/binary.js';
import type { AnyOp, Grad } from '../ops/op.js';
import { sameShape } from '../shape.js';
import { full, keep, onBackward, tidy, view, type BackwardOptions, type Tensor } from '../tensor.js';

/** The tape entry of the op that produced a tensor (kept beside the tensor, so tensors know nothing of autograd). */
interface GradNode {
  readonly op: AnyOp;
  readonly attrs: object;
  /** The op's inputs (the graph's edges; their data may be gone, only saved views keep data). */
  readonly inputs: readonly Tensor[];
  readonly saved: readonly (Tensor | undefined)[];
  readonly savedOutput: Tensor | undefined;
  readonly aux: Tensor | undefined;
  released: boolean;
}

const nodes = new WeakMap<Tensor, GradNode>();

let enabled = true;

/** Runs `fn` without recording (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = enabled;
  enabled = false;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

/** Whether ops are recorded for backward (false inside `noGrad`). */
export const isGradEnabled = (): boolean => enabled;

let backwardDepth = 0;
/** True while `backward()` runs gradient rules (anomaly reports say whether an op ran in backward). */
export const inBackward = (): boolean => backwardDepth > 0;

// Saved tensors are views that share storage: the user may dispose the originals, and no scope frees them.
const save = (t: Tensor, op: string): Tensor => keep(view(t, t.shape, op));

/** Called by apply() after each op: links `out` into the graph when an input requires grad. */
function record(op: AnyOp, inputs: readonly Tensor[], out: Tensor, attrs: object, aux: Tensor | undefined): void {
  if (!enabled || !inputs.some((t) => t.requiresGrad)) return;
  const g = op.grad;
  if ('none' in g) {
    return; // no gradient flows through this op (argmax, comparisons): its output is a constant.
  }
  const saves = g.saves;
  out.requiresGrad = true;
  nodes.set(out, {
    op,
    attrs,
    inputs: [...inputs],
    saved: inputs.map((t, i) => (saves.inputs?.includes(i) ? save(t, op.name) : undefined)),
    savedOutput: saves.output ? save(out, op.name) : undefined,
    aux: aux && save(aux, op.name),
    released: false,
  });
}
onApply(record);

/**
 * Accumulates d(root)/d(leaf) into every leaf's `.grad`. `dy` defaults to ones for a scalar root.
 * The gradient kernels are queued on the root's backend like any op.
 */
export function backward(root: Tensor, dy?: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad)
    throw new WgnnError(`backward: tensor #${root.id} ${fmtShape(root.shape)} does not require grad`);
  if (!dy && root.size !== 1) {
    throw new ShapeError(`backward: root ${fmtShape(root.shape)} is not a scalar; pass its gradient explicitly`);
  }
  if (dy && !sameShape(dy.shape, root.shape)) {
    throw new ShapeError(`backward: gradient ${fmtShape(dy.shape)} does not match root ${fmtShape(root.shape)}`);
  }
  // Reverse topological order by DFS from the root over tensors that require grad.
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length) {
    const [t, done] = stack.pop()!;
    if (done) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const i of nodes.get(t)?.inputs ?? []) if (i.requiresGrad && !seen.has(i)) stack.push([i, false]);
  }
  order.reverse();

  const grads = new Map<Tensor, Tensor>();
  grads.set(root, dy ? view(dy, dy.shape, 'backward') : full(root.shape, 1, { backend: root.backend }));
  const pending: Tensor[] = [];
  backwardDepth++;
  try {
    noGrad(() => {
      for (const t of order) {
        const g = grads.get(t);
        if (!g) continue;
        grads.delete(t);
        const node = nodes.get(t);
        if (!node) {
          // A leaf: accumulate into .grad (+=), as PyTorch.
          if (t.grad) {
            const sum = addGrad(t.grad, g);
            t.grad.dispose();
            g.dispose();
            t.grad = keep(sum);
          } else {
            t.grad = keep(g);
          }
          continue;
        }
        if (node.released) {
          throw new WgnnError(
            `backward: ${node.op.name} ran backward already and its saved tensors were freed; pass { retainGraph: true } to the first backward`,
          );
        }
        const rule = node.op.grad as Grad<object>;
        const needs = node.inputs.map((i) => i.requiresGrad);
        // Rules compose ops freely: whatever they make besides the gradients they return is freed here.
        const dxs = tidy(() =>
          rule.rule(
            {
              inputs: node.saved,
              output: node.savedOutput,
              aux: node.aux,
              shapes: node.inputs.map((i) => i.shape),
              attrs: node.attrs,
              needs,
            },
            g,
          ),
        );
        const owned = new Set<Tensor>();
        node.inputs.forEach((inp, i) => {
          let dx = dxs[i];
          if (!dx || !needs[i]) {
            if (dx && dx !== g) dx.dispose();
            return;
          }
          if (!sameShape(dx.shape, inp.shape)) {
            throw new ShapeError(
              `backward: ${node.op.name} gave a gradient ${fmtShape(dx.shape)} for input ${i} ${fmtShape(inp.shape)}`,
            );
          }
          // Each pending gradient holds its own reference (a rule may pass dy through, or return one tensor twice).
          if (dx === g || owned.has(dx)) dx = view(dx, dx.shape, 'backward');
          owned.add(dx);
          const prev = grads.get(inp);
          if (prev) {
            grads.set(inp, addGrad(prev, dx));
            prev.dispose();
            dx.dispose();
          } else grads.set(inp, dx);
        });
        g.dispose();
        if (!opts.retainGraph) pending.push(t);
      }
    });
  } finally {
    backwardDepth--;
  }
  for (const t of pending) release(nodes.get(t)!);
}

onBackward((root, dy, opts) => backward(root, dy, opts));

function release(node: GradNode): void {
  if (node.released) return;
  for (const s of node.saved) s?.dispose();
  node.savedOutput?.dispose();
  node.aux?.dispose();
  node.released = true;
}

const addGrad = (a: Tensor, b: Tensor): Tensor => add(a, b);

/** Clears `.grad` of each tensor (disposing it). */
export function zeroGrad(tensors: Iterable<Tensor>): void {
  for (const t of tensors) {
    t.grad?.dispose();
    t.grad = undefined;
  }
}

/** A view of `t` that is cut from the graph: same data, no gradient flows back through it. */
export function detach(t: Tensor): Tensor {
  return view(t, t.shape, 'detach');
}

/**
 * `valueAndGrad(f)(...xs)` returns f's scalar value and d f / d xs, without touching the xs' own `.grad`.
 * The value is computed with recording on; everything f made but the value is freed.
 */
export function valueAndGrad<Args extends Tensor[]>(f: (...xs: Args) => Tensor) {
  return (...xs: Args): { value: Tensor; grads: Tensor[] } => {
    const vars = xs.map((x) => keep(view(x, x.shape, 'valueAndGrad').variable())) as Args;
    const value = tidy(() => f(...vars));
    backward(value);
    const grads = vars.map((v) => {
      const g = v.grad ?? full(v.shape, 0, { backend: v.backend });
      v.grad = undefined;
      v.dispose();
      return g;
    });
    const out = detach(value);
    value.dispose();
    return { value: out, grads };
  };
}

/** `grad(f)(...xs)`: the gradients of f's scalar value with respect to each argument. */
export function grad<Args extends Tensor[]>(f: (...xs: Args) => Tensor) {
  const vg = valueAndGrad(f);
  return (...xs: Args): Tensor[] => {
    const { value, grads } = vg(...xs);
    value.dispose();
    return grads;
  };
}
