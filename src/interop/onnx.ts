// ONNX in: an ONNX graph as a wgnn Layer whose float initializers are trainable weights, run by interpreting the graph
// with wgnn's differentiable ops (so autograd, fit and compiled steps work as on any model). Images stay NCHW for the
// user, as in the file; inside, a 4-D activation made by Conv/Pool/BatchNorm stays physically NHWC (the kernels'
// layout) and is transposed to NCHW only where an op needs the logical order (Reshape, Flatten, Transpose...).
import { OnnxError, fmtShape } from '../errors.js';
import { Layer } from '../nn/layers.js';
import { Sequential } from '../nn/sequential.js';
import * as ops from '../ops/index.js';
import { noGrad } from '../autograd/tape.js';
import { keep, tensor, tidy, zeros, type Tensor } from '../tensor.js';
import { planOnnx, num, tensorValue, type Dim, type HostValue, type OnnxNode, type OnnxPlan } from './onnx-graph.js';

/**
 * A device value: `t` in its physical layout. 'nhwc': logically [N,C,H,W] (what the graph sees), stored [N,H,W,C];
 * 'rsck': a Conv weight, logically [K,C,R,S] (OIHW), stored [R,S,C,K] as conv2d takes it.
 */
interface DevValue {
  kind: 'dev';
  t: Tensor;
  layout: 'plain' | 'nhwc' | 'rsck';
}
type Value = HostValue | DevValue;

const TO_NHWC = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];

/** Ops whose input at these positions is a shape, an index list or a condition: no gradient flows there. */
const NO_GRAD: Record<string, (i: number) => boolean> = {
  Shape: () => true,
  Reshape: (i) => i === 1,
  Slice: (i) => i >= 1,
  Gather: (i) => i === 1,
  Squeeze: (i) => i === 1,
  Unsqueeze: (i) => i === 1,
  Split: (i) => i === 1,
  Pad: (i) => i >= 1,
  Where: (i) => i === 0,
  Equal: () => true,
  BatchNormalization: (i) => i >= 3,
  ConstantOfShape: () => true,
  Range: () => true,
};
/** Ops that pass (part of) an input through unchanged: whether it needs a gradient depends on what reads the output. */
const PASS = new Set([
  'Identity',
  'Reshape',
  'Slice',
  'Squeeze',
  'Unsqueeze',
  'Transpose',
  'Concat',
  'Cast',
  'Flatten',
  'Split',
]);

/**
 * Whether an initializer reaches a differentiable input: float initializers that do are trainable weights; the others
 * (batch-norm statistics, masks) are buffers that the host can also read.
 */
function trainableInitializers(plan: OnnxPlan): Set<string> {
  const users = new Map<string, [OnnxNode, number][]>();
  for (const n of plan.nodes) n.inputs.forEach((x, i) => users.set(x, [...(users.get(x) ?? []), [n, i]]));
  const memo = new Map<string, boolean>();
  const needs = (v: string): boolean => {
    if (memo.has(v)) return memo.get(v)!;
    memo.set(v, false);
    const r = (users.get(v) ?? []).some(([n, i]) =>
      NO_GRAD[n.op]?.(i) ? false : PASS.has(n.op) ? n.outputs.some(needs) : true,
    );
    memo.set(v, r);
    return r;
  };
  return new Set([...plan.initializers].filter(([k, v]) => v.dtype === 'float' && needs(k)).map(([k]) => k));
}

/** Conv weights read only as a Conv's W: stored [R,S,C,K] once at load rather than transposed every step. */
function convWeights(plan: OnnxPlan): Set<string> {
  const conv = new Set<string>();
  const other = new Set<string>();
  for (const n of plan.nodes) n.inputs.forEach((x, i) => (n.op === 'Conv' && i === 1 ? conv : other).add(x));
  return new Set(
    [...conv].filter((x) => plan.initializers.has(x) && !other.has(x) && plan.initializers.get(x)!.shape.length === 4),
  );
}

const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
/** The most elements a value the graph makes on its own (padding, constants, host arrays) may hold. */
const MAX_ELEMENTS = 2 ** 26;
const logicalShape = (v: Value): number[] => {
  if (v.kind === 'host') return v.shape;
  const s = v.t.shape;
  return v.layout === 'nhwc'
    ? [s[0]!, s[3]!, s[1]!, s[2]!]
    : v.layout === 'rsck'
      ? [s[3]!, s[2]!, s[0]!, s[1]!]
      : [...s];
};
const host = (dtype: HostValue['dtype'], shape: number[], data: ArrayLike<number>): HostValue => ({
  kind: 'host',
  dtype,
  shape,
  data: Float64Array.from(data),
});
const reshaped = (x: HostValue, shape: number[]): HostValue => ({ kind: 'host', dtype: x.dtype, shape, data: x.data });
const dev = (t: Tensor, layout: DevValue['layout'] = 'plain'): DevValue => ({ kind: 'dev', t, layout });

/** Row-major strides. */
const strides = (s: readonly number[]) => {
  const r = new Array<number>(s.length).fill(1);
  for (let i = s.length - 2; i >= 0; i--) r[i] = r[i + 1]! * s[i + 1]!;
  return r;
};
/** NumPy broadcast of host values with `f` per element. */
function hostBroadcast(
  vals: HostValue[],
  dtype: HostValue['dtype'],
  f: (...x: number[]) => number,
  who: () => never,
): HostValue {
  const rank = Math.max(...vals.map((v) => v.shape.length));
  const pad = vals.map((v) => [...new Array<number>(rank - v.shape.length).fill(1), ...v.shape]);
  const shape = Array.from({ length: rank }, (_, i) => {
    const ds = pad.map((p) => p[i]!);
    const d = Math.max(...ds);
    if (ds.some((x) => x !== d && x !== 1)) who();
    return ds.some((x) => x === 0) ? 0 : d;
  });
  const n = sizeOf(shape);
  if (n > MAX_ELEMENTS) who();
  const st = pad.map((p) => strides(p).map((s, i) => (p[i] === 1 ? 0 : s)));
  const out = new Float64Array(n);
  const idx = new Array<number>(rank).fill(0);
  for (let k = 0; k < n; k++) {
    out[k] = f(...vals.map((v, j) => v.data[idx.reduce((a, x, i) => a + x * st[j]![i]!, 0)]!));
    for (let i = rank - 1; i >= 0; i--) {
      // the next index, odometer-style
      if (++idx[i]! < shape[i]!) break;
      idx[i] = 0;
    }
  }
  return { kind: 'host', dtype, shape, data: out };
}

