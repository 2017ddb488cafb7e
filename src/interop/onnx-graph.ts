// An ONNX file as a checked plan: initializers decoded (every size checked against the bytes present before anything
// is allocated), nodes with their attributes, the order checked (every input produced before use, no cycles), the
// erf-based GELU pattern folded into one node, and nodes that no output needs dropped.
import { OnnxError, ParseError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { decodeModel, type AttributeMsg, type Int64, type ModelMsg, type TensorMsg } from './onnx-proto.js';

/** A value known on the host: shapes, indices, constants (and a copy of every non-trainable initializer). */
export interface HostValue {
  kind: 'host';
  dtype: 'float' | 'int' | 'bool';
  shape: number[];
  data: Float32Array | Float64Array;
  /** The kept device tensor of a buffer (a non-trainable initializer), so it is not uploaded every step. */
  t?: Tensor;
}

export interface OnnxNode {
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Map<string, AttributeMsg>;
}

/** A dimension of a declared input or output: a size, or a name (`batch`) for one that varies. */
export type Dim = number | string;

export interface OnnxPlan {
  opset: number;
  nodes: OnnxNode[];
  initializers: Map<string, HostValue>;
  input: { name: string; dims: Dim[] | undefined; int: boolean };
  output: { name: string; dims: Dim[] | undefined };
  /** The decoded file, for writing it back with new weights. */
  model: ModelMsg;
}

/** The largest tensor an ONNX file may declare (elements); larger is a ParseError before any allocation. */
const MAX_ELEMENTS = 2 ** 28;
/** Opsets whose operator semantics this importer follows. */
export const OPSETS = [7, 20] as const;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export const num = (v: Int64): number => (typeof v === 'number' ? v : v.toNumber());

const DTYPES: Record<number, { dtype: HostValue['dtype']; bytes: number; name: string }> = {
  1: { dtype: 'float', bytes: 4, name: 'float' },
  6: { dtype: 'int', bytes: 4, name: 'int32' },
  7: { dtype: 'int', bytes: 8, name: 'int64' },
  9: { dtype: 'bool', bytes: 1, name: 'bool' },
  11: { dtype: 'float', bytes: 8, name: 'double' },
};
export const isIntType = (t: number): boolean => DTYPES[t]?.dtype === 'int' || DTYPES[t]?.dtype === 'bool';

/** A TensorProto's values on the host; `who` names it in errors. */
export function tensorValue(t: TensorMsg, who: string): HostValue {
  const type = DTYPES[t.data_type];
  if (!type)
    throw new ParseError(`onnx: ${who} has data type ${t.data_type}; expected float, double, int32, int64 or bool`);
  if (t.external_data.length > 0 || t.data_location === 1)
    throw new ParseError(`onnx: ${who} keeps its data in an external file; only data inside the model is read`);
  const shape = t.dims.map((d, i) => {
    const n = num(d);
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_ELEMENTS)
      throw new ParseError(`onnx: ${who} dim ${i} is ${n}; expected an integer in 0..${MAX_ELEMENTS}`);
    return n;
  });
  const size = shape.reduce((a, b) => a * b, 1);
  if (size > MAX_ELEMENTS)
    throw new ParseError(`onnx: ${who} [${shape.join(',')}] holds ${size} elements; at most ${MAX_ELEMENTS} are read`);
  const raw = t.raw_data;
  const field =
    type.name === 'float'
      ? t.float_data
      : type.name === 'double'
        ? t.double_data
        : type.name === 'int64'
          ? t.int64_data
          : t.int32_data;
  const have = raw.length > 0 ? raw.length / type.bytes : field.length;
  if (have !== size)
    throw new ParseError(
      `onnx: ${who} [${shape.join(',')}] (${type.name}) needs ${size} values; the file holds ${raw.length > 0 ? `${raw.length} raw bytes` : `${field.length} values`}`,
    );
  const data = type.dtype === 'float' && type.bytes === 4 ? new Float32Array(size) : new Float64Array(size);
  if (raw.length > 0 && type.name === 'float' && LITTLE_ENDIAN) {
    // The weights' path (most of a file's bytes): one copy of the little-endian floats instead of a read per value.
    new Uint8Array(data.buffer).set(raw);
  } else if (raw.length > 0) {
    const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < size; i++) {
      data[i] =
        type.name === 'float'
          ? v.getFloat32(4 * i, true)
          : type.name === 'double'
            ? v.getFloat64(8 * i, true)
            : type.name === 'int64'
              ? Number(v.getBigInt64(8 * i, true))
              : type.name === 'int32'
                ? v.getInt32(4 * i, true)
                : v.getUint8(i) && 1;
    }
  } else for (let i = 0; i < size; i++) data[i] = num(field[i] as Int64);
  return { kind: 'host', dtype: type.dtype, shape, data };
}

