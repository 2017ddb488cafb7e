// PyTorch interop: a wgnn Sequential (a GPT included) as a PyTorch state dict — torch.nn's names and layouts — plus
// the source of a model.py defining the same nn.Module; and the way back, a state dict saved as safetensors loaded
// into a wgnn model of the same architecture. Layouts: Linear [out, in], Conv2d [K, C, R, S], images NCHW (so the
// first Linear after a Flatten of an image gets its input columns reordered), GPTs with nanoGPT's names.
import { ArgumentError, NonFiniteError, StateDictError } from '../errors.js';
import { parseSafetensors, serializeSafetensors, type LoadedTensor } from '../io/safetensors.js';
import type { Layer } from '../nn/layers.js';
import { Sequential } from '../nn/sequential.js';
import { slideWindow, type Padding, type Pair } from '../ops/window.js';
import { writeFileAtomic } from '../platform/fs.js';
import { keep, tensor } from '../tensor.js';
import { OnnxGraph } from './onnx.js';
import { onnxTorchPlan } from './onnx-torch.js';
import { LOADER, PRELUDE } from './torch-source.js';

/**
 * How a wgnn tensor's elements sit in the PyTorch tensor: as they are, transposed (Linear), [R,S,C,K] -> [K,C,R,S]
 * (Conv2d), a Dense kernel after a Flatten of an [H,W,C] image (its rows in C,H,W order, then transposed), or a
 * per-feature vector after such a Flatten (batch or layer norm parameters).
 */
type Layout =
  | { kind: 'same' }
  | { kind: 'linear' }
  | { kind: 'conv' }
  | { kind: 'flatLinear'; hwc: readonly [number, number, number] }
  | { kind: 'flatVector'; hwc: readonly [number, number, number] };

/** One tensor of the model: its wgnn name, its state-dict key and how its elements move. */
export interface TorchEntry {
  readonly wgnn: string;
  readonly torch: string;
  readonly layout: Layout;
}

/** What `torchPlan` gives: the state-dict entries and model.py's class. */
export interface TorchPlan {
  readonly entries: readonly TorchEntry[];
  /** State-dict keys that hold another key's tensor (a head tied to the token table): key -> the stored key. */
  readonly tied: Readonly<Record<string, string>>;
  /** The Python source of `class Model(nn.Module)`. */
  readonly modelSource: string;
  /** What the generated model takes, in words. */
  readonly input: string;
}

const SAME: Layout = { kind: 'same' };
const LINEAR: Layout = { kind: 'linear' };
const CONV: Layout = { kind: 'conv' };
const py = (v: unknown): string => (typeof v === 'boolean' ? (v ? 'True' : 'False') : JSON.stringify(v));
const tuple = (p: readonly number[]): string => `(${p.join(', ')})`;
const pairOf = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** torch's module for a wgnn activation (none for 'linear'); `channels`: softmax over NCHW's axis 1. */
function activationModule(act: string | undefined, channels: boolean): string | undefined {
  switch (act) {
    case undefined:
    case 'linear':
      return undefined;
    case 'relu':
      return 'nn.ReLU()';
    case 'leaky_relu':
      return 'nn.LeakyReLU(0.2)';
    case 'sigmoid':
      return 'nn.Sigmoid()';
    case 'tanh':
      return 'nn.Tanh()';
    case 'gelu':
      return 'nn.GELU()';
    case 'gelu_tanh':
      return 'nn.GELU(approximate="tanh")';
    case 'softmax':
      return `nn.Softmax(dim=${channels ? 1 : -1})`;
    case 'exp':
    case 'log':
    case 'neg':
    case 'sqrt':
    case 'square':
    case 'abs':
      return `Elementwise(${py(act)})`;
    default:
      throw new ArgumentError(`toPyTorch: activation ${py(act)} has no PyTorch module here`);
  }
}

