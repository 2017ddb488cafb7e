#!/usr/bin/python3
"""PyTorch oracle for wgnn's GPT: builds nanoGPT's GPT from a wgnn-saved safetensors model (its `gpt` metadata and
weights), then computes logits, trains on the batches wgnn trained on, or exports a nanoGPT state dict.

Run with the system Python (Debian's python3-torch 1.13 and numpy; safetensors is read and written here, with numpy):

    /usr/bin/python3 scripts/gpt_torch.py [--threads N] logits --model M.safetensors --x X.safetensors
        [--dtype float32|float64] [--out L.safetensors]
    /usr/bin/python3 scripts/gpt_torch.py [--threads N] train --model M.safetensors --batches B.safetensors
        (--lr-from-file | --lr LR) --beta1 B1 --beta2 B2 --eps EPS --weight-decay WD --clip C
        [--dtype float32|float64] [--eval-every N] [--seed S] [--out W.safetensors]
    /usr/bin/python3 scripts/gpt_torch.py [--threads N] export --model M.safetensors --out model.pt
        [--dtype float32|float64] [--check]

Each prints one JSON object on stdout when it is done (progress goes to stderr); a file it cannot use, or a training
loss that turns NaN or infinite, exits with status 2 and a message on stderr naming what is wrong. Tested by scripts/gpt_torch_selftest.py; users' guide:
docs/gpt-pytorch.md. Speed: Debian's torch calls the system libblas.so.3, and the reference BLAS (libblas3) makes a
step of the 4-layer d=128 T=128 batch-32 GPT take ~8 s; with libopenblas0-pthread installed, ~0.5 s (float32).

Files (safetensors; wgnn's layout is GPT_SPEC's, kernels stored Keras-style [in, out]):
- model: the tensors below and metadata `gpt` = JSON {"vocabSize","blockSize","layers","heads","dim","dropout",
  "tieWeights","activation" ("gelu_tanh" | "gelu"),"epsilon"}; F32 or F64 weights.
- x (logits): `x` int32 [B, T] token ids. Output `logits` [B, T, V] in the run's dtype.
- batches (train): `x`, `y` int32 [S, B, T] (step s trains on x[s] -> y[s]), `lr` float32 [S] (step s's learning
  rate, with --lr-from-file), optional `val_x`, `val_y` int32 [E, B, T] (evaluation batches).
- train --out: the final weights under the wgnn names and layouts, F32 or F64 as the run, with the input's metadata.

Name table, for i = 1..L (wgnn name [shape] -> nanoGPT name; "T" = stored transposed, Linear keeps [out, in]):
    layers.0.tokens               [V, D]          -> transformer.wte.weight
    layers.0.positions            [blockSize, D]  -> transformer.wpe.weight
    layers.{i}.ln1.gamma / .beta  [D]             -> transformer.h.{i-1}.ln_1.weight / .bias
    layers.{i}.attn.qkv.kernel    [D, 3D]       T -> transformer.h.{i-1}.attn.c_attn.weight [3D, D]
    layers.{i}.attn.qkv.bias      [3D]            -> transformer.h.{i-1}.attn.c_attn.bias
    layers.{i}.attn.out.kernel    [D, D]        T -> transformer.h.{i-1}.attn.c_proj.weight
    layers.{i}.attn.out.bias      [D]             -> transformer.h.{i-1}.attn.c_proj.bias
    layers.{i}.ln2.gamma / .beta  [D]             -> transformer.h.{i-1}.ln_2.weight / .bias
    layers.{i}.fc.kernel          [D, 4D]       T -> transformer.h.{i-1}.mlp.c_fc.weight [4D, D]
    layers.{i}.fc.bias            [4D]            -> transformer.h.{i-1}.mlp.c_fc.bias
    layers.{i}.proj.kernel        [4D, D]       T -> transformer.h.{i-1}.mlp.c_proj.weight [D, 4D]
    layers.{i}.proj.bias          [D]             -> transformer.h.{i-1}.mlp.c_proj.bias
    layers.{L+1}.gamma / .beta    [D]             -> transformer.ln_f.weight / .bias
    layers.{L+2}.kernel           [D, V]        T -> lm_head.weight [V, D]   (untied only; tied: lm_head.weight IS
                                                                              transformer.wte.weight)
qkv columns are [q | k | v], each D wide and split into H heads of D/H, as nanoGPT's c_attn(x).split(D, dim=2).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class OracleError(Exception):
    """A model, token or batches file this script cannot use (the message names the file, what is wrong and what was
    expected), or a training run that cannot go on."""


# ---- safetensors: an 8-byte little-endian header length N, N bytes of JSON, then the raw little-endian data.

MAX_HEADER_BYTES = 100_000_000  # the reference implementation's cap, as wgnn's reader
READ_DTYPES: Dict[str, np.dtype] = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
}
WRITE_DTYPES: Dict[np.dtype, str] = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int32"): "I32"}

Tensors = Dict[str, np.ndarray]
Metadata = Dict[str, str]


def _is_number(v: object, kind: type) -> bool:
    """v is an int (kind int) or an int or float (kind float) and not a bool: JSON's true is no count."""
    return isinstance(v, (int, kind)) and not isinstance(v, bool)


