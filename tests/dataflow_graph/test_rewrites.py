"""Monotonic rewrites: forwarding, dead stores/values; DRAM bytes reach the ideal, numbers stay."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from tvm import relax

from intelligen_tvm import suite
from intelligen_tvm.dataflow_graph.fuse import build_kernel
from intelligen_tvm.dataflow_graph.rewrites import (eliminate_common_subexpressions, eliminate_dead_stores,
                                                    eliminate_dead_values, forward_stores, monotonic_rewrites)
from intelligen_tvm.gir.errors import Unsupported
from intelligen_tvm.gir.interpret import interpret
from intelligen_tvm.gir.program import Compute, Load, Program, Reduce, Store
from intelligen_tvm.region import ideal_dram_bytes, plan_region, program_dram_bytes
from tests.helpers import chain_stages, suite_region

op = relax.op
CASES = [c.name for c in suite.SUITE]


def _loads(kernel, buffer=None):
    return [i for i in kernel.instrs if isinstance(i, Load) and (buffer is None or i.src.buffer == buffer)]


def _stores(kernel):
    return [i for i in kernel.instrs if isinstance(i, Store)]


def _program(sp, kernel) -> Program:
    return Program("p", dict(sp.buffers), list(sp.inputs), list(sp.outputs), [kernel])


def test_forwarding_removes_every_intermediate_load() -> None:
    sp, _, _ = suite_region("softmax")
    fused, _ = build_kernel(sp, "k")
    intermediates = set(sp.buffers) - set(sp.inputs) - set(sp.outputs)
    assert any(ld.src.buffer in intermediates for ld in _loads(fused))
    fwd = forward_stores(fused)
    assert not any(ld.src.buffer in intermediates for ld in _loads(fwd))
    # forwarding alone keeps the (now dead) stores; nothing else changes
    assert len(_stores(fwd)) == len(_stores(fused))
    assert [type(i) for i in fwd.instrs if not isinstance(i, Load)] == \
           [type(i) for i in fused.instrs if not isinstance(i, Load)]


def test_duplicate_loads_are_merged() -> None:
    sp, _, _ = suite_region("decomposed_layer_norm")
    fused, _ = build_kernel(sp, "k")
    x = sp.inputs[0]
    assert len(_loads(fused, x)) == 2       # ReduceMean and Sub both read x
    fwd = forward_stores(fused)
    assert len(_loads(fwd, x)) == 1
    # and the uses of the dropped load now read the surviving register
    (kept,) = _loads(fwd, x)
    readers = [i for i in fwd.instrs if kept.dst in i.reads]
    assert len(readers) >= 2


def test_dead_stores_go_region_outputs_stay() -> None:
    sp, _, _ = suite_region("softmax")
    k = eliminate_dead_stores(forward_stores(build_kernel(sp, "k")[0]), sp.outputs)
    assert [s.dst.buffer for s in _stores(k)] == sp.outputs


def test_an_intermediate_that_is_also_an_output_is_kept_and_still_forwarded() -> None:
    sp, _, _ = suite_region("softmax")
    fused, _ = build_kernel(sp, "k")
    exp_buf = next(s.out for s in sp.stages if s.reducer is None and s.out not in sp.outputs)
    k = monotonic_rewrites(fused, sp.inputs, [*sp.outputs, exp_buf])
    assert sorted(s.dst.buffer for s in _stores(k)) == sorted([*sp.outputs, exp_buf])
    assert not _loads(k, exp_buf)


def test_dead_values_are_dropped() -> None:
    sp, _, _ = suite_region("softmax")
    k = eliminate_dead_stores(forward_stores(build_kernel(sp, "k")[0]), sp.outputs)
    x = _loads(k)[0].dst
    # an unused load, and a chain of computations nobody reads
    dead = [Load("unused_x", _loads(k)[0].src), Compute("dead1", "exp", (x,)), Compute("dead2", "neg", ("dead1",))]
    k = replace(k, instrs=(k.instrs[0], *dead, *k.instrs[1:]),
                values={**k.values, **{n: replace(k.values[x], name=n) for n in ("unused_x", "dead1", "dead2")}})
    live = eliminate_dead_values(k)
    assert {"unused_x", "dead1", "dead2"}.isdisjoint(w for i in live.instrs for w in i.writes)
    assert {"unused_x", "dead1", "dead2"}.isdisjoint(live.values)
    used = {r for i in live.instrs for r in i.reads}
    for ins in live.instrs:
        for w in ins.writes:
            assert w in used, f"%{w} is computed but never used"
    assert len(live.instrs) == len(k.instrs) - 3


def test_softmax_after_rewrites_reads_x_once_and_writes_out_once() -> None:
    sp, _, _ = suite_region("softmax")
    k = monotonic_rewrites(build_kernel(sp, "k")[0], sp.inputs, sp.outputs)
    assert [ld.src.buffer for ld in _loads(k)] == sp.inputs
    assert [s.dst.buffer for s in _stores(k)] == sp.outputs
    assert [r.op for r in k.instrs if isinstance(r, Reduce)] == ["max", "sum"]
    assert any(isinstance(i, Compute) and i.op == "exp" for i in k.instrs)


def test_transpose_of_an_intermediate_is_forwarded_through_unified_axes() -> None:
    """relu then transpose: the transpose is the region output (not folded); axis unification
    computes relu at the transposed index, so the load of its result is forwarded."""
    sp, _ = chain_stages(lambda x: op.permute_dims(op.nn.relu(x), [1, 0]), [(8, 16)])
    k = monotonic_rewrites(build_kernel(sp, "k")[0], sp.inputs, sp.outputs)
    assert [ld.src.buffer for ld in _loads(k)] == ["x0"]
    x = np.random.default_rng(0).standard_normal((8, 16)).astype("float32")
    np.testing.assert_array_equal(interpret(_program(sp, k), {"x0": x})[sp.outputs[0]], np.maximum(x, 0).T)


@pytest.mark.parametrize(
    "fn",
    [lambda x: op.flip(op.nn.relu(x), 1),
     lambda x: op.strided_slice(op.nn.relu(x), [1], [1], [16], [2])],
    ids=["relu_flip", "relu_strided_slice"],
)
def test_reading_an_intermediate_at_another_index_needs_a_second_kernel(fn) -> None:
    """The output reads the relu result at an index that is not the one it was computed at:
    one kernel cannot forward it (another group wrote it), so the region is refused."""
    sp, _ = chain_stages(fn, [(8, 16)])
    with pytest.raises(Unsupported):
        monotonic_rewrites(build_kernel(sp, "k")[0], sp.inputs, sp.outputs)


@pytest.mark.parametrize("name", CASES)
def test_planned_bytes_equal_ideal_and_numbers_are_unchanged(name: str) -> None:
    sp, feed, expected = suite_region(name)
    lowered = plan_region(sp, "r", "llvm")
    assert lowered.dram_bytes_planned == lowered.dram_bytes_ideal
    assert lowered.dram_bytes_naive >= lowered.dram_bytes_planned
    assert lowered.dram_bytes_naive == program_dram_bytes(lowered.naive)
    assert lowered.dram_bytes_planned == program_dram_bytes(lowered.optimized)
    # ideal: each region input read once (what the region touches of it), each output written once
    out_bytes = sum(sp.buffers[o].nbytes for o in sp.outputs)
    in_bytes = sum(sp.buffers[i].nbytes for i in sp.inputs)
    if name != "bert_embedding":   # the gather touches only the rows it looks up
        assert lowered.dram_bytes_ideal == in_bytes + out_bytes
    else:
        assert out_bytes < lowered.dram_bytes_ideal < in_bytes + out_bytes
    got = interpret(lowered.optimized, feed)
    for out, ref in expected.items():
        np.testing.assert_allclose(got[out], ref, rtol=1e-5, atol=1e-5)


def test_rewrites_never_increase_bytes_on_random_chains() -> None:
    """Every monotonic rewrite, applied one at a time, never adds DRAM traffic."""
    chains = [
        (lambda x, y: op.multiply(op.nn.silu(x), op.add(y, x)), [(8, 32), (8, 32)]),
        (lambda x: op.nn.softmax(op.multiply(op.exp(x), op.exp(x))), [(4, 64)]),
        (lambda x, b: op.nn.gelu(op.add(x, b)), [(8, 64), (64,)]),
    ]
    for fn, shapes in chains:
        sp, _ = chain_stages(fn, shapes)
        k, _ = build_kernel(sp, "k")
        before = program_dram_bytes(_program(sp, k))
        for step in (forward_stores, lambda k: eliminate_dead_stores(k, sp.outputs), eliminate_dead_values):
            k = step(k)
            after = program_dram_bytes(_program(sp, k))
            assert after <= before
            before = after
        assert before == ideal_dram_bytes(build_kernel(sp, "k")[0], _program(sp, k))


def test_repeated_computations_are_computed_once() -> None:
    """The BERT embedding's decomposed layer norm computes x - mean three times: once after
    the rewrites, and the region still computes the reference."""
    sp, feed, expected = suite_region("bert_embedding")
    built = forward_stores(build_kernel(sp, "k")[0])
    merged = eliminate_common_subexpressions(built)

    def keys(kernel):
        return [(i.op, i.args, kernel.values[i.dst].dtype) for i in kernel.instrs if isinstance(i, Compute)]
    assert len(keys(built)) - len(set(keys(built))) >= 2
    assert len(keys(merged)) == len(set(keys(merged)))
    final = monotonic_rewrites(build_kernel(sp, "k")[0], sp.inputs, sp.outputs)
    assert len(keys(final)) == len(set(keys(final)))
    got = interpret(_program(sp, final), feed)
    for out, ref in expected.items():
        np.testing.assert_allclose(got[out], ref, rtol=1e-5, atol=1e-5)