/** Element indices of a block of `shape` (begin per axis, size per axis, step per axis), row-major. */
function blockIndices(shape: readonly number[], begin: number[], size: number[], step: number[]): number[] {
  const st = strides(shape);
  let idx = [0];
  shape.forEach((_, a) => {
    const next: number[] = [];
    for (const base of idx) for (let j = 0; j < size[a]!; j++) next.push(base + (begin[a]! + j * step[a]!) * st[a]!);
    idx = next;
  });
  return idx;
}

/** A wgnn Layer running an ONNX graph; made by {@link loadOnnx}. Its weights are fields named after the initializers. */
export class OnnxGraph extends Layer {
  static readonly kind = 'OnnxGraph';
  private readonly plan: OnnxPlan;
  /** What the graph's input holds: int32 token ids (int64 in the file) or float32 values. */
  readonly inputDType: 'int32' | 'float32';
  /** Float initializer name -> the field holding its tensor. */
  private readonly fields = new Map<string, string>();
  private readonly convW: Set<string>;
  /** The graph's output is a Softmax over its last axis: the loss may take the logits before it. */
  private readonly softmaxOut: OnnxNode | undefined;

  constructor(plan: OnnxPlan) {
    const dims = plan.input.dims;
    const sample = dims?.slice(1);
    super(
      'onnx_graph',
      sample && sample.every((d) => typeof d === 'number' && d > 0) ? { inputShape: sample as number[] } : {},
    );
    this.plan = plan;
    this.inputDType = plan.input.int ? 'int32' : 'float32';
    for (const n of plan.nodes)
      if (!Object.hasOwn(HANDLERS, n.op))
        throw new OnnxError(`operator ${n.op} is not supported`, n.name, n.op, plan.opset);
    const trainable = trainableInitializers(plan);
    this.convW = convWeights(plan);
    try {
      this.makeWeights(trainable);
    } catch (e) {
      this.dispose();
      throw e;
    }
    const last = plan.nodes[plan.nodes.length - 1]!;
    const axis = last.attrs.get('axis');
    this.softmaxOut =
      last.op === 'Softmax' &&
      plan.opset >= 13 &&
      (!axis || num(axis.i) === -1 || num(axis.i) === (plan.output.dims?.length ?? 0) - 1)
        ? last
        : undefined;
  }

  /** The weights exist from the start: listing them never builds (a dry run could fail inside `dispose`). */
  protected override prepare(): void {}

  /** Each float initializer in a field of its own (a name fit for a field, made unique): Module lists them. */
  private makeWeights(trainable: Set<string>): void {
    const taken = new Set<string>();
    for (const [name, v] of this.plan.initializers) {
      if (v.dtype !== 'float') continue;
      let field = name.replace(/[^A-Za-z0-9_]/g, '_').replace(/^(?=[0-9])/, '_') || '_';
      while (taken.has(field) || field in this) field += '_';
      taken.add(field);
      const host = tensor(v.data instanceof Float32Array ? v.data : Float32Array.from(v.data), v.shape);
      const t = this.convW.has(name) ? tidy(() => ops.transpose(host, [2, 3, 1, 0])) : host;
      if (t !== host) host.dispose();
      (this as unknown as Record<string, Tensor>)[field] = keep(trainable.has(name) ? t.variable() : t);
      this.fields.set(name, field);
    }
  }

  /** For a graph taking token ids: the rows of the smallest table they index (fit checks ids against it). */
  override get idCount(): number | undefined {
    if (!this.plan.input.int) return undefined;
    const rows = this.plan.nodes
      .filter(
        (n) => n.op === 'Gather' && n.inputs[1] === this.plan.input.name && this.plan.initializers.has(n.inputs[0]!),
      )
      .map((n) => this.plan.initializers.get(n.inputs[0]!)!.shape[0]!);
    return rows.length ? Math.min(...rows) : undefined;
  }

  override get activation() {
    return this.softmaxOut ? ('softmax' as const) : undefined;
  }

  /**
   * The decoded file and, per float initializer, the tensor holding it now (`rsck`: stored [R,S,C,K], not OIHW): what
   * `toOnnx` writes back.
   * @internal
   */
  weightsForExport(): { model: OnnxPlan['model']; weights: Map<string, { t: Tensor; rsck: boolean }> } {
    const weights = new Map<string, { t: Tensor; rsck: boolean }>();
    for (const [name, field] of this.fields)
      weights.set(name, { t: (this as unknown as Record<string, Tensor>)[field]!, rsck: this.convW.has(name) });
    return { model: this.plan.model, weights };
  }

  /**
   * The checked plan, each float initializer's field, the conv kernels stored [R,S,C,K], and whether a final softmax
   * may be skipped for logits: what `toPyTorch` writes as a torch module running the same graph.
   * @internal
   */
  planForExport(): {
    plan: OnnxPlan;
    fields: ReadonlyMap<string, string>;
    convW: ReadonlySet<string>;
    softmaxOut: boolean;
  } {
    return { plan: this.plan, fields: this.fields, convW: this.convW, softmaxOut: this.softmaxOut !== undefined };
  }

  /** The opset the graph was exported with. */
  get opset(): number {
    return this.plan.opset;
  }

  /** Per-sample input may vary along the axes the file names (a sequence length, an image size). */
  protected override fits(built: readonly number[], input: readonly number[]): boolean {
    const dims = this.plan.input.dims?.slice(1);
    if (!dims) return built.length === input.length;
    return dims.length === input.length && dims.every((d, i) => typeof d !== 'number' || d === input[i]);
  }

  /** Shapes the file leaves open (named axes torch does not relate to the input) are found by a dry run, once each. */
  private readonly shapes = new Map<string, number[]>();

