#!/usr/bin/python3
"""Self-test of scripts/gpt_torch.py without wgnn: random GPT files laid out as GPT_SPEC says (names and shapes
written out here, not taken from the script), a float64 numpy forward of the wgnn layout as the reference, and the
CLI run as the lead runs it. Run: /usr/bin/python3 scripts/gpt_torch_selftest.py (about 20 s).
"""
from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import unittest
from typing import Dict, List, Tuple

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ left in scripts/
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpt_torch as gt  # noqa: E402

V, BLOCK, L, H, D = 11, 9, 2, 2, 16  # vocab not a multiple of 4, head dim 8


def gpt_meta(tie: bool, activation: str = "gelu_tanh", epsilon: float = 1e-5) -> Dict[str, str]:
    cfg = dict(vocabSize=V, blockSize=BLOCK, layers=L, heads=H, dim=D, dropout=0, tieWeights=tie)
    cfg.update(activation=activation, epsilon=epsilon)
    chars = "abcdefghijk"
    return {
        "format": "wgnn.sequential",
        "layers": "[]",
        "gpt": json.dumps(cfg),
        "tokenizer": json.dumps({"kind": "char", "chars": chars}),
    }


def spec_shapes(tie: bool) -> Dict[str, Tuple[int, ...]]:
    """GPT_SPEC's table, typed in again: the wgnn names and Keras-layout shapes."""
    s: Dict[str, Tuple[int, ...]] = {"layers.0.tokens": (V, D), "layers.0.positions": (BLOCK, D)}
    for i in range(1, L + 1):
        p = f"layers.{i}."
        s.update({p + "ln1.gamma": (D,), p + "ln1.beta": (D,), p + "ln2.gamma": (D,), p + "ln2.beta": (D,)})
        s.update({p + "attn.qkv.kernel": (D, 3 * D), p + "attn.qkv.bias": (3 * D,)})
        s.update({p + "attn.out.kernel": (D, D), p + "attn.out.bias": (D,)})
        s.update({p + "fc.kernel": (D, 4 * D), p + "fc.bias": (4 * D,)})
        s.update({p + "proj.kernel": (4 * D, D), p + "proj.bias": (D,)})
    s.update({f"layers.{L + 1}.gamma": (D,), f"layers.{L + 1}.beta": (D,)})
    if not tie:
        s[f"layers.{L + 2}.kernel"] = (D, V)
    return s


def nanogpt_names(tie: bool) -> List[str]:
    """The state-dict keys of nanoGPT's GPT(bias=True) without its attention-mask buffers (lm_head.weight always)."""
    names = ["transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight", "transformer.ln_f.bias"]
    for i in range(L):
        for m in ["ln_1", "ln_2", "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]:
            names += [f"transformer.h.{i}.{m}.weight", f"transformer.h.{i}.{m}.bias"]
    return sorted(names + ["lm_head.weight"])


def random_model(tie: bool, seed: int, std: float = 0.1) -> Dict[str, np.ndarray]:
    # std 0.1, not 0.02: large enough that the GELU form and the epsilons show in the logits
    rng = np.random.default_rng(seed)
    return {n: rng.normal(0, std, s).astype(np.float32) for n, s in spec_shapes(tie).items()}


def numpy_logits(t: Dict[str, np.ndarray], x: np.ndarray, tie: bool, activation: str, eps: float) -> np.ndarray:
    """float64 forward straight from the wgnn tensors (Keras layout: y = x @ kernel + bias). x [B,T] -> [B,T,V]."""
    f = {n: a.astype(np.float64) for n, a in t.items()}
    B, T = x.shape
    hd = D // H

    def ln(h: np.ndarray, p: str) -> np.ndarray:
        mu = h.mean(-1, keepdims=True)
        var = ((h - mu) ** 2).mean(-1, keepdims=True)
        return (h - mu) / np.sqrt(var + eps) * f[p + "gamma"] + f[p + "beta"]

    def gelu(u: np.ndarray) -> np.ndarray:
        if activation == "gelu_tanh":
            return 0.5 * u * (1 + np.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))
        return 0.5 * u * (1 + np.vectorize(math.erf)(u / math.sqrt(2)))

    h = f["layers.0.tokens"][x] + f["layers.0.positions"][:T]
    future = np.triu(np.ones((T, T), dtype=bool), 1)
    for i in range(1, L + 1):
        p = f"layers.{i}."
        qkv = ln(h, p + "ln1.") @ f[p + "attn.qkv.kernel"] + f[p + "attn.qkv.bias"]  # [B,T,3D]
        q, k, v = (qkv[..., j * D : (j + 1) * D].reshape(B, T, H, hd).transpose(0, 2, 1, 3) for j in range(3))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)  # [B,H,T,T]
        s[..., future] = -np.inf
        w = np.exp(s - s.max(-1, keepdims=True))
        o = (w / w.sum(-1, keepdims=True)) @ v
        h = h + o.transpose(0, 2, 1, 3).reshape(B, T, D) @ f[p + "attn.out.kernel"] + f[p + "attn.out.bias"]
        m = gelu(ln(h, p + "ln2.") @ f[p + "fc.kernel"] + f[p + "fc.bias"])
        h = h + m @ f[p + "proj.kernel"] + f[p + "proj.bias"]
    head = f["layers.0.tokens"].T if tie else f[f"layers.{L + 2}.kernel"]
    return ln(h, f"layers.{L + 1}.") @ head


