"""Reductions, softmax and layer norm over axes of extent 1, end to end from ONNX.

They used to come out as a reduction over no row axis, planned flat with vectors of 4, so
several outputs were folded into one accumulator: garbage or NaN that changed from run to
run.  The TIR reader now reads them as the elementwise `init op x` they are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper

import intelligen_tvm
from intelligen_tvm.testing import assert_close, build, device_sources, reference_outputs, run
from tests.helpers import check_nvcc_compiles
from tests.targets.cuda_emulation import emulate_model


def _model(op: str, shape: tuple[int, ...], inits: dict[str, np.ndarray] | None = None, **attrs) -> onnx.ModelProto:
    inits = inits or {}
    node = helper.make_node(op, ["x", *inits], ["y"], **attrs)
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


CASES = {
    "reduce_sum_8x1": _model("ReduceSum", (8, 1), {"axes": np.array([1], "int64")}, keepdims=1),
    "reduce_max_3x1x5": _model("ReduceMax", (3, 1, 5), axes=[1], keepdims=0),
    "reduce_mean_4x1x8_two_axes": _model("ReduceMean", (4, 1, 8), axes=[1, 2], keepdims=1),
    "layer_norm_4x1": _model("LayerNormalization", (4, 1), {"s": np.array([1.5], "float32"),
                                                             "b": np.array([0.5], "float32")}, axis=-1),
    "softmax_8x1": _model("Softmax", (8, 1), axis=1),
    "log_softmax_3x1x5": _model("LogSoftmax", (3, 1, 5), axis=1),
}


def _input(model: onnx.ModelProto) -> np.ndarray:
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return np.random.default_rng(0).uniform(-2, 3, shape).astype("float32")


@pytest.mark.parametrize("name", CASES)
def test_llvm_matches_reference_on_every_run(name: str) -> None:
    model = CASES[name]
    mod = intelligen_tvm.from_onnx(model)
    regions = intelligen_tvm.explain(mod, {"kind": "llvm"})["regions"]
    assert [r["handled_by"] for r in regions] == ["intelligen"], regions
    x = _input(model)
    expected = reference_outputs(model, [x])
    executable = build(mod, {"kind": "llvm"}, "intelligen")
    for _ in range(3):   # the bug gave different garbage from run to run
        assert_close(run(executable, tvm.target.Target("llvm"), [x]), expected, 1e-5, 1e-5, name)


@pytest.mark.parametrize("name", ["reduce_sum_8x1", "layer_norm_4x1", "softmax_8x1"])
def test_cuda_kernel_has_no_reduction_left(name: str, tmp_path: Path) -> None:
    """Only the non-trivial axes of a reduction stay one: over extent-1 axes the CUDA kernel is
    flat elementwise work (no shuffles, no shared memory), compiles, and runs right under the
    CUDA emulation."""
    model = CASES[name]
    mod = intelligen_tvm.from_onnx(model)
    target = tvm.target.Target({"kind": "cuda", "arch": "sm_90"})
    (region,) = intelligen_tvm.explain(mod, target)["regions"]
    assert region["handled_by"] == "intelligen" and region["strategy"]["kind"] == "flat"
    (source,) = device_sources(tvm.compile(mod, target=target, relax_pipeline="intelligen"), "cuda")
    assert "__shfl" not in source and "__shared__" not in source
    check_nvcc_compiles(source, tmp_path / f"{name}.cu")
    x = _input(model)
    got, expected = emulate_model(model).run([x])
    np.testing.assert_allclose(np.asarray(got).reshape(expected.shape), expected, rtol=1e-5, atol=1e-5)
