"""The default plan: parallel strategy, reduction scopes and vector widths per region shape."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from tvm import relax

from intelligen_tvm.dataflow_graph.fuse import build_kernel
from intelligen_tvm.dataflow_graph.plan import plan_kernel, with_strategy
from intelligen_tvm.dataflow_graph.rewrites import monotonic_rewrites
from intelligen_tvm.dataflow_graph.single_pass import online_softmax
from intelligen_tvm.gir.errors import Unsupported
from intelligen_tvm.gir.hardware import HardwareModel
from intelligen_tvm.gir.interpret import interpret
from intelligen_tvm.gir.program import Level, Load, Program, Reduce, Scope, Store, Sync
from intelligen_tvm.gir.strategy import ParallelStrategy, PlanFamily
from intelligen_tvm.gir.sweeps import stream_passes
from intelligen_tvm.gir.verify import verify
from intelligen_tvm.region import program_dram_bytes
from intelligen_tvm.targets import hardware_model
from tests.helpers import chain_stages

op = relax.op
HW = hardware_model("cuda")


def planned(fn, shapes, hw: HardwareModel = HW, dtypes=None):
    sp, _ = chain_stages(fn, shapes, dtypes)
    k, _ = build_kernel(sp, "k")
    k = plan_kernel(monotonic_rewrites(k, sp.inputs, sp.outputs), sp.buffers, hw)
    prog = Program("p", dict(sp.buffers), list(sp.inputs), list(sp.outputs), [k])
    verify(prog, hw)
    return k, prog, sp


def scopes(kernel) -> set[Scope]:
    return {i.scope for i in kernel.instrs if isinstance(i, Reduce)}


def test_the_cuda_preset() -> None:
    assert HW.lanes_per_unit == 32 and HW.max_threads_per_group == 1024
    assert HW.vector_bytes == 16   # 128-bit vectors: 4 fp32


# ---- flat -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "shape, vector",
    [((4096, 3072), 4), ((32, 116, 28, 28), 4), ((8, 30), 2), ((32, 116, 7, 7), 1), ((64, 31), 1)],
)
def test_flat_for_elementwise_with_the_widest_dividing_vector(shape, vector: int) -> None:
    k, _, _ = planned(lambda x, y: op.add(op.nn.relu(x), y), [shape, shape])
    s = k.strategy
    assert s.kind == "flat" and s.vector == vector
    assert s.lanes == HW.lanes_per_unit and s.threads_per_row == 1
    n = int(np.prod(shape))
    # every element is covered once: groups * threads * vector >= n, and no group is spare
    threads = s.units * s.lanes
    assert s.groups * threads * s.vector >= n > (s.groups - 1) * threads * s.vector
    assert s.outer_size == n and s.row_size == 1
    assert not scopes(k)


def test_flat_vector_follows_the_widest_dtype() -> None:
    k, _, _ = planned(lambda x: op.astype(x, "float64"), [(64, 32)])
    assert k.strategy.vector == 2     # 16 bytes / 8-byte doubles


# ---- row ------------------------------------------------------------------------------------

def test_row_plan_unit_scope_for_1024_columns() -> None:
    k, _, _ = planned(lambda x: op.nn.softmax(x), [(4096, 1024)])
    s = k.strategy
    assert s.kind == "row"
    assert s.threads_per_row == HW.lanes_per_unit == 32     # one warp per row
    assert scopes(k) == {Scope.UNIT}
    assert s.vector == 4 and s.chunks == 8 and s.per_lane == 32   # the row stays in registers
    assert s.rows_per_group == 4 and s.units == 4 and s.groups == 1024
    assert k.sweeps is None   # held on chip: no sweeps to record
    assert s.serial == 1


@pytest.mark.parametrize("n, threads, chunks", [(4096, 256, 4), (32768, 1024, 8)])
def test_row_plan_group_scope_for_long_rows(n: int, threads: int, chunks: int) -> None:
    k, _, _ = planned(lambda x: op.nn.softmax(x), [(64, n)])
    s = k.strategy
    assert s.kind == "row" and s.threads_per_row == threads
    assert scopes(k) == {Scope.GROUP}
    assert s.units == threads // 32 and s.rows_per_group == 1 and s.groups == 64
    assert s.vector == 4 and s.chunks == chunks
    assert s.chunks * s.vector * s.threads_per_row == n


def test_layer_norm_768_vector_4() -> None:
    k, _, _ = planned(lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[-1]), [(4096, 768), (768,), (768,)])
    s = k.strategy
    assert (s.kind, s.threads_per_row, s.vector, s.chunks) == ("row", 32, 4, 6)
    assert scopes(k) == {Scope.UNIT}


@pytest.mark.parametrize("n, vector", [(16, 1), (64, 2), (96, 2), (100, 2), (128, 4), (1000, 4), (1022, 2), (999, 1)])
def test_row_vector_width(n: int, vector: int) -> None:
    """The widest vector that divides the row and still gives every lane of the unit work."""
    k, _, _ = planned(lambda x: op.sum(x, axis=[1]), [(8, n)])
    assert k.strategy.kind == "row" and k.strategy.vector == vector
    s = k.strategy
    assert s.chunks * s.vector * s.threads_per_row >= n


def test_a_row_too_long_for_registers_streams_one_sweep_per_reduction_level() -> None:
    k, prog, sp = planned(lambda x: op.nn.softmax(x), [(4, 1 << 17)])
    s = k.strategy
    assert s.kind == "row" and s.serial > 1 and s.per_lane <= HW.reg_elems_per_lane
    assert s.serial * s.per_lane * s.threads_per_row >= 1 << 17
    row_bytes = 4 * (1 << 17) * 4
    # the default streams softmax online: max and sum in one sweep, then the output sweep
    assert s.single_pass
    assert k.sweeps == stream_passes(k)   # recorded by the planner, read by renderers and features
    passes = k.sweeps.passes
    assert [[r.op for r in p.reduces] for p in passes] == [["max", "sum"], []]
    assert "exp(%" in prog.text() and "online" in prog.text()
    assert program_dram_bytes(prog) == 2 * row_bytes + row_bytes
    # without online statistics: the max, then the sum of exp(x - max), then the output
    two_level = replace(k.strategy, single_pass=False)
    unfused = with_strategy(monotonic_rewrites(build_kernel(sp, "k")[0], sp.inputs, sp.outputs), two_level, HW)
    passes = stream_passes(unfused).passes
    assert [[r.op for r in p.reduces] for p in passes] == [["max"], ["sum"], []]
    assert all(any(isinstance(i, Load) for i in p.sweep) for p in passes)
    assert any(isinstance(i, Store) for i in passes[-1].sweep)
    unfused_prog = Program("p", dict(sp.buffers), list(sp.inputs), list(sp.outputs), [unfused])
    assert program_dram_bytes(unfused_prog) == 3 * row_bytes + row_bytes
    x = np.random.default_rng(0).standard_normal((4, 1 << 17)).astype("float32")
    want = np.exp(x - x.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    for p in (prog, unfused_prog):
        np.testing.assert_allclose(interpret(p, {"x0": x})[sp.outputs[0]], want, rtol=1e-5, atol=1e-9)


def test_online_softmax_needs_a_sum_of_exp_shifted_by_the_max() -> None:
    sp, _ = chain_stages(lambda x: op.nn.layer_norm(x, relax.const(np.ones(8, "float32")),
                                                    relax.const(np.zeros(8, "float32")), axes=[-1]), [(4, 8)])
    k = monotonic_rewrites(build_kernel(sp, "k")[0], sp.inputs, sp.outputs)
    with pytest.raises(Unsupported, match="online"):
        online_softmax(k)


def test_a_single_reduction_level_streams_in_two_sweeps() -> None:
    """rms_norm: the sum of squares, then the output (x read twice, the weight once); as many
    rows as processors, so that a group per row fills the machine (fewer rows are split)."""
    rows, n = HW.processors, 1 << 17
    k, prog, _ = planned(lambda x, w: op.nn.rms_norm(x, w, axes=[-1]), [(rows, n), (n,)])
    assert k.strategy.kind == "row"
    passes = stream_passes(k).passes
    assert [[r.op for r in p.reduces] for p in passes] == [["sum"], []]
    assert program_dram_bytes(prog) == 4 * (rows * n) * 2 + 4 * n + 4 * (rows * n)


def test_wider_units_change_the_row_mapping() -> None:
    wave64 = replace(HW, lanes_per_unit=64)
    k, _, _ = planned(lambda x: op.nn.softmax(x), [(256, 1024)], hw=wave64)
    assert k.strategy.threads_per_row == 64 and k.strategy.lanes == 64
    assert scopes(k) == {Scope.UNIT}


# ---- column ---------------------------------------------------------------------------------

def test_column_plan_for_a_sum_over_axis_0() -> None:
    k, _, _ = planned(lambda x: op.sum(x, axis=[0], keepdims=True), [(4096, 1024)])
    s = k.strategy
    assert s.kind == "column"
    assert scopes(k) == {Scope.GROUP}
    assert s.lanes == 32 and s.groups == 1024 // 32      # lanes own adjacent columns: coalesced
    assert s.vector == 1 and s.serial * s.chunks * s.units >= 4096   # the column streams


def test_a_multi_pass_strided_row_is_held_on_chip_when_it_fits() -> None:
    k, prog, _ = planned(lambda x: op.nn.softmax(x, axis=0), [(64, 8)])
    s = k.strategy
    assert s.kind == "column" and s.serial == 1 and s.chunks * s.units >= 64
    assert program_dram_bytes(prog) == 2 * 64 * 8 * 4      # read once, written once


def test_a_multi_pass_strided_row_too_long_for_registers_streams() -> None:
    k, prog, _ = planned(lambda x: op.nn.softmax(x, axis=0), [(4096, 8)])
    assert k.strategy.kind == "column" and k.strategy.serial > 1 and k.strategy.single_pass
    assert len(stream_passes(k).passes) == 2          # online max + sum, then the output
    assert program_dram_bytes(prog) == 3 * 4096 * 8 * 4


# ---- transpose through a shared-memory tile (CUDA) ------------------------------------------

def test_large_transpose_is_staged_through_a_padded_sram_tile() -> None:
    k, prog, sp = planned(lambda x: op.nn.relu(op.permute_dims(x, [2, 0, 3, 1])), [(32, 31, 33, 32)])
    assert k.strategy.kind == "tile"
    assert k.local_buffers and all(b.level is Level.SRAM for b in k.local_buffers.values())
    for b in k.local_buffers.values():
        assert b.shape[1] == b.shape[0] + 1            # one element of padding per tile row
    assert any(isinstance(i, Sync) for i in k.instrs)
    assert any(isinstance(i, Store) and i.level is Level.SRAM for i in k.instrs)
    assert any(isinstance(i, Load) and i.level is Level.SRAM for i in k.instrs)
    # staging adds no DRAM traffic: input read once, output written once
    assert program_dram_bytes(prog) == 2 * 32 * 31 * 33 * 32 * 4
    x = np.random.default_rng(0).standard_normal((32, 31, 33, 32)).astype("float32")
    got = interpret(prog, {"x0": x})[sp.outputs[0]]
    np.testing.assert_array_equal(got, np.maximum(x.transpose(2, 0, 3, 1), 0))


def test_small_transposes_stay_flat() -> None:
    k, _, _ = planned(lambda x: op.nn.relu(op.permute_dims(x, [2, 0, 3, 1])), [(4, 7, 9, 8)])
    assert k.strategy.kind == "flat" and not k.local_buffers


def test_inner_axis_preserving_transpose_stays_flat_and_vectorized() -> None:
    k, _, _ = planned(lambda x: op.permute_dims(x, [0, 2, 1, 3]), [(32, 128, 12, 64)])
    assert k.strategy.kind == "flat" and k.strategy.vector == 4


def test_strategy_describe_is_json_ready() -> None:
    s = ParallelStrategy(PlanFamily.ROW, 10, 4, 32, 32, 4, 4, 2, 1, 40, 256)
    d = s.describe()
    assert d == {"kind": "row", "groups": 10, "units_per_group": 4, "lanes_per_unit": 32,
                 "threads_per_row": 32, "rows_per_group": 4, "vector": 4, "elems_per_lane": 8,
                 "unroll": True, "single_pass": False}
    assert s.per_lane == 8 and str(s).startswith("row(groups=10")
