"""fold_constants_on_host: constant subgraphs evaluated with numpy equal what TVM computes for
them, and what the table does not cover is left alone (for FoldConstant)."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax

from intelligen_tvm.host_constants import fold_constants_on_host
from intelligen_tvm.testing import build, run

LLVM = tvm.target.Target({"kind": "llvm"})
RNG = np.random.default_rng(7)
W = relax.const(RNG.normal(3.0, 2.0, (6, 4)).astype("float32"))
V = relax.const(RNG.uniform(0.5, 4.0, (6, 4)).astype("float32"))
I = relax.const(np.arange(24).reshape(6, 4) - 11, "int64")
R = relax.op

# name -> builds the constant expression from W, V (float32 [6, 4]) and I (int64 [6, 4])
CASES = {
    "permute_dims": lambda: R.permute_dims(W),
    "permute_dims_axes": lambda: R.permute_dims(R.reshape(W, (2, 3, 4)), [2, 0, 1]),
    "expand_dims": lambda: R.expand_dims(I, [0, -1]),
    "reshape_broadcast": lambda: R.broadcast_to(R.reshape(W, (1, 6, 4)), (3, 6, 4)),
    "astype": lambda: R.astype(I, "int32"),
    "full": lambda: R.full((5, 3), relax.const(True, "bool"), "bool"),
    "arange_float": lambda: R.arange(0, 32, 2, dtype="float32"),
    "causal_mask": lambda: R.less_equal(R.subtract(R.expand_dims(R.arange(0, 8, 1, dtype="int64"), [0]),
                                                   R.expand_dims(R.arange(0, 8, 1, dtype="int64"), [1])),
                                        relax.const(0, "int64")),
    "take": lambda: R.take(W, relax.const(np.array([5, 0, 2], "int64")), axis=0),
    "concat": lambda: R.concat([W, V], axis=1),
    "rotary": lambda: R.cos(R.multiply(R.divide(relax.const(1.0, "float32"),
                                                R.power(relax.const(10000.0, "float32"), V)), W)),
    "sin_add": lambda: R.sin(R.add(W, V)),
    "scalar": lambda: R.less(R.add(relax.const(-6, "int64"), relax.const(7, "int64")), relax.const(0, "int64")),
    "logic": lambda: R.logical_or(R.logical_and(R.greater(W, V), R.less(W, V)), R.not_equal(I, I)),
}


def _module(make) -> tvm.IRModule:
    bb = relax.BlockBuilder()
    with bb.function("main", []):
        with bb.dataflow():
            out = bb.emit_output(bb.normalize(make()))
        bb.emit_func_output(out)
    return bb.get()


def _main_bindings(mod: tvm.IRModule) -> list:
    return list(mod["main"].body.blocks[0].bindings)


@pytest.mark.parametrize("name", sorted(CASES))
def test_folded_value_equals_what_tvm_computes(name: str) -> None:
    mod = _module(CASES[name])
    folded = fold_constants_on_host(mod)
    last = _main_bindings(folded)[-1].value
    assert isinstance(last, tvm.ir.GenericConst), f"{name} not folded: {last}"
    (want,) = run(build(mod, {"kind": "llvm"}, "default"), LLVM, [])
    got = last.value.numpy()
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


def test_a_non_constant_operand_or_an_op_outside_the_table_stays() -> None:
    x = relax.Var("x", relax.TensorType((6, 4), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            uses_input = bb.emit(R.add(x, W))
            not_in_table = bb.emit(R.exp(W))
            int_divide = bb.emit(R.divide(I, relax.const(3, "int64")))   # rounding differs: left to TVM
            out_of_bounds = bb.emit(R.take(W, relax.const(np.array([6], "int64")), axis=0))
            out = bb.emit_output(R.add(R.add(uses_input, not_in_table), R.astype(int_divide, "float32")))
        bb.emit_func_output(relax.Tuple([out, out_of_bounds]))
    folded = fold_constants_on_host(bb.get())
    kinds = [type(b.value).__name__ for b in _main_bindings(folded)]
    assert "GenericConst" not in kinds[:4], kinds


def test_an_embedding_lookup_with_runtime_ids_stays_as_it_was() -> None:
    ids = relax.Var("ids", relax.TensorType((3,), "int64"))
    big = relax.const(np.zeros((4096, 1024), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [ids]):
        with bb.dataflow():
            out = bb.emit_output(R.take(big, ids, axis=0))
        bb.emit_func_output(out)
    mod = bb.get()
    folded = fold_constants_on_host(mod)
    tvm.ir.assert_structural_equal(folded, mod)


def test_a_folded_module_is_normalized() -> None:
    folded = fold_constants_on_host(_module(CASES["causal_mask"]))
    assert folded["main"].body.ty is not None and str(folded["main"].body.ty) == str(folded["main"].ret_ty)
