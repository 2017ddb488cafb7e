// ONNX out: a wgnn Sequential of standard layers as an ONNX model (opset 17) that takes and gives what the wgnn model
// does (images NHWC). Convolutions and pooling run NCHW in the file: the image is transposed once before the first of
// them and back where an op needs channels last (Flatten, Softmax, LayerNorm, the output), not around every layer.
import { ArgumentError } from '../errors.js';
import type { Layer } from '../nn/layers.js';
import { Sequential } from '../nn/sequential.js';
import { slideWindow, type Padding, type Pair } from '../ops/window.js';
import { OnnxGraph } from './onnx.js';
import { encodeModel } from './onnx-proto.js';

const OPSET = 17;
const FLOAT = 1;
const ATTR = { f: 1, i: 2, s: 3, floats: 6, ints: 7 } as const;
type Attr = number | string | readonly number[] | { float: number };

const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** Builds the graph's lists: nodes, initializers, fresh value names. */
class GraphBuilder {
  readonly nodes: Record<string, unknown>[] = [];
  readonly initializers: Record<string, unknown>[] = [];
  private count = 0;

  fresh(base: string): string {
    return `${base}_${this.count++}`;
  }

  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, base = op): string {
    const out = this.fresh(base);
    const attribute = Object.entries(attrs).map(([name, v]) =>
      typeof v === 'number'
        ? { name, type: ATTR.i, i: v }
        : typeof v === 'string'
          ? { name, type: ATTR.s, s: new TextEncoder().encode(v) }
          : 'float' in v
            ? { name, type: ATTR.f, f: v.float }
            : { name, type: ATTR.ints, ints: [...v] },
    );
    this.nodes.push({ name: out, op_type: op, input: inputs, output: [out], attribute });
    return out;
  }

  /** A float32 initializer [dims] named `name`. */
  weight(name: string, dims: readonly number[], data: Float32Array): string {
    const raw = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    this.initializers.push({ name, dims: [...dims], data_type: FLOAT, raw_data: raw });
    return name;
  }

  scalar(v: number): string {
    return this.weight(this.fresh('const'), [], Float32Array.of(v));
  }
}

/** [R,S,C,K] -> [K,C,R,S]. */
function oihw(w: Float32Array, [R, S, C, K]: readonly number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < R!; r++)
    for (let s = 0; s < S!; s++)
      for (let c = 0; c < C!; c++)
        for (let k = 0; k < K!; k++) out[((k * C! + c) * R! + r) * S! + s] = w[((r * S! + s) * C! + c) * K! + k]!;
  return out;
}

/** ONNX pads [top, left, bottom, right] for a window on an [H, W, C] sample. */
function pads(
  who: string,
  shape: readonly number[],
  size: [number, number],
  stride: Pair,
  dilation: Pair,
  padding: Padding,
) {
  const w = slideWindow(
    who,
    'the ONNX export',
    shape[0]!,
    shape[1]!,
    size,
    { stride, dilation, padding },
    {
      noun: 'window',
      strideAttr: 'strides',
    },
  );
  return [w.pt, w.pl, w.pb, w.pr];
}

