"""Which way into intelligen_tvm works for a BERT-like and a GPT-2-like module built in torch
(random weights, no downloads): torch.onnx.export with the TorchScript exporter (dynamo=False),
with dynamo=True (needs the onnxscript package), and intelligen_tvm.from_torch. Each import is
compiled with relax_pipeline="intelligen" on llvm and run against the torch module.

    python scripts/export_paths.py      # one line per (module, way in)
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
import tempfile
import warnings
from collections.abc import Callable

import numpy as np
import torch
import tvm

import intelligen_tvm
from intelligen_tvm.testing import build, run

HIDDEN, HEADS, FFN, VOCAB, SEQ, BATCH = 64, 4, 128, 100, 16, 2


class Attention(torch.nn.Module):
    def __init__(self, causal: bool) -> None:
        super().__init__()
        self.qkv, self.out, self.causal = torch.nn.Linear(HIDDEN, 3 * HIDDEN), torch.nn.Linear(HIDDEN, HIDDEN), causal

    def forward(self, x, mask):
        batch, seq, _ = x.shape
        heads = [y.view(batch, seq, HEADS, HIDDEN // HEADS).transpose(1, 2) for y in self.qkv(x).split(HIDDEN, -1)]
        q, k, v = heads
        scores = q @ k.transpose(-1, -2) / math.sqrt(HIDDEN // HEADS)
        if self.causal:
            future = torch.tril(torch.ones(seq, seq, dtype=torch.bool)).logical_not()
            scores = scores.masked_fill(future, float("-inf"))
        y = torch.softmax(scores + mask, -1) @ v
        return self.out(y.transpose(1, 2).reshape(batch, seq, HIDDEN))


class Layer(torch.nn.Module):
    """What both modules are built of: token and position embeddings, attention, an MLP, and
    three LayerNorms, which each module places in its own layout."""

    def __init__(self, causal: bool) -> None:
        super().__init__()
        self.tok, self.pos = torch.nn.Embedding(VOCAB, HIDDEN), torch.nn.Embedding(SEQ, HIDDEN)
        self.attn = Attention(causal)
        self.up, self.down = torch.nn.Linear(HIDDEN, FFN), torch.nn.Linear(FFN, HIDDEN)
        self.norms = torch.nn.ModuleList(torch.nn.LayerNorm(HIDDEN) for _ in range(3))

    def embed(self, ids):
        return self.tok(ids) + self.pos(torch.arange(ids.shape[1]))

    def mlp(self, x, gelu: str):
        return self.down(torch.nn.functional.gelu(self.up(x), approximate=gelu))


class BertLike(Layer):
    """Embeddings + LayerNorm, one post-norm encoder layer with erf GELU (BertModel's layout)."""

    def __init__(self) -> None:
        super().__init__(causal=False)

    def forward(self, ids, attention_mask):
        x = self.norms[0](self.embed(ids))
        mask = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0
        x = self.norms[1](x + self.attn(x, mask))
        return self.norms[2](x + self.mlp(x, "none"))


class Gpt2Like(Layer):
    """Pre-norm decoder block, causal mask from torch.tril, tanh GELU (GPT-2's layout)."""

    def __init__(self) -> None:
        super().__init__(causal=True)

    def forward(self, ids):
        x = self.embed(ids)
        x = x + self.attn(self.norms[0](x), torch.zeros(1))
        x = x + self.mlp(self.norms[1](x), "tanh")
        return self.norms[2](x)


def _first_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0][:150]}"


def check(label: str, make_mod: Callable[[], tvm.IRModule], model: torch.nn.Module, args: tuple) -> str:
    """Import, compile with the intelligen pipeline on llvm, run, compare to torch."""
    quiet = (contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()))
    try:
        with quiet[0], quiet[1]:
            mod = make_mod()
    except Exception as err:  # pylint: disable=broad-except  # the finding is the failure
        return f"{label}: import FAILED ({_first_line(err)})"
    try:
        regions = intelligen_tvm.explain(mod, {"kind": "llvm"})["regions"]
        taken = sum(r["handled_by"] == "intelligen" for r in regions)
        left = sorted({"+".join(r["ops"]) for r in regions if r["handled_by"] != "intelligen"})
        out = run(build(mod, {"kind": "llvm"}, "intelligen"), tvm.target.Target("llvm"), [a.numpy() for a in args])
        with torch.no_grad():
            err = float(np.abs(out[0] - model(*args).numpy()).max())
    except Exception as err:  # pylint: disable=broad-except
        return f"{label}: imported, then FAILED ({_first_line(err)})"
    return (f"{label}: OK, {taken} of {len(regions)} regions by intelligen, max abs err {err:.1e}; "
            f"left to TVM: {', '.join(left)}")


def main() -> int:
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ))
    attention_mask = torch.ones(BATCH, SEQ, dtype=torch.int64)
    attention_mask[1, -4:] = 0
    cases = {"bert-like": (BertLike().eval(), (ids, attention_mask)), "gpt2-like": (Gpt2Like().eval(), (ids,))}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, args) in cases.items():
            for dynamo in (False, True):
                label = f"{name} onnx {'dynamo=True' if dynamo else 'TorchScript'}"
                path = f"{tmp}/{name}_{dynamo}.onnx"
                try:
                    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                        torch.onnx.export(model, args, path, dynamo=dynamo, opset_version=18 if dynamo else 17)
                except Exception as err:  # pylint: disable=broad-except
                    print(f"{label}: export FAILED ({_first_line(err)})", flush=True)
                    continue
                print(check(label, lambda p=path: intelligen_tvm.from_onnx(p), model, args), flush=True)
            print(check(f"{name} from_torch", lambda m=model, a=args: intelligen_tvm.from_torch(m, a), model, args),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
