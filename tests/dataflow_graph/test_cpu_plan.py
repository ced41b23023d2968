"""The CPU plan family: sweeps of held and streamed rows, the choice space, the default plan."""

from __future__ import annotations

import pytest
from tvm import relax

from intelligen_tvm import suite
from intelligen_tvm.cost_model.features import features
from intelligen_tvm.dataflow_graph.choices import (default_plan, enumerate_candidates, planned_candidate,
                                                  planned_candidates, strategies)
from intelligen_tvm.dataflow_graph.cpu_plan import (CpuModel, CpuStrategy, cpu_row_strategy, held_bytes,
                                                    with_cpu_strategy)
from intelligen_tvm.dataflow_graph.fuse import build_kernel
from intelligen_tvm.dataflow_graph.plan import planned_dram_bytes
from intelligen_tvm.dataflow_graph.rewrites import monotonic_rewrites
from intelligen_tvm.gir.program import Program
from intelligen_tvm.gir_lowering.tir_reader import Unsupported
from tests.helpers import chain_stages, suite_region_stages

# A fixed CPU (not this host) so that the plans do not depend on where the tests run.
HW = CpuModel.make(cores=4, vector_bytes=64, l1_bytes=48 * 1024, l2_bytes=2 * 1024 * 1024,
                   l3_bytes=32 * 1024 * 1024, dram_gbps=40.0, isa="avx512f")
op = relax.op


def _kernel(fn, shapes):
    sp, _ = chain_stages(fn, shapes)
    return monotonic_rewrites(build_kernel(sp, "k")[0], sp.inputs, sp.outputs), sp


def _softmax(n: int = 1024):
    return _kernel(lambda x: op.nn.softmax(x), [(64, n)])


def test_held_softmax_keeps_exp_and_reloads_the_input() -> None:
    """max, then sum of exp(x - max), then exp / sum: three sweeps; exp is computed once and
    kept; with `reload` x is read again from cache, without it x is kept too."""
    kernel, sp = _softmax()
    held = with_cpu_strategy(kernel, cpu_row_strategy(kernel, 4, 16, 4, held=True, reload=True), HW)
    sweeps = held.sweeps
    assert len(sweeps.passes) == 3
    exp = next(i.dst for i in kernel.instrs if getattr(i, "op", None) == "exp")
    assert sweeps.held == {exp}
    assert not any(getattr(i, "op", None) == "exp" for i in sweeps.passes[2].sweep)
    copied = with_cpu_strategy(kernel, cpu_row_strategy(kernel, 4, 16, 4, held=True, reload=False), HW)
    assert len(copied.sweeps.held) == 2
    assert held_bytes(copied) == held_bytes(held) == 2 * 4 * 1024   # a re-read input stays in cache too
    assert planned_dram_bytes(held, sp.buffers) == planned_dram_bytes(copied, sp.buffers) == 2 * 64 * 1024 * 4


def test_streamed_softmax_recomputes_and_rereads() -> None:
    kernel, sp = _softmax()
    streamed = with_cpu_strategy(kernel, cpu_row_strategy(kernel, 4, 16, 4, held=False), HW)
    sweeps = streamed.sweeps
    assert not sweeps.held and len(sweeps.passes) == 3
    assert sum(getattr(i, "op", None) == "exp" for p in sweeps.passes for i in p.sweep) == 2
    assert planned_dram_bytes(streamed, sp.buffers) == 4 * 64 * 1024 * 4   # x read three times, y written


def test_a_held_row_must_fit_half_of_l2() -> None:
    kernel, sp = _softmax(n=1 << 19)   # 2 MiB per held value
    with pytest.raises(Unsupported):
        with_cpu_strategy(kernel, cpu_row_strategy(kernel, 1, 16, 4, held=True, reload=False), HW)
    assert not default_plan(kernel, sp.buffers, HW).strategy.held


@pytest.mark.parametrize("name, kind", [("softmax", "row"), ("layer_norm", "row"), ("sum_axis0", "column"),
                                        ("swiglu", "flat"), ("transpose_relu", "tile"), ("channel_shuffle", "flat")])