  outputShape(inputShape: number[]): number[] {
    const out = this.plan.output.dims;
    const inDims = this.plan.input.dims;
    const named = out?.slice(1).map((d: Dim) => {
      if (typeof d === 'number') return d;
      const i = inDims?.indexOf(d) ?? -1;
      return i >= 1 ? inputShape[i - 1]! : -1;
    });
    if (named && !named.includes(-1)) return named;
    const key = inputShape.join();
    if (!this.shapes.has(key)) {
      const x = zeros([1, ...inputShape], { dtype: this.inputDType });
      try {
        const y = noGrad(() => this.run(x, true));
        this.shapes.set(key, y.shape.slice(1));
        y.dispose();
      } finally {
        x.dispose();
      }
    }
    return [...this.shapes.get(key)!];
  }

  config(): Record<string, unknown> {
    return { opset: this.plan.opset };
  }

  protected run(x: Tensor, final: boolean): Tensor {
    // NOTE: tidy frees its scope only when the block returns, so an op's error is caught inside and rethrown after.
    let failed: { error: unknown } | undefined;
    const y = tidy(() => {
      try {
        return this.interpret(x, final);
      } catch (error) {
        failed = { error };
        return undefined;
      }
    });
    if (failed) throw failed.error;
    return y!;
  }

  private interpret(x: Tensor, final: boolean): Tensor {
    const values = new Map<string, Value>();
    for (const [name, v] of this.plan.initializers) {
      const field = this.fields.get(name);
      const t = field && (this as unknown as Record<string, Tensor>)[field];
      // Buffers (not trainable) stay readable on the host too: a mask sliced by shape, statistics.
      values.set(
        name,
        !t ? v : t.requiresGrad || this.convW.has(name) ? dev(t, this.convW.has(name) ? 'rsck' : 'plain') : { ...v, t },
      );
    }
    values.set(this.plan.input.name, dev(x));
    const skip = final ? undefined : this.softmaxOut;
    for (const n of this.plan.nodes) {
      if (n === skip) {
        values.set(n.outputs[0]!, values.get(n.inputs[0]!)!);
        continue;
      }
      const ins = n.inputs.map((i) => (i === '' ? undefined : values.get(i)));
      const outs = new Interp(n, this.plan.opset).eval(ins);
      outs.forEach((o, i) => n.outputs[i] && values.set(n.outputs[i]!, o));
    }
    const y = values.get(this.plan.output.name)!;
    if (y.kind === 'host') return tensor(Float32Array.from(y.data), y.shape);
    const out = plain(y);
    // A graph whose output is its input or a weight (Identity): a view, so that freeing the output frees neither.
    return out === x || [...this.fields.values()].some((f) => (this as unknown as Record<string, Tensor>)[f] === out)
      ? ops.reshape(out, out.shape)
      : out;
  }
}

/** A device tensor in the graph's logical layout. */
function plain(v: DevValue): Tensor {
  return v.layout === 'nhwc'
    ? ops.transpose(v.t, TO_NCHW)
    : v.layout === 'rsck'
      ? ops.transpose(v.t, [3, 2, 0, 1])
      : v.t;
}

/** One node's evaluation. */
class Interp {
  constructor(
    readonly n: OnnxNode,
    readonly opset: number,
  ) {}

  fail(message: string): never {
    throw new OnnxError(message, this.n.name, this.n.op, this.opset);
  }
  int(name: string, d: number): number {
    const a = this.n.attrs.get(name);
    return a ? num(a.i) : d;
  }
  float(name: string, d: number): number {
    const a = this.n.attrs.get(name);
    return a ? a.f : d;
  }
  ints(name: string): number[] | undefined {
    const a = this.n.attrs.get(name);
    return a ? a.ints.map(num) : undefined;
  }
  str(name: string, d: string): string {
    const a = this.n.attrs.get(name);
    return a ? new TextDecoder().decode(a.s) : d;
  }
  /** Attributes this op reads: any other is an OnnxError naming it. */
  only(...names: string[]): void {
    for (const k of this.n.attrs.keys()) if (!names.includes(k)) this.fail(`attribute ${k} is not supported`);
  }
  need(v: Value | undefined, i: number): Value {
    if (!v) this.fail(`input ${i} is missing`);
    return v;
  }
  /** A host value (shape, indices): a device tensor here would need a read-back mid-graph. */
  hostOf(v: Value | undefined, what: string): HostValue {
    if (!v || v.kind !== 'host') this.fail(`${what} must be a constant or computed from shapes, not from data`);
    return v;
  }
  /** Integer list from a host value. */
  list(v: Value | undefined, what: string): number[] {
    return Array.from(this.hostOf(v, what).data);
  }
  /** A device tensor in logical layout (host values uploaded). */
  t(v: Value): Tensor {
    if (v.kind === 'dev') return plain(v);
    if (v.t) return v.t;
    return tensor(v.dtype === 'float' ? Float32Array.from(v.data) : Int32Array.from(v.data), v.shape);
  }
  /** A device tensor stored NHWC for a logical NCHW value. */
  nhwc(v: Value): Tensor {
    if (v.kind === 'dev' && v.layout === 'nhwc') return v.t;
    const t = this.t(v);
    if (t.rank !== 4) this.fail(`input ${fmtShape(t.shape)} has rank ${t.rank}; expected a 4-D [N,C,H,W] image`);
    return ops.transpose(t, TO_NHWC);
  }
  axis(a: number, rank: number): number {
    const r = a < 0 ? a + rank : a;
    if (r < 0 || r >= rank) this.fail(`axis ${a} is out of range for rank ${rank}`);
    return r;
  }

  eval(ins: (Value | undefined)[]): Value[] {
    const n = this.n;
    if (n.outputs.length > 1 && !['Split', 'Dropout', 'BatchNormalization', 'LayerNormalization'].includes(n.op))
      this.fail(`${n.outputs.length} outputs; wgnn computes the first only`);
    const extraOut = n.outputs.slice(1).some((o) => o !== '');
    if (extraOut && n.op !== 'Split') this.fail('only the first output is supported (training-mode outputs are not)');
    const r = HANDLERS[n.op]!(this, ins);
    return Array.isArray(r) ? r : [r];
  }