/** An activation by wgnn's name applied to `x`. */
function activation(g: GraphBuilder, x: string, act: string | undefined, who: string): string {
  switch (act) {
    case undefined:
    case 'linear':
      return x;
    case 'relu':
      return g.node('Relu', [x]);
    case 'leaky_relu':
      return g.node('LeakyRelu', [x], { alpha: { float: 0.2 } });
    case 'sigmoid':
      return g.node('Sigmoid', [x]);
    case 'tanh':
      return g.node('Tanh', [x]);
    case 'exp':
      return g.node('Exp', [x]);
    case 'log':
      return g.node('Log', [x]);
    case 'neg':
      return g.node('Neg', [x]);
    case 'sqrt':
      return g.node('Sqrt', [x]);
    case 'abs':
      return g.node('Abs', [x]);
    case 'square':
      return g.node('Mul', [x, x]);
    case 'softmax':
      return g.node('Softmax', [x], { axis: -1 });
    case 'gelu': {
      // x·½(1 + erf(x/√2)): opset 17 has no Gelu; this is the pattern torch writes and loadOnnx folds.
      const erf = g.node('Erf', [g.node('Div', [x, g.scalar(Math.SQRT2)])]);
      return g.node('Mul', [g.node('Mul', [x, g.node('Add', [erf, g.scalar(1)])]), g.scalar(0.5)]);
    }
    case 'gelu_tanh': {
      // ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
      const cube = g.node('Mul', [g.node('Mul', [x, x]), x]);
      const inner = g.node('Mul', [
        g.node('Add', [x, g.node('Mul', [cube, g.scalar(0.044715)])]),
        g.scalar(Math.sqrt(2 / Math.PI)),
      ]);
      return g.node('Mul', [g.node('Mul', [x, g.node('Add', [g.node('Tanh', [inner]), g.scalar(1)])]), g.scalar(0.5)]);
    }
    default:
      throw new ArgumentError(`toOnnx: ${who}: activation ${JSON.stringify(act)} has no ONNX form here`);
  }
}

/** The file an OnnxGraph came from, its float initializers replaced by the layer's weights now (fine-tuned). */
async function rewrite(layer: OnnxGraph): Promise<Uint8Array> {
  const { model, weights } = layer.weightsForExport();
  const graph = model.graph!;
  const initializer = await Promise.all(
    graph.initializer.map(async (t) => {
      const w = weights.get(t.name);
      if (!w) return t;
      const v = Float32Array.from(await w.t.data());
      const data = w.rsck ? oihw(v, w.t.shape) : v;
      const raw_data = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      return { ...t, data_type: FLOAT, raw_data, float_data: [], double_data: [] };
    }),
  );
  return encodeModel({ ...model, graph: { ...graph, initializer } } as unknown as Record<string, unknown>);
}

/**
 * A Sequential of Dense, Conv2D, pooling, Flatten, Dropout, activation, BatchNormalization and LayerNormalization layers
 * as the bytes of an ONNX model (opset 17, IR 8), weights included: input `x` [batch, ...the model's input shape] as wgnn
 * takes it (images NHWC), output `y` as wgnn gives it (after the final activation). Dropout is left out (inference).
 * Another layer kind (embeddings, transformer blocks) is an ArgumentError naming it. A model made by `loadOnnx` is
 * written back as its file was, with the weights it has now (after fine-tuning).
 */
