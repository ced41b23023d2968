"""Naive GIR: one kernel per stage, everything through DRAM."""

from __future__ import annotations

import numpy as np
import pytest
from tvm import relax

from intelligen_tvm import suite
from intelligen_tvm.gir.interpret import interpret
from intelligen_tvm.gir.program import Compute, Load, Reduce, Store
from intelligen_tvm.gir.verify import verify
from intelligen_tvm.gir_lowering.naive import lower_naive
from intelligen_tvm.region import plan_region, program_dram_bytes
from intelligen_tvm.targets import hardware_model
from tests.helpers import read_single, suite_region

M, N = 8, 16
F = 4  # bytes per float32


def _softmax_program():
    sp = read_single(lambda x: relax.op.nn.softmax(x), [(M, N)], ["x", "out"])
    return sp, lower_naive(sp, "softmax")


def test_one_kernel_per_stage_with_the_stage_iteration_space() -> None:
    sp, prog = _softmax_program()
    assert len(prog.kernels) == len(sp.stages) == 4
    for st, k in zip(sp.stages, prog.kernels):
        assert [a.extent for a in k.outer] == [n for _, n in st.spatial]
        assert [a.extent for a in k.row] == [n for _, n in st.reduce]
        assert isinstance(k.instrs[-1], Store) and k.instrs[-1].dst.buffer == st.out
        assert any(isinstance(i, Load) for i in k.instrs)
        assert sum(isinstance(i, Reduce) for i in k.instrs) == (st.reducer is not None)
    verify(prog, hardware_model("llvm"))
    text = prog.text()
    assert text.count("kernel ") == 4
    assert "reduce.max" in text and "reduce.sum" in text and "unary.exp" in text


def test_naive_bytes_of_softmax_are_every_stage_load_and_store() -> None:
    sp, prog = _softmax_program()
    row, vec = M * N * F, M * F
    expected = (
        row + vec            # maxelem: read x, write max
        + row + vec + row    # exp: read x and max, write exp
        + row + vec          # expsum: read exp, write sum
        + row + vec + row    # norm: read exp and sum, write out
    )
    assert program_dram_bytes(prog) == expected == 6 * row + 4 * vec
    assert plan_region(sp, "r", "llvm").dram_bytes_naive == expected


def test_naive_bytes_of_the_suite_softmax_match_explain() -> None:
    sp, _, _ = suite_region("softmax")
    m, n = suite.get_case("softmax").small_dims.values()
    assert program_dram_bytes(lower_naive(sp, "r")) == 6 * m * n * F + 4 * m * F


def test_constant_fill_becomes_a_cast() -> None:
    sp = read_single(lambda x: relax.op.zeros_like(x), [(M, N)], ["out"])   # no inputs at all
    (k,) = lower_naive(sp, "zeros").kernels
    assert any(isinstance(i, Compute) and i.op == "cast" for i in k.instrs)
    assert not any(isinstance(i, Load) for i in k.instrs)


def test_gather_index_is_hoisted_into_a_register_value() -> None:
    sp = read_single(lambda t, i: relax.op.take(t, i, axis=0), [(10, N), (4,)], ["table", "ids", "out"],
                     dtypes=["float32", "int64"])
    (k,) = lower_naive(sp, "take").kernels
    loads = [i for i in k.instrs if isinstance(i, Load)]
    assert [ld.src.buffer for ld in loads] == ["ids", "table"]
    ids_value = loads[0].dst
    assert loads[1].reads == (ids_value,)
    # the gathered rows count once each: 4 ids (8 bytes) + 4 rows of the table + the output
    assert program_dram_bytes(lower_naive(sp, "take")) == 4 * 8 + 4 * N * F + 4 * N * F


def test_select_branches_are_predicated_loads() -> None:
    sp = read_single(lambda x: relax.op.nn.pad(x, [0, 0, 1, 1]), [(M, N)], ["x", "out"])
    (k,) = lower_naive(sp, "pad").kernels
    x_loads = [i for i in k.instrs if isinstance(i, Load) and i.src.buffer == "x"]
    assert x_loads and all(ld.src.predicate is not None for ld in x_loads)


@pytest.mark.parametrize("name", [c.name for c in suite.SUITE])
def test_naive_program_computes_the_reference(name: str) -> None:
    """Interpreted with numpy, the naive GIR of every suite region matches onnx.reference."""
    sp, feed, expected = suite_region(name)
    got = interpret(lower_naive(sp, "r"), feed)
    for out, ref in expected.items():
        np.testing.assert_allclose(got[out], ref, rtol=1e-5, atol=1e-5)