  /** Elementwise binary op with NumPy broadcasting, on the host when both sides are, else keeping NHWC values so. */
  binary(
    ins: (Value | undefined)[],
    f: (a: ops.Operand, b: ops.Operand) => Tensor,
    h: (a: number, b: number) => number,
    dtype?: HostValue['dtype'],
  ): Value {
    this.only();
    const a = this.need(ins[0], 0);
    const b = this.need(ins[1], 1);
    if (a.kind === 'host' && b.kind === 'host')
      return hostBroadcast([a, b], dtype ?? (a.dtype === 'float' || b.dtype === 'float' ? 'float' : a.dtype), h, () =>
        this.fail(`shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} do not broadcast`),
      );
    const scalar = (v: Value): number | undefined =>
      v.kind === 'host' && v.data.length === 1 && v.shape.length <= 1 ? v.data[0] : undefined;
    const isNhwc = (v: Value) => v.kind === 'dev' && v.layout === 'nhwc';
    if (isNhwc(a) || isNhwc(b)) {
      const side = (v: Value): ops.Operand => {
        const s = scalar(v);
        if (s !== undefined) return s;
        if (isNhwc(v)) return (v as DevValue).t;
        const ls = logicalShape(v);
        if (ls.length > 4) this.fail(`operand ${fmtShape(ls)} has rank > 4 beside a 4-D image`);
        return ops.transpose(ops.reshape(this.t(v), [...new Array<number>(4 - ls.length).fill(1), ...ls]), TO_NHWC);
      };
      return dev(f(side(a), side(b)), 'nhwc');
    }
    return dev(f(scalar(a) ?? this.t(a), scalar(b) ?? this.t(b)));
  }

  /** Elementwise unary op, layout kept; on the host when the input is there and `h` is given. */
  unary(ins: (Value | undefined)[], f: (t: Tensor) => Tensor, h?: (x: number) => number): Value {
    const x = this.need(ins[0], 0);
    if (x.kind === 'host') {
      if (h) return host(x.dtype === 'bool' ? 'int' : x.dtype, x.shape, Array.from(x.data, h));
      return dev(f(this.t(x)));
    }
    if (x.layout === 'rsck') return dev(f(plain(x)));
    return dev(f(x.t), x.layout);
  }

  /** Axes from the attribute (older opsets) or the second input (newer ones). */
  axesOf(ins: (Value | undefined)[], i: number): number[] | undefined {
    return this.ints('axes') ?? (ins[i] ? this.list(ins[i], 'axes') : undefined);
  }

  /** ONNX's window attributes as wgnn's pool/conv options for an input [N,C,H,W]. */
  window(shape: number[], kernel: [number, number], stride: [number, number], dilation: [number, number]): ops.Padding {
    const auto = this.str('auto_pad', 'NOTSET');
    if (this.int('ceil_mode', 0) !== 0) this.fail('ceil_mode=1 is not supported');
    if (auto === 'VALID') return 'valid';
    if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') {
      const pad = [0, 1].map((a) => {
        const size = shape[2 + a]!;
        const ext = (kernel[a]! - 1) * dilation[a]! + 1;
        const total = Math.max((Math.ceil(size / stride[a]!) - 1) * stride[a]! + ext - size, 0);
        const lo = auto === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2);
        return [lo, total - lo];
      });
      return [pad[0]![0]!, pad[0]![1]!, pad[1]![0]!, pad[1]![1]!];
    }
    if (auto !== 'NOTSET') this.fail(`auto_pad=${auto} is not supported`);
    const p = this.ints('pads') ?? [0, 0, 0, 0];
    if (p.length !== 4) this.fail(`pads ${JSON.stringify(p)} are not 2-D [top, left, bottom, right]`);
    return [p[0]!, p[2]!, p[1]!, p[3]!];
  }
  pair(name: string): [number, number] {
    const v = this.ints(name) ?? [1, 1];
    if (v.length !== 2 || v.some((x) => !Number.isInteger(x) || x < 1))
      this.fail(`${name} ${JSON.stringify(v)} is not a 2-D list of positive integers`);
    return [v[0]!, v[1]!];
  }

  pool(ins: (Value | undefined)[], kind: 'max' | 'avg'): Value {
    this.only(
      'kernel_shape',
      'strides',
      'pads',
      'auto_pad',
      'ceil_mode',
      'dilations',
      'storage_order',
      'count_include_pad',
    );
    const x = this.need(ins[0], 0);
    const k = this.ints('kernel_shape');
    if (!k || k.length !== 2) this.fail('kernel_shape must be 2-D');
    const dil = this.pair('dilations');
    if (dil[0] !== 1 || dil[1] !== 1) this.fail('dilations other than 1 are not supported in pooling');
    if (this.int('storage_order', 0) !== 0) this.fail('storage_order=1 is not supported');
    const strides = this.pair('strides');
    const padding = this.window(logicalShape(x), [k[0]!, k[1]!], strides, dil);
    const opts = { poolSize: [k[0]!, k[1]!] as [number, number], strides, padding };
    const t = this.nhwc(x);
    return dev(
      kind === 'max'
        ? ops.maxPool2d(t, opts)
        : ops.avgPool2d(t, { ...opts, countIncludePad: this.int('count_include_pad', 0) === 1 }),
      'nhwc',
    );
  }
}

type Handler = (c: Interp, ins: (Value | undefined)[]) => Value | Value[];