def rel_err(a: np.ndarray, e: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - e).max() / np.abs(e).max())


def run_cli(*args: str) -> Tuple[int, dict, str]:
    """Runs the script as the lead does; returns (exit status, the JSON it printed or {}, stderr)."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, os.path.join(HERE, "gpt_torch.py"), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return p.returncode, json.loads(p.stdout) if p.returncode == 0 else {}, p.stderr


class GptTorchTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def path(self, name: str) -> str:
        return os.path.join(self.dir.name, name)

    def write_model(self, tie: bool, seed: int = 0, **meta: object) -> Tuple[str, Dict[str, np.ndarray]]:
        t = random_model(tie, seed)
        path = self.path(f"model-{tie}-{seed}.safetensors")
        gt.write_safetensors(path, t, gpt_meta(tie, **meta))  # type: ignore[arg-type]
        return path, t

    # ---- safetensors

    def test_writer_bytes_are_wgnns(self) -> None:
        # what wgnn's serializeSafetensors writes for the same entries: sorted names, sorted metadata, compact JSON
        # padded with spaces to a multiple of 8, data in name order
        a, b = np.array([[1, -2]], np.int32), np.array([0.5, -3], np.float32)
        gt.write_safetensors(self.path("w.safetensors"), {"b": b, "a": a}, {"z": "1", "a": "é\n"})
        header = (
            '{"__metadata__":{"a":"é\\n","z":"1"},"a":{"dtype":"I32","shape":[1,2],"data_offsets":[0,8]},'
            '"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}'
        ).encode()
        header += b" " * (-len(header) % 8)
        want = struct.pack("<Q", len(header)) + header + a.tobytes() + b.tobytes()
        with open(self.path("w.safetensors"), "rb") as f:
            self.assertEqual(f.read(), want)

    def test_round_trip_all_dtypes(self) -> None:
        rng = np.random.default_rng(1)
        t = {
            "f32": rng.normal(size=(3, 5)).astype(np.float32),
            "f64": rng.normal(size=(7,)),
            "i32": rng.integers(-9, 9, (2, 2, 2)).astype(np.int32),
            "empty": np.zeros((0, 4), np.float32),
            "scalar": np.array(2.5, np.float32),
        }
        gt.write_safetensors(self.path("r.safetensors"), t, {"k": "v"})
        back, meta = gt.read_safetensors(self.path("r.safetensors"))
        self.assertEqual(meta, {"k": "v"})
        self.assertEqual(sorted(back), sorted(t))
        for n, a in t.items():
            self.assertEqual(back[n].dtype, a.dtype, n)
            np.testing.assert_array_equal(back[n], a, err_msg=n)
        # I64 (PyTorch's index dtype) is read but not written: a file built by hand
        i64 = np.array([-(2**40), 3], "<i8")
        self.write_raw("i64.safetensors", {"i": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}}, i64.tobytes())
        np.testing.assert_array_equal(gt.read_safetensors(self.path("i64.safetensors"))[0]["i"], i64)

    def write_raw(self, name: str, header: object, data: bytes, length: int = -1) -> str:
        """A file of header (JSON, or bytes as they are) and data after the 8-byte header length (given, or the
        header's own); header None writes data alone."""
        with open(self.path(name), "wb") as f:
            if header is not None:
                h = header if isinstance(header, bytes) else json.dumps(header).encode()
                f.write(struct.pack("<Q", len(h) if length < 0 else length) + h)
            f.write(data)
        return self.path(name)

    def test_reader_refuses_bad_files(self) -> None:
        e = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
        cases = [
            (None, b"\x01\x02", -1, "at least 8"),
            ({"a": e}, bytes(8), 10**6, "runs past the end"),
            (b"{not json", b"", -1, "not JSON"),
            (b'{"a":1,"a":2}', b"", -1, "duplicate key 'a'"),
            (b"[1]", b"", -1, "expected an object"),
            ({"a": {**e, "dtype": "F16"}}, bytes(4), -1, "dtype 'F16'"),
            ({"a": {**e, "shape": [2.0]}}, bytes(8), -1, "shape [2.0]"),
            ({"a": {**e, "data_offsets": [0, 4]}}, bytes(8), -1, "span the 8 bytes"),
            ({"a": {**e, "data_offsets": [8, 16]}}, bytes(16), -1, "begins at byte 8"),
            ({"a": e, "b": {**e, "data_offsets": [4, 12]}}, bytes(16), -1, "begins at byte 4"),
            ({"a": e}, bytes(12), -1, "bytes [8, 12)"),
            ({"__metadata__": {"k": 1}, "a": e}, bytes(8), -1, "object of strings"),
        ]
        for i, (header, data, length, message) in enumerate(cases):
            path = self.write_raw(f"bad{i}.safetensors", header, data, length)
            with self.assertRaises(gt.OracleError, msg=message) as cm:
                gt.read_safetensors(path)
            self.assertIn(message, str(cm.exception))
            self.assertIn(path, str(cm.exception))

    # ---- names, layouts, forward

    def test_name_mapping_and_forward(self) -> None:
        x = np.random.default_rng(2).integers(0, V, (3, 7))
        x[0, 0], x[0, 1] = 0, V - 1
        for tie in (True, False):
            for activation in ("gelu_tanh", "gelu"):
                with self.subTest(tie=tie, activation=activation):
                    path, t = self.write_model(tie, activation=activation, epsilon=1e-3)
                    model, meta = gt.load_gpt(path, torch.float64)
                    self.assertEqual(meta, gpt_meta(tie, activation, 1e-3))
                    self.assertIs(model.lm_head.weight is model.transformer.wte.weight, tie)
                    sd = model.state_dict()
                    self.assertEqual(sorted(sd), nanogpt_names(tie))
                    qkv = t["layers.2.attn.qkv.kernel"]
                    np.testing.assert_array_equal(sd["transformer.h.1.attn.c_attn.weight"], qkv.T)
                    np.testing.assert_array_equal(sd["transformer.h.0.mlp.c_proj.weight"], t["layers.1.proj.kernel"].T)
                    head = t["layers.0.tokens"] if tie else t[f"layers.{L + 2}.kernel"].T
                    np.testing.assert_array_equal(sd["lm_head.weight"], head)
                    back = gt.wgnn_tensors(model)
                    self.assertEqual(sorted(back), sorted(t))
                    for n in t:
                        np.testing.assert_array_equal(back[n], t[n], err_msg=n)
                    model.eval()
                    with torch.no_grad():
                        got = model(torch.from_numpy(x)).numpy()
                    self.assertLess(rel_err(got, numpy_logits(t, x, tie, activation, 1e-3)), 1e-12)

    def test_float32_logits_match_float64(self) -> None:
        path, _ = self.write_model(False)
        x = self.path("x.safetensors")
        gt.write_safetensors(x, {"x": np.random.default_rng(3).integers(0, V, (4, BLOCK)).astype(np.int32)})
        rc32, out32, _ = run_cli("logits", "--model", path, "--x", x, "--out", self.path("l32.safetensors"))
        rc64, out64, _ = run_cli("logits", "--model", path, "--x", x, "--dtype", "float64")
        self.assertEqual((rc32, rc64), (0, 0))
        self.assertEqual(out32, {"shape": [4, BLOCK, V], "dtype": "float32", "out": self.path("l32.safetensors")})
        l32 = gt.read_safetensors(self.path("l32.safetensors"))[0]["logits"]
        l64 = np.array(out64["logits"])
        self.assertEqual((l32.dtype, l64.shape), (np.float32, (4, BLOCK, V)))
        err = rel_err(l32, l64)
        self.assertLess(err, 1e-5)
        self.assertGreater(err, 0)  # two dtypes really ran

    def test_refuses_tensors_that_do_not_match_the_config(self) -> None:
        _, t = self.write_model(False)
        qkv = "layers.1.attn.qkv.kernel"
        cases = [
            ({n: a for n, a in t.items() if n != "layers.2.fc.bias"}, gpt_meta(False), "missing layers.2.fc.bias [64]"),
            ({**t, "layers.9.kernel": t["layers.1.fc.bias"]}, gpt_meta(False), "extra layers.9.kernel [64]"),
            (t, gpt_meta(True), f"extra layers.{L + 2}.kernel [16, 11]"),  # a head kernel in a tied model
            ({**t, qkv: t[qkv][:, :32]}, gpt_meta(False), f"{qkv} has shape [16, 32], expected [16, 48]"),
            ({**t, qkv: t[qkv].astype(np.int32)}, gpt_meta(False), f"{qkv} is int32"),
            (t, {}, "no `gpt` entry"),
            (t, {"gpt": json.dumps({"vocabSize": V})}, "expected exactly"),
            (t, {"gpt": gpt_meta(False)["gpt"].replace('"heads": 2', '"heads": 3')}, "dim a multiple of heads"),
            (t, {"gpt": gpt_meta(False)["gpt"].replace("gelu_tanh", "relu")}, "activation one of"),
            (t, {"gpt": gpt_meta(False)["gpt"].replace('"dropout": 0', '"dropout": true')}, "dropout must be"),
        ]
        for i, (tensors, meta, message) in enumerate(cases):
            path = self.path(f"mismatch{i}.safetensors")
            gt.write_safetensors(path, tensors, meta)
            with self.assertRaises(gt.OracleError, msg=message) as cm:
                gt.load_gpt(path, torch.float32)
            self.assertIn(message, str(cm.exception))
        rc, _, err = run_cli("export", "--model", self.path("mismatch0.safetensors"), "--out", self.path("m.pt"))
        self.assertEqual(rc, 2)
        self.assertIn("missing layers.2.fc.bias", err)
        self.assertFalse(os.path.exists(self.path("m.pt")))

    def test_refuses_bad_tokens(self) -> None:
        path, _ = self.write_model(True)
        for i, (x, message) in enumerate(
            [
                (np.full((1, 3), V, np.int32), f"'x'[0, 0] = {V} is outside the vocabulary [0, {V})"),
                (np.zeros((1, BLOCK + 1), np.int32), f"over the model's blockSize {BLOCK}"),
                (np.zeros((1, 3), np.float32), "expected non-empty int32 of rank 2"),
            ]
        ):
            gt.write_safetensors(self.path(f"x{i}.safetensors"), {"x": x})
            rc, _, err = run_cli("logits", "--model", path, "--x", self.path(f"x{i}.safetensors"))
            self.assertEqual(rc, 2, message)
            self.assertIn(message, err)

    # ---- train and export

    def write_batches(self, steps: int, lr: List[float], val: bool) -> str:
        rng = np.random.default_rng(4)
        x = rng.integers(0, V, (steps, 4, 8)).astype(np.int32)
        b = {"x": x, "y": (3 * x + 1) % V, "lr": np.array(lr, np.float32)}  # a learnable map, token by token
        if val:
            vx = rng.integers(0, V, (2, 4, 8)).astype(np.int32)
            b.update(val_x=vx, val_y=(3 * vx + 1) % V)
        path = self.path(f"batches-{steps}.safetensors")
        gt.write_safetensors(path, b)
        return path

    def train(self, model: str, batches: str, *extra: str, eps: str = "1e-8", clip: str = "1") -> dict:
        adamw = ["--beta1", "0.9", "--beta2", "0.95", "--eps", eps, "--weight-decay", "0.1", "--clip", clip]
        files = ["--model", model, "--batches", batches, "--lr-from-file"]
        rc, out, err = run_cli("--threads", "1", "train", *files, *adamw, *extra)
        self.assertEqual(rc, 0, err)
        return out

    def test_training_lowers_the_loss(self) -> None:
        path, _ = self.write_model(True)
        batches = self.write_batches(30, [3e-2] * 30, val=True)
        out = self.train(path, batches, "--eval-every", "20", "--out", self.path("w.safetensors"))
        self.assertEqual(out["steps"], 30)
        self.assertEqual(len(out["losses"]), 30)
        self.assertLess(out["losses"][-1], 0.5 * out["losses"][0])
        self.assertEqual(out["val_steps"], [20, 30])
        self.assertLess(out["val_losses"][1], out["val_losses"][0])
        self.assertGreater(out["seconds_per_step"], 0)
        w, meta = gt.read_safetensors(self.path("w.safetensors"))
        self.assertEqual(meta, gpt_meta(True))
        self.assertEqual({n: a.shape for n, a in w.items()}, spec_shapes(True))
        self.assertTrue(all(a.dtype == np.float32 for a in w.values()))
        # the trained weights load back and give the final val loss (eval mode, no dropout: exactly)
        model, _ = gt.load_gpt(self.path("w.safetensors"), torch.float32)
        b = gt.read_safetensors(batches)[0]
        vx, vy = (torch.from_numpy(b[k].astype(np.int64)) for k in ("val_x", "val_y"))
        self.assertAlmostEqual(gt.mean_loss(model, vx, vy), out["val_losses"][-1], places=6)
        # float64 runs the same steps: its losses are float32's to float32 precision
        out64 = self.train(path, batches, "--dtype", "float64", "--out", self.path("w64.safetensors"))
        self.assertEqual(out64["val_steps"], [30])
        np.testing.assert_allclose(out["losses"][:5], out64["losses"][:5], rtol=1e-5)
        w64 = gt.read_safetensors(self.path("w64.safetensors"))[0]
        self.assertTrue(all(a.dtype == np.float64 for a in w64.values()))

    def test_a_diverging_run_stops(self) -> None:
        path, _ = self.write_model(True)
        files = ["--model", path, "--batches", self.write_batches(3, [1e37] * 3, val=False), "--lr-from-file"]
        adamw = ["--beta1", "0.9", "--beta2", "0.95", "--eps", "1e-8", "--weight-decay", "0", "--clip", "0"]
        rc, _, err = run_cli("train", *files, *adamw)
        self.assertEqual(rc, 2, err)
        self.assertRegex(err, r"step 2/3: the loss is (nan|inf); the last losses were \[2\.\d+, (nan|inf)\]")

    def test_one_adamw_step_by_hand(self) -> None:
        # step 1 with lr 0.01, then step 2 with lr 0: AdamW's first step is p (1 - lr wd) - lr g / (|g| + eps), a
        # zero lr leaves the weights as they are, and weight decay reaches every tensor (biases and LN too). An eps
        # near the gradients' size makes the step depend on their scale, so the clipping shows.
        path, t = self.write_model(False)
        batches = self.write_batches(2, [1e-2, 0.0], val=False)
        lr = float(np.float32(1e-2))  # as the file holds it: 1e-2 itself misses by 2e-10
        w = self.path("w.safetensors")
        out = self.train(path, batches, "--dtype", "float64", "--out", w, eps="1e-3", clip="0.05")
        self.assertNotIn("val_losses", out)
        model, _ = gt.load_gpt(path, torch.float64)
        b = gt.read_safetensors(batches)[0]
        x, y = (torch.from_numpy(b[k][0].astype(np.int64)) for k in ("x", "y"))
        loss = torch.nn.functional.cross_entropy(model(x).view(-1, V), y.view(-1))
        self.assertAlmostEqual(loss.item(), out["losses"][0], places=12)
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        scale = 0.05 / (float(torch.norm(torch.stack([g.norm() for g in grads]))) + 1e-6)  # torch's clip_grad_norm_
        self.assertLess(scale, 0.5)
        with torch.no_grad():
            for p in model.parameters():
                g = p.grad * scale
                p.mul_(1 - lr * 0.1).sub_(lr * g / (g.abs() + 1e-3))
        trained = gt.read_safetensors(w)[0]
        for n, want in gt.wgnn_tensors(model).items():
            np.testing.assert_allclose(trained[n], want, rtol=0, atol=1e-12, err_msg=n)
            self.assertFalse(np.array_equal(trained[n], t[n]), n)

    def test_export_loads_into_nanogpt_names(self) -> None:
        for tie in (True, False):
            with self.subTest(tie=tie):
                path, t = self.write_model(tie)
                rc, out, err = run_cli("export", "--model", path, "--out", self.path("m.pt"), "--check")
                self.assertEqual(rc, 0, err)
                self.assertTrue(out["checked"])
                args = dict(n_layer=L, n_head=H, n_embd=D, block_size=BLOCK, vocab_size=V, dropout=0.0, bias=True)
                self.assertEqual(out["model_args"], args)
                sd = torch.load(self.path("m.pt"))
                self.assertEqual(sorted(sd), nanogpt_names(tie))
                self.assertEqual(sorted(out["state_dict"]), nanogpt_names(tie))
                shared = sd["lm_head.weight"].data_ptr() == sd["transformer.wte.weight"].data_ptr()
                self.assertIs(shared, tie)
                np.testing.assert_array_equal(sd["transformer.h.0.attn.c_proj.weight"], t["layers.1.attn.out.kernel"].T)
                np.testing.assert_array_equal(sd["transformer.wpe.weight"], t["layers.0.positions"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