/** [left, right, top, bottom] as F.pad takes them, from a window's placement. */
function windowPads(
  who: string,
  [H, W]: readonly number[],
  size: readonly [number, number],
  stride: Pair,
  dilation: Pair,
  padding: Padding,
): { lrtb: number[]; symmetric: boolean } {
  const w = slideWindow(
    who,
    'the export',
    H!,
    W!,
    size,
    { stride, dilation, padding },
    { noun: 'window', strideAttr: 'strides' },
  );
  return { lrtb: [w.pl, w.pr, w.pt, w.pb], symmetric: w.pt === w.pb && w.pl === w.pr };
}

/** The nanoGPT block's entries under `prefix` for the wgnn block `at` (`layers.{i}`). */
function blockEntries(at: string, prefix: string): TorchEntry[] {
  const e = (wgnn: string, torch: string, layout: Layout = SAME): TorchEntry => ({
    wgnn: `${at}.${wgnn}`,
    torch: `${prefix}${torch}`,
    layout,
  });
  return [
    e('ln1.gamma', 'ln_1.weight'),
    e('ln1.beta', 'ln_1.bias'),
    e('attn.qkv.kernel', 'attn.c_attn.weight', LINEAR),
    e('attn.qkv.bias', 'attn.c_attn.bias'),
    e('attn.out.kernel', 'attn.c_proj.weight', LINEAR),
    e('attn.out.bias', 'attn.c_proj.bias'),
    e('ln2.gamma', 'ln_2.weight'),
    e('ln2.beta', 'ln_2.bias'),
    e('fc.kernel', 'mlp.c_fc.weight', LINEAR),
    e('fc.bias', 'mlp.c_fc.bias'),
    e('proj.kernel', 'mlp.c_proj.weight', LINEAR),
    e('proj.bias', 'mlp.c_proj.bias'),
  ];
}

function blockModule(l: Layer, dim: number): string {
  const c = l.config() as { heads: number; causal: boolean; dropout: number; activation: string; epsilon: number };
  const hidden = Math.round((l.config().mlpRatio as number) * dim);
  return `Block(${dim}, ${c.heads}, ${py(c.causal)}, ${c.dropout}, ${py(c.activation)}, ${c.epsilon}, ${hidden})`;
}

/** The per-sample input shape of the model's first layer (declared or built); an ArgumentError without one. */
function inputShapeOf(model: Sequential): number[] {
  const shape = model.layers[0]?.knownInputShape;
  if (!shape)
    throw new ArgumentError(
      'toPyTorch: the model has no input shape yet; give its first layer `inputShape` or run it once on data',
    );
  return shape;
}

/** A GPT stack: a token+position embedding, transformer blocks, a layer norm, a language-model head. */
function isGptStack(ls: readonly Layer[]): boolean {
  const kinds = ls.map((l) => l.kind);
  const blocks = kinds.slice(1, -2);
  return (
    kinds.length >= 4 &&
    kinds[0] === 'TokenAndPositionEmbedding' &&
    blocks.every((k) => k === 'TransformerBlock') &&
    kinds.at(-2) === 'LayerNormalization' &&
    kinds.at(-1) === 'LMHead'
  );
}

