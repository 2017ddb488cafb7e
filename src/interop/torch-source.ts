// The fixed part of the model.py that `toPyTorch` writes: imports, the modules a wgnn layer needs beyond torch.nn's
// own (TF-style asymmetric padding, channels-last layers on NCHW images, nanoGPT's transformer blocks), and the
// safetensors reader/writer used where the `safetensors` package is not installed (Debian has none).

/** Python source placed before the generated model class. */
export const PRELUDE = `import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Conv2dPad(nn.Conv2d):
    """Conv2d after zero padding (left, right, top, bottom): TF's 'same' puts the odd pixel at the bottom/right."""

    def __init__(self, *args, pad, **kwargs):
        super().__init__(*args, **kwargs)
        self.pad = pad

    def forward(self, x):
        return super().forward(F.pad(x, self.pad))


class MaxPool2dPad(nn.Module):
    """Max pooling over windows that may overhang the image (left, right, top, bottom): the overhang is ignored."""

    def __init__(self, kernel_size, stride, pad):
        super().__init__()
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad

    def forward(self, x):
        return F.max_pool2d(F.pad(x, self.pad, value=-math.inf), self.kernel_size, self.stride)


class AvgPool2dPad(nn.Module):
    """Average pooling over windows that may overhang the image; the overhang is not counted (as Keras)."""

    def __init__(self, kernel_size, stride, pad):
        super().__init__()
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad

    def forward(self, x):
        ones = torch.ones_like(x[:1, :1])
        total = F.avg_pool2d(F.pad(x, self.pad), self.kernel_size, self.stride)
        count = F.avg_pool2d(F.pad(ones, self.pad), self.kernel_size, self.stride)
        return total / count


class GlobalAvgPool2d(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


class Elementwise(nn.Module):
    """One of torch's elementwise functions by name (exp, log, neg, sqrt, square, abs)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return getattr(torch, self.fn)(x)


class LinearChannels(nn.Linear):
    """A Linear over the channels of an NCHW image (wgnn's Dense sees the last axis of NHWC)."""

    def forward(self, x):
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)


class LayerNormChannels(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW image."""

    def forward(self, x):
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)


class BatchNormLast(nn.BatchNorm1d):
    """BatchNorm1d over the last axis of [N, T, D] (torch's BatchNorm1d normalises axis 1)."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class TokenAndPositionEmbedding(nn.Module):
    def __init__(self, vocab_size, block_size, dim, dropout):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, dim)
        self.wpe = nn.Embedding(block_size, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, idx):
        pos = torch.arange(idx.shape[1], device=idx.device)
        return self.drop(self.wte(idx) + self.wpe(pos))


class CausalSelfAttention(nn.Module):
    """nanoGPT's names: c_attn is the fused [q | k | v] projection, c_proj the output projection."""

    def __init__(self, dim, heads, causal, dropout, resid_dropout=0.0):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(resid_dropout)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // self.heads))
        if self.causal:
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            att = att.masked_fill(~mask, float("-inf"))
        att = self.attn_dropout(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, d)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, dim, hidden, activation, dropout):
        super().__init__()
        self.c_fc = nn.Linear(dim, hidden)
        self.gelu = nn.GELU(approximate="tanh" if activation == "gelu_tanh" else "none")
        self.c_proj = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """A pre-LN transformer block with nanoGPT's names (ln_1, attn, ln_2, mlp)."""

    def __init__(self, dim, heads, causal, dropout, activation, epsilon, hidden):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=epsilon)
        self.attn = CausalSelfAttention(dim, heads, causal, dropout, dropout)
        self.ln_2 = nn.LayerNorm(dim, eps=epsilon)
        self.mlp = MLP(dim, hidden, activation, dropout)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class LMHead(nn.Module):
    """logits = x @ weight.T without bias; weight [V, D] is the token table when tied."""

    def __init__(self, dim, vocab_size):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(vocab_size, dim))

    def forward(self, x):
        return x @ self.weight.t()


_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I32": np.int32, "I64": np.int64, "U8": np.uint8}


def read_safetensors(path):
    """A state dict from a safetensors file (the safetensors package where installed, else numpy)."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        load_file = None
    if load_file is not None:
        return load_file(path)
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        start, end = info["data_offsets"]
        arr = np.frombuffer(data, dtype, (end - start) // dtype.itemsize, 8 + n + start)
        out[key] = torch.from_numpy(arr.astype(dtype.newbyteorder("=")).reshape(info["shape"]))
    return out


def save_safetensors(state_dict, path):
    """Writes a state dict as safetensors (float32, int64 as stored), one copy of each tied tensor."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        save_file = None
    seen, tensors = {}, {}
    for key, t in state_dict.items():
        ptr = t.data_ptr()
        if ptr in seen:
            continue
        seen[ptr] = key
        tensors[key] = t.detach().contiguous().cpu()
    if save_file is not None:
        save_file(tensors, path)
        return
    names = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int32: "I32"}
    header, blobs, offset = {}, [], 0
    for key, t in tensors.items():
        blob = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[key] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
`;

/** Python source placed after the model class: `load(folder)`. */
export const LOADER = `

def load(folder="."):
    """The model with the weights of folder/model.safetensors (train mode, as torch builds it; call .eval())."""
    model = Model()
    state = read_safetensors(os.path.join(folder, "model.safetensors"))
    for key, tied in TIED.items():
        state.setdefault(key, state[tied])
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, torch.zeros_like(value))
    model.load_state_dict(state, strict=True)
    return model
`;