const HANDLERS: Record<string, Handler> = {
  Identity: (c, ins) => c.need(ins[0], 0),
  Dropout: (c, ins) => {
    // NOTE: the identity, as at inference; the file's dropout (if any) is not replayed in fine-tuning.
    c.only('seed');
    return c.need(ins[0], 0);
  },
  Constant: (c) => {
    const [k, a] = [...c.n.attrs][0] ?? c.fail('no value attribute');
    if (c.n.attrs.size !== 1) c.fail('expected exactly one value attribute');
    if (k === 'value' && a.t) return tensorValue(a.t, `constant of node ${JSON.stringify(c.n.name)}`);
    if (k === 'value_float') return host('float', [], [a.f]);
    if (k === 'value_floats') return host('float', [a.floats.length], a.floats);
    if (k === 'value_int') return host('int', [], [num(a.i)]);
    if (k === 'value_ints') return host('int', [a.ints.length], a.ints.map(num));
    return c.fail(`attribute ${k} is not supported`);
  },
  Add: (c, ins) => c.binary(ins, ops.add, (a, b) => a + b),
  Sub: (c, ins) => c.binary(ins, ops.sub, (a, b) => a - b),
  Mul: (c, ins) => c.binary(ins, ops.mul, (a, b) => a * b),
  Div: (c, ins) => {
    const ints = ins.every((v) => v?.kind === 'host' && v.dtype === 'int');
    return c.binary(ins, ops.div, (a, b) => (ints ? Math.trunc(a / b) : a / b));
  },
  Pow: (c, ins) => c.binary(ins, ops.pow, (a, b) => a ** b),
  Equal: (c, ins) => c.binary(ins, ops.eqMask, (a, b) => +(a === b), 'bool'),
  Where: (c, ins) => {
    c.only();
    const [cond, a, b] = [0, 1, 2].map((i) => c.need(ins[i], i));
    if (cond!.kind === 'host' && a!.kind === 'host' && b!.kind === 'host')
      return hostBroadcast(
        [cond!, a!, b!],
        a!.dtype,
        (k, x, y) => (k ? x : y),
        () => c.fail('shapes do not broadcast'),
      );
    const side = (v: Value) => (v.kind === 'host' && v.data.length === 1 && v.shape.length <= 1 ? v.data[0]! : c.t(v));
    const k = cond!.kind === 'host' ? tensor(Float32Array.from(cond!.data), cond!.shape) : c.t(cond!);
    return dev(ops.where(k, side(a!), side(b!)));
  },
  Relu: (c, ins) => c.unary(ins, ops.relu),
  LeakyRelu: (c, ins) => c.unary(ins, (t) => ops.leakyRelu(t, c.float('alpha', 0.01))),
  Sigmoid: (c, ins) => c.unary(ins, ops.sigmoid),
  Tanh: (c, ins) => c.unary(ins, ops.tanh),
  Gelu: (c, ins) => {
    const approximate = c.str('approximate', 'none');
    if (approximate !== 'none' && approximate !== 'tanh') c.fail(`approximate=${approximate} is not supported`);
    return c.unary(ins, (t) => ops.gelu(t, { approximate: approximate === 'tanh' ? 'tanh' : 'none' }));
  },
  Sqrt: (c, ins) => c.unary(ins, ops.sqrt, Math.sqrt),
  Exp: (c, ins) => c.unary(ins, ops.exp, Math.exp),
  Log: (c, ins) => c.unary(ins, ops.log, Math.log),
  Neg: (c, ins) => c.unary(ins, ops.neg, (x) => -x),
  Abs: (c, ins) => c.unary(ins, ops.abs, Math.abs),
  Reciprocal: (c, ins) =>
    c.unary(
      ins,
      (t) => ops.div(1, t),
      (x) => 1 / x,
    ),
  Softmax: (c, ins) => softmaxLike(c, ins, ops.softmax),
  LogSoftmax: (c, ins) => softmaxLike(c, ins, ops.logSoftmax),
  Cast: (c, ins) => {
    c.only('to', 'saturate');
    const x = c.need(ins[0], 0);
    const to = c.int('to', 1);
    const kind =
      to === 1 || to === 11
        ? 'float'
        : to === 9
          ? 'bool'
          : [6, 7].includes(to)
            ? 'int'
            : c.fail(`cast to type ${to} is not supported`);
    if (x.kind === 'host')
      return host(
        kind,
        x.shape,
        Array.from(x.data, (v) => (kind === 'int' ? Math.trunc(v) : kind === 'bool' ? +(v !== 0) : v)),
      );
    if ((x.t.dtype === 'float32') !== (kind !== 'int'))
      c.fail(`a cast of a ${x.t.dtype} tensor computed from data to type ${to} is not supported`);
    return x;
  },
  Shape: (c, ins) => {
    c.only('start', 'end');
    const s = logicalShape(c.need(ins[0], 0));
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + s.length : v, 0), s.length);
    const part = s.slice(clamp(c.int('start', 0)), clamp(c.int('end', s.length)));
    return host('int', [part.length], part);
  },
  ConstantOfShape: (c, ins) => {
    c.only('value');
    const shape = c.list(ins[0], 'the shape');
    if (shape.some((d) => !Number.isInteger(d) || d < 0) || sizeOf(shape) > MAX_ELEMENTS)
      c.fail(`shape ${fmtShape(shape)} is not a valid constant size`);
    const v = c.n.attrs.get('value')?.t;
    const fill = v ? tensorValue(v, 'value') : host('float', [1], [0]);
    return host(fill.dtype, shape, new Float64Array(sizeOf(shape)).fill(fill.data[0] ?? 0));
  },
  Range: (c, ins) => {
    c.only();
    const [start, limit, delta] = [0, 1, 2].map((i) => c.list(ins[i], 'start, limit and delta')[0]!);
    const n = Math.max(Math.ceil((limit! - start!) / delta!), 0);
    if (!Number.isFinite(n) || n > MAX_ELEMENTS) c.fail(`range of ${n} elements`);
    const x0 = c.hostOf(ins[0], 'start');
    return host(
      x0.dtype,
      [n],
      Array.from({ length: n }, (_, i) => start! + i * delta!),
    );
  },
  Reshape: (c, ins) => {
    c.only('allowzero');
    const x = c.need(ins[0], 0);
    const want = c.list(ins[1], 'the shape');
    const from = logicalShape(x);
    const allowZero = c.int('allowzero', 0) === 1;
    const shape = want.map((d, i) =>
      d === 0 && !allowZero ? (from[i] ?? c.fail(`shape entry ${i} is 0 past the input's rank`)) : d,
    );
    const known = sizeOf(shape.filter((d) => d !== -1));
    const free = shape.filter((d) => d === -1).length;
    const total = sizeOf(from);
    if (
      free > 1 ||
      shape.some((d) => d < -1 || !Number.isInteger(d)) ||
      (free ? known === 0 || total % known : known !== total)
    )
      c.fail(`cannot reshape ${fmtShape(from)} to ${fmtShape(want)}`);
    const out = shape.map((d) => (d === -1 ? total / known : d));
    return x.kind === 'host' ? reshaped(x, out) : dev(ops.reshape(plain(x), out));
  },
  Flatten: (c, ins) => {
    c.only('axis');
    const x = c.need(ins[0], 0);
    const s = logicalShape(x);
    const a = c.int('axis', 1);
    const ax = a < 0 ? a + s.length : a;
    if (ax < 0 || ax > s.length) c.fail(`axis ${a} is out of range for rank ${s.length}`);
    const out = [sizeOf(s.slice(0, ax)), sizeOf(s.slice(ax))];
    return x.kind === 'host' ? reshaped(x, out) : dev(ops.reshape(plain(x), out));
  },
  Transpose: (c, ins) => {
    c.only('perm');
    const x = c.need(ins[0], 0);
    const rank = logicalShape(x).length;
    const perm = c.ints('perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    if (perm.length !== rank || new Set(perm).size !== rank || perm.some((p) => p < 0 || p >= rank))
      c.fail(`perm ${JSON.stringify(perm)} does not fit rank ${rank}`);
    // NCHW -> NHWC of a value stored NHWC: already there.
    if (x.kind === 'dev' && x.layout === 'nhwc' && perm.join() === TO_NHWC.join()) return dev(x.t);
    return dev(ops.transpose(c.t(x), perm));
  },
  Unsqueeze: (c, ins) => {
    c.only('axes');
    const x = c.need(ins[0], 0);
    const s = logicalShape(x);
    const axes = c.axesOf(ins, 1) ?? c.fail('axes are missing');
    const rank = s.length + axes.length;
    const at = new Set(axes.map((a) => c.axis(a, rank)));
    if (at.size !== axes.length) c.fail(`axes ${JSON.stringify(axes)} repeat`);
    const rest = [...s];
    const out = Array.from({ length: rank }, (_, i) => (at.has(i) ? 1 : rest.shift()!));
    return x.kind === 'host' ? reshaped(x, out) : dev(ops.reshape(plain(x), out));
  },
  Squeeze: (c, ins) => {
    c.only('axes');
    const x = c.need(ins[0], 0);
    const s = logicalShape(x);
    const axes = c.axesOf(ins, 1)?.map((a) => c.axis(a, s.length)) ?? s.flatMap((d, i) => (d === 1 ? [i] : []));
    if (axes.some((a) => s[a] !== 1)) c.fail(`axes ${JSON.stringify(axes)} of ${fmtShape(s)} are not all 1`);
    const out = s.filter((_, i) => !axes.includes(i));
    return x.kind === 'host' ? reshaped(x, out) : dev(ops.reshape(plain(x), out));
  },
  Concat: (c, ins) => {
    c.only('axis');
    const xs = ins.map((v, i) => c.need(v, i));
    const rank = logicalShape(xs[0]!).length;
    const axis = c.axis(c.int('axis', 0), rank);
    if (xs.some((v) => logicalShape(v).length !== rank)) c.fail('inputs of different ranks');
    if (xs.every((v) => v.kind === 'host')) {
      const hs = xs as HostValue[];
      const shape = [...hs[0]!.shape];
      shape[axis] = hs.reduce((a, v) => a + v.shape[axis]!, 0);
      if (hs.some((v) => v.shape.some((d, i) => i !== axis && d !== shape[i]))) c.fail('shapes do not fit');
      const outer = sizeOf(shape.slice(0, axis));
      const data: number[] = [];
      for (let o = 0; o < outer; o++)
        for (const v of hs) {
          const chunk = sizeOf(v.shape.slice(axis));
          for (let j = 0; j < chunk; j++) data.push(v.data[o * chunk + j]!);
        }
      return host(hs[0]!.dtype, shape, data);
    }
    if (axis === 1 && xs.every((v) => v.kind === 'dev' && v.layout === 'nhwc'))
      return dev(
        ops.concat(
          xs.map((v) => (v as DevValue).t),
          3,
        ),
        'nhwc',
      );
    return dev(
      ops.concat(
        xs.map((v) => c.t(v)),
        axis,
      ),
    );
  },
  Slice: (c, ins) => {
    const x = c.need(ins[0], 0);
    const s = logicalShape(x);
    let starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined;
    if (c.opset < 10) {
      c.only('starts', 'ends', 'axes');
      [starts, ends, axes] = [c.ints('starts') ?? [], c.ints('ends') ?? [], c.ints('axes')];
    } else {
      c.only();
      [starts, ends] = [c.list(ins[1], 'starts'), c.list(ins[2], 'ends')];
      axes = ins[3] && c.list(ins[3], 'axes');
      steps = ins[4] && c.list(ins[4], 'steps');
    }
    const begin = s.map(() => 0);
    const size = [...s];
    const step = s.map(() => 1);
    if (starts.length !== ends.length) c.fail('starts and ends differ in length');
    starts.forEach((st, k) => {
      const a = c.axis(axes?.[k] ?? k, s.length);
      const d = s[a]!;
      const p = steps?.[k] ?? 1;
      if (p !== 1 && (x.kind !== 'host' || p < 1))
        c.fail(`step ${p}: only 1 is supported (positive steps on constants)`);
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
      begin[a] = clamp(st);
      const e = clamp(ends[k]!);
      size[a] = Math.max(Math.ceil((e - begin[a]!) / p), 0);
      step[a] = p;
    });
    if (x.kind === 'host')
      return host(
        x.dtype,
        size,
        blockIndices(s, begin, size, step).map((i) => x.data[i]!),
      );
    return dev(ops.slice(plain(x), begin, size));
  },
  Split: (c, ins) => {
    c.only('axis', 'split', 'num_outputs');
    const x = c.need(ins[0], 0);
    const s = logicalShape(x);
    const axis = c.axis(c.int('axis', 0), s.length);
    const n = c.n.outputs.length;
    const sizes =
      c.ints('split') ??
      (ins[1]
        ? c.list(ins[1], 'split')
        : Array.from(
            { length: n },
            (_, i) => Math.ceil(s[axis]! / n) - (i === n - 1 ? Math.ceil(s[axis]! / n) * n - s[axis]! : 0),
          ));
    if (sizes.length !== n || sizes.reduce((a, b) => a + b, 0) !== s[axis] || sizes.some((v) => v < 0))
      c.fail(`split ${JSON.stringify(sizes)} does not fit ${s[axis]}`);
    const t = c.t(x);
    let at = 0;
    return sizes.map((k) => {
      const begin = s.map((_, i) => (i === axis ? at : 0));
      at += k;
      return dev(
        ops.slice(
          t,
          begin,
          s.map((d, i) => (i === axis ? k : d)),
        ),
      );
    });
  },
  Gather: (c, ins) => {
    c.only('axis');
    const data = c.need(ins[0], 0);
    const idx = c.need(ins[1], 1);
    const s = logicalShape(data);
    const axis = c.axis(c.int('axis', 0), s.length);
    const d = s[axis]!;
    if (idx.kind === 'host') {
      const norm = Array.from(idx.data, (i) => (i < 0 ? i + d : i));
      if (norm.some((i) => !Number.isInteger(i) || i < 0 || i >= d)) c.fail(`an index is outside 0..${d - 1}`);
      if (data.kind === 'host') {
        if ((sizeOf(s) / d) * norm.length > MAX_ELEMENTS) c.fail(`the gather makes more than ${MAX_ELEMENTS} elements`);
        const outer = sizeOf(s.slice(0, axis));
        const inner = sizeOf(s.slice(axis + 1));
        const out: number[] = [];
        for (let o = 0; o < outer; o++)
          for (const i of norm) for (let j = 0; j < inner; j++) out.push(data.data[(o * d + i) * inner + j]!);
        return host(data.dtype, [...s.slice(0, axis), ...idx.shape, ...s.slice(axis + 1)], out);
      }
      if (axis === 0 && s.length === 2) return dev(ops.gather(c.t(data), tensor(Int32Array.from(norm), idx.shape)));
      if (norm.length === 1 && idx.shape.length === 0) {
        const t = ops.slice(
          c.t(data),
          s.map((_, i) => (i === axis ? norm[0]! : 0)),
          s.map((v, i) => (i === axis ? 1 : v)),
        );
        return dev(
          ops.reshape(
            t,
            s.filter((_, i) => i !== axis),
          ),
        );
      }
    } else if (data.kind !== 'host' || data.dtype === 'float') {
      // NOTE: indices from data (token ids) are taken as they are: negative ids are not wrapped.
      if (axis === 0 && s.length === 2 && idx.t.dtype === 'int32') return dev(ops.gather(c.t(data), idx.t));
    }
    return c.fail(
      `gather of ${fmtShape(s)} on axis ${axis}: only a table [rows, features] on axis 0 (an embedding) or one constant index`,
    );
  },
  Gemm: (c, ins) => {
    c.only('alpha', 'beta', 'transA', 'transB');
    const [a, b] = [c.t(c.need(ins[0], 0)), c.t(c.need(ins[1], 1))];
    const [alpha, beta] = [c.float('alpha', 1), c.float('beta', 1)];
    const transA = c.int('transA', 0) === 1;
    const transB = c.int('transB', 0) === 1;
    if (a.rank !== 2 || b.rank !== 2) c.fail(`inputs ${fmtShape(a.shape)} and ${fmtShape(b.shape)} are not both 2-D`);
    const bias = ins[2] && c.t(ins[2]);
    if (bias && bias.rank === 1 && alpha === 1 && beta === 1 && !transA) return dev(ops.linear(a, b, bias, { transB }));
    let y = ops.matmul(a, b, { transA, transB });
    if (alpha !== 1) y = ops.mul(y, alpha);
    if (bias) y = ops.add(y, beta === 1 ? bias : ops.mul(bias, beta));
    return dev(y);
  },
  MatMul: (c, ins) => {
    c.only();
    const [a, b] = [c.t(c.need(ins[0], 0)), c.t(c.need(ins[1], 1))];
    if (a.rank < 2 || b.rank < 2)
      c.fail(`inputs ${fmtShape(a.shape)} and ${fmtShape(b.shape)}: 1-D operands are not supported`);
    return dev(ops.matmul(a, b));
  },
  Conv: (c, ins) => {
    c.only('kernel_shape', 'strides', 'pads', 'auto_pad', 'dilations', 'group');
    if (c.int('group', 1) !== 1) c.fail(`group=${c.int('group', 1)} is not supported (only 1)`);
    const x = c.need(ins[0], 0);
    const w = c.need(ins[1], 1);
    const ws = logicalShape(w);
    const xs = logicalShape(x);
    if (ws.length !== 4 || xs.length !== 4)
      c.fail(`input ${fmtShape(xs)} and weight ${fmtShape(ws)}: only 2-D convolution is supported`);
    const k = c.ints('kernel_shape');
    if (k && (k[0] !== ws[2] || k[1] !== ws[3]))
      c.fail(`kernel_shape ${JSON.stringify(k)} does not match the weight ${fmtShape(ws)}`);
    const stride = c.pair('strides');
    const dilation = c.pair('dilations');
    const opts = { stride, dilation, padding: c.window(xs, [ws[2]!, ws[3]!], stride, dilation) };
    const wt = w.kind === 'dev' && w.layout === 'rsck' ? w.t : ops.transpose(c.t(w), [2, 3, 1, 0]);
    const xt = c.nhwc(x);
    const y = ins[2] ? ops.conv2dBias(xt, wt, c.t(ins[2]), opts) : ops.conv2d(xt, wt, opts);
    return dev(y, 'nhwc');
  },
  MaxPool: (c, ins) => c.pool(ins, 'max'),
  AveragePool: (c, ins) => c.pool(ins, 'avg'),
  GlobalAveragePool: (c, ins) => {
    c.only();
    return dev(ops.mean(c.nhwc(c.need(ins[0], 0)), [1, 2], true), 'nhwc');
  },
  BatchNormalization: (c, ins) => {
    c.only('epsilon', 'momentum', 'training_mode', 'spatial');
    if (c.int('training_mode', 0) !== 0) c.fail('training_mode=1 is not supported (inference statistics only)');
    if (c.int('spatial', 1) !== 1) c.fail('spatial=0 (statistics per activation) is not supported');
    const x = c.need(ins[0], 0);
    const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => c.t(c.need(ins[i], i)));
    const rank = logicalShape(x).length;
    // y = (x − mean) · scale / √(var + ε) + bias, per channel (axis 1, the last axis stored NHWC).
    const k = ops.div(scale!, ops.sqrt(ops.add(variance!, c.float('epsilon', 1e-5))));
    const shift = ops.sub(bias!, ops.mul(mean!, k));
    if (rank === 4) {
      const t = c.nhwc(x);
      return dev(ops.add(ops.mul(t, k), shift), 'nhwc');
    }
    const per = (v: Tensor) => (rank === 2 ? v : ops.reshape(v, [v.size, ...new Array<number>(rank - 2).fill(1)]));
    return dev(ops.add(ops.mul(c.t(x), per(k)), per(shift)));
  },
  LayerNormalization: (c, ins) => {
    c.only('axis', 'epsilon', 'stash_type');
    const x = c.t(c.need(ins[0], 0));
    if (c.axis(c.int('axis', -1), x.rank) !== x.rank - 1) c.fail('only normalization over the last axis is supported');
    const gamma = c.t(c.need(ins[1], 1));
    const d = x.shape[x.rank - 1]!;
    const beta = ins[2] ? c.t(ins[2]) : tensor(new Float32Array(d), [d]);
    if (gamma.rank !== 1 || beta.rank !== 1) c.fail('scale and bias must be 1-D [features]');
    return dev(ops.layerNorm(x, gamma, beta, { eps: c.float('epsilon', 1e-5) }));
  },
  Pad: (c, ins) => {
    c.only('mode', 'pads', 'value');
    if (c.str('mode', 'constant') !== 'constant')
      c.fail(`mode=${c.str('mode', 'constant')} is not supported (only constant)`);
    const x = c.need(ins[0], 0);
    const s = logicalShape(x);
    const pads = c.ints('pads') ?? c.list(ins[1], 'pads');
    const value = c.n.attrs.has('value') ? c.float('value', 0) : ins[2] ? (c.list(ins[2], 'value')[0] ?? 0) : 0;
    let axes = ins[3] ? c.list(ins[3], 'axes').map((a) => c.axis(a, s.length)) : s.map((_, i) => i);
    if (pads.length !== 2 * axes.length || pads.some((p) => p < 0 || !Number.isInteger(p)))
      c.fail(`pads ${JSON.stringify(pads)} do not fit rank ${s.length} (negative pads are not supported)`);
    // A 4-D value stored NHWC is padded where its axes are stored: logical axis 1 is physical 3, 2 is 1, 3 is 2.
    const nhwc = x.kind === 'dev' && x.layout === 'nhwc';
    let t = nhwc ? (x as DevValue).t : c.t(x);
    const phys = (a: number) => (nhwc ? [0, 3, 1, 2][a]! : a);
    axes = axes.map(phys);
    const padded = s.map(
      (d, i) => d + (axes.includes(i) ? pads[axes.indexOf(i)]! + pads[axes.indexOf(i) + axes.length]! : 0),
    );
    if (sizeOf(padded) > MAX_ELEMENTS)
      c.fail(`padding ${fmtShape(s)} to ${fmtShape(padded)} exceeds ${MAX_ELEMENTS} elements`);
    axes.forEach((a, k) => {
      const [lo, hi] = [pads[k]!, pads[k + axes.length]!];
      const side = (n: number) =>
        tensor(
          new Float32Array(sizeOf(t.shape.map((d, i) => (i === a ? n : d)))).fill(value),
          t.shape.map((d, i) => (i === a ? n : d)),
        );
      if (lo || hi) t = ops.concat([...(lo ? [side(lo)] : []), t, ...(hi ? [side(hi)] : [])], a);
    });
    return dev(t, nhwc ? 'nhwc' : 'plain');
  },
  ReduceMean: (c, ins) => reduce(c, ins, ops.mean),
  ReduceSum: (c, ins) => reduce(c, ins, ops.sum),
};

