"""INTELLIGEN_VERIFY_REWRITES: the planner interprets each rewrite stage's result and stops at
the first stage that changes a region output."""

from __future__ import annotations

from dataclasses import replace

import pytest

from intelligen_tvm.dataflow_graph import rewrites
from intelligen_tvm.dataflow_graph.rewrite_check import VERIFY_ENV, RewriteCheck
from intelligen_tvm.gir.errors import RewriteMismatch
from intelligen_tvm.gir.program import Compute
from intelligen_tvm.region import plan_region
from tests.helpers import suite_region_stages

CUDA = {"kind": "cuda", "arch": "sm_90"}


@pytest.mark.parametrize("case, target", [("softmax", CUDA), ("add_layer_norm", CUDA), ("transpose_relu", CUDA),
                                          ("bert_embedding", CUDA), ("rms_norm", "llvm")])
def test_suite_regions_pass_every_stage(case: str, target, monkeypatch) -> None:
    stages = suite_region_stages(case, target_kind="cuda" if target is CUDA else target)
    monkeypatch.setenv(VERIFY_ENV, "1")
    seen: list[str] = []
    stage = RewriteCheck.stage
    monkeypatch.setattr(RewriteCheck, "stage", lambda self, name, program: (seen.append(name), stage(self, name, program)))
    plan_region(stages, "r", target)
    assert seen == ["fuse", "forward_stores", "eliminate_common_subexpressions", "eliminate_dead_stores",
                    "eliminate_dead_values", "plan"]


_FORWARD_STORES = rewrites.forward_stores


def _exp_becomes_neg(kernel):
    """A broken forwarding: right structure, wrong meaning (exp computed as neg)."""
    kernel = _FORWARD_STORES(kernel)
    return replace(kernel, instrs=tuple(replace(i, op="neg") if isinstance(i, Compute) and i.op == "exp" else i
                                        for i in kernel.instrs))


def test_a_broken_rewrite_is_caught_and_named(monkeypatch) -> None:
    stages = suite_region_stages("softmax", target_kind="cuda")
    monkeypatch.setattr(rewrites, "forward_stores", _exp_becomes_neg)
    plan_region(stages, "r", CUDA)   # unchecked, the wrong program plans without complaint
    monkeypatch.setenv(VERIFY_ENV, "1")
    with pytest.raises(RewriteMismatch, match="rewrite stage 'forward_stores' changed output"):
        plan_region(stages, "r", CUDA)
