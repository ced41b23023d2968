"""Features read off planned candidates, and the analytical prior's ordering."""

from __future__ import annotations

import pytest

from intelligen_tvm import targets
from intelligen_tvm.cost_model.features import KINDS, features
from intelligen_tvm.cost_model.prior import predicted_time_us
from intelligen_tvm.dataflow_graph.choices import enumerate_candidates
from intelligen_tvm.dataflow_graph.fuse import build_kernel
from intelligen_tvm.dataflow_graph.rewrites import monotonic_rewrites
from intelligen_tvm.gir.program import Program
from tests.helpers import suite_region

HW = targets.hardware_model("cuda")


def _candidates(name: str):
    sp, _, _ = suite_region(name, small=False, target_kind="cuda")
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    shell = Program("r", sp.buffers, sp.inputs, sp.outputs, [])
    return shell, enumerate_candidates(kernel, shell, HW)


@pytest.mark.parametrize("name", ["softmax", "swiglu", "sum_axis0", "transpose_relu"])
def test_features_are_numeric_and_describe_the_plan(name: str) -> None:
    shell, found = _candidates(name)
    for cand in found:
        f = features(cand, HW)
        assert all(isinstance(v, float) for v in f.values())
        assert sum(f[f"kind_{k}"] for k in KINDS) == 1.0
        assert f["vector"] == cand.strategy.vector
        assert 0.0 < f["occupancy"] <= 1.0
        # a candidate holding its rows on chip moves the ideal bytes (inputs once, outputs
        # once); a streamed one re-reads its inputs in every sweep after the first
        ideal = sum(shell.buffers[b].nbytes for b in (*shell.inputs, *shell.outputs))
        assert f["dram_bytes"] == ideal if cand.strategy.serial == 1 else f["dram_bytes"] >= ideal


def test_prior_prefers_vectors_and_coalesced_access() -> None:
    shell, found = _candidates("swiglu")
    by_vector = {}
    for cand in found:
        if cand.strategy.units == 8:
            by_vector[cand.strategy.vector] = predicted_time_us(features(cand, HW), HW)
    assert by_vector[4] < by_vector[2] < by_vector[1]


def test_prior_predicts_at_least_the_bandwidth_bound() -> None:
    shell, found = _candidates("softmax")
    floor_us = 2 * 4096 * 1024 * 4 / (HW.dram_gbps * 1e3)
    assert all(predicted_time_us(features(c, HW), HW) >= floor_us for c in found)