def _is_count(v: object) -> bool:
    return _is_number(v, int) and v >= 0


def _no_duplicate_keys(pairs: List[Tuple[str, object]]) -> Dict[str, object]:
    # NOTE: json.loads keeps the last of duplicate keys silently; two readers taking different copies would see
    # different tensors, so a duplicate is refused (wgnn's reader does the same).
    out: Dict[str, object] = {}
    for k, v in pairs:
        if k in out:
            raise OracleError(f"duplicate key {k!r} in the header")
        out[k] = v
    return out


def read_safetensors(path: str) -> Tuple[Tensors, Metadata]:
    """Reads a safetensors file into native-endian numpy arrays (F32, F64, I32, I64) and its `__metadata__` map,
    checking the header length, JSON, each entry's dtype, shape and data_offsets, and that the tensors tile the data
    exactly (no overlap, gap or trailing bytes). Raises OracleError naming the file and the problem."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise OracleError(f"{path}: cannot read it ({e.strerror})") from None
    if len(data) < 8:
        raise OracleError(f"{path}: {len(data)} bytes; a safetensors file has at least 8 (the header length)")
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > MAX_HEADER_BYTES or 8 + n > len(data):
        raise OracleError(
            f"{path}: header length {n} is over the {MAX_HEADER_BYTES}-byte cap or runs past the end of the "
            f"{len(data)}-byte file"
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except UnicodeDecodeError:
        raise OracleError(f"{path}: the {n}-byte header is not UTF-8") from None
    except OracleError as e:
        raise OracleError(f"{path}: {e}") from None
    except ValueError as e:
        raise OracleError(f"{path}: the {n}-byte header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise OracleError(f"{path}: the header is a JSON {type(header).__name__}; expected an object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise OracleError(f"{path}: __metadata__ must be an object of strings")
    buffer_len = len(data) - 8 - n
    index: List[Tuple[int, int, str, str, List[int]]] = []  # (begin, end, name, dtype, shape)
    for name, info in header.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(info, dict):
            raise OracleError(f"{where} is {info!r}; expected an object {{dtype, shape, data_offsets}}")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in READ_DTYPES:
            raise OracleError(f"{where}: dtype {dtype!r} is not one this script reads ({', '.join(READ_DTYPES)})")
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise OracleError(f"{where}: shape {shape!r} must be a list of non-negative integers")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
            raise OracleError(f"{where}: data_offsets {offsets!r} must be two non-negative integers [begin, end]")
        begin, end = offsets
        need = math.prod(shape) * READ_DTYPES[dtype].itemsize
        if not begin <= end <= buffer_len or end - begin != need:
            raise OracleError(
                f"{where}: data_offsets [{begin}, {end}] must lie in the {buffer_len}-byte buffer and span the "
                f"{need} bytes of shape {shape} in {dtype}"
            )
        index.append((begin, end, name, dtype, shape))
    index.sort()
    cursor = 0
    for begin, end, name, _, _ in index:
        if begin != cursor:
            raise OracleError(
                f"{path}: tensor {name!r} begins at byte {begin} of the buffer; expected {cursor}, where the previous "
                f"tensor ends (an overlap or a gap)"
            )
        cursor = end
    if cursor != buffer_len:
        raise OracleError(f"{path}: bytes [{cursor}, {buffer_len}) at the end of the buffer belong to no tensor")
    tensors: Tensors = {}
    for begin, end, name, dtype, shape in index:
        stored = READ_DTYPES[dtype]
        flat = np.frombuffer(data, dtype=stored, count=math.prod(shape), offset=8 + n + begin) if end > begin else []
        tensors[name] = np.asarray(flat, dtype=stored.newbyteorder("=")).reshape(shape).copy()
    return tensors, metadata


def write_safetensors(path: str, tensors: Tensors, metadata: Optional[Metadata] = None) -> None:
    """Writes F32, F64 and I32 tensors as wgnn does: names sorted, `__metadata__` first with sorted keys, compact
    JSON padded with spaces to a multiple of 8 bytes, data contiguous little-endian. Atomic (a temp file renamed)."""
    parts: List[str] = []
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError("write_safetensors: metadata must map strings to strings")
        parts.append('"__metadata__":' + _compact(dict(sorted(metadata.items()))))
    blobs: List[bytes] = []
    offset = 0
    for name in sorted(tensors):
        a = tensors[name]
        if a.dtype not in WRITE_DTYPES:
            raise ValueError(f"write_safetensors: tensor {name!r} is {a.dtype}; expected float32, float64 or int32")
        blob = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
        entry = {"dtype": WRITE_DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        parts.append(f"{_compact(name)}:{_compact(entry)}")
        blobs.append(blob)
        offset += len(blob)
    header = ("{" + ",".join(parts) + "}").encode("utf-8")
    header += b" " * (-len(header) % 8)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def _compact(v: object) -> str:
    # JSON as JavaScript's JSON.stringify writes it, so a file written here has the bytes wgnn would write
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


# ---- the GPT config and the name table

ACTIVATIONS = {"gelu_tanh": "tanh", "gelu": "none"}  # wgnn's activation -> nn.GELU(approximate=...)


@dataclass(frozen=True)
class GptConfig:
    """The `gpt` metadata of a wgnn model (GPT_SPEC): nanoGPT's hyperparameters plus the GELU form and LN epsilon."""

    vocab_size: int
    block_size: int
    layers: int
    heads: int
    dim: int
    dropout: float
    tie_weights: bool
    activation: str
    epsilon: float

    @staticmethod
    def from_metadata(metadata: Metadata, path: str) -> "GptConfig":
        if "gpt" not in metadata:
            raise OracleError(f"{path}: no `gpt` entry in the metadata; expected a model saved from wgnn's nn.gpt()")
        try:
            g = json.loads(metadata["gpt"])
        except ValueError as e:
            raise OracleError(f"{path}: metadata `gpt` is not JSON ({e})") from None
        keys = ["vocabSize", "blockSize", "layers", "heads", "dim", "dropout", "tieWeights", "activation", "epsilon"]
        if not isinstance(g, dict) or set(g) != set(keys):
            got = sorted(g) if isinstance(g, dict) else type(g).__name__
            raise OracleError(f"{path}: metadata `gpt` has keys {got}; expected exactly {keys}")
        bad = f"{path}: metadata `gpt` {g}:"
        if not all(_is_number(g[k], int) and g[k] > 0 for k in keys[:5]) or g["dim"] % g["heads"] != 0:
            raise OracleError(f"{bad} {keys[:5]} must be positive integers, dim a multiple of heads")
        if not (_is_number(g["dropout"], float) and 0 <= g["dropout"] < 1):
            raise OracleError(f"{bad} dropout must be a number in [0, 1)")
        if not (_is_number(g["epsilon"], float) and g["epsilon"] > 0):
            raise OracleError(f"{bad} epsilon must be a number > 0")
        if not isinstance(g["tieWeights"], bool) or g["activation"] not in ACTIVATIONS:
            raise OracleError(f"{bad} tieWeights must be a boolean, activation one of {list(ACTIVATIONS)}")
        return GptConfig(
            vocab_size=g["vocabSize"],
            block_size=g["blockSize"],
            layers=g["layers"],
            heads=g["heads"],
            dim=g["dim"],
            dropout=float(g["dropout"]),
            tie_weights=g["tieWeights"],
            activation=g["activation"],
            epsilon=float(g["epsilon"]),
        )

    def model_args(self) -> Dict[str, object]:
        """nanoGPT's GPTConfig arguments for this model (its GELU is exact and its LN epsilon 1e-5: see docs)."""
        return dict(
            n_layer=self.layers,
            n_head=self.heads,
            n_embd=self.dim,
            block_size=self.block_size,
            vocab_size=self.vocab_size,
            dropout=self.dropout,
            bias=True,
        )


