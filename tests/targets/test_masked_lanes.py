"""Lanes past the end of the data (the masked tail of a flat launch, of a row) compute on
registers no load filled.  Integer division there used to trap: ONNX Div on uint32/uint64
killed the process with SIGFPE on llvm (and computed garbage silently on a GPU).  The
renderer gives masked lanes a divisor of 1 for integer div/mod, on every backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tvm
from tvm import relax

import intelligen_tvm
from intelligen_tvm.testing import assert_close, build_and_run, device_sources
from tests.helpers import check_nvcc_compiles, onnx_node_cases, relax_module
from tests.targets.cuda_emulation import emulate_model

CUDA = {"kind": "cuda", "arch": "sm_90"}
NODE_CASES = onnx_node_cases("div")
INT_CASES = ["test_div_uint32", "test_div_uint64", "test_div_int32_trunc"]


@pytest.mark.parametrize("name", INT_CASES)
def test_onnx_integer_division_node_cases(name: str) -> None:
    case = NODE_CASES[name]
    inputs, expected = case.data_sets[0]
    mod = intelligen_tvm.from_onnx(case.model)
    regions = intelligen_tvm.explain(mod, {"kind": "llvm"})["regions"]
    assert [r["handled_by"] for r in regions] == ["intelligen"], regions
    assert_close(build_and_run(mod, {"kind": "llvm"}, inputs, "intelligen"), expected, 0, 0, name)


# (graph, shapes): tails in a flat launch (7 * 33 elements) and in a row (33 = 32 lanes + 1)
GRAPHS = {
    "floordiv_flat": (lambda x, y: relax.op.floor_divide(x, y), [(7, 33), (33,)]),
    "floormod_flat": (lambda x, y: relax.op.floor_mod(x, y), [(7, 33), (7, 33)]),
    "divide_flat": (lambda x, y: relax.op.divide(x, y), [(7, 33), (7, 1)]),
    "row_sum_of_floordiv": (lambda x, y: relax.op.sum(relax.op.floor_divide(x, y), axis=[1]), [(5, 33), (5, 33)]),
    "row_max_of_floormod": (lambda x, y: relax.op.max(relax.op.floor_mod(x, y), axis=[1]), [(3, 1000), (3, 1000)]),
}


def _inputs(shapes, dtype: str) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.integers(-50, 50, shapes[0]).astype(dtype)
    y = rng.integers(1, 9, shapes[1]) * rng.choice([-1, 1], shapes[1])
    return [x, y.astype(dtype)]


@pytest.mark.parametrize("dtype", ["int32", "int64"])
@pytest.mark.parametrize("name", GRAPHS)
def test_integer_division_with_masked_tails_on_llvm(name: str, dtype: str) -> None:
    fn, shapes = GRAPHS[name]
    mod = relax_module(fn, shapes, [dtype, dtype])
    args = _inputs(shapes, dtype)
    expected = build_and_run(mod, {"kind": "llvm"}, args, "default")
    regions = intelligen_tvm.explain(mod, {"kind": "llvm"})["regions"]
    assert [r["handled_by"] for r in regions] == ["intelligen"], regions
    assert_close(build_and_run(mod, {"kind": "llvm"}, args, "intelligen"), expected, 0, 0, name)


@pytest.mark.parametrize("name", ["test_div_uint32", "test_div_int32_trunc"])
def test_cuda_of_masked_integer_division_compiles(name: str, tmp_path: Path) -> None:
    """The CUDA of a flat launch with a tail (uint32: 60 of 256 threads busy; int32: vectors
    of 4, one thread busy) compiles; the int32 one runs right under the CUDA emulation."""
    case = NODE_CASES[name]
    mod = intelligen_tvm.from_onnx(case.model)
    target = tvm.target.Target(CUDA)
    (source,) = device_sources(tvm.compile(mod, target=target, relax_pipeline="intelligen"), "cuda")
    check_nvcc_compiles(source, tmp_path / f"{name}.cu")
    if name == "test_div_int32_trunc":
        inputs, expected = case.data_sets[0]
        got, _ = emulate_model(case.model).run(list(inputs))
        np.testing.assert_array_equal(np.asarray(got).reshape(expected[0].shape), expected[0])
