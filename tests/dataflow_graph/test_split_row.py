"""split_row: when the default plan splits a row across groups, what it refuses, the phase
kernels and their DRAM workspaces in GIR (counted in planned bytes, ordered by the verifier),
and the split candidates of the choice space (verified, described by features, numerically
right on the CPU lowering)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from tvm import relax

from intelligen_tvm import targets
from intelligen_tvm.cost_model.features import features
from intelligen_tvm.cost_model.prior import LAUNCH_US, predicted_time_us
from intelligen_tvm.dataflow_graph.choices import enumerate_candidates, planned_candidate
from intelligen_tvm.dataflow_graph.fuse import build_kernel
from intelligen_tvm.dataflow_graph.families.split_row import splittable
from intelligen_tvm.dataflow_graph.plan import plan_kernel, planned_dram_bytes, program_dram_bytes
from intelligen_tvm.dataflow_graph.rewrites import monotonic_rewrites
from intelligen_tvm.gir.errors import VerifyError
from intelligen_tvm.gir.program import Level, Load, Program, Store
from intelligen_tvm.gir.verify import verify
from intelligen_tvm.targets.presets import AMD_GFX90A
from tests.helpers import chain_stages, run_prim_func

op = relax.op
HW = targets.hardware_model("cuda")
SUM = lambda x: op.sum(x, axis=[-1])  # noqa: E731
SOFTMAX = lambda x: op.nn.softmax(x)  # noqa: E731
LAYER_NORM = lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[-1])  # noqa: E731


def rewritten(fn, shapes):
    sp, _ = chain_stages(fn, shapes)
    kernel = monotonic_rewrites(build_kernel(sp, "k")[0], sp.inputs, sp.outputs)
    used = {b for b in sp.buffers if b in sp.inputs or b in sp.outputs}
    return kernel, Program("p", {b: sp.buffers[b] for b in used}, list(sp.inputs), list(sp.outputs))


def test_few_long_rows_are_split_to_fill_the_machine() -> None:
    """16 rows of 1M on 132 SMs: 64 slices of 16384 elements (4 steps of 256 threads x float4
    x 4 chunks) per row: 1024 groups, about the 1056 that 132 SMs hold at 256 threads each.
    2 rows of 1M: 256 slices of one step each (a slice is at least one step)."""
    kernel, shell = rewritten(SUM, [(16, 1 << 20)])
    s = plan_kernel(kernel, shell.buffers, HW).strategy
    assert (s.kind, s.splits, s.groups, s.threads_per_row, s.vector, s.chunks, s.serial) == \
        ("split_row", 64, 1024, 256, 4, 4, 4)
    kernel, shell = rewritten(SUM, [(2, 1 << 20)])
    s = plan_kernel(kernel, shell.buffers, HW).strategy
    assert (s.kind, s.splits, s.groups, s.serial) == ("split_row", 256, 512, 1)
    kernel, shell = rewritten(SUM, [(4, 8 * 4096)])
    assert plan_kernel(kernel, shell.buffers, HW).strategy.splits == 8
    wave64 = plan_kernel(kernel, shell.buffers, AMD_GFX90A.model).strategy
    assert wave64.kind == "split_row" and wave64.lanes == 64 and wave64.threads_per_row == 256


@pytest.mark.parametrize("fn, shapes, why", [
    (SUM, [(HW.processors, 1 << 17)], "a group per row already fills the processors"),
    (SUM, [(4, 2048)], "the row spans fewer than SPLIT_MIN_ROW_STEPS streamed steps"),
    (SUM, [(4, 8 * 4096 - 4)], "the row spans fewer than SPLIT_MIN_ROW_STEPS streamed steps"),
    (SOFTMAX, [(4, 1 << 17)], "two reduction levels"),
    (LAYER_NORM, [(2, 1 << 17), (1 << 17,), (1 << 17,)], "two reduction levels"),
])
def test_default_plan_does_not_split(fn, shapes, why: str) -> None:
    kernel, shell = rewritten(fn, shapes)
    assert plan_kernel(kernel, shell.buffers, HW).strategy.kind == "row", why
    assert plan_kernel(kernel, shell.buffers, replace(HW, processors=1)).strategy.kind == "row"


def test_only_single_level_regions_are_splittable() -> None:
    assert splittable(rewritten(SUM, [(4, 1 << 17)])[0])
    assert splittable(rewritten(lambda x, w: op.nn.rms_norm(x, w, axes=[-1]), [(4, 1 << 17), (1 << 17,)])[0])
    assert not splittable(rewritten(SOFTMAX, [(4, 1 << 17)])[0])
    assert not splittable(rewritten(LAYER_NORM, [(4, 1 << 17), (1 << 17,), (1 << 17,)])[0])
    assert all(c.strategy.kind != "split_row" for c in enumerate_candidates(*rewritten(SOFTMAX, [(4, 1 << 17)]), HW))


def test_the_phases_meet_in_a_dram_workspace_that_planned_bytes_count() -> None:
    kernel, shell = rewritten(SUM, [(16, 1 << 20)])
    chosen = plan_kernel(kernel, shell.buffers, HW)
    program = planned_candidate(shell, chosen, HW).program
    verify(program, HW)
    partial, finish = program.kernels
    (ws,) = [b for b in program.buffers.values() if b.name not in shell.buffers]
    assert ws.level is Level.DRAM and ws.shape == (16, 64)
    assert f"buffer {ws.name}: float32[16, 64] @dram (tmp)" in program.text()
    assert [(type(i), i.level) for i in partial.instrs if isinstance(i, Store)] == [(Store, Level.DRAM)]
    assert any(isinstance(i, Load) and i.src.buffer == ws.name and i.level is Level.DRAM for i in finish.instrs)
    assert (partial.strategy.kind, finish.strategy.kind) == ("row", "row")
    x, out = 16 * (1 << 20) * 4, 16 * 4
    assert program_dram_bytes(program) == x + 2 * ws.nbytes + out
    with pytest.raises(AssertionError, match="phases"):
        planned_dram_bytes(chosen, shell.buffers)


def test_the_verifier_orders_the_launches() -> None:
    kernel, shell = rewritten(SUM, [(16, 1 << 20)])
    chosen = plan_kernel(kernel, shell.buffers, HW)
    program = planned_candidate(shell, chosen, HW).program
    with pytest.raises(VerifyError, match="read before an earlier kernel wrote it"):
        verify(replace(program, kernels=program.kernels[::-1]), HW)
    with pytest.raises(VerifyError, match="verified as its phase kernels"):
        verify(replace(shell, kernels=[chosen]), HW)


def test_split_candidates_verify_and_features_describe_them() -> None:
    kernel, shell = rewritten(SUM, [(16, 1 << 20)])
    found = enumerate_candidates(kernel, shell, HW)
    split = [c for c in found if c.strategy.kind == "split_row"]
    assert len(split) >= 10 and len({c.strategy for c in split}) == len(split)
    assert plan_kernel(kernel, shell.buffers, HW).strategy in {c.strategy for c in split}
    assert {c.strategy.splits for c in split} >= {4, 16, 64, 256}
    f = features(split[0], HW)
    ws = 16 * split[0].strategy.splits * 4
    assert (f["kernels"], f["workspace_bytes"], f["kind_split_row"]) == (2.0, float(ws), 1.0)
    assert f["dram_bytes"] == 16 * (1 << 20) * 4 + 2 * ws + 16 * 4
    plain = features(next(c for c in found if c.strategy.kind == "row"), HW)
    assert (plain["kernels"], plain["workspace_bytes"]) == (1.0, 0.0)
    # the prior charges the second launch, and still prefers splitting 16 rows over 132 SMs
    assert predicted_time_us(f, HW) >= 2 * LAUNCH_US
    times = {c.strategy: predicted_time_us(features(c, HW), HW) for c in found}
    assert min(times, key=times.get).kind == "split_row"


def test_the_prior_does_not_split_rows_that_fill_the_machine() -> None:
    kernel, shell = rewritten(SUM, [(4 * HW.processors, 1 << 15)])
    found = enumerate_candidates(kernel, shell, HW)
    assert any(c.strategy.kind == "split_row" for c in found)   # a candidate, not the favourite
    times = {c.strategy: predicted_time_us(features(c, HW), HW) for c in found}
    assert min(times, key=times.get).kind != "split_row"


def test_sampled_split_candidates_match_numpy_on_the_cpu_lowering() -> None:
    """Every split count, thread count and vector width renders correct phases (a row of
    odd length: every candidate has a masked tail)."""
    shapes = [(3, 50001)]
    kernel, shell = rewritten(lambda x: op.sum(op.exp(x), axis=[-1]), shapes)
    split = [c for c in enumerate_candidates(kernel, shell, HW) if c.strategy.kind == "split_row"]
    x = np.random.default_rng(0).standard_normal(shapes[0]).astype("float32")
    want = np.exp(x.astype(np.float64)).sum(-1)
    sample = split[:: max(1, len(split) // 6)]
    assert len({(c.strategy.splits, c.strategy.threads_per_row) for c in sample}) >= 3
    for k, cand in enumerate(sample):
        func = targets.source_prim_func(targets.render_source(cand.program, "llvm", f"c{k}"))
        (got,) = run_prim_func(func, [x])
        np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=str(cand.strategy))
