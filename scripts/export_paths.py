"""Which way into intelligen_tvm works for a BERT-like and a GPT-2 module built in torch
(``intelligen_tvm.torch_models`` at small dims: one layer, hidden 64, random weights, no
downloads): torch.onnx.export with the TorchScript exporter (dynamo=False), with dynamo=True
(needs the onnxscript package), and intelligen_tvm.from_torch. Each import is
compiled with relax_pipeline="intelligen" on llvm and run against the torch module.

    python scripts/export_paths.py      # one line per (module, way in)
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import warnings
from collections.abc import Callable

import numpy as np
import torch
import tvm

import intelligen_tvm
from intelligen_tvm.testing import build, run
from intelligen_tvm.torch_models import BertLike, Dims, Gpt2

DIMS = Dims(hidden=64, heads=4, ffn=128, layers=1)
VOCAB, SEQ, BATCH = 100, 16, 2


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
    cases = {"bert-like": (BertLike(DIMS, VOCAB, SEQ).eval(), (ids, attention_mask)),
             "gpt2-like": (Gpt2(DIMS, VOCAB, SEQ).eval(), (ids,))}
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
