#!/usr/bin/env python3
"""PyTorch's side of a model exported by `wgnn export --to pytorch` (the folder's model.py and model.safetensors).

Run with Debian's /usr/bin/python3 (python3-torch 1.13, numpy; no safetensors package needed). Inputs and outputs are
raw little-endian float32 / int32 files in wgnn's layouts (images NHWC), so the caller needs no numpy.

  forward   --folder F --x x.bin --shape N,H,W,C [--int] --out y.bin [--logits]   the model's output
  randomize --folder F --seed S --out state.safetensors                           a new state dict (PyTorch in)
  ddp       --folder F --x x.bin --shape ... --y labels.bin --lr 0.1              under torchrun: one DDP step
  ddp       --folder F --idx mnist.idx --count 512                                 the same on MNIST rows

`ddp` trains with the cross-entropy of the logits against int32 labels, each process on its half of the batch (gloo),
and prints (and writes to --out) {"world", "before", "after"}: the loss on the whole batch before and after the step.
With Debian's torch 1.13 on Python 3.11, torchrun needs `--redirects 2 --tee 1` (its default "0" fails to parse).
"""
import argparse
import importlib.util
import json
import os
import struct

import numpy as np
import torch


def exported(folder):
    spec = importlib.util.spec_from_file_location("wgnn_export", os.path.join(folder, "model.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def read_input(path, shape, is_int):
    x = torch.from_numpy(np.fromfile(path, np.int32 if is_int else np.float32).reshape(shape))
    if x.dim() == 4:
        x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW
    return x.long() if is_int else x


def to_wgnn(y):
    return (y.permute(0, 2, 3, 1) if y.dim() == 4 else y).contiguous().numpy().astype("<f4")


def idx_rows(path, count):
    """Images [N, 1, 28, 28] (bytes / 255) and labels of `count` rows spread evenly over a ubyte IDX [rows, 785]
    (label, then 784 pixels), as wgnn's MNIST cache (node_modules/.cache/wgnn/mnist-*.idx) holds them, by digit."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x00\x00\x08\x02":
        raise SystemExit(f"{path}: not a 2-axis ubyte IDX file")
    rows, width = struct.unpack(">II", data[4:12])
    if width != 785 or count > rows:
        raise SystemExit(f"{path}: [{rows}, {width}], expected [>= {count}, 785]")
    table = np.frombuffer(data, np.uint8, rows * width, 12).reshape(rows, width)[:: rows // count][:count]
    x = torch.from_numpy(table[:, 1:].astype(np.float32) / 255).reshape(count, 1, 28, 28)
    return x, torch.from_numpy(table[:, 0].astype(np.int64))


def forward(args):
    model = exported(args.folder).load(args.folder).eval()
    x = read_input(args.x, args.shape, args.int)
    with torch.no_grad():
        y = model(x, logits=args.logits)
    to_wgnn(y).tofile(args.out)
    print(json.dumps({"shape": list(y.shape)}))


def randomize(args):
    mod = exported(args.folder)
    model = mod.Model()
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if key.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.3)
    mod.save_safetensors(model.state_dict(), args.out)
    print(json.dumps({"keys": list(model.state_dict().keys())}))


def ddp(args):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = exported(args.folder).load(args.folder)
    if args.idx:
        x, y = idx_rows(args.idx, args.count)
    else:
        x = read_input(args.x, args.shape, args.int)
        y = torch.from_numpy(np.fromfile(args.y, np.int32)).long()
    loss_fn = torch.nn.CrossEntropyLoss()

    def whole_loss():
        model.eval()
        with torch.no_grad():
            return loss_fn(model(x, logits=True), y).item()

    before = whole_loss()
    model.train()
    net = DistributedDataParallel(model)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr)
    part = slice(rank * len(x) // world, (rank + 1) * len(x) // world)
    opt.zero_grad()
    loss_fn(net(x[part], logits=True), y[part]).backward()
    opt.step()
    after = whole_loss()
    if rank == 0:
        result = json.dumps({"world": world, "before": before, "after": after})
        print(result)
        if args.out:
            with open(args.out, "w") as f:
                f.write(result)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["forward", "randomize", "ddp"])
    p.add_argument("--folder", required=True)
    p.add_argument("--x")
    p.add_argument("--shape", type=lambda s: [int(v) for v in s.split(",")])
    p.add_argument("--int", action="store_true", help="x holds int32 token ids")
    p.add_argument("--y")
    p.add_argument("--out")
    p.add_argument("--logits", action="store_true")
    p.add_argument("--idx", help="ddp: MNIST rows from this IDX file instead of --x/--y")
    p.add_argument("--count", type=int, default=512, help="ddp: rows of --idx")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    {"forward": forward, "randomize": randomize, "ddp": ddp}[args.command](args)


if __name__ == "__main__":
    main()
