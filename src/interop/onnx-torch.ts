// A model loaded from ONNX (one OnnxGraph layer) as PyTorch: its float initializers under `layers.0.<field>` (conv
// kernels back to [K,C,R,S]), and a model.py whose module runs the same checked graph node by node with torch functions
// (the graph itself is written into model.py as JSON: nodes, attributes, the non-float constants).
import type { OnnxGraph } from './onnx.js';
import { num, tensorValue, type HostValue } from './onnx-graph.js';
import type { AttributeMsg } from './onnx-proto.js';

/** A number as Python's json reads it (it takes Infinity and NaN, which JSON.stringify writes as null). */
const pyNum = (v: number): string =>
  Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
/** An int64 as Python reads it: the file's INT64_MAX (an end of a slice "to the end") came in rounded up to 2^63. */
const pyInt = (v: number): string =>
  v >= 2 ** 63 ? '9223372036854775807' : v <= -(2 ** 63) ? '-9223372036854775808' : String(v);
const hostJson = (v: HostValue): string =>
  `{"dtype": "${v.dtype}", "shape": ${JSON.stringify(v.shape)}, "data": [${Array.from(v.data, v.dtype === 'float' ? pyNum : pyInt).join(', ')}]}`;

/** An attribute as the value the Python side reads (types: 1 float, 2 int, 3 string, 4 tensor, 6 floats, 7 ints). */
function attrJson(a: AttributeMsg, who: string): string {
  const type = a.type || (a.t ? 4 : a.ints.length ? 7 : a.floats.length ? 6 : a.s.length ? 3 : 2);
  if (type === 1) return pyNum(a.f);
  if (type === 3) return JSON.stringify(new TextDecoder().decode(a.s));
  if (type === 4 && a.t) return hostJson(tensorValue(a.t, who));
  if (type === 6) return `[${a.floats.map(pyNum).join(', ')}]`;
  if (type === 7) return `[${a.ints.map((i) => pyInt(num(i))).join(', ')}]`;
  return pyInt(num(a.i));
}

/** The state-dict entries and the `class Model` source of a model whose only layer is `g`. */
export function onnxTorchPlan(g: OnnxGraph): {
  entries: { wgnn: string; torch: string; conv: boolean }[];
  modelSource: string;
  input: string;
} {
  const { plan, fields, convW, softmaxOut } = g.planForExport();
  const weights: string[] = [];
  const constants: string[] = [];
  const entries = [];
  for (const [name, v] of plan.initializers) {
    const field = fields.get(name);
    if (!field) constants.push(`${JSON.stringify(name)}: ${hostJson(v)}`);
    else {
      const t = (g as unknown as Record<string, { requiresGrad: boolean }>)[field]!;
      weights.push(
        `${JSON.stringify(name)}: [${JSON.stringify(field)}, ${JSON.stringify(v.shape)}, ${t.requiresGrad ? 'true' : 'false'}]`,
      );
      entries.push({ wgnn: `layers.0.${field}`, torch: `layers.0.${field}`, conv: convW.has(name) });
    }
  }
  const nodes = plan.nodes.map((n) => {
    const attrs = [...n.attrs].map(([k, a]) => `${JSON.stringify(k)}: ${attrJson(a, `attribute ${k} of ${n.name}`)}`);
    return `  {"op": ${JSON.stringify(n.op)}, "inputs": ${JSON.stringify(n.inputs)}, "outputs": ${JSON.stringify(n.outputs)}, "attrs": {${attrs.join(', ')}}}`;
  });
  const graph = `{"opset": ${plan.opset}, "input": ${JSON.stringify(plan.input.name)}, "output": ${JSON.stringify(plan.output.name)}, "softmax_out": ${softmaxOut ? 'true' : 'false'},
 "weights": {${weights.join(', ')}},
 "constants": {${constants.join(', ')}},
 "nodes": [
${nodes.join(',\n')}
]}`;
  const input = plan.input.int ? 'token ids, integers' : `float32 (as the ONNX file: images NCHW)`;
  const dims = plan.input.dims ? ` [${plan.input.dims.join(', ')}]` : '';
  const modelSource = `${ONNX_RUNNER}

GRAPH = json.loads(
    r"""
${graph}
"""
)


class Model(nn.Module):
    """The ONNX graph wgnn loaded (opset ${plan.opset}), ${plan.nodes.length} nodes. Input: ${input}${dims}."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(OnnxGraph(GRAPH))

    def forward(self, x, logits=False):
        """What wgnn's predict gives, or with logits=True the input of a final softmax."""
        return self.layers[0](x, logits)
`;
  return { entries, modelSource, input: `${input}${dims}` };
}