function reduce(c: Interp, ins: (Value | undefined)[], f: (x: Tensor, axes: number[], keep: boolean) => Tensor): Value {
  c.only('axes', 'keepdims', 'noop_with_empty_axes');
  const x = c.t(c.need(ins[0], 0));
  const axes = (c.axesOf(ins, 1) ?? x.shape.map((_, i) => i)).map((a) => c.axis(a, x.rank));
  return dev(f(x, axes, c.int('keepdims', 1) === 1));
}

function softmaxLike(c: Interp, ins: (Value | undefined)[], f: (x: Tensor, axis: number) => Tensor): Value {
  c.only('axis');
  const x = c.need(ins[0], 0);
  const rank = logicalShape(x).length;
  const axis = c.axis(c.int('axis', c.opset >= 13 ? -1 : 1), rank);
  if (c.opset < 13 && axis !== rank - 1)
    c.fail('before opset 13, softmax over a flattened axis range is supported only on the last axis');
  if (x.kind === 'dev' && x.layout === 'nhwc' && axis === 1) return dev(f(x.t, 3), 'nhwc');
  return dev(f(c.t(x), axis));
}

/**
 * An ONNX model (the bytes of a .onnx file) as a wgnn Sequential holding one {@link OnnxGraph} layer: float initializers
 * are trainable weights (batch-norm statistics and masks are buffers), so `predict`, `fit`, `trainStep` work as on any
 * model. The model takes what the graph takes: images NCHW as in the file (one transpose at the input), token ids as
 * int32. Throws ParseError for a malformed or hostile file and OnnxError (node, operator, opset) for an operator or
 * attribute wgnn does not run.
 */
export function loadOnnx(bytes: Uint8Array): Sequential {
  const layer = new OnnxGraph(planOnnx(bytes));
  // Where the input's shape is fixed, one batch-1 run on zeros finds an unsupported attribute now, not in fit.
  const sample = layer.knownInputShape;
  const x = sample && zeros([1, ...sample], { dtype: layer.inputDType });
  try {
    if (x) noGrad(() => layer.forward(x)).dispose();
  } catch (e) {
    layer.dispose();
    throw e;
  } finally {
    x?.dispose();
  }
  return new Sequential([layer]);
}