def test_default_plan_and_choice_space(name: str, kind: str) -> None:
    """Full shapes: the default is a candidate; row regions offer tasks per core, vector widths,
    accumulators and held/reloaded/streamed rows; every candidate has a whole number of tasks."""
    sp = suite_region_stages(name, small=False)
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    program = Program("r", sp.buffers, sp.inputs, sp.outputs, [])
    found = enumerate_candidates(kernel, program, HW)
    default = default_plan(kernel, sp.buffers, HW).strategy
    assert isinstance(default, CpuStrategy) and default.kind == kind
    assert default in {c.strategy for c in found}
    assert len({c.strategy for c in found}) == len(found)
    for c in found:
        s = c.strategy
        assert s.groups * s.rows_per_group >= s.outer_size or s.kind == "tile"
    if kind == "row":
        strategies = [c.strategy for c in found]
        assert len(found) >= 30
        assert {s.vector for s in strategies} >= {8, 16, 32}
        assert {s.accumulators for s in strategies} == {1, 2, 4, 8}
        modes = {(s.held, s.reload) for s in strategies}
        # softmax's exp and layer norm's x - mean (computed once) are kept or recomputed, the
        # input reloaded or kept
        assert modes == {(True, True), (True, False), (False, True)}
    if kind == "tile":
        assert {c.strategy.tile for c in found if c.strategy.kind == "tile"} == {8, 16, 32, 64}


def test_suite_defaults_hold_every_row_on_this_model() -> None:
    """Every suite row fits half of a 2 MiB L2, so no default plan streams (DRAM = ideal)."""
    for case in suite.SUITE:
        sp = suite_region_stages(case.name, small=False)
        kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
        s = default_plan(kernel, sp.buffers, HW).strategy
        assert s.serial == 1 or s.kind in ("flat", "tile"), (case.name, s)


@pytest.mark.parametrize("bias_shape, fused", [((1, 116, 1, 1), 2),   # per channel: H*W is one run
                                               ((1, 1, 1, 28), 1),     # per column: W only
                                               ((116, 28, 28), 3),     # the whole C*H*W
                                               ((1, 116, 28, 1), 1)])  # broadcast inside the run
def test_elementwise_rows_span_the_contiguous_innermost_axes(bias_shape, fused: int) -> None:
    """A flat row covers the innermost axes that every access reads contiguously (or not at
    all), so that an NCHW bias runs over H*W elements in whole vectors."""
    kernel, sp = _kernel(lambda x, b: op.add(x, b), [(8, 116, 28, 28), bias_shape])
    s = default_plan(kernel, sp.buffers, HW).strategy
    assert s.kind == "flat" and s.row_axes == fused
    assert s.row_size == (28 ** min(fused, 2) * (116 if fused == 3 else 1))
    assert s.row_size % (s.vector * s.accumulators) == 0 or fused == 1


@pytest.mark.parametrize("name", [c.name for c in suite.SUITE])
def test_candidates_sharing_a_placement_are_planned_as_each_alone(name: str) -> None:
    """Candidates of one placement share its placed kernel, DRAM traffic and placement
    features: each is what planning its strategy alone gives (kernel, program, DRAM bytes,
    features), and the space's order is kept."""
    sp = suite_region_stages(name)
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    shell = Program("r", {b: sp.buffers[b] for b in (*sp.inputs, *sp.outputs)}, sp.inputs, sp.outputs, [])
    alone = []
    for strategy in strategies(kernel, shell.buffers, HW):
        try:
            alone.append(planned_candidate(shell, with_cpu_strategy(kernel, strategy, HW), HW))
        except Unsupported:
            continue
    shared = planned_candidates(kernel, shell, HW)
    assert [c.strategy for c in shared] == [c.strategy for c in alone]
    assert len({id(c.placement_facts) for c in shared}) < len(shared)   # shared where placements repeat
    for got, want in zip(shared, alone):
        assert got.kernel == want.kernel and got.program == want.program
        assert (got.dram_bytes, got.workspace_bytes) == (want.dram_bytes, want.workspace_bytes)
        assert features(got, HW) == features(want, HW)
