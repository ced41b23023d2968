"""testing helpers: reference run, tuple outputs from the VM, and comparison failures."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from intelligen_tvm import suite
from intelligen_tvm.frontend import from_onnx
from intelligen_tvm.testing import (
    ATOL,
    ATOL_TRANSCENDENTAL,
    assert_close,
    build_and_run,
    input_names,
    max_abs_error,
    reference_outputs,
    tolerances,
)


def _two_output_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4, 8]) for n in ("r", "n")]
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["x"], ["n"])],
        "two_outputs",
        [x],
        outs,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_tuple_outputs_come_back_in_order() -> None:
    model = _two_output_model()
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    expected = reference_outputs(model, [x])
    actual = build_and_run(from_onnx(model), {"kind": "llvm"}, [x])
    assert len(actual) == 2
    assert_close(actual, expected)
    np.testing.assert_array_equal(actual[1], -x)


def test_reference_accepts_a_feed_dict() -> None:
    model = _two_output_model()
    x = np.ones((4, 8), np.float32)
    assert input_names(model) == ["x"]
    assert_close(reference_outputs(model, {"x": x}), reference_outputs(model, [x]))
    with pytest.raises(ValueError):
        reference_outputs(model, [x, x])


def test_assert_close_reports_mismatches() -> None:
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(AssertionError, match="max abs err"):
        assert_close([a], [a + 1.0])
    with pytest.raises(AssertionError, match="shape"):
        assert_close([a], [a.T])
    with pytest.raises(AssertionError, match="outputs"):
        assert_close([a, a], [a])
    assert max_abs_error([a], [a + 0.5]) == 0.5


def test_tolerances_loosen_for_transcendental_chains() -> None:
    assert tolerances(suite.get_case("relu_add").build(small=True))[1] == ATOL
    assert tolerances(suite.get_case("softmax").build(small=True))[1] == ATOL_TRANSCENDENTAL
