"""Reductions over a row of symbolic length that is empty at run time (ONNX's `*_empty_set`
cases with a named dimension): every CPU candidate, built once, matches onnx.reference at
n = 0 and at sizes with and without a scalar tail.

A row of symbolic length is never held, so all its candidates stream; with a single reduction
level the held and streamed sweeps coincide, and the choice space used to keep only the held
modes: no candidate at all, so `tune()` had nothing to measure.

The empty-set conformance cases themselves (`test_reduce_sum_empty_set_const`) have a 0
dimension, which TVM's importer turns into a symbol named '': the region falls back to TVM,
whose legalized reduction initialises its output inside the (zero-trip) reduction loop, so
the output is left uninitialised under both pipelines."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper

from intelligen_tvm import targets
from intelligen_tvm.dataflow_graph.choices import enumerate_candidates
from intelligen_tvm.dataflow_graph.fuse import build_kernel
from intelligen_tvm.dataflow_graph.rewrites import monotonic_rewrites
from intelligen_tvm.gir.program import Program
from intelligen_tvm.testing import reference_outputs
from tests.helpers import model_region
from tests.targets.test_cpu_backend import HOST, HW

ROW, COLUMN = (2, 3, "n"), (2, "n", 3)   # reduced axis innermost (row) or strided (column)


def _model(op: str, shape, axis: int, keepdims: int) -> onnx.ModelProto:
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=keepdims)
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(np.array([axis], "int64"), "axes")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _expected(model: onnx.ModelProto, op: str, x: np.ndarray) -> np.ndarray:
    """onnx.reference, except that TVM's legalized max/min start from the dtype's lowest/highest
    finite value (topi's init), not from -inf/inf: that is what they return for an empty set."""
    want = reference_outputs(model, [x])[0]
    lowest = {"ReduceMax": (-np.inf, np.finfo(want.dtype).min), "ReduceMin": (np.inf, np.finfo(want.dtype).max)}
    if op in lowest and x.size == 0:
        want = np.where(want == lowest[op][0], lowest[op][1], want).astype(want.dtype)
    return want


@pytest.mark.parametrize("op, shape, keepdims", [
    ("ReduceSum", ROW, 1), ("ReduceMax", ROW, 0), ("ReduceMin", ROW, 1), ("ReduceProd", ROW, 0),
    ("ReduceLogSumExp", ROW, 1), ("ReduceSumSquare", ROW, 0), ("ReduceL1", ROW, 1),
    ("ReduceSum", COLUMN, 0), ("ReduceMax", COLUMN, 1),
])
def test_every_candidate_of_an_empty_reduction_matches_reference(op: str, shape, keepdims: int) -> None:
    axis = shape.index("n")
    model = _model(op, shape, axis, keepdims)
    at = lambda n: [n if d == "n" else d for d in shape]  # noqa: E731
    sp, _, _ = model_region(model, [np.ones(at(5), "float32")])
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    assert kernel.row and kernel.row[0].extent.text == "n"
    program = Program("r", sp.buffers, sp.inputs, sp.outputs, [])
    candidates = enumerate_candidates(kernel, program, HW)
    assert candidates and not any(c.strategy.held for c in candidates)
    funcs = {}
    for k, cand in enumerate(candidates):
        planned = cand.program.renamed(f"c{k}")
        funcs[f"c{k}"] = targets.source_prim_func(targets.render_source(planned, "llvm", f"c{k}")).with_attr(
            "global_symbol", f"c{k}")
    lib = tvm.compile(tvm.IRModule(funcs), target=HOST)
    for n in (0, 1, 37):   # empty; shorter than a vector; whole steps and a scalar tail
        x = np.random.default_rng(n).uniform(-2, 2, at(n)).astype("float32")
        want = _expected(model, op, x)
        for k, cand in enumerate(candidates):
            out = tvm.runtime.tensor(np.full(want.shape, np.nan, "float32"))   # a skipped store shows
            lib[f"c{k}"](tvm.runtime.tensor(x), out)
            np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-6,
                                       err_msg=f"{op} n={n}: {cand.strategy}")
