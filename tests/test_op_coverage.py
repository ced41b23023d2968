"""Ops beyond the suite (the lowering's coverage list): each compiles with the intelligen
pipeline and matches TVM's default pipeline on llvm; the report says who handled it."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.script import relax as R

import intelligen_tvm

op = relax.op

# name, input shapes, graph, expected handler (None: fallback with a reason)
CASES = [
    ("concat_relu", [(4, 8), (4, 16)], lambda a, b: op.nn.relu(op.concat([a, b], axis=1)), "intelligen"),
    ("strided_slice_exp", [(8, 32)],
     lambda a: op.exp(op.strided_slice(a, axes=[1], begin=[1], end=[31], strides=[2])), "intelligen"),
    ("log_softmax", [(8, 64)], lambda a: op.nn.log_softmax(a), "intelligen"),
    ("gelu_tanh", [(8, 64)], lambda a: op.nn.gelu_tanh(a), "intelligen"),
    ("max_middle_axis", [(4, 32, 8)], lambda a: op.max(a, axis=[1]), "intelligen"),
    ("min_two_axes", [(4, 32, 8)], lambda a: op.min(a, axis=[0, 2]), "intelligen"),
    ("cast_where", [(8, 16), (8, 16)],
     lambda a, b: op.where(op.greater(a, b), op.astype(a, "float16"), op.astype(b, "float16")), "intelligen"),
    ("rms_norm_op", [(8, 64), (64,)], lambda a, w: op.nn.rms_norm(a, w, axes=[-1]), "intelligen"),
    ("reshape_sum_broadcast", [(2, 3, 4)],
     lambda a: op.add(op.reshape(a, (6, 4)), op.expand_dims(op.sum(op.reshape(a, (6, 4)), axis=[1]), 1)),
     "intelligen"),
    ("group_norm", [(2, 8, 4, 4), (8,), (8,)],
     lambda a, g, b: op.nn.group_norm(a, g, b, num_groups=4, channel_axis=1, axes=[2, 3]), None),
    ("softmax_leading_axis", [(64, 8)], lambda a: op.nn.softmax(a, axis=0), "intelligen"),
    # every reduced axis has extent 1: a combine with init, not a sum across vector lanes
    ("sum_size_one_axis", [(64, 1)], lambda a: op.exp(op.sum(a, axis=[1])), "intelligen"),
]


def _module(shapes, graph) -> tvm.IRModule:
    bb = relax.BlockBuilder()
    params = [relax.Var(f"x{i}", R.Tensor(s, "float32")) for i, s in enumerate(shapes)]
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(graph(*params))
        bb.emit_func_output(out)
    return bb.get()


def _run(mod: tvm.IRModule, pipeline: str, args: list[np.ndarray]) -> np.ndarray:
    ex = tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"}), relax_pipeline=pipeline)
    vm = relax.VirtualMachine(ex, tvm.cpu())
    return vm["main"](*[tvm.runtime.tensor(a) for a in args]).numpy()


@pytest.mark.parametrize("name,shapes,graph,handler", CASES, ids=[c[0] for c in CASES])
def test_op_matches_default_pipeline(name, shapes, graph, handler):
    mod = _module(shapes, graph)
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s).astype("float32") for s in shapes]
    np.testing.assert_allclose(_run(mod, "intelligen", args), _run(mod, "default", args), rtol=1e-5, atol=1e-5)

    regions = intelligen_tvm.explain(mod, {"kind": "llvm"})["regions"]
    if handler is None:
        assert any(r["handled_by"] == "fallback" and r["reason"] for r in regions), regions
    else:
        assert [r["handled_by"] for r in regions] == ["intelligen"], regions
        assert regions[0]["dram_bytes_planned"] == regions[0]["dram_bytes_ideal"]