/** The Python interpreter of a checked ONNX graph: ONNX's semantics on torch tensors (NCHW, as the file). */
const ONNX_RUNNER = `_DTYPE = {"float": torch.float32, "int": torch.int64, "bool": torch.bool}
_CAST = {1: torch.float32, 11: torch.float32, 6: torch.int64, 7: torch.int64, 9: torch.bool}


def _const(v):
    return torch.tensor(v["data"], dtype=_DTYPE[v["dtype"]]).reshape(v["shape"])


def _axis(v, rank):
    return v + rank if v < 0 else v


def _ints(a, key, ins, i):
    """A list from the attribute (older opsets) or the input (newer ones), or None."""
    if key in a:
        return list(a[key])
    return ins[i].tolist() if len(ins) > i and ins[i] is not None else None


def _pads(a, x, k, s, d=(1, 1)):
    """F.pad's (left, right, top, bottom) from auto_pad, or pads [top, left, bottom, right]."""
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for i in range(2):
            n, ext = x.shape[2 + i], (k[i] - 1) * d[i] + 1
            total = max((-(-n // s[i]) - 1) * s[i] + ext - n, 0)
            lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
            out.append((lo, total - lo))
        return (*out[1], *out[0])
    p = [0, 0, 0, 0] if auto == "VALID" else a.get("pads", [0, 0, 0, 0])
    return (p[1], p[3], p[0], p[2])


def _pool(a, x, kind):
    k, s = a["kernel_shape"], a.get("strides", [1, 1])
    pad = _pads(a, x, k, s)
    if kind == "max":
        return F.max_pool2d(F.pad(x, pad, value=-math.inf), k, s)
    total = F.avg_pool2d(F.pad(x, pad), k, s)
    if a.get("count_include_pad", 0):
        return total
    return total / F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pad), k, s)


def _conv(a, x, w, b=None):
    s, d = a.get("strides", [1, 1]), a.get("dilations", [1, 1])
    return F.conv2d(F.pad(x, _pads(a, x, w.shape[2:], s, d)), w, b, s, 0, d)


def _gemm(a, x, w, c=None):
    x = x.t() if a.get("transA", 0) else x
    y = a.get("alpha", 1.0) * (x @ (w.t() if a.get("transB", 0) else w))
    return y if c is None else y + a.get("beta", 1.0) * c


def _slice(a, x, *ins):
    starts, ends = _ints(a, "starts", ins, 0), _ints(a, "ends", ins, 1)
    axes, steps = _ints(a, "axes", ins, 2), _ints(a, "steps", ins, 3)
    idx = [slice(None)] * x.dim()
    for k, start in enumerate(starts):
        idx[axes[k] if axes else k] = slice(start, ends[k], steps[k] if steps else 1)
    return x[tuple(idx)]


def _gather(a, x, i):
    axis = a.get("axis", 0) % x.dim()
    i = torch.where(i < 0, i + x.shape[axis], i).long()
    return x.index_select(axis, i.reshape(-1)).reshape(x.shape[:axis] + i.shape + x.shape[axis + 1 :])


def _reshape(a, x, s):
    return x.reshape([x.shape[i] if d == 0 and not a.get("allowzero", 0) else d for i, d in enumerate(s.tolist())])


def _unsqueeze(a, x, axes=None):
    axes = _ints(a, "axes", [axes], 0)
    for ax in sorted(v % (x.dim() + len(axes)) for v in axes):
        x = x.unsqueeze(ax)
    return x


def _squeeze(a, x, axes=None):
    axes = _ints(a, "axes", [axes], 0)
    if axes is None:
        return x.squeeze()
    for ax in sorted((v % x.dim() for v in axes), reverse=True):
        x = x.squeeze(ax)
    return x


def _split(a, x, s=None):
    axis = a.get("axis", 0)
    sizes = _ints(a, "split", [s], 0) or -(-x.shape[axis] // a["_outputs"])
    return torch.split(x, sizes, axis)


def _pad(a, x, pads=None, value=None, axes=None):
    p = _ints(a, "pads", [pads], 0)
    axes = [v % x.dim() for v in axes.tolist()] if axes is not None else list(range(x.dim()))
    n = len(axes)
    flat = [0] * (2 * x.dim())
    for k, ax in enumerate(axes):
        flat[2 * (x.dim() - 1 - ax)], flat[2 * (x.dim() - 1 - ax) + 1] = p[k], p[k + n]
    v = a["value"] if "value" in a else (value.reshape(-1)[0].item() if value is not None else 0.0)
    return F.pad(x, flat, value=v)


def _reduce(f):
    def run(a, x, axes=None):
        axes = _ints(a, "axes", [axes], 0)
        return f(x, dim=list(range(x.dim())) if axes is None else axes, keepdim=bool(a.get("keepdims", 1)))

    return run


def _softmax(f):
    return lambda a, x: f(x, dim=a.get("axis", -1 if GRAPH["opset"] >= 13 else 1))


def _constant(a):
    k, v = next(iter(a.items()))
    return _const(v) if k == "value" else torch.tensor(v, dtype=torch.float32 if "float" in k else torch.int64)


def _div(a, x, y):
    both_int = not x.is_floating_point() and not y.is_floating_point()
    return torch.div(x, y, rounding_mode="trunc") if both_int else x / y


def _batch_norm(a, x, scale, bias, mean, var):
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, a.get("epsilon", 1e-5))


def _layer_norm(a, x, w, b=None):
    return F.layer_norm(x, x.shape[a.get("axis", -1) % x.dim() :], w, b, a.get("epsilon", 1e-5))


def _range(a, start, limit, delta):
    return torch.arange(start.item(), limit.item(), delta.item(), dtype=start.dtype)


def _constant_of_shape(a, s):
    v = _const(a["value"]) if "value" in a else torch.zeros(1)
    return torch.full(s.tolist(), v.reshape(-1)[0].item(), dtype=v.dtype)


_OPS = {
    "Identity": lambda a, x: x,
    "Dropout": lambda a, x, *rest: x,
    "Constant": _constant,
    "Add": lambda a, x, y: x + y,
    "Sub": lambda a, x, y: x - y,
    "Mul": lambda a, x, y: x * y,
    "Div": _div,
    "Pow": lambda a, x, y: torch.pow(x, y),
    "Equal": lambda a, x, y: x == y,
    "Where": lambda a, c, x, y: torch.where(c.bool(), x, y),
    "Relu": lambda a, x: torch.relu(x),
    "LeakyRelu": lambda a, x: F.leaky_relu(x, a.get("alpha", 0.01)),
    "Sigmoid": lambda a, x: torch.sigmoid(x),
    "Tanh": lambda a, x: torch.tanh(x),
    "Gelu": lambda a, x: F.gelu(x, approximate=a.get("approximate", "none")),
    "Sqrt": lambda a, x: torch.sqrt(x),
    "Exp": lambda a, x: torch.exp(x),
    "Log": lambda a, x: torch.log(x),
    "Neg": lambda a, x: -x,
    "Abs": lambda a, x: torch.abs(x),
    "Reciprocal": lambda a, x: 1 / x,
    "Softmax": _softmax(F.softmax),
    "LogSoftmax": _softmax(F.log_softmax),
    "Cast": lambda a, x: x.to(_CAST[a["to"]]),
    "Shape": lambda a, x: torch.tensor(x.shape[a.get("start", 0) : a.get("end", x.dim())], dtype=torch.int64),
    "ConstantOfShape": _constant_of_shape,
    "Range": _range,
    "Reshape": _reshape,
    "Flatten": lambda a, x: x.reshape(int(np.prod(x.shape[: _axis(a.get("axis", 1), x.dim() + 1)])), -1),
    "Transpose": lambda a, x: x.permute(a.get("perm", list(range(x.dim() - 1, -1, -1)))),
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": lambda a, *xs: torch.cat(xs, a.get("axis", 0)),
    "Slice": _slice,
    "Split": _split,
    "Gather": _gather,
    "Gemm": _gemm,
    "MatMul": lambda a, x, y: x @ y,
    "Conv": _conv,
    "MaxPool": lambda a, x: _pool(a, x, "max"),
    "AveragePool": lambda a, x: _pool(a, x, "avg"),
    "GlobalAveragePool": lambda a, x: x.mean((2, 3), keepdim=True),
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "Pad": _pad,
    "ReduceMean": _reduce(torch.mean),
    "ReduceSum": _reduce(torch.sum),
}


class OnnxGraph(nn.Module):
    """An ONNX graph run node by node; its float initializers are parameters (buffers where wgnn does not train them)."""

    def __init__(self, graph):
        super().__init__()
        self.graph = graph
        for field, shape, trainable in graph["weights"].values():
            if trainable:
                self.register_parameter(field, nn.Parameter(torch.zeros(shape)))
            else:
                self.register_buffer(field, torch.zeros(shape))
        self.constants = {k: _const(v) for k, v in graph["constants"].items()}

    def forward(self, x, logits=False):
        env = dict(self.constants)
        env.update({k: getattr(self, w[0]) for k, w in self.graph["weights"].items()})
        env[self.graph["input"]] = x
        nodes = self.graph["nodes"]
        for n in nodes:
            ins = [env[i] if i else None for i in n["inputs"]]
            if logits and self.graph["softmax_out"] and n is nodes[-1]:
                out = [ins[0]]
            else:
                out = _OPS[n["op"]]({**n["attrs"], "_outputs": len(n["outputs"])}, *ins)
                out = list(out) if isinstance(out, (tuple, list)) else [out]
            env.update({name: v for name, v in zip(n["outputs"], out) if name})
        return env[self.graph["output"]]`;