type ValueInfo = NonNullable<ModelMsg['graph']>['input'][number];
function dimsOf(v: ValueInfo): Dim[] | undefined {
  const shape = v.type?.tensor_type?.shape;
  if (!shape) return undefined;
  return shape.dim.map((d) => (d.dim_param ? d.dim_param : num(d.dim_value)));
}

/** Decodes and checks an ONNX model; throws ParseError for malformed files and OnnxError for graphs wgnn cannot run. */
export function planOnnx(bytes: Uint8Array): OnnxPlan {
  if (!(bytes instanceof Uint8Array)) throw new ParseError('onnx.load: expected the model file as a Uint8Array');
  let m: ModelMsg;
  try {
    m = decodeModel(bytes);
  } catch (e) {
    throw new ParseError(`onnx: not a valid ONNX model (${e instanceof Error ? e.message : String(e)})`);
  }
  const g = m.graph;
  if (!g || g.node.length === 0) throw new ParseError('onnx: the model holds no graph (or a graph with no nodes)');
  const opsetEntry = m.opset_import.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  const opset = opsetEntry ? num(opsetEntry.version) : 0;
  if (opset < OPSETS[0] || opset > OPSETS[1])
    throw new OnnxError(
      `the model's opset is ${opset}; opsets ${OPSETS[0]}..${OPSETS[1]} are supported`,
      g.name,
      'Model',
      opset,
    );

  const initializers = new Map<string, HostValue>();
  g.initializer.forEach((t, i) => {
    const who = `initializer ${JSON.stringify(t.name || `#${i}`)}`;
    if (!t.name) throw new ParseError(`onnx: ${who} has no name`);
    if (initializers.has(t.name)) throw new ParseError(`onnx: ${who} is defined twice`);
    initializers.set(t.name, tensorValue(t, who));
  });

  const inputs = g.input.filter((v) => !initializers.has(v.name));
  if (inputs.length !== 1 || g.output.length < 1)
    throw new OnnxError(
      `the graph takes ${inputs.length} inputs and gives ${g.output.length} outputs; a wgnn layer takes one input and gives the first output`,
      g.name,
      'Graph',
      opset,
    );
  const inp = inputs[0]!;
  const out = g.output[0]!;

  let nodes: OnnxNode[] = g.node.map((n, i) => {
    const name = n.name || `${n.op_type}#${i}`;
    if (n.domain !== '' && n.domain !== 'ai.onnx')
      throw new OnnxError(
        `operator domain ${JSON.stringify(n.domain)} is not supported (only ai.onnx)`,
        name,
        n.op_type,
        opset,
      );
    const attrs = new Map<string, AttributeMsg>();
    for (const a of n.attribute) attrs.set(a.name, a);
    return { name, op: n.op_type, inputs: n.input, outputs: n.output, attrs };
  });
  nodes = sortNodes(nodes, new Set([inp.name, ...initializers.keys()]));
  nodes = foldGelu(nodes, initializers);
  nodes = live(nodes, out.name);
  if (!nodes.some((n) => n.outputs.includes(out.name)))
    throw new ParseError(`onnx: the graph's output ${JSON.stringify(out.name)} is computed by no node`);
  for (const n of nodes)
    if (n.op === 'Erf')
      throw new OnnxError('Erf is supported only inside the GELU pattern x·0.5·(1 + erf(x/√2))', n.name, n.op, opset);
  const elem = inp.type?.tensor_type?.elem_type ?? 1;
  return {
    opset,
    nodes,
    initializers,
    input: { name: inp.name, dims: dimsOf(inp), int: isIntType(elem) },
    output: { name: out.name, dims: dimsOf(out) },
    model: m,
  };
}

