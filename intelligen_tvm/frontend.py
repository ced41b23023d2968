"""ONNX entry point: ONNX ModelProto -> Relax IRModule, weights baked in as constants."""

from __future__ import annotations

import onnx
import tvm
from tvm.relax.frontend.onnx import from_onnx as _relax_from_onnx


def from_onnx(model: onnx.ModelProto, opset: int | None = None) -> tvm.IRModule:
    """Import an ONNX model into a Relax ``IRModule`` whose ``main`` takes only the graph inputs.

    Initializers become ``relax.const`` (``keep_params_in_input=False``) rather than extra
    parameters: region selection and GIR lowering then see the real gamma/beta/bias/table values
    and shapes as part of the region, and the VM is called with activations only, in ONNX
    graph-input order. Input dtypes come from the model (``dtype_dict=None``), so int64 token ids
    stay int64. ``opset`` overrides the model's declared opset (rarely needed).
    """
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"expected onnx.ModelProto, got {type(model).__name__}")
    return _relax_from_onnx(model, dtype_dict=None, opset=opset, keep_params_in_input=False)
