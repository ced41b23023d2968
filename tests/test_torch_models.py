"""torch_models: the real architectures (ViT-tiny, GPT-2 small, TinyLlama) at their true per-layer
dimensions, one layer each, imported by from_torch, compiled by the "intelligen" pipeline on llvm
and checked against the torch module."""

from __future__ import annotations

import numpy as np
import pytest
import tvm

import intelligen_tvm
from intelligen_tvm.testing import build, max_abs_error, run

torch = pytest.importorskip("torch", reason="torch is not installed (optional)")
torch_models = pytest.importorskip("intelligen_tvm.torch_models")

LLVM = tvm.target.Target({"kind": "llvm"})


@pytest.mark.parametrize("name", ["vit_tiny", "gpt2_small", "tinyllama"])
def test_one_layer_matches_torch(name: str) -> None:
    model, args = torch_models.instance(name, layers=1, seq=8)  # the matmuls TVM runs unscheduled
    mod = intelligen_tvm.from_torch(model, args)

    taken = ["+".join(r["ops"]) for r in intelligen_tvm.explain(mod, LLVM)["regions"] if r["handled_by"] == "intelligen"]
    assert any("softmax" in ops for ops in taken), taken
    norm = "rsqrt" if name == "tinyllama" else "layer_norm"
    assert any(norm in ops for ops in taken), taken

    got = run(build(mod, {"kind": "llvm"}, "intelligen"), LLVM, [a.numpy() for a in args])
    with torch.no_grad():
        expected = model(*args).numpy()
    assert got[0].shape == expected.shape
    scale = float(np.abs(expected).max())
    assert max_abs_error(got, [expected]) <= 1e-5 * scale + 1e-5, (max_abs_error(got, [expected]), scale)


def test_named_dimensions() -> None:
    """The named models' published parameter counts: timm vit_tiny_patch16_224 5,717,416; Hugging
    Face gpt2 124,439,808 (tied head); TinyLlama-1.1B 1,100,048,384, of which the stack lacks the
    32000-row embedding and the untied LM head."""
    published = {"vit_tiny": 5_717_416, "gpt2_small": 124_439_808, "tinyllama": 1_100_048_384 - 2 * 32000 * 2048}
    for name, total in published.items():
        model = torch_models.instance(name, layers=1)[0]
        count = sum(p.numel() for p in model.parameters())
        per_layer = sum(p.numel() for p in model.blocks[0].parameters())
        assert count + (torch_models.NAMED[name].layers - 1) * per_layer == total, name
