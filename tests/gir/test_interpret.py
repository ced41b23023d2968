"""The GIR interpreter (the executable definition of GIR) on hand-written programs."""

from __future__ import annotations

import numpy as np

from intelligen_tvm.gir import expr as E
from intelligen_tvm.gir.interpret import apply_op, interpret
from intelligen_tvm.gir.program import Axis, Buffer, Compute, Kernel, Load, Program, Reduce, Slice, Store, Value

F32 = "float32"


def _normalize_rows(rows: int, cols: int) -> Program:
    """y[o, r] = exp(x[o, r] - max_r x) / sum_r exp(x[o, r] - max_r x), gathered through ids."""
    o, r = E.Var("int32", "o0"), E.Var("int32", "r0")
    row = frozenset({"o0", "r0"})
    instrs = [Load("i", Slice("ids", (o,))), Load("a", Slice("x", (E.ValueRef("int32", "i"), r))),
              Reduce("m", "a", "max", E.Const(F32, -np.inf)), Compute("d", "sub", ("a", "m")),
              Compute("e", "exp", ("d",)), Reduce("s", "e", "sum", E.Const(F32, 0.0)),
              Compute("q", "div", ("e", "s")), Store(Slice("y", (o, r)), "q")]
    values = {"i": Value("i", "int32", frozenset({"o0"})), "a": Value("a", F32, row),
              "m": Value("m", F32, frozenset({"o0"})), "d": Value("d", F32, row), "e": Value("e", F32, row),
              "s": Value("s", F32, frozenset({"o0"})), "q": Value("q", F32, row)}
    kernel = Kernel("k", (Axis("o0", rows),), (Axis("r0", cols),), instrs, values)
    buffers = {"ids": Buffer("ids", (rows,), "int32"), "x": Buffer("x", (rows, cols), F32),
               "y": Buffer("y", (rows, cols), F32)}
    return Program("p", buffers, ["ids", "x"], ["y"], [kernel])


def test_gathered_softmax_rows() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7)).astype(F32)
    ids = np.array([4, 0, 0, 3, 1], dtype="int32")
    y = interpret(_normalize_rows(5, 7), {"ids": ids, "x": x})["y"]
    g = x[ids]
    expected = np.exp(g - g.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, expected / expected.sum(axis=1, keepdims=True), rtol=1e-6)


def test_operators_follow_gir_semantics() -> None:
    a, b = np.array([7, -7], dtype="int32"), np.array([2, 2], dtype="int32")
    assert apply_op("div", "int32", [a, b]).tolist() == [3, -3]         # integer div truncates
    assert apply_op("floordiv", "int32", [a, b]).tolist() == [3, -4]
    assert apply_op("floormod", "int32", [a, b]).tolist() == [1, 1]
    assert apply_op("lt", "bool", [a, b]).dtype == bool


def test_axis_arithmetic_arguments_and_a_scalar_result() -> None:
    """A select on a bound of the axes (concat) and a reduction over every axis into a 0-d buffer."""
    o, r = E.Var("int32", "o0"), E.Var("int32", "r0")
    row = frozenset({"o0", "r0"})
    right = E.Call("bool", "le", (E.Const("int32", 3), r))
    instrs = [Load("a", Slice("x", (o, r))), Compute("z", "select", (right, "a", E.Const(F32, 0.0))),
              Reduce("s", "z", "sum", E.Const(F32, 0.0)), Store(Slice("total", ()), "s")]
    values = {"a": Value("a", F32, row), "z": Value("z", F32, row), "s": Value("s", F32, frozenset())}
    kernel = Kernel("k", (), (Axis("o0", 2), Axis("r0", 5)), instrs, values)
    program = Program("p", {"x": Buffer("x", (2, 5), F32), "total": Buffer("total", (), F32)}, ["x"], ["total"],
                      [kernel])
    x = np.arange(10, dtype=F32).reshape(2, 5)
    assert float(interpret(program, {"x": x})["total"]) == float(x[:, 3:].sum())