class Row(NamedTuple):
    """One tensor: its wgnn name and shape, its nanoGPT name, and whether wgnn stores it transposed ([in, out])."""

    wgnn: str
    shape: Tuple[int, ...]
    nanogpt: str
    transposed: bool


def name_table(c: GptConfig) -> List[Row]:
    """The wgnn <-> nanoGPT names of every tensor of a GPT with config c (the table at the top of this file)."""
    D, L = c.dim, c.layers
    rows = [
        Row("layers.0.tokens", (c.vocab_size, D), "transformer.wte.weight", False),
        Row("layers.0.positions", (c.block_size, D), "transformer.wpe.weight", False),
    ]
    for i in range(1, L + 1):
        w, t = f"layers.{i}.", f"transformer.h.{i - 1}."
        rows += [
            Row(w + "ln1.gamma", (D,), t + "ln_1.weight", False),
            Row(w + "ln1.beta", (D,), t + "ln_1.bias", False),
            Row(w + "attn.qkv.kernel", (D, 3 * D), t + "attn.c_attn.weight", True),
            Row(w + "attn.qkv.bias", (3 * D,), t + "attn.c_attn.bias", False),
            Row(w + "attn.out.kernel", (D, D), t + "attn.c_proj.weight", True),
            Row(w + "attn.out.bias", (D,), t + "attn.c_proj.bias", False),
            Row(w + "ln2.gamma", (D,), t + "ln_2.weight", False),
            Row(w + "ln2.beta", (D,), t + "ln_2.bias", False),
            Row(w + "fc.kernel", (D, 4 * D), t + "mlp.c_fc.weight", True),
            Row(w + "fc.bias", (4 * D,), t + "mlp.c_fc.bias", False),
            Row(w + "proj.kernel", (4 * D, D), t + "mlp.c_proj.weight", True),
            Row(w + "proj.bias", (D,), t + "mlp.c_proj.bias", False),
        ]
    rows += [
        Row(f"layers.{L + 1}.gamma", (D,), "transformer.ln_f.weight", False),
        Row(f"layers.{L + 1}.beta", (D,), "transformer.ln_f.bias", False),
    ]
    if not c.tie_weights:
        rows.append(Row(f"layers.{L + 2}.kernel", (D, c.vocab_size), "lm_head.weight", True))
    return rows


