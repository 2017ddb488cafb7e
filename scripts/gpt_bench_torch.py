#!/usr/bin/python3
"""PyTorch eager float32 (TF32 off) speed reference for wgnn's transformer benchmark: nanoGPT's GPT (the model class
of scripts/gpt_torch.py, nanoGPT's initialisation) trained with AdamW (lr 1e-3, weight decay 0.1 on every
parameter, as bench/transformer.ts) on seeded random token batches, the loss read back every step as a PyTorch loop
that prints it does. Prints one JSON object (ms per step, tokens/s, losses) and writes it to --out.

    python3 scripts/gpt_bench_torch.py [--layers 12 --heads 12 --dim 768 --block 1024 --batch 8 --vocab 50257]
        [--steps 20] [--warmup 3] [--device cuda|cpu] [--attention sdpa|composed] [--out F.json] [--compare rows.jsonl]
    python3 scripts/gpt_bench_torch.py --tiny      # a 2-layer d=32 model for a few steps: a smoke check on CPU torch

The default shape is GPT-2 small (124M), scripts/bench-device.sh's `transformer/gpt2-124m` case. --compare reads
that run's rows (bench/main.ts --jsonl) and adds wgnn's tokens/s and its share of PyTorch's. Attention: `sdpa` is
nanoGPT's path on torch >= 2 (F.scaled_dot_product_attention, causal); `composed` is gpt_torch.py's (the T×T
scores materialised); the default is sdpa where torch has it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import types
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_torch import GPT, GptConfig  # noqa: E402  (the oracle's nanoGPT model, module for module)

LR, BETAS, EPS, WEIGHT_DECAY = 1e-3, (0.9, 0.999), 1e-8, 0.1


def sdpa_forward(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:  # x [B,T,D] -> [B,T,D]
    """gpt_torch.CausalSelfAttention.forward through F.scaled_dot_product_attention, as nanoGPT's flash path."""
    B, T, D = x.shape
    q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in self.c_attn(x).split(D, dim=2))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B,H,T,D/H]
    return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, D))


def build(c: GptConfig, attention: str, device: torch.device, seed: int) -> GPT:
    """The GPT with nanoGPT's initialisation: N(0, 0.02²) weights and embeddings, zero biases, the two residual
    projections at 0.02/√(2L)."""
    torch.manual_seed(seed)
    model = GPT(c)
    for name, p in model.named_parameters():
        if name.endswith(".bias"):
            torch.nn.init.zeros_(p)
        elif p.dim() == 2:
            std = 0.02 / math.sqrt(2 * c.layers) if name.endswith("c_proj.weight") else 0.02
            torch.nn.init.normal_(p, 0.0, std)
    if attention == "sdpa":
        for block in model.transformer.h:
            block.attn.forward = types.MethodType(sdpa_forward, block.attn)
    return model.to(device)


def batches(c: GptConfig, B: int, n: int, device: torch.device, seed: int) -> List[tuple]:
    """n batches of ids drawn skewed towards small ones (floor(min(V, 256)·u³), as bench/transformer.ts without its
    fortunes), so the loss falls; y is x shifted by one."""
    g = torch.Generator().manual_seed(seed)
    top = min(c.vocab_size, 256)
    out = []
    for _ in range(n):
        seq = (top * torch.rand(B, c.block_size + 1, generator=g) ** 3).long()
        out.append((seq[:, :-1].contiguous().to(device), seq[:, 1:].contiguous().to(device)))
    return out