export async function toOnnx(model: Sequential): Promise<Uint8Array> {
  if (!(model instanceof Sequential)) throw new ArgumentError('toOnnx: expected a Sequential');
  if (model.layers.length === 1 && model.layers[0] instanceof OnnxGraph) return rewrite(model.layers[0]);
  const input = model.layers[0]?.knownInputShape;
  if (!input) throw new ArgumentError('toOnnx: the model has no input shape yet; build it (or run it once) first');
  const g = new GraphBuilder();
  let x = 'x';
  let shape = [...input]; // per sample, as wgnn sees it
  let nchw = false; // an image value stored NCHW in the file
  const toNchw = () => {
    if (!nchw && shape.length === 3) [x, nchw] = [g.node('Transpose', [x], { perm: [0, 3, 1, 2] }), true];
  };
  const toNhwc = () => {
    if (nchw) [x, nchw] = [g.node('Transpose', [x], { perm: [0, 2, 3, 1] }), false];
  };
  const data = async (l: Layer, field: string) => {
    const t = (l as unknown as Record<string, { data(): Promise<ArrayLike<number>>; shape: number[] }>)[field]!;
    return { v: Float32Array.from(await t.data()), shape: t.shape };
  };
  for (const [i, l] of model.layers.entries()) {
    const c = l.config() as Record<string, never>;
    const at = `layers.${i}`;
    const out = l.outputShape(shape);
    switch (l.kind) {
      case 'Dense': {
        if (nchw) toNhwc();
        const k = await data(l, 'kernel');
        const w = g.weight(`${at}.kernel`, k.shape, k.v);
        const b = c.useBias ? await data(l, 'bias') : undefined;
        const bias = b && g.weight(`${at}.bias`, b.shape, b.v);
        if (shape.length === 1) x = g.node('Gemm', bias ? [x, w, bias] : [x, w]);
        else {
          x = g.node('MatMul', [x, w]);
          if (bias) x = g.node('Add', [x, bias]);
        }
        x = activation(g, x, c.activation, l.name);
        break;
      }
      case 'Conv2D': {
        toNchw();
        const k = await data(l, 'kernel');
        const [R, S, C, K] = k.shape as [number, number, number, number];
        const inputs = [x, g.weight(`${at}.kernel`, [K, C, R, S], oihw(k.v, k.shape))];
        if (c.useBias) inputs.push(g.weight(`${at}.bias`, [K], (await data(l, 'bias')).v));
        x = g.node('Conv', inputs, {
          kernel_shape: [R, S],
          strides: pair(c.strides),
          dilations: pair(c.dilationRate),
          pads: pads(l.name, shape, [R, S], c.strides, c.dilationRate, c.padding),
        });
        x = activation(g, x, c.activation, l.name);
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        toNchw();
        const size = pair(c.poolSize);
        const attrs = {
          kernel_shape: size,
          strides: pair(c.strides),
          pads: pads(l.name, shape, size, c.strides, 1, c.padding),
        };
        x =
          l.kind === 'MaxPooling2D'
            ? g.node('MaxPool', [x], attrs)
            : g.node('AveragePool', [x], { ...attrs, count_include_pad: 0 });
        break;
      }
      case 'GlobalAveragePooling2D':
        x = nchw
          ? g.node('Flatten', [g.node('GlobalAveragePool', [x])])
          : g.node('ReduceMean', [x], { axes: [1, 2], keepdims: 0 });
        nchw = false;
        break;
      case 'Flatten':
        toNhwc(); // wgnn flattens H,W,C: the next Dense's rows are in that order
        x = g.node('Flatten', [x], { axis: 1 });
        break;
      case 'Dropout':
        break;
      case 'ActivationLayer':
        if (c.activation === 'softmax') toNhwc();
        x = activation(g, x, c.activation, l.name);
        break;
      case 'BatchNormalization': {
        if (shape.length === 3) toNchw();
        else if (shape.length !== 1) throw new ArgumentError(`toOnnx: ${l.name} on ${shape.length}-axis samples`);
        const p = await Promise.all(['gamma', 'beta', 'movingMean', 'movingVariance'].map((f) => data(l, f)));
        const names = p.map((t, j) =>
          g.weight(`${at}.${['gamma', 'beta', 'movingMean', 'movingVariance'][j]}`, t.shape, t.v),
        );
        x = g.node('BatchNormalization', [x, ...names], { epsilon: { float: c.epsilon } });
        break;
      }
      case 'LayerNormalization': {
        toNhwc();
        const [gm, bt] = await Promise.all([data(l, 'gamma'), data(l, 'beta')]);
        x = g.node(
          'LayerNormalization',
          [x, g.weight(`${at}.gamma`, gm.shape, gm.v), g.weight(`${at}.beta`, bt.shape, bt.v)],
          {
            axis: -1,
            epsilon: { float: c.epsilon },
          },
        );
        break;
      }
      default:
        throw new ArgumentError(
          `toOnnx: ${l.name} (${l.kind}) has no ONNX export here; expected Dense, Conv2D, pooling, Flatten, Dropout, activation or normalization layers`,
        );
    }
    shape = out;
  }
  toNhwc();
  g.node('Identity', [x]);
  (g.nodes[g.nodes.length - 1]!.output as string[])[0] = 'y';
  const info = (name: string, dims: readonly number[]) => ({
    name,
    type: {
      tensor_type: {
        elem_type: FLOAT,
        shape: { dim: [{ dim_param: 'batch' }, ...dims.map((d) => ({ dim_value: d }))] },
      },
    },
  });
  return encodeModel({
    ir_version: 8,
    producer_name: 'wgnn',
    opset_import: [{ domain: '', version: OPSET }],
    graph: {
      name: 'wgnn',
      node: g.nodes,
      initializer: g.initializers,
      input: [info('x', input)],
      output: [info('y', shape)],
    },
  });
}
