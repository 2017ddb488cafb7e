// ONNX out: a wgnn Sequential of standard layers, or a GPT, as an ONNX model (opset 17) that takes and gives what the
// wgnn model does (images NHWC, token ids). Convolutions and pooling run NCHW in the file: the image is transposed once before the first of
// them and back where an op needs channels last (Flatten, Softmax, LayerNorm, the output), not around every layer.
import { ArgumentError } from '../errors.js';
import type { Layer } from '../nn/layers.js';
import { Sequential } from '../nn/sequential.js';
import { slideWindow, type Padding, type Pair } from '../ops/window.js';
import { OnnxGraph } from './onnx.js';
import { encodeModel } from './onnx-proto.js';
import { requireFinite } from './pytorch.js';

const OPSET = 17;
const FLOAT = 1;
const INT64 = 7;
const BOOL = 9;
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

  /** An int64 constant [values.length] (or a scalar with `dims` []). */
  ints(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const raw = new Uint8Array(new BigInt64Array(values.map((v) => BigInt(v))).buffer);
    const name = this.fresh('ints');
    this.initializers.push({ name, dims: [...dims], data_type: INT64, raw_data: raw });
    return name;
  }

  /** A bool constant [dims]. */
  bools(values: readonly boolean[], dims: readonly number[]): string {
    const name = this.fresh('mask');
    this.initializers.push({ name, dims: [...dims], data_type: BOOL, raw_data: Uint8Array.from(values, Number) });
    return name;
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

type Data = (l: Layer, field: string) => Promise<{ v: Float32Array; shape: number[] }>;
const data: Data = async (l, field) => {
  const t = (l as unknown as Record<string, { data(): Promise<ArrayLike<number>>; shape: number[] }>)[field]!;
  const v = Float32Array.from(await t.data());
  requireFinite('toOnnx', `${l.name}.${field}`, t.shape, v);
  return { v, shape: t.shape };
};

/** x·kernel + bias for a Dense `l` on [..., in] (Gemm on 2-D inputs), its activation after. */
async function dense(g: GraphBuilder, l: Layer, x: string, rank: number, at: string, read: Data): Promise<string> {
  const c = l.config() as { useBias: boolean; activation: string };
  const k = await read(l, 'kernel');
  const w = g.weight(`${at}.kernel`, k.shape, k.v);
  const b = c.useBias ? await read(l, 'bias') : undefined;
  const bias = b && g.weight(`${at}.bias`, b.shape, b.v);
  let y: string;
  if (rank === 1) y = g.node('Gemm', bias ? [x, w, bias] : [x, w]);
  else {
    y = g.node('MatMul', [x, w]);
    if (bias) y = g.node('Add', [y, bias]);
  }
  return activation(g, y, c.activation, l.name);
}

async function layerNorm(g: GraphBuilder, l: Layer, x: string, at: string, read: Data): Promise<string> {
  const [gm, bt] = await Promise.all([read(l, 'gamma'), read(l, 'beta')]);
  const eps = (l.config() as { epsilon: number }).epsilon;
  const inputs = [x, g.weight(`${at}.gamma`, gm.shape, gm.v), g.weight(`${at}.beta`, bt.shape, bt.v)];
  return g.node('LayerNormalization', inputs, { axis: -1, epsilon: { float: eps } });
}

/** A pre-norm transformer block on x [B, T, D]: x + attn(ln1(x)), then h + proj(act(fc(ln2(h)))). */
async function block(g: GraphBuilder, l: Layer, x: string, shape: number[], at: string, read: Data): Promise<string> {
  const b = l as unknown as {
    ln1: Layer;
    attn: Layer & { qkv: Layer; out: Layer };
    ln2: Layer;
    fc: Layer;
    proj: Layer;
  };
  const { heads, causal } = b.attn.config() as { heads: number; causal: boolean };
  const [T, D] = shape as [number, number];
  const hd = D / heads;
  const qkv = await dense(g, b.attn.qkv, await layerNorm(g, b.ln1, x, `${at}.ln1`, read), 2, `${at}.attn.qkv`, read);
  // [B, T, 3D] -> [3, B, H, T, D/H], as wgnn's attention splits it
  const split = g.node('Transpose', [g.node('Reshape', [qkv, g.ints([0, T, 3, heads, hd])])], {
    perm: [2, 0, 3, 1, 4],
  });
  const [q, k, v] = [0, 1, 2].map((i) => g.node('Gather', [split, g.ints([i], [])], { axis: 0 }));
  const kT = g.node('Transpose', [k!], { perm: [0, 1, 3, 2] });
  let scores = g.node('Mul', [g.node('MatMul', [q!, kT]), g.scalar(1 / Math.sqrt(hd))]);
  if (causal) {
    const keep = Array.from({ length: T * T }, (_, i) => i % T <= Math.floor(i / T));
    scores = g.node('Where', [g.bools(keep, [T, T]), scores, g.scalar(-Infinity)]);
  }
  const o = g.node('MatMul', [g.node('Softmax', [scores], { axis: -1 }), v!]); // [B, H, T, D/H]
  const merged = g.node('Reshape', [g.node('Transpose', [o], { perm: [0, 2, 1, 3] }), g.ints([0, T, D])]);
  const h = g.node('Add', [x, await dense(g, b.attn.out, merged, 2, `${at}.attn.out`, read)]);
  const fc = await dense(g, b.fc, await layerNorm(g, b.ln2, h, `${at}.ln2`, read), 2, `${at}.fc`, read);
  return g.node('Add', [h, await dense(g, b.proj, fc, 2, `${at}.proj`, read)]);
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
      requireFinite('toOnnx', t.name, w.t.shape, v);
      const data = w.rsck ? oihw(v, w.t.shape) : v;
      const raw_data = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      return { ...t, data_type: FLOAT, raw_data, float_data: [], double_data: [] };
    }),
  );
  return encodeModel({ ...model, graph: { ...graph, initializer } } as unknown as Record<string, unknown>);
}