def wgnn_row(path: str) -> Optional[Dict[str, object]]:
    """wgnn's gpt2-124m row from a bench --jsonl file, if it has one."""
    try:
        with open(path) as f:
            for line in f:
                rec = json.loads(line) if line.strip() else {}
                row = rec.get("row") or {}
                if rec.get("type") == "row" and row.get("family") == "transformer" and row.get("id") == "gpt2-124m":
                    return row
    except OSError:
        return None
    return None


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--block", type=int, default=1024)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--steps", type=int, default=20, help="timed steps, after the warm-up")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--attention", choices=["sdpa", "composed"])
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--tiny", action="store_true", help="2 layers, 2 heads, d=32, T=16, B=4, V=113, 4 steps")
    p.add_argument("--out", help="write the JSON here too")
    p.add_argument("--compare", help="bench rows (--jsonl) holding wgnn's transformer/gpt2-124m row")
    a = p.parse_args(argv)
    if a.tiny:
        a.layers, a.heads, a.dim, a.block, a.batch, a.vocab, a.steps, a.warmup = 2, 2, 32, 16, 4, 113, 4, 1
    attention = a.attention or ("sdpa" if hasattr(F, "scaled_dot_product_attention") else "composed")
    device = torch.device(a.device)
    # float32 throughout: no TF32 in matmuls or convolutions (PyTorch's default for matmuls, set anyway).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if hasattr(torch, "set_float32_matmul_precision"):
        torch.set_float32_matmul_precision("highest")

    c = GptConfig(a.vocab, a.block, a.layers, a.heads, a.dim, 0.0, True, "gelu_tanh", 1e-5)
    model = build(c, attention, device, a.seed)
    params = list(model.parameters())  # the tied table once
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY)
    data = batches(c, a.batch, 8, device, a.seed)
    model.train()
    losses: List[float] = []
    times: List[float] = []
    for s in range(a.warmup + a.steps):
        x, y = data[s % len(data)]
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x).view(-1, c.vocab_size), y.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())  # waits for the step, as reading the loss every step does
        if s >= a.warmup:
            times.append((time.perf_counter() - t0) * 1000)
        if not math.isfinite(losses[-1]):
            print(f"gpt_bench_torch.py: step {s + 1}: the loss is {losses[-1]}", file=sys.stderr)
            return 2
    ms = statistics.median(times)
    out: Dict[str, object] = {
        "engine": "pytorch eager float32",
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "attention": attention,
        "tf32": False,
        "model": dict(layers=a.layers, heads=a.heads, dim=a.dim, block_size=a.block, vocab_size=a.vocab),
        "params": sum(q.numel() for q in params),
        "batch": a.batch,
        "adamw": dict(lr=LR, betas=list(BETAS), eps=EPS, weight_decay=WEIGHT_DECAY),
        "steps": a.steps,
        "ms_per_step": dict(median=ms, min=min(times), max=max(times)),
        "tokens_per_s": a.batch * a.block * 1000 / ms,
        "losses": losses,
    }
    if a.compare:
        row = wgnn_row(a.compare)
        wgnn = (row or {}).get("engines", {}).get("wgnn", {})
        tps = (wgnn.get("train") or {}).get("tokensPerSec")
        if tps is None:
            out["wgnn"] = f"no wgnn transformer/gpt2-124m result in {a.compare} ({wgnn.get('why', 'no row')})"
        else:
            out["wgnn"] = dict(tokens_per_s=tps, status=wgnn.get("status"), share_of_pytorch=tps / out["tokens_per_s"])
    print(json.dumps(out))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
    summary = (
        f"PyTorch {torch.__version__} eager f32 ({attention} attention) on {out['device']}: GPT L{a.layers} H{a.heads} "
        f"d{a.dim} T{a.block} V{a.vocab} B{a.batch}: {ms:.1f} ms/step, {out['tokens_per_s']:.0f} tokens/s, "
        f"loss {losses[0]:.3f} -> {losses[-1]:.3f}"
    )
    if isinstance(out.get("wgnn"), dict):
        w = out["wgnn"]
        summary += f"; wgnn {w['tokens_per_s']:.0f} tokens/s = {100 * w['share_of_pytorch']:.0f}% of PyTorch"
    elif a.compare:
        summary += f"; {out['wgnn']}"
    print(summary, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
