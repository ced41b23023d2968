"""from_torch: a PyTorch module through torch.export and TVM's importer, compiled by the
"intelligen" pipeline, against the module's own outputs. torch is optional."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tvm

import intelligen_tvm
from intelligen_tvm.testing import build, run

LLVM = tvm.target.Target({"kind": "llvm"})


def test_without_torch_the_error_says_so(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)   # `import torch` raises ImportError
    with pytest.raises(ImportError, match="from_torch needs PyTorch"):
        intelligen_tvm.from_torch(object(), ())


def test_a_small_module_compiles_and_matches_torch() -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed (optional)")

    class Block(torch.nn.Module):
        """Residual + LayerNorm, a projection (left to TVM), GELU, softmax over the last axis."""

        def __init__(self) -> None:
            super().__init__()
            self.norm = torch.nn.LayerNorm(64)
            self.proj = torch.nn.Linear(64, 96)

        def forward(self, x, residual):
            h = self.proj(self.norm(x + residual))
            return torch.softmax(torch.nn.functional.gelu(h), dim=-1)

    torch.manual_seed(0)
    block = Block()
    x, residual = torch.randn(32, 64), torch.randn(32, 64)   # 32 rows: the projection is compute-bound
    mod = intelligen_tvm.from_torch(block, (x, residual))

    regions = intelligen_tvm.explain(mod, LLVM)["regions"]
    taken = [r for r in regions if r["handled_by"] == "intelligen"]
    assert any("layer_norm" in "+".join(r["ops"]) for r in taken)
    assert any(r["ops"][-1] == "softmax" for r in taken)
    # the Linear is one matmul reading the weight as stored (no transpose left to run or fold)
    assert [r["ops"] for r in regions if r["handled_by"] == "fallback"] == [["NT_matmul"]]

    (got,) = run(build(mod, {"kind": "llvm"}, "intelligen"), LLVM, [x.numpy(), residual.numpy()])
    with torch.no_grad():
        expected = block(x, residual).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_rejects_what_is_not_a_module() -> None:
    pytest.importorskip("torch", reason="torch is not installed (optional)")
    with pytest.raises(TypeError, match="expected torch.nn.Module"):
        intelligen_tvm.from_torch(lambda x: x, ())
