// Elementwise families: unary activations forward and backward, and broadcast binary ops. Memory-bound: each row's
// rate is bytes read + written over time, to be read against the device's copy bandwidth.
import { UNARY, binaryOps, unaryOps, type AnyOp, type UnaryName } from '../src/internal.js';
import { cpuCheck, hostUniform, opRunner, sizeOfShape, type Case, type FamilyOpts } from './harness.js';
import type { JaxArray } from './peers/jax.js';

const ACTIVATIONS: UnaryName[] = ['relu', 'sigmoid', 'tanh', 'gelu'];

/** Elements per tensor: 1 MiB (CI), 16 MiB (lavapipe), 64 MiB (a GPU: past any L2 cache). */
const elements = (o: FamilyOpts): number => (o.quick ? 1 << 18 : o.software ? 1 << 22 : 1 << 24);

export function activationCases(o: FamilyOpts): Case[] {
  const n = elements(o);
  return ACTIVATIONS.flatMap((name, ai) =>
    (['fwd', 'bwd'] as const).map((pass): Case => {
      const row = UNARY[name];
      const grad = row.grad;
      const bwd = pass === 'bwd';
      const op: AnyOp = bwd ? unaryOps[`${name}_bwd_x`] : unaryOps[name];
      const seed = 3000 + ai * 100 + (bwd ? 50 : 0);
      // Forward inputs in [-4, 4]; backward: the saved x (or y, within y's range) and dy.
      const xRange: [number, number] = [-4, 4];
      const sRange: [number, number] = grad.uses === 'y' ? ('yRange' in grad ? grad.yRange : [-1, 1]) : xRange;
      const uses = bwd ? `(${grad.uses}, dy)` : '(x)';
      return {
        family: 'activation',
        id: `${name}-${pass}`,
        label: `${name} ${pass} [${n}] ${uses}`,
        bound: 'memory',
        bytes: 4 * n * (bwd ? 3 : 2),
        meta: { op: op.name, n, uses: bwd ? grad.uses : 'x' },
        inputs: (set) =>
          bwd
            ? [hostUniform(seed + set * 10, [n], ...sRange), hostUniform(seed + set * 10 + 1, [n])]
            : [hostUniform(seed + set * 10, [n], ...xRange)],
        check: (inp) => cpuCheck(op, inp, {}, seed),
        wgnn: (gpu, sets) => opRunner(gpu, op, sets, {}),
        tfjs: tfjsActivation(name, bwd),
        jax: (p, sets) => {
          const { nn, numpy: np, vjp } = p.jax;
          const f: Record<UnaryName, ((x: JaxArray) => JaxArray) | undefined> = {
            relu: nn.relu,
            sigmoid: nn.sigmoid,
            tanh: np.tanh,
            gelu: (x: JaxArray) => nn.gelu(x, { approximate: false }),
          } as never;
          if (!bwd) return p.prepare(name, sets, (x) => f[name]!(x!));
          // From y, jax's own derivative rules in jax.numpy (one fused kernel under jit); gelu's from x through vjp.
          const fromY: Partial<Record<UnaryName, (y: JaxArray, dy: JaxArray) => JaxArray>> = {
            relu: (y, dy) => np.where(np.greater(y, 0), dy, 0),
            sigmoid: (y, dy) => dy.mul(y.ref).mul(np.subtract(1, y)),
            tanh: (y, dy) => dy.mul(np.subtract(1, np.square(y))),
          };
          const g = fromY[name];
          if (g)
            return p.prepare(`d${name} from y`, sets, (y, dy) => g(y!, dy!), {
              note: 'derivative rule written in jax.numpy',
            });
          return p.prepare(
            `vjp(${name})`,
            sets,
            (x, dy) => {
              const [y, back] = vjp(f[name]!, [x!]);
              y.dispose();
              const [dx] = back(dy!) as unknown as JaxArray[];
              return dx!;
            },
            { note: 'jit(vjp)' },
          );
        },
      };
    }),
  );
}

/** TF.js's activation ops, and its backward as TF.js's own gradient functions compose it (it has no fused kernels). */
function tfjsActivation(name: UnaryName, bwd: boolean): Case['tfjs'] {
  if (name === 'gelu') return 'tfjs-core 4.22 has no gelu op';
  return (p, sets) => {
    const tf = p.tf;
    if (!bwd) {
      const f = { relu: tf.relu, sigmoid: tf.sigmoid, tanh: tf.tanh }[name as 'relu' | 'sigmoid' | 'tanh'];
      return p.prepare(name[0]!.toUpperCase() + name.slice(1), sets, ([x]) => f(x!));
    }
    const rules = {
      relu: { kernel: 'Mul(dy, Step(y))', f: ([y, dy]: TfT[]) => tf.mul(dy!, tf.step(y!)) },
      sigmoid: { kernel: 'Mul(dy, Mul(y, Sub(1, y)))', f: ([y, dy]: TfT[]) => tf.mul(dy!, tf.mul(y!, tf.sub(1, y!))) },
      tanh: { kernel: 'Mul(Sub(1, Square(y)), dy)', f: ([y, dy]: TfT[]) => tf.mul(tf.sub(1, tf.square(y!)), dy!) },
    }[name as 'relu' | 'sigmoid' | 'tanh'];
    return p.prepare(rules.kernel, sets, (ts) => p.tf.tidy(() => rules.f(ts)), {
      note: "composed, as TF.js's gradient",
    });
  };
}

type TfT = import('@tensorflow/tfjs-core').Tensor;

interface BinaryCase {
  id: string;
  op: 'add' | 'mul';
  a: number[];
  b: number[];
}

export function binaryCases(o: FamilyOpts): Case[] {
  const n = elements(o);
  const C = 1024;
  const R = n / C;
  const cases: BinaryCase[] = [
    { id: 'add-same', op: 'add', a: [n], b: [n] },
    { id: 'add-row', op: 'add', a: [R, C], b: [C] }, // a bias over rows
    { id: 'mul-col', op: 'mul', a: [R, C], b: [R, 1] }, // a per-row scale
  ];
  return cases.map((c, ci): Case => {
    const op: AnyOp = binaryOps[c.op];
    const seed = 4000 + ci * 10;
    return {
      family: 'binary',
      id: c.id,
      label: `${c.op} [${c.a}] with [${c.b}]`,
      bound: 'memory',
      bytes: 4 * (2 * sizeOfShape(c.a) + sizeOfShape(c.b)),
      meta: { op: c.op, a: c.a, b: c.b },
      inputs: (set) => [hostUniform(seed + set * 10, c.a), hostUniform(seed + set * 10 + 1, c.b)],
      check: (inp) => cpuCheck(op, inp, {}, seed),
      wgnn: (gpu, sets) => opRunner(gpu, op, sets, {}),
      tfjs: (p, sets) =>
        p.prepare(c.op === 'add' ? 'Add' : 'Multiply', sets, ([a, b]) =>
          c.op === 'add' ? p.tf.add(a!, b!) : p.tf.mul(a!, b!),
        ),
      jax: (p, sets) =>
        p.prepare(c.op, sets, (a, b) => (c.op === 'add' ? p.jax.numpy.add(a!, b!) : p.jax.numpy.multiply(a!, b!))),
    };
  });
}
