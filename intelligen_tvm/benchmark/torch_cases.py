"""PyTorch versions of the suite cases and of the BERT encoder layer (``torch_fns``), written
from their ONNX semantics and fed the ONNX initializers, so that torch eager and ``torch.compile`` run exactly
the computation the other contestants run (their outputs are checked against
``onnx.reference`` like everyone else's). torch is optional: nothing here imports it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from .. import suite
from .torch_fns import torch_fn


def _weights(torch: Any, model: onnx.ModelProto) -> dict[str, Any]:
    return {t.name: torch.from_numpy(np.array(numpy_helper.to_array(t)))  # a writable copy
            for t in model.graph.initializer}


def torch_function(torch: Any, name: str, model: onnx.ModelProto, dims: dict) -> tuple[Callable, list[Any]] | None:
    """``(fn, weights)`` with ``fn(*inputs, *weights)`` computing the case, or None when the
    case has no torch version."""
    entry = torch_fn(torch, name, dims, suite.LN_EPS, suite.RMS_EPS)
    if entry is None:
        return None
    fn, names = entry
    weights = _weights(torch, model)
    return fn, [weights[n] for n in names]