/**
 * A Sequential of Dense, Conv2D, pooling, Flatten, Dropout, activation, BatchNormalization and LayerNormalization layers,
 * or a GPT (TokenAndPositionEmbedding, TransformerBlocks, LayerNormalization, LMHead, tied or not), as the bytes of an
 * ONNX model (opset 17, IR 8), weights included: input `x` [batch, ...the model's input shape] as wgnn takes it (images
 * NHWC; token ids int64, the sequence length fixed to the model's), output `y` as wgnn gives it (after the final
 * activation). Dropout is left out (inference). Another layer kind is an ArgumentError naming it. A model made by
 * `loadOnnx` is written back as its file was, with the weights it has now (after fine-tuning).
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
  /** The token tables written, by embedding layer (a tied head reads its table). */
  const tables = new Map<Layer, string>();
  for (const [i, l] of model.layers.entries()) {
    const c = l.config() as Record<string, never>;
    const at = `layers.${i}`;
    const out = l.outputShape(shape);
    switch (l.kind) {
      case 'Dense':
        toNhwc();
        x = await dense(g, l, x, shape.length, at, data);
        break;
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
      case 'LayerNormalization':
        toNhwc();
        x = await layerNorm(g, l, x, at, data);
        break;
      case 'TokenAndPositionEmbedding': {
        const [tok, pos] = await Promise.all([data(l, 'tokens'), data(l, 'positions')]);
        const T = shape[0]!;
        const table = g.weight(`${at}.tokens`, tok.shape, tok.v);
        tables.set(l, table);
        const positions = g.node('Slice', [
          g.weight(`${at}.positions`, pos.shape, pos.v),
          g.ints([0]),
          g.ints([T]),
          g.ints([0]),
        ]);
        x = g.node('Add', [g.node('Gather', [table, x]), positions]);
        break;
      }
      case 'TransformerBlock':
        x = await block(g, l, x, shape, at, data);
        break;
      case 'LMHead': {
        const k = (l as unknown as { kernel: unknown }).kernel ? await data(l, 'kernel') : undefined;
        const emb = [...tables].filter(([e]) => model.layers.indexOf(e) < i).pop();
        if (!k && !emb) throw new ArgumentError(`toOnnx: ${l.name} is tied and no token embedding comes before it`);
        x = k
          ? g.node('MatMul', [x, g.weight(`${at}.kernel`, k.shape, k.v)])
          : g.node('MatMul', [x, g.node('Transpose', [emb![1]], { perm: [1, 0] })]);
        x = activation(g, x, 'softmax', l.name);
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
  const ids = model.layers[0]!.idCount !== undefined;
  const info = (name: string, dims: readonly number[], elem = FLOAT) => ({
    name,
    type: {
      tensor_type: {
        elem_type: elem,
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
      input: [info('x', input, ids ? INT64 : FLOAT)],
      output: [info('y', shape)],
    },
  });
}