def check_tensors(tensors: Tensors, rows: List[Row], path: str) -> None:
    """Refuses a model whose tensors are not exactly the rows' (missing, extra, wrong shape or not float)."""
    expected = {r.wgnn: r.shape for r in rows}
    problems = [f"missing {n} {list(s)}" for n, s in expected.items() if n not in tensors]
    problems += [f"extra {n} {list(a.shape)}" for n, a in tensors.items() if n not in expected]
    for n, a in tensors.items():
        if n in expected and a.shape != expected[n]:
            problems.append(f"{n} has shape {list(a.shape)}, expected {list(expected[n])}")
        elif n in expected and a.dtype.kind != "f":
            problems.append(f"{n} is {a.dtype}, expected F32 or F64")
    if problems:
        shown = "; ".join(problems[:12]) + (f"; and {len(problems) - 12} more" if len(problems) > 12 else "")
        raise OracleError(f"{path}: the tensors do not match the `gpt` config: {shown}")


# ---- the model: nanoGPT's GPT (bias=True), with the GELU form and LN epsilon from the config


class CausalSelfAttention(nn.Module):
    def __init__(self, c: GptConfig) -> None:
        super().__init__()
        self.heads = c.heads
        self.c_attn = nn.Linear(c.dim, 3 * c.dim)
        self.c_proj = nn.Linear(c.dim, c.dim)
        self.attn_dropout = nn.Dropout(c.dropout)
        self.resid_dropout = nn.Dropout(c.dropout)
        # NOTE: not persistent, so the state dict holds only the weights (nanoGPT keeps this mask as `attn.bias` only
        # on torch < 2.0; docs/gpt-pytorch.md says how to load either way).
        mask = torch.tril(torch.ones(c.block_size, c.block_size, dtype=torch.bool))
        self.register_buffer("mask", mask.view(1, 1, c.block_size, c.block_size), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B,T,D] -> [B,T,D]
        B, T, D = x.shape
        q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in self.c_attn(x).split(D, dim=2))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D // self.heads))  # [B,H,T,T]
        att = att.masked_fill(~self.mask[:, :, :T, :T], float("-inf"))
        att = self.attn_dropout(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, D)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, c: GptConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(c.dim, 4 * c.dim)
        self.gelu = nn.GELU(approximate=ACTIVATIONS[c.activation])
        self.c_proj = nn.Linear(4 * c.dim, c.dim)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, c: GptConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.dim, eps=c.epsilon)
        self.attn = CausalSelfAttention(c)
        self.ln_2 = nn.LayerNorm(c.dim, eps=c.epsilon)
        self.mlp = MLP(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """nanoGPT's GPT, module for module and name for name; forward gives the logits of every position."""

    def __init__(self, c: GptConfig) -> None:
        super().__init__()
        self.config = c
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(c.vocab_size, c.dim),
                wpe=nn.Embedding(c.block_size, c.dim),
                drop=nn.Dropout(c.dropout),
                h=nn.ModuleList([Block(c) for _ in range(c.layers)]),
                ln_f=nn.LayerNorm(c.dim, eps=c.epsilon),
            )
        )
        self.lm_head = nn.Linear(c.dim, c.vocab_size, bias=False)
        if c.tie_weights:
            self.transformer.wte.weight = self.lm_head.weight  # as nanoGPT: one Parameter under both names

    def forward(self, idx: torch.Tensor) -> torch.Tensor:  # idx [B,T] int64 -> logits [B,T,V]
        T = idx.shape[1]
        pos = torch.arange(T, dtype=torch.long)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def load_gpt(path: str, dtype: torch.dtype) -> Tuple[GPT, Metadata]:
    """Builds the GPT of a wgnn model file in `dtype` (F32 weights widen exactly to float64) and its metadata."""
    tensors, metadata = read_safetensors(path)
    c = GptConfig.from_metadata(metadata, path)
    rows = name_table(c)
    check_tensors(tensors, rows, path)
    model = GPT(c).to(dtype)
    with torch.no_grad():
        for r in rows:
            a = tensors[r.wgnn]
            model.get_parameter(r.nanogpt).copy_(torch.from_numpy(a.T if r.transposed else a))
    return model, metadata


