"""The choice space: every suite region enumerates verified candidates, reductions have
tens of them, and a sample of each case's candidates is numerically right on the CPU
lowering (against onnx.reference) and goes through TVM's CUDA codegen."""

from __future__ import annotations


import numpy as np
import pytest
import tvm

from intelligen_tvm import suite, targets
from intelligen_tvm.dataflow_graph.choices import enumerate_candidates
from intelligen_tvm.dataflow_graph.fuse import build_kernel
from intelligen_tvm.dataflow_graph.plan import plan_kernel
from intelligen_tvm.dataflow_graph.rewrites import monotonic_rewrites
from intelligen_tvm.gir.program import Program
from tests.helpers import run_prim_func, suite_region

HW = targets.hardware_model("cuda")
CUDA = tvm.target.Target({"kind": "cuda", "arch": "sm_90"})
NAMES = [c.name for c in suite.SUITE]
REDUCTIONS = ["softmax", "attention_softmax", "layer_norm", "add_layer_norm", "decomposed_layer_norm",
              "rms_norm", "mean_last", "sum_axis0", "bert_embedding"]


def _candidates(name: str, small: bool):
    sp, feed, expected = suite_region(name, small=small, target_kind="cuda")
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    program = Program("r", sp.buffers, sp.inputs, sp.outputs, [])
    return sp, feed, expected, kernel, program, enumerate_candidates(kernel, program, HW)


@pytest.mark.parametrize("name", NAMES)
def test_candidates_verify_and_include_the_default(name: str) -> None:
    sp, _, _, kernel, program, found = _candidates(name, small=False)
    assert found
    assert len({c.strategy for c in found}) == len(found)
    default = plan_kernel(kernel, sp.buffers, HW).strategy
    assert default in {c.strategy for c in found}


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_regions_have_tens_of_candidates(name: str) -> None:
    found = _candidates(name, small=False)[-1]
    assert len(found) >= 15, len(found)
    assert len({c.strategy.threads_per_row for c in found}) >= 3


@pytest.mark.parametrize("name", NAMES)
def test_sampled_candidates_match_reference(name: str) -> None:
    sp, feed, expected, _, program, found = _candidates(name, small=True)
    sample = found[:: max(1, len(found) // 6)]
    (out,) = sp.outputs
    for k, candidate in enumerate(sample):
        planned = candidate.program.renamed(f"cand{k}")
        func = targets.source_prim_func(targets.render_source(planned, "llvm", f"cand{k}"))
        (actual,) = run_prim_func(func, [feed[n] for n in sp.inputs])
        np.testing.assert_allclose(actual, expected[out], rtol=1e-3, atol=1e-3,
                                   err_msg=f"{name}: {candidate.strategy}")
        cuda = targets.source_prim_func(targets.render_source(planned, "cuda", f"cand{k}"))
        tvm.compile(tvm.IRModule({f"cand{k}": cuda}), target=CUDA)   # TVM's CUDA codegen accepts it