/** The nodes in an order where each runs after its inputs' producers; a cycle or an unknown input is a ParseError. */
function sortNodes(nodes: OnnxNode[], known: Set<string>): OnnxNode[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const o of n.outputs) {
      if (o === '') continue;
      if (producer.has(o) || known.has(o))
        throw new ParseError(
          `onnx: value ${JSON.stringify(o)} is produced twice (again by node ${JSON.stringify(n.name)})`,
        );
      producer.set(o, i);
    }
  });
  const state = new Uint8Array(nodes.length); // 0 new, 1 on the path, 2 done
  const order: OnnxNode[] = [];
  for (let start = 0; start < nodes.length; start++) {
    if (state[start]) continue;
    // Iterative depth-first walk: a hostile graph may be deep enough to overflow the call stack.
    const stack: [number, number][] = [[start, 0]];
    state[start] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const n = nodes[top[0]]!;
      if (top[1] < n.inputs.length) {
        const name = n.inputs[top[1]++]!;
        if (name === '' || known.has(name)) continue;
        const p = producer.get(name);
        if (p === undefined)
          throw new ParseError(
            `onnx: node ${JSON.stringify(n.name)} (${n.op}) reads ${JSON.stringify(name)}, which nothing produces`,
          );
        if (state[p] === 1)
          throw new ParseError(
            `onnx: the graph has a cycle through node ${JSON.stringify(nodes[p]!.name)} (${nodes[p]!.op})`,
          );
        if (state[p] === 0) {
          state[p] = 1;
          stack.push([p, 0]);
        }
      } else {
        state[top[0]] = 2;
        order.push(n);
        stack.pop();
      }
    }
  }
  return order;
}

/** Only the nodes the output needs. */
function live(nodes: OnnxNode[], output: string): OnnxNode[] {
  const need = new Set([output]);
  const keep: OnnxNode[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!n.outputs.some((o) => need.has(o))) continue;
    keep.push(n);
    for (const x of n.inputs) need.add(x);
  }
  return keep.reverse();
}

/**
 * Folds torch's exact GELU, Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5) (operands in any order, or Mul(x, 1/√2) in
 * place of the Div), into one `Gelu` node; wgnn has a GELU op and no erf.
 */
function foldGelu(nodes: OnnxNode[], inits: Map<string, HostValue>): OnnxNode[] {
  const byOutput = new Map<string, OnnxNode>();
  for (const n of nodes) for (const o of n.outputs) byOutput.set(o, n);
  const scalar = (name: string): number | undefined => {
    const init = inits.get(name);
    if (init) return init.data.length === 1 ? init.data[0] : undefined;
    const c = byOutput.get(name);
    const t = c?.op === 'Constant' ? c.attrs.get('value')?.t : undefined;
    if (!t) return undefined;
    try {
      const v = tensorValue(t, 'constant');
      return v.data.length === 1 ? v.data[0] : undefined;
    } catch {
      return undefined;
    }
  };
  const near = (v: number | undefined, want: number) => v !== undefined && Math.abs(v - want) < 1e-6 * Math.abs(want);
  /** For a binary node, the operand other than `name`, if `name` is one of its two. */
  const other = (
    n: OnnxNode | undefined,
    op: string,
    pred: (a: string, b: string) => boolean,
  ): [string, string] | undefined => {
    if (!n || n.op !== op || n.inputs.length !== 2) return undefined;
    const [a, b] = n.inputs as [string, string];
    return pred(a, b) ? [a, b] : pred(b, a) ? [b, a] : undefined;
  };
  const replaced = new Map<OnnxNode, OnnxNode>();
  for (const fin of nodes) {
    if (fin.op !== 'Mul') continue;
    let x: string | undefined;
    // fin = Mul(inner, 0.5) with inner = Mul(x, A), or fin = Mul(Mul(x, 0.5), A) / Mul(A, Mul(x, 0.5)).
    const erfSum = (a: string): string | undefined => {
      const add = other(byOutput.get(a), 'Add', (e, one) => byOutput.get(e)?.op === 'Erf' && near(scalar(one), 1));
      if (!add) return undefined;
      const d = byOutput.get(byOutput.get(add[0])!.inputs[0]!);
      const div =
        other(d, 'Div', (_, c) => near(scalar(c), Math.SQRT2)) ??
        other(d, 'Mul', (_, c) => near(scalar(c), Math.SQRT1_2));
      return div?.[0];
    };
    const half = other(fin, 'Mul', (_, c) => near(scalar(c), 0.5));
    if (half) {
      const m = other(byOutput.get(half[0]), 'Mul', (v, a) => erfSum(a) === v);
      x = m?.[0];
    } else {
      const m = other(fin, 'Mul', (xh, a) => {
        const h = other(byOutput.get(xh), 'Mul', (_, c) => near(scalar(c), 0.5));
        return h !== undefined && erfSum(a) === h[0];
      });
      if (m) x = other(byOutput.get(m[0]), 'Mul', (_, c) => near(scalar(c), 0.5))![0];
    }
    if (x !== undefined)
      replaced.set(fin, { name: fin.name, op: 'Gelu', inputs: [x], outputs: fin.outputs, attrs: new Map() });
  }
  return nodes.map((n) => replaced.get(n) ?? n);
}