/** A GPT as nanoGPT's module: transformer.{wte, wpe, h.{i}, ln_f} and lm_head. */
function gptPlan(model: Sequential): TorchPlan {
  const ls = model.layers;
  const emb = ls[0]!.config() as { vocabSize: number; maxLength: number; outputDim: number; dropout: number };
  const d = emb.outputDim;
  const last = ls.length - 1;
  const head = ls[last]!.config() as { tieWeights: boolean };
  const eps = (ls[last - 1]!.config() as { epsilon: number }).epsilon;
  const entries: TorchEntry[] = [
    { wgnn: 'layers.0.tokens', torch: 'transformer.wte.weight', layout: SAME },
    { wgnn: 'layers.0.positions', torch: 'transformer.wpe.weight', layout: SAME },
  ];
  const blocks: string[] = [];
  for (let i = 1; i < last - 1; i++) {
    entries.push(...blockEntries(`layers.${i}`, `transformer.h.${i - 1}.`));
    blocks.push(`                        ${blockModule(ls[i]!, d)},`);
  }
  entries.push(
    { wgnn: `layers.${last - 1}.gamma`, torch: 'transformer.ln_f.weight', layout: SAME },
    { wgnn: `layers.${last - 1}.beta`, torch: 'transformer.ln_f.bias', layout: SAME },
  );
  if (!head.tieWeights) entries.push({ wgnn: `layers.${last}.kernel`, torch: 'lm_head.weight', layout: LINEAR });
  const tied: Record<string, string> = head.tieWeights ? { 'lm_head.weight': 'transformer.wte.weight' } : {};
  const modelSource = `class Model(nn.Module):
    """A GPT with nanoGPT's names: ${ls.length - 3} blocks, width ${d}, vocabulary ${emb.vocabSize}, block size ${emb.maxLength}."""

    def __init__(self):
        super().__init__()
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(${emb.vocabSize}, ${d}),
                wpe=nn.Embedding(${emb.maxLength}, ${d}),
                drop=nn.Dropout(${emb.dropout}),
                h=nn.ModuleList(
                    [
${blocks.join('\n')}
                    ]
                ),
                ln_f=nn.LayerNorm(${d}, eps=${eps}),
            )
        )
        self.lm_head = nn.Linear(${d}, ${emb.vocabSize}, bias=False)${head.tieWeights ? '\n        self.lm_head.weight = self.transformer.wte.weight' : ''}

    def forward(self, idx, logits=False):
        """idx: token ids [B, T]. Probabilities over the vocabulary (wgnn's predict), or logits."""
        t = self.transformer
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = t.drop(t.wte(idx) + t.wpe(pos))
        for block in t.h:
            x = block(x)
        out = self.lm_head(t.ln_f(x))
        return out if logits else F.softmax(out, dim=-1)
`;
  return { entries, tied, modelSource, input: 'token ids, integers [B, T] (T <= the block size)' };
}

/** Layers that pass a flattened image's feature order through unchanged (their parameters follow it). */
const KEEPS_ORDER = new Set(['Dropout', 'ActivationLayer', 'BatchNormalization', 'LayerNormalization']);

