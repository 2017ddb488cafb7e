#!/usr/bin/env python3
"""Test models for wgnn's ONNX import, built with PyTorch and written by torch.onnx.export (opset 17).

Run with Debian's /usr/bin/python3 (python3-torch 1.13, python3-onnx):  onnx_models.py OUTDIR
Writes OUTDIR/{mlp,cnn,resnet,gpt}.onnx, each with a batch axis that may vary, and prints the opset used; and files an
importer must refuse (OUTDIR/bad_*.onnx, made with onnx.helper, unchecked): an unsupported operator, an unsupported
attribute, a cycle, an input nothing produces, an initializer claiming 2^40 elements, dims that overflow int64
products, external data, raw data shorter than the dims say. Weights are
drawn from a fixed seed; batch-norm statistics and norm parameters are drawn too, so inference-mode BN is exercised.
"""
import os
import warnings
import sys

import torch
from torch import nn

OPSET = 17


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 24), nn.Tanh(), nn.Linear(24, 10))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    """wgnn's seed CNN: conv 3x3 32 relu, maxpool 2, conv 3x3 64 relu, maxpool 2, flatten, dense 128 relu, dense 10."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3)
        self.c2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(64 * 5 * 5, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.c2(x)), 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class ResNet(nn.Module):
    """A stem conv, one residual block (conv-bn-relu-conv-bn + skip), global average pool, linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(16)
        self.c1 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 16, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn0(self.stem(x)))
        h = torch.relu(self.bn1(self.c1(x)))
        x = torch.relu(self.bn2(self.c2(h)) + x)
        x = nn.functional.adaptive_avg_pool2d(self.pool(x), 1)
        return self.fc(torch.flatten(x, 1))


class Block(nn.Module):
    def __init__(self, d, heads, block):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.register_buffer("mask", torch.tril(torch.ones(block, block)).view(1, 1, block, block))

    def attn(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        k = k.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        v = v.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / (k.size(-1) ** 0.5))
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        y = torch.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """A character GPT: token and position embeddings, causal self-attention blocks, a final LayerNorm and a head."""

    def __init__(self, vocab=29, block=16, d=32, heads=2, layers=2):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(block, d)
        self.blocks = nn.Sequential(*[Block(d, heads, block) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        T = idx.size(1)
        pos = torch.arange(0, T, dtype=torch.long).unsqueeze(0)
        return self.head(self.ln_f(self.blocks(self.wte(idx) + self.wpe(pos))))


def nontrivial_norms(model):
    """Batch-norm statistics and all norm parameters drawn, not 0/1: torch would otherwise store the equal LayerNorm
    parameters once and tie them in the file."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.LayerNorm):
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=g) * 0.4 - 0.2)
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    models = {
        "mlp": (MLP(), torch.randn(2, 20)),
        "cnn": (CNN(), torch.rand(2, 1, 28, 28)),
        "resnet": (ResNet(), torch.rand(2, 3, 12, 12)),
        "gpt": (GPT(), torch.randint(0, 29, (2, 16))),
    }
    for name, (model, x) in models.items():
        nontrivial_norms(model)
        model.eval()
        torch.onnx.export(
            model,
            (x,),
            os.path.join(out, f"{name}.onnx"),
            opset_version=OPSET,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            do_constant_folding=True,
            # PRESERVE keeps BatchNormalization nodes (EVAL would fold them into the convolutions' weights).
            training=torch.onnx.TrainingMode.PRESERVE,
        )
    print(OPSET)


def hostile(out):
    from onnx import TensorProto, helper

    def model(nodes, inits=(), name="bad"):
        graph = helper.make_graph(
            nodes,
            name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
            initializer=list(inits),
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])

    def raw(name, dims, data=b""):
        t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
        t.raw_data = data
        return t

    ext = raw("w", [4])
    ext.data_location = TensorProto.EXTERNAL
    ext.external_data.add(key="location", value="weights.bin")
    files = {
        "op": model([helper.make_node("Relu", ["x"], ["h"], name="act"), helper.make_node("Hardmax", ["h"], ["y"], name="hard")]),
        "attr": model([helper.make_node("LeakyRelu", ["x"], ["h"], name="leaky"), helper.make_node("Softmax", ["h"], ["y"], name="sm", axis=1, foo=3)]),
        "cycle": model([helper.make_node("Relu", ["x", "b"], ["a"], name="n1"), helper.make_node("Relu", ["a"], ["b"], name="n2"), helper.make_node("Relu", ["b"], ["y"], name="n3")]),
        "unknown": model([helper.make_node("Add", ["x", "nowhere"], ["y"], name="add")]),
        "huge": model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [raw("w", [1 << 20, 1 << 20])]),
        "overflow": model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [raw("w", [1 << 62, 1 << 62, 4])]),
        "external": model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [ext]),
        "short": model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [raw("w", [4], b"\0" * 12)]),
    }
    for name, m in files.items():
        with open(os.path.join(out, f"bad_{name}.onnx"), "wb") as f:
            f.write(m.SerializeToString())


if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=UserWarning)  # torch.onnx advice on constant folding, tracer notes
    with torch.no_grad():
        main(sys.argv[1])
    hostile(sys.argv[1])