def wgnn_tensors(model: GPT) -> Tensors:
    """The model's weights under the wgnn names and layouts, in the model's dtype."""
    out: Tensors = {}
    for r in name_table(model.config):
        a = model.get_parameter(r.nanogpt).detach().cpu().numpy()
        out[r.wgnn] = np.ascontiguousarray(a.T if r.transposed else a)
    return out


def read_tokens(tensors: Tensors, name: str, path: str, ndim: int, c: GptConfig) -> torch.Tensor:
    """An int32/int64 token tensor of rank `ndim` whose ids lie in [0, vocabSize) and last dim fits the block."""
    if name not in tensors:
        raise OracleError(f"{path}: no tensor {name!r}; expected int32 token ids")
    a = tensors[name]
    if a.dtype.kind != "i" or a.ndim != ndim or a.size == 0:
        raise OracleError(f"{path}: {name!r} is {a.dtype} {list(a.shape)}; expected non-empty int32 of rank {ndim}")
    if a.shape[-1] > c.block_size:
        raise OracleError(f"{path}: {name!r} has T = {a.shape[-1]}, over the model's blockSize {c.block_size}")
    bad = np.flatnonzero((a < 0) | (a >= c.vocab_size))
    if bad.size:
        i = np.unravel_index(bad[0], a.shape)
        raise OracleError(f"{path}: {name!r}{list(i)} = {a[i]} is outside the vocabulary [0, {c.vocab_size})")
    return torch.from_numpy(a.astype(np.int64))