/** Any Sequential as `self.layers = nn.Sequential(...)`: keys `layers.{j}.weight`, j counting torch's modules. */
function sequentialPlan(model: Sequential): TorchPlan {
  const ls = model.layers;
  let shape = inputShapeOf(model);
  const input0 = shape;
  const modules: string[] = [];
  const entries: TorchEntry[] = [];
  const tied: Record<string, string> = {};
  const ties: string[] = [];
  /** The torch index of each wgnn layer's main module. */
  const at: number[] = [];
  /** After a Flatten of an [H,W,C] image feeding a Dense: the image's shape (features in H,W,C order). */
  let order: readonly [number, number, number] | undefined;
  const add = (m: string | undefined) => {
    if (m) modules.push(m);
  };
  ls.forEach((l, i) => {
    const c = l.config() as Record<string, never>;
    const name = (field: string) => `layers.${i}.${field}`;
    const key = (field: string) => `layers.${modules.length}.${field}`;
    const image = shape.length === 3;
    const feat = shape[shape.length - 1]!;
    at.push(modules.length);
    const vector = (wgnn: string, torch: string) =>
      entries.push({ wgnn: name(wgnn), torch: key(torch), layout: order ? { kind: 'flatVector', hwc: order } : SAME });
    switch (l.kind) {
      case 'Dense': {
        const layout: Layout = order ? { kind: 'flatLinear', hwc: order } : LINEAR;
        entries.push({ wgnn: name('kernel'), torch: key('weight'), layout });
        if (c.useBias) entries.push({ wgnn: name('bias'), torch: key('bias'), layout: SAME });
        add(`${image ? 'LinearChannels' : 'nn.Linear'}(${feat}, ${c.units}, bias=${py(c.useBias)})`);
        order = undefined;
        add(activationModule(c.activation, image));
        break;
      }
      case 'Conv2D': {
        const [R, S] = pairOf(c.kernelSize);
        const { lrtb, symmetric } = windowPads(l.name, shape, [R, S], c.strides, c.dilationRate, c.padding);
        entries.push({ wgnn: name('kernel'), torch: key('weight'), layout: { kind: 'conv' } });
        if (c.useBias) entries.push({ wgnn: name('bias'), torch: key('bias'), layout: SAME });
        const args = `${feat}, ${c.filters}, ${tuple([R, S])}, stride=${tuple(pairOf(c.strides))}, dilation=${tuple(pairOf(c.dilationRate))}, bias=${py(c.useBias)}`;
        add(
          symmetric
            ? `nn.Conv2d(${args}, padding=${tuple([lrtb[2]!, lrtb[0]!])})`
            : `Conv2dPad(${args}, pad=${tuple(lrtb)})`,
        );
        add(activationModule(c.activation, true));
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const size = pairOf(c.poolSize);
        const stride = pairOf(c.strides);
        const { lrtb, symmetric } = windowPads(l.name, shape, size, stride, 1, c.padding);
        const max = l.kind === 'MaxPooling2D';
        const none = lrtb.every((p) => p === 0);
        // torch pads symmetrically, at most half the window
        const fits = symmetric && 2 * lrtb[2]! <= size[0] && 2 * lrtb[0]! <= size[1];
        const pad = tuple([lrtb[2]!, lrtb[0]!]);
        if (none) add(`nn.${max ? 'Max' : 'Avg'}Pool2d(${tuple(size)}, stride=${tuple(stride)})`);
        else if (fits)
          add(
            max
              ? `nn.MaxPool2d(${tuple(size)}, stride=${tuple(stride)}, padding=${pad})`
              : `nn.AvgPool2d(${tuple(size)}, stride=${tuple(stride)}, padding=${pad}, count_include_pad=False)`,
          );
        else add(`${max ? 'Max' : 'Avg'}Pool2dPad(${tuple(size)}, ${tuple(stride)}, ${tuple(lrtb)})`);
        break;
      }
      case 'GlobalAveragePooling2D':
        add('GlobalAvgPool2d()');
        break;
      case 'Flatten': {
        // torch flattens NCHW as C,H,W: a Dense after it takes its columns in that order (its weights reorder);
        // anything else after it sees the features as wgnn does only through a channels-last flatten.
        const next = ls.slice(i + 1).find((n) => !KEEPS_ORDER.has(n.kind));
        if (image && next?.kind === 'Dense') order = shape as [number, number, number];
        add(image && !order ? 'nn.Sequential(Permute(0, 2, 3, 1), nn.Flatten())' : 'nn.Flatten()');
        break;
      }
      case 'Dropout':
        add(`nn.Dropout(${c.rate})`);
        break;
      case 'ActivationLayer':
        add(activationModule(c.activation, image));
        break;
      case 'BatchNormalization': {
        vector('gamma', 'weight');
        vector('beta', 'bias');
        vector('movingMean', 'running_mean');
        vector('movingVariance', 'running_var');
        const cls = image ? 'nn.BatchNorm2d' : shape.length === 1 ? 'nn.BatchNorm1d' : 'BatchNormLast';
        if (shape.length > 3) throw new ArgumentError(`toPyTorch: ${l.name} on ${shape.length}-axis samples`);
        // Keras's momentum keeps that much of the old statistic; torch's takes that much of the new one.
        add(`${cls}(${feat}, eps=${c.epsilon}, momentum=${1 - (c.momentum as number)})`);
        break;
      }
      case 'LayerNormalization':
        vector('gamma', 'weight');
        vector('beta', 'bias');
        add(`${image ? 'LayerNormChannels' : 'nn.LayerNorm'}(${feat}, eps=${c.epsilon})`);
        break;
      case 'Embedding':
        entries.push({ wgnn: name('embeddings'), torch: key('weight'), layout: SAME });
        add(`nn.Embedding(${c.inputDim}, ${c.outputDim})`);
        break;
      case 'TokenAndPositionEmbedding':
        entries.push({ wgnn: name('tokens'), torch: key('wte.weight'), layout: SAME });
        entries.push({ wgnn: name('positions'), torch: key('wpe.weight'), layout: SAME });
        add(`TokenAndPositionEmbedding(${c.vocabSize}, ${c.maxLength}, ${c.outputDim}, ${c.dropout})`);
        break;
      case 'TransformerBlock':
        entries.push(...blockEntries(`layers.${i}`, `layers.${modules.length}.`));
        add(blockModule(l, feat));
        break;
      case 'MultiHeadAttention':
        for (const [w, t] of [
          ['qkv', 'c_attn'],
          ['out', 'c_proj'],
        ] as const) {
          entries.push({ wgnn: name(`${w}.kernel`), torch: key(`${t}.weight`), layout: LINEAR });
          entries.push({ wgnn: name(`${w}.bias`), torch: key(`${t}.bias`), layout: SAME });
        }
        add(`CausalSelfAttention(${feat}, ${c.heads}, ${py(c.causal)}, ${c.dropout})`);
        break;
      case 'LMHead': {
        const j = modules.length;
        if (c.tieWeights) {
          const e = ls.map((p) => p.kind).lastIndexOf('TokenAndPositionEmbedding', i);
          if (e < 0) throw new ArgumentError(`toPyTorch: ${l.name} is tied to no token embedding before it`);
          tied[`layers.${j}.weight`] = `layers.${at[e]}.wte.weight`;
          ties.push(`        self.layers[${j}].weight = self.layers[${at[e]}].wte.weight`);
        } else entries.push({ wgnn: name('kernel'), torch: key('weight'), layout: LINEAR });
        add(`LMHead(${feat}, ${c.units})`);
        add('nn.Softmax(dim=-1)');
        break;
      }
      default:
        throw new ArgumentError(
          `toPyTorch: layer ${l.name} (${l.kind}) has no PyTorch counterpart here; expected one of wgnn's built-in layers`,
        );
    }
    shape = l.outputShape(shape);
  });
  const input =
    input0.length === 3
      ? `images NCHW [N, ${input0[2]}, ${input0[0]}, ${input0[1]}] (wgnn's NHWC x.permute(0, 3, 1, 2))`
      : ls[0]!.idCount !== undefined
        ? `token ids, integers [N, ${input0.join(', ')}]`
        : `float32 [N, ${input0.join(', ')}]`;
  const modelSource = `class Permute(nn.Module):
    def __init__(self, *dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


class Model(nn.Module):
    """Input: ${input}."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
${modules.map((m) => `            ${m},`).join('\n')}
        )
${ties.join('\n')}

    def forward(self, x, logits=False):
        """What wgnn's predict gives, or with logits=True the output before a final softmax or sigmoid."""
        layers = list(self.layers)
        if logits and isinstance(layers[-1], (nn.Softmax, nn.Sigmoid)):
            layers = layers[:-1]
        for layer in layers:
            x = layer(x)
        return x
`;
  return { entries, tied, modelSource, input };
}

