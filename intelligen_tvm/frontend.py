"""Entry points: an ONNX model (or its path) or a PyTorch module -> Relax IRModule, weights baked
in as constants."""

from __future__ import annotations

import os
from typing import Any

import onnx
import tvm
from tvm.relax.frontend.onnx import from_onnx as _relax_from_onnx


def from_onnx(model: onnx.ModelProto | str | os.PathLike, opset: int | None = None) -> tvm.IRModule:
    """Import an ONNX model (a ``ModelProto`` or the path of a ``.onnx`` file) into a Relax
    ``IRModule`` whose ``main`` takes only the graph inputs.

    Initializers become ``relax.const`` (``keep_params_in_input=False``) rather than extra
    parameters: region selection and GIR lowering then see the real gamma/beta/bias/table values
    and shapes as part of the region, and the VM is called with activations only, in ONNX
    graph-input order. Input dtypes come from the model (``dtype_dict=None``), so int64 token ids
    stay int64. ``opset`` overrides the model's declared opset (rarely needed).
    """
    if isinstance(model, (str, os.PathLike)):
        if not os.path.isfile(model):
            raise FileNotFoundError(f"ONNX model not found: {os.fspath(model)}")
        model = onnx.load(os.fspath(model))
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"expected onnx.ModelProto or a path, got {type(model).__name__}")
    return _relax_from_onnx(model, dtype_dict=None, opset=opset, keep_params_in_input=False)


def from_torch(module: Any, example_args: tuple, dynamic_shapes: Any = None) -> tvm.IRModule:
    """Import a ``torch.nn.Module`` through ``torch.export`` and TVM's
    ``from_exported_program``: no ONNX file in between, so models that the ONNX exporters or
    TVM's ONNX importer refuse can still come in.

    ``example_args`` is a tuple of example tensors (their shapes become the static shapes of
    ``main`` unless ``dynamic_shapes`` says otherwise, as in ``torch.export.export``). Parameters
    and buffers become constants (``keep_params_as_input=False``), as with ``from_onnx``; the
    module is exported in eval mode. torch is optional: imported here, with a clear error if absent.
    """
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError as err:
        raise ImportError("intelligen_tvm.from_torch needs PyTorch (pip install torch); "
                          f"`import torch` failed: {err}") from err
    from tvm.relax.frontend.torch import from_exported_program  # pylint: disable=import-outside-toplevel

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"expected torch.nn.Module, got {type(module).__name__}")
    if not isinstance(example_args, tuple):
        example_args = tuple(example_args) if isinstance(example_args, list) else (example_args,)
    module = module.eval()
    with torch.no_grad():
        exported = torch.export.export(module, example_args, dynamic_shapes=dynamic_shapes)
    return from_exported_program(exported, keep_params_as_input=False, unwrap_unit_return_tuple=True)
