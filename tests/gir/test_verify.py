"""The GIR verifier rejects hand-built bad programs and accepts a good one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from intelligen_tvm.gir.hardware import HardwareModel
from intelligen_tvm.gir.strategy import ParallelStrategy, PlanFamily
from intelligen_tvm.gir import expr as E
from intelligen_tvm.gir.errors import VerifyError
from intelligen_tvm.gir.program import (Axis, Buffer, Compute, Kernel, Level, Load, Program, Reduce, Scope, Slice,
                                        Store, Sync, Value)
from intelligen_tvm.gir.verify import verify

I32, F32 = "int32", "float32"
HW = HardwareModel(lanes_per_unit=32, max_threads_per_group=1024, sram_bytes_per_group=48 * 1024,
                   reg_elems_per_lane=64, vector_bytes=16)
ROWS, N = 64, 256


def v(name: str) -> E.Var:
    return E.Var(I32, name)


def row_strategy(t: int = 32, vector: int = 4, rows_per_group: int = 4) -> ParallelStrategy:
    chunks = -(-N // (t * vector))
    units = rows_per_group * t // 32
    return ParallelStrategy(PlanFamily.ROW, ROWS // rows_per_group, units, 32, t, rows_per_group, vector,
                            chunks, 1, ROWS, N)


def good_kernel(scope: Scope = Scope.UNIT, strategy: ParallelStrategy | None = None) -> Kernel:
    """out[o0, r0] = x[o0, r0] - sum_r x[o0, r] ; total[o0] = sum."""
    values = {
        "x": Value("x", F32, frozenset({"o0", "r0"})),
        "s": Value("s", F32, frozenset({"o0"})),
        "y": Value("y", F32, frozenset({"o0", "r0"})),
    }
    instrs = [
        Load("x", Slice("x", (v("o0"), v("r0")))),
        Reduce("s", "x", "sum", E.Const(F32, 0.0), scope),
        Compute("y", "sub", ("x", "s")),
        Store(Slice("out", (v("o0"), v("r0"))), "y"),
        Store(Slice("total", (v("o0"),)), "s"),
    ]
    return Kernel("k", (Axis("o0", ROWS),), (Axis("r0", N),), instrs, values,
                  strategy=strategy if strategy is not None else row_strategy())


def program(kernel: Kernel, **extra_buffers: Buffer) -> Program:
    buffers = {"x": Buffer("x", (ROWS, N), F32), "out": Buffer("out", (ROWS, N), F32),
               "total": Buffer("total", (ROWS,), F32), **extra_buffers}
    return Program("p", buffers, ["x"], ["out", "total"], [kernel])


def with_instr(kernel: Kernel, n: int, ins) -> Kernel:
    instrs = list(kernel.instrs)
    instrs[n] = ins
    return replace(kernel, instrs=instrs)


def with_value(kernel: Kernel, value: Value) -> Kernel:
    return replace(kernel, values={**kernel.values, value.name: value})


def test_good_program_verifies() -> None:
    verify(program(good_kernel()), HW)
    # group scope over 256 threads per row is fine too
    verify(program(good_kernel(Scope.GROUP, row_strategy(t=256, vector=1, rows_per_group=1))), HW)
    # an unplanned kernel gets the structural checks only
    verify(program(replace(good_kernel(), strategy=None)), HW)


def test_unknown_axis() -> None:
    k = with_instr(good_kernel(), 0, Load("x", Slice("x", (v("o0"), v("r9")))))
    with pytest.raises(VerifyError, match=r"unknown axes \['r9'\]"):
        verify(program(k), HW)


def test_unknown_axis_inside_a_gather_index() -> None:
    gather = E.Load(I32, "ids", (v("o7"),))
    k = with_instr(good_kernel(), 0, Load("x", Slice("x", (gather, v("r0")))))
    with pytest.raises(VerifyError, match="unknown axes"):
        verify(program(k, ids=Buffer("ids", (ROWS,), I32)), HW)


@pytest.mark.parametrize("index", [ROWS, -1, ROWS + 5])
def test_constant_index_out_of_bounds(index: int) -> None:
    k = with_instr(good_kernel(), 4, Store(Slice("total", (E.Const(I32, index),)), "s"))
    with pytest.raises(VerifyError, match="out of bounds"):
        verify(program(k), HW)


def test_constant_index_in_bounds_is_fine() -> None:
    k = with_instr(good_kernel(), 0, Load("x", Slice("x", (E.Const(I32, ROWS - 1), v("r0")))))
    k = with_value(k, Value("x", F32, frozenset({"r0"})))
    verify(program(k), HW)


def test_axis_larger_than_the_dimension_it_indexes() -> None:
    k = with_instr(good_kernel(), 0, Load("x", Slice("x", (v("r0"), v("r0")))))   # r0<256> on dim 64
    with pytest.raises(VerifyError, match=r"dim 0 of size 64 indexed by r0<256>"):
        verify(program(k), HW)


def test_use_before_def() -> None:
    k = good_kernel()
    instrs = list(k.instrs)
    instrs[1], instrs[2] = instrs[2], instrs[1]     # y = x - s before s = reduce(x)
    with pytest.raises(VerifyError, match=r"%s used before definition"):
        verify(program(replace(k, instrs=instrs)), HW)


def test_store_of_an_undefined_value() -> None:
    k = with_instr(good_kernel(), 3, Store(Slice("out", (v("o0"), v("r0"))), "nope"))
    with pytest.raises(VerifyError, match="%nope used before definition"):
        verify(program(k), HW)


def test_unit_scope_reduction_with_more_threads_per_row_than_lanes() -> None:
    k = good_kernel(Scope.UNIT, row_strategy(t=64, vector=4, rows_per_group=1))
    with pytest.raises(VerifyError, match="unit-scope reduction over 64 threads"):
        verify(program(k), HW)


def test_lane_scope_reduction_of_a_row_split_over_lanes() -> None:
    with pytest.raises(VerifyError, match="lane-scope reduction"):
        verify(program(good_kernel(Scope.LANE)), HW)


def test_reduce_result_that_still_varies_over_row_axes() -> None:
    k = with_value(good_kernel(), Value("s", F32, frozenset({"o0", "r0"})))
    with pytest.raises(VerifyError, match="still varies over row axes"):
        verify(program(k), HW)


def test_unknown_buffer_and_rank_mismatch() -> None:
    k = with_instr(good_kernel(), 0, Load("x", Slice("nowhere", (v("o0"), v("r0")))))
    with pytest.raises(VerifyError, match="unknown buffer nowhere"):
        verify(program(k), HW)
    k = with_instr(good_kernel(), 0, Load("x", Slice("x", (v("o0"),))))
    with pytest.raises(VerifyError, match="rank 2, indexed with 1"):
        verify(program(k), HW)


def test_region_output_read_back_and_store_into_input() -> None:
    k = with_instr(good_kernel(), 0, Load("x", Slice("out", (v("o0"), v("r0")))))
    with pytest.raises(VerifyError, match="region output out read back"):
        verify(program(k), HW)
    k = with_instr(good_kernel(), 3, Store(Slice("x", (v("o0"), v("r0"))), "y"))
    with pytest.raises(VerifyError, match="store into region input x"):
        verify(program(k), HW)


def test_sram_load_from_a_dram_buffer() -> None:
    k = with_instr(good_kernel(), 0, Load("x", Slice("x", (v("o0"), v("r0"))), Level.SRAM))
    with pytest.raises(VerifyError, match="not at level sram"):
        verify(program(k), HW)


def test_register_capacity() -> None:
    # one lane holding a whole 256-element row: 256 > 64 registers
    s = ParallelStrategy(PlanFamily.ROW, ROWS, 1, 32, 1, 1, 4, 64, 1, ROWS, N)
    k = good_kernel(Scope.LANE, s)
    with pytest.raises(VerifyError, match="needs 256 registers per lane"):
        verify(program(k), HW)


def test_threads_per_group_limit() -> None:
    s = ParallelStrategy(PlanFamily.ROW, ROWS // 8, 64, 32, 256, 8, 1, 1, 1, ROWS, N)   # 2048 threads
    with pytest.raises(VerifyError, match="2048 threads per group"):
        verify(program(good_kernel(Scope.GROUP, s)), HW)


def test_shared_memory_capacity() -> None:
    tiny = replace(HW, sram_bytes_per_group=256)
    s = row_strategy(t=256, vector=1, rows_per_group=1)   # 8 units * 32 lanes * 4 bytes = 1 KiB
    with pytest.raises(VerifyError, match="bytes of shared memory exceed 256"):
        verify(program(good_kernel(Scope.GROUP, s)), tiny)


# ---- bounds of affine indices and barrier legality ------------------------------------------

def test_affine_index_out_of_bounds() -> None:
    shifted = E.Call(I32, "add", (v("o0"), E.Const(I32, 1)))     # o0 + 1 reaches 64 on a dim of 64
    k = with_instr(good_kernel(), 0, Load("x", Slice("x", (shifted, v("r0")))))
    with pytest.raises(VerifyError, match="out of bounds"):
        verify(program(k), HW)


def _staged_kernel(with_sync: bool) -> tuple[Kernel, Program]:
    """x -> reg -> SRAM tile -> (sync) -> reg -> out: the transpose-tile shape of code."""
    tile = Buffer("tile", (ROWS, N), F32, Level.SRAM)
    k = with_value(good_kernel(), Value("x2", F32, frozenset({"o0", "r0"})))
    instrs = [k.instrs[0], Store(Slice("tile", (v("o0"), v("r0"))), "x", Level.SRAM)]
    if with_sync:
        instrs.append(Sync(Level.SRAM))
    instrs += [Load("x2", Slice("tile", (v("o0"), v("r0"))), Level.SRAM),
               Store(Slice("out", (v("o0"), v("r0"))), "x2")]
    s = ParallelStrategy(PlanFamily.FLAT, ROWS * N // 256, 8, 32, 1, 256, 1, 1, 1, ROWS * N, 1)
    k = replace(k, instrs=instrs, row=(), outer=(Axis("o0", ROWS), Axis("r0", N)), strategy=s,
                local_buffers={"tile": tile})
    return k, Program("p", {"x": Buffer("x", (ROWS, N), F32), "out": Buffer("out", (ROWS, N), F32)},
                      ["x"], ["out"], [k])


def test_staged_copy_with_a_barrier_verifies() -> None:
    k, prog = _staged_kernel(with_sync=True)
    small = replace(HW, sram_bytes_per_group=ROWS * N * 4)
    verify(prog, small)


def test_sram_read_after_write_without_a_barrier() -> None:
    k, prog = _staged_kernel(with_sync=False)
    with pytest.raises(VerifyError, match="sync"):
        verify(prog, replace(HW, sram_bytes_per_group=ROWS * N * 4))