/** How the model's tensors map onto a PyTorch state dict, and the Python class of the same network. */
export function torchPlan(model: Sequential): TorchPlan {
  if (!(model instanceof Sequential))
    throw new ArgumentError(
      `toPyTorch: expected a wgnn Sequential (or GPT) model, got ${Object.prototype.toString.call(model)}`,
    );
  if (model.layers.length === 0) throw new ArgumentError('toPyTorch: the model has no layers');
  const only = model.layers[0];
  if (model.layers.length === 1 && only instanceof OnnxGraph) {
    const p = onnxTorchPlan(only);
    const entries = p.entries.map((e) => ({ wgnn: e.wgnn, torch: e.torch, layout: e.conv ? CONV : SAME }));
    return { entries, tied: {}, modelSource: p.modelSource, input: p.input };
  }
  inputShapeOf(model);
  return isGptStack(model.layers) ? gptPlan(model) : sequentialPlan(model);
}

/** The PyTorch shape of a wgnn tensor of `shape` and, per PyTorch element, the wgnn element it holds. */
function placement(layout: Layout, shape: readonly number[]): { shape: number[]; from: Int32Array | undefined } {
  const n = shape.reduce((a, b) => a * b, 1);
  const from = new Int32Array(n);
  switch (layout.kind) {
    case 'same':
      return { shape: [...shape], from: undefined };
    case 'linear': {
      const [I, O] = shape as [number, number];
      for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) from[o * I + i] = i * O + o;
      return { shape: [O, I], from };
    }
    case 'conv': {
      const [R, S, C, K] = shape as [number, number, number, number];
      for (let k = 0, t = 0; k < K; k++)
        for (let c = 0; c < C; c++)
          for (let r = 0; r < R; r++) for (let s = 0; s < S; s++) from[t++] = ((r * S + s) * C + c) * K + k;
      return { shape: [K, C, R, S], from };
    }
    case 'flatLinear':
    case 'flatVector': {
      const [H, W, C] = layout.hwc;
      const F = H * W * C;
      const O = layout.kind === 'flatLinear' ? shape[1]! : 1;
      for (let o = 0; o < O; o++)
        for (let c = 0; c < C; c++)
          for (let h = 0; h < H; h++)
            for (let w = 0; w < W; w++) from[o * F + (c * H + h) * W + w] = ((h * W + w) * C + c) * O + o;
      return { shape: layout.kind === 'flatLinear' ? [O, F] : [F], from };
    }
  }
}