# ---- subcommands

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_logits(a: argparse.Namespace) -> Dict[str, object]:
    model, _ = load_gpt(a.model, DTYPES[a.dtype])
    x = read_tokens(read_safetensors(a.x)[0], "x", a.x, 2, model.config)
    model.eval()
    with torch.no_grad():
        logits = model(x).numpy()
    out: Dict[str, object] = {"shape": list(logits.shape), "dtype": a.dtype}
    if a.out:
        write_safetensors(a.out, {"logits": logits})
        out["out"] = a.out
    else:
        out["logits"] = logits.tolist()
    return out


def mean_loss(model: GPT, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy over every eval batch x[e] -> y[e] [E,B,T] (equal sizes: the mean of batch means)."""
    V = model.config.vocab_size
    model.eval()
    with torch.no_grad():
        total = sum(F.cross_entropy(model(x[e]).view(-1, V), y[e].view(-1)).item() for e in range(x.shape[0]))
    model.train()
    return total / x.shape[0]


def cmd_train(a: argparse.Namespace) -> Dict[str, object]:
    torch.manual_seed(a.seed)  # dropout masks only: the weights come from the model file
    model, metadata = load_gpt(a.model, DTYPES[a.dtype])
    c = model.config
    batches, _ = read_safetensors(a.batches)
    x = read_tokens(batches, "x", a.batches, 3, c)
    y = read_tokens(batches, "y", a.batches, 3, c)
    if x.shape != y.shape:
        raise OracleError(f"{a.batches}: x is {list(x.shape)} and y {list(y.shape)}; expected the same [S, B, T]")
    S = x.shape[0]
    if a.lr_from_file:
        lr = batches.get("lr")
        if lr is None or lr.dtype.kind != "f" or lr.shape != (S,):
            got = "absent" if lr is None else f"{lr.dtype} {list(lr.shape)}"
            raise OracleError(f"{a.batches}: `lr` is {got}; expected float [{S}] (one learning rate per step)")
        lrs = [float(v) for v in lr]
    else:
        lrs = [a.lr] * S
    has_val = "val_x" in batches or "val_y" in batches
    if has_val:
        vx = read_tokens(batches, "val_x", a.batches, 3, c)
        vy = read_tokens(batches, "val_y", a.batches, 3, c)
        if vx.shape != vy.shape:
            raise OracleError(f"{a.batches}: val_x is {list(vx.shape)} and val_y {list(vy.shape)}; expected the same")
    elif a.eval_every:
        raise OracleError(f"{a.batches}: --eval-every needs `val_x` and `val_y` int32 [E, B, T]; the file has neither")

    params = list(model.parameters())  # a tied weight once
    opt = torch.optim.AdamW(params, lr=lrs[0], betas=(a.beta1, a.beta2), eps=a.eps, weight_decay=a.weight_decay)
    model.train()
    losses: List[float] = []
    val_steps: List[int] = []
    val_losses: List[float] = []
    train_seconds = 0.0
    every = max(1, S // 20)
    for s in range(S):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x[s]).view(-1, c.vocab_size), y[s].view(-1))
        loss.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(params, a.clip)
        for g in opt.param_groups:
            g["lr"] = lrs[s]
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            raise OracleError(f"step {s + 1}/{S}: the loss is {losses[-1]}; the last losses were {losses[-5:]}")
        train_seconds += time.perf_counter() - t0
        done = s + 1
        if has_val and ((a.eval_every and done % a.eval_every == 0) or done == S):
            val_steps.append(done)
            val_losses.append(mean_loss(model, vx, vy))
            log(f"step {done}/{S}: val loss {val_losses[-1]:.4f}")
        if done % every == 0 or done == S:
            log(f"step {done}/{S}: loss {losses[-1]:.4f} ({train_seconds / done:.3f} s/step)")
    out: Dict[str, object] = {
        "steps": S,
        "dtype": a.dtype,
        "threads": torch.get_num_threads(),
        "seconds_per_step": train_seconds / S,
        "losses": losses,
    }
    if has_val:
        out["val_steps"] = val_steps
        out["val_losses"] = val_losses
    if a.out:
        write_safetensors(a.out, wgnn_tensors(model), metadata)
        out["out"] = a.out
    return out


def cmd_export(a: argparse.Namespace) -> Dict[str, object]:
    model, _ = load_gpt(a.model, DTYPES[a.dtype])
    sd = model.state_dict()  # tied: lm_head.weight and transformer.wte.weight share one storage, as in nanoGPT
    torch.save(sd, a.out)
    out: Dict[str, object] = {
        "out": a.out,
        "model_args": model.config.model_args(),
        "state_dict": {k: list(v.shape) for k, v in sd.items()},
    }
    if a.check:
        fresh = GPT(model.config).to(DTYPES[a.dtype])
        fresh.load_state_dict(torch.load(a.out), strict=True)
        same = all(np.array_equal(u, v) for u, v in zip(wgnn_tensors(model).values(), wgnn_tensors(fresh).values()))
        idx = torch.arange(min(8, model.config.block_size)).remainder(model.config.vocab_size).view(1, -1)
        model.eval()
        fresh.eval()
        with torch.no_grad():
            same = same and torch.equal(model(idx), fresh(idx))
        if not same:
            raise RuntimeError(f"export --check: {a.out} reloaded into a fresh GPT differs from {a.model}")
        out["checked"] = True
    return out


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--model", required=True, help="a wgnn-saved GPT (.safetensors)")
        q.add_argument("--dtype", choices=list(DTYPES), default="float32")

    q = sub.add_parser("logits", help="logits [B,T,V] of x [B,T] (eval mode)")
    common(q)
    q.add_argument("--x", required=True, help="safetensors with `x` int32 [B, T]")
    q.add_argument("--out", help="write `logits` here instead of printing them")

    q = sub.add_parser("train", help="AdamW on the batches, as wgnn trained; per-step losses and final weights")
    common(q)
    q.add_argument("--batches", required=True, help="safetensors with x, y [S,B,T], lr [S], optional val_x, val_y")
    lr = q.add_mutually_exclusive_group(required=True)
    lr.add_argument("--lr-from-file", action="store_true", help="step s uses lr[s] of the batches file")
    lr.add_argument("--lr", type=float, help="one learning rate for every step")
    for flag in ("--beta1", "--beta2", "--eps", "--weight-decay", "--clip"):
        q.add_argument(flag, type=float, required=True)
    q.add_argument("--eval-every", type=int, default=0, help="val loss every N steps (and always at the end)")
    q.add_argument("--seed", type=int, default=0, help="torch's seed (dropout masks)")
    q.add_argument("--out", help="write the final weights here (wgnn names and layouts, the run's dtype)")

    q = sub.add_parser("export", help="torch.save the state dict in nanoGPT's names")
    common(q)
    q.add_argument("--out", required=True, help="the .pt file")
    q.add_argument("--check", action="store_true", help="reload it into a fresh GPT and compare weights and logits")
    a = p.parse_args(argv)
    if a.cmd == "train" and (a.eval_every < 0 or a.clip < 0):
        p.error("--eval-every and --clip must be >= 0")
    return a


def main(argv: List[str]) -> int:
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        result = {"logits": cmd_logits, "train": cmd_train, "export": cmd_export}[a.cmd](a)
    except OracleError as e:
        print(f"gpt_torch.py {a.cmd}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
