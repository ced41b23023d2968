"""Symbolic shapes: ONNX node cases whose shapes come from input tensors (and models with
dim_param dimensions) compile with the intelligen pipeline and match the ONNX expected outputs;
a region we cannot take falls back with a reason instead of crashing."""

from __future__ import annotations

import functools
import importlib

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.relax.frontend.onnx import from_onnx

import intelligen_tvm
from intelligen_tvm.gir_lowering.tir_reader import Unsupported, read_prim_func

from tests.helpers import single_prim_func

SHAPE_INPUT_CASES = ["test_squeeze", "test_slice", "test_slice_neg_steps", "test_unsqueeze_two_axes",
                     "test_expand_dim_unchanged"]


@functools.cache
def _node_cases() -> dict:
    """The ONNX backend node cases of the ops whose output shape is read from an input tensor."""
    from onnx.backend.test.case import node

    for op in ("slice", "squeeze", "unsqueeze", "expand"):
        importlib.import_module(f"onnx.backend.test.case.node.{op}")
    return {c.name: c for c in node._NodeTestCases}


@pytest.mark.parametrize("name", SHAPE_INPUT_CASES)
def test_shape_from_input_compiles_and_matches(name):
    case = _node_cases()[name]
    mod = from_onnx(case.model, keep_params_in_input=False)
    regions = intelligen_tvm.explain(mod, {"kind": "llvm"})["regions"]
    assert all(r["handled_by"] == "intelligen" or r["reason"] for r in regions), regions
    ex = tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"}), relax_pipeline="intelligen")
    vm = relax.VirtualMachine(ex, tvm.cpu())
    inputs, expected = case.data_sets[0]
    got = vm["main"](*[tvm.runtime.tensor(a) for a in inputs])
    np.testing.assert_array_equal(got.numpy(), expected[0])


def test_reader_refuses_symbolic_extent_with_reason():
    n = tvm.tirx.Var("n", "int64")
    func = single_prim_func(lambda x: relax.op.exp(x), [(n, 8)])
    with pytest.raises(Unsupported, match="symbolic shape"):
        read_prim_func(func, ["x", "y"], "c0_")