/** The index of the first NaN or ±Inf in `d`, or -1. */
function firstNonFinite(d: ArrayLike<number>): number {
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return i;
  return -1;
}

/** An exporter's check that a weight is finite: a diverged model is not written (NonFiniteError naming it). */
export function requireFinite(who: string, name: string, shape: readonly number[], d: ArrayLike<number>): void {
  const bad = firstNonFinite(d);
  if (bad >= 0)
    throw new NonFiniteError(
      `${who}: ${name} [${shape.join()}] holds ${d[bad]} at index ${bad}; a diverged model is not exported`,
    );
}

/** The files of the exported model: `model.safetensors` (PyTorch names and layouts) and `model.py`. */
export interface PyTorchExport {
  readonly safetensors: Uint8Array;
  readonly source: string;
}

/**
 * The model as PyTorch: its weights under torch.nn's state-dict names and layouts, and a model.py defining the same
 * nn.Module with `load(folder)` (reads folder/model.safetensors with the `safetensors` package where installed,
 * else with numpy). `model(x)` there gives what wgnn's `predict` gives; images go in as NCHW.
 */
export async function toPyTorch(model: Sequential): Promise<PyTorchExport> {
  const plan = torchPlan(model);
  const tensors = new Map(model.namedTensors());
  const out = await Promise.all(
    plan.entries.map(async (e) => {
      const t = tensors.get(e.wgnn);
      if (!t) throw new ArgumentError(`toPyTorch: the model has no tensor ${e.wgnn} (is it built?)`);
      const data = (await t.data()) as Float32Array;
      requireFinite('toPyTorch', e.wgnn, t.shape, data);
      const { shape, from } = placement(e.layout, t.shape);
      return {
        name: e.torch,
        dtype: 'float32' as const,
        shape,
        data: from ? Float32Array.from(from, (i) => data[i]!) : data,
      };
    }),
  );
  const header = `# Generated by wgnn: ${model.layers.length} layers as a torch.nn.Module. Input: ${plan.input}.
# model = load(folder) reads folder/model.safetensors; model(x) gives what wgnn's predict gives.
`;
  const source = `${header}${PRELUDE}\n\n${plan.modelSource}\n\nTIED = ${JSON.stringify(plan.tied)}\n${LOADER}`;
  return {
    safetensors: serializeSafetensors(out, { format: 'pt', exporter: 'wgnn' }),
    source,
  };
}

