"""frontend.from_onnx: weights are baked in as constants, main takes only the activations."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
import tvm

from intelligen_tvm import suite
from intelligen_tvm.frontend import from_onnx


def _tensor_constants(mod: tvm.IRModule) -> list[np.ndarray]:
    """Tensor payloads of the constants in main (TVM 0.27: ``tvm.ir.GenericConst``)."""
    found: list[np.ndarray] = []

    def visit(expr: tvm.ir.Expr) -> None:
        if isinstance(expr, tvm.ir.GenericConst) and isinstance(expr.value, tvm.runtime.Tensor):
            found.append(expr.value.numpy())

    tvm.relax.analysis.post_order_visit(mod["main"].body, visit)
    return found


def test_initializers_become_constants_not_params() -> None:
    model = suite.get_case("layer_norm").build(small=True)
    mod = from_onnx(model)
    assert [p.name for p in mod["main"].params] == ["x"]
    consts = _tensor_constants(mod)
    assert sorted(c.shape for c in consts) == [(64,), (64,)]  # gamma and beta
    gamma = next(t for t in model.graph.initializer if t.name.endswith("gamma"))
    assert any(np.array_equal(c, onnx.numpy_helper.to_array(gamma)) for c in consts)


def test_int64_ids_stay_int64() -> None:
    mod = from_onnx(suite.get_case("bert_embedding").build(small=True))
    (ids,) = mod["main"].params
    assert ids.ty.dtype == "int64"


def test_rejects_non_models() -> None:
    with pytest.raises(TypeError):
        from_onnx(42)  # type: ignore[arg-type]


def test_takes_a_path(tmp_path) -> None:
    model = suite.get_case("layer_norm").build(small=True)
    path = tmp_path / "layer_norm.onnx"
    onnx.save(model, path)
    expected = from_onnx(model).script()
    assert from_onnx(path).script() == expected and from_onnx(str(path)).script() == expected
    with pytest.raises(FileNotFoundError, match="ONNX model not found: .*missing.onnx"):
        from_onnx(tmp_path / "missing.onnx")