/** Writes {@link toPyTorch}'s files into `folder` (made if missing): model.safetensors and model.py. Node only. */
export async function savePyTorch(model: Sequential, folder: string): Promise<void> {
  const { safetensors, source } = await toPyTorch(model);
  const dir = folder.replace(/[\\/]+$/, '') || '/';
  writeFileAtomic(`${dir}/model.safetensors`, safetensors, { mkdir: true });
  writeFileAtomic(`${dir}/model.py`, new TextEncoder().encode(source));
}

/** Keys a PyTorch state dict may hold that wgnn has no tensor for: batch norm's counter, nanoGPT's mask buffer. */
const TORCH_ONLY = /(^|\.)num_batches_tracked$|(^|\.)attn\.bias$|(^|\.)attn\.masked_bias$/;

/**
 * Loads a PyTorch state dict saved as safetensors (torch.nn's names and layouts, as `toPyTorch` writes them) into
 * `model`, which must have the same architecture and be built. Every tensor is checked before any is replaced: a
 * StateDictError names each missing, unexpected and mis-shaped key. Float dtypes are converted to float32.
 */
export async function loadPyTorch(model: Sequential, bytes: Uint8Array): Promise<void> {
  const plan = torchPlan(model);
  if (!(bytes instanceof Uint8Array))
    throw new ArgumentError(
      `loadPyTorch: expected the bytes of a safetensors file (Uint8Array), got ${Object.prototype.toString.call(bytes)}`,
    );
  const file = parseSafetensors(bytes);
  const mine = new Map(model.namedTensors());
  const missing: string[] = [];
  const misshaped: string[] = [];
  const ready: [string, Float32Array, readonly number[]][] = [];
  const wanted = new Set<string>();
  for (const e of plan.entries) {
    wanted.add(e.torch);
    const t = mine.get(e.wgnn);
    if (!t) throw new ArgumentError(`loadPyTorch: the model has no tensor ${e.wgnn} (is it built?)`);
    const got: LoadedTensor | undefined = file.tensors.get(e.torch);
    const { shape, from } = placement(e.layout, t.shape);
    if (!got) missing.push(`${e.torch} [${shape}]`);
    else if (got.dtype !== 'float32' || got.shape.join() !== shape.join())
      misshaped.push(`${e.torch}: ${got.stored} [${got.shape}], expected float [${shape}]`);
    else if (firstNonFinite(got.data) >= 0) {
      const i = firstNonFinite(got.data);
      misshaped.push(`${e.torch}: ${got.data[i]} at index ${i}, expected finite values`);
    } else {
      const src = got.data as Float32Array;
      const data = from ? new Float32Array(src.length) : Float32Array.from(src);
      if (from) for (let i = 0; i < from.length; i++) data[from[i]!] = src[i]!;
      ready.push([e.wgnn, data, t.shape]);
    }
  }
  for (const key of Object.keys(plan.tied)) wanted.add(key);
  const unexpected = [...file.tensors.keys()].filter((k) => !wanted.has(k) && !TORCH_ONLY.test(k));
  for (const [key, stored] of Object.entries(plan.tied)) {
    const a = file.tensors.get(key);
    const b = file.tensors.get(stored);
    if (a && b && (a.shape.join() !== b.shape.join() || a.data.some((v, i) => !Object.is(v, b.data[i]))))
      misshaped.push(`${key}: differs from ${stored}, to which the model ties it`);
  }
  if (missing.length + unexpected.length + misshaped.length > 0)
    throw new StateDictError('loadPyTorch', missing, unexpected, misshaped);
  for (const [name, data, shape] of ready) {
    const old = mine.get(name)!;
    const t = tensor(data, [...shape]);
    t.requiresGrad = old.requiresGrad;
    model.setTensor(name, keep(t));
    old.dispose();
  }
}
