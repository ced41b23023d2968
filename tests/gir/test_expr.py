"""The scalar expression IR of GIR: traversal, rewriting, simplification and text."""

from __future__ import annotations

import pytest

from intelligen_tvm.gir import expr as E

I32 = "int32"
F32 = "float32"


def v(name: str) -> E.Var:
    return E.Var(I32, name)


def c(value: int) -> E.Const:
    return E.Const(I32, value)


def call(op: str, *args: E.Expr, dtype: str = I32) -> E.Call:
    return E.Call(dtype, op, tuple(args))


def test_nodes_are_values_hashable_and_comparable() -> None:
    a = call("add", v("o0"), c(1))
    b = call("add", v("o0"), c(1))
    assert a == b and hash(a) == hash(b)
    assert {a, b} == {a}
    assert call("add", v("o0"), c(2)) != a
    assert E.const(2, I32) == c(2)
    with pytest.raises(Exception):
        a.op = "sub"  # frozen


def test_children_and_walk_preorder() -> None:
    gather = E.Load(I32, "ids", (v("o0"),))
    e = call("add", E.Load(F32, "x", (gather, v("r0")), ), E.ValueRef(F32, "t3"), dtype=F32)
    kinds = [type(n).__name__ for n in E.walk(e)]
    assert kinds == ["Call", "Load", "Load", "Var", "Var", "ValueRef"]
    assert E.children(v("o0")) == ()
    assert E.children(gather) == (v("o0"),)


def test_free_vars_loads_and_value_refs() -> None:
    ids = E.Load("int64", "ids", (v("o0"), v("o1")))
    table = E.Load(F32, "table", (call("cast", ids), v("r0")))
    e = call("mul", table, E.ValueRef(F32, "t1"), dtype=F32)
    assert E.free_vars(e) == {"o0", "o1", "r0"}
    assert [ld.buffer for ld in E.loads(e)] == ["table", "ids"]
    assert E.walk_value_refs((e, E.ValueRef(F32, "t7"))) == {"t1", "t7"}


def test_substitute_replaces_vars_by_name_inside_loads() -> None:
    e = E.Load(F32, "x", (call("add", v("a"), c(1)), v("b")))
    out = E.substitute(e, {"a": v("o0"), "b": call("mul", v("o1"), c(2))})
    assert out == E.Load(F32, "x", (call("add", v("o0"), c(1)), call("mul", v("o1"), c(2))))
    # unmapped variables survive; the original is untouched
    assert E.substitute(e, {}) == e
    assert E.free_vars(e) == {"a", "b"}


def test_transform_is_bottom_up_and_keeps_identity_when_unchanged() -> None:
    e = call("add", call("mul", v("a"), c(3)), c(4))
    seen: list[str] = []

    def visit(n: E.Expr):
        seen.append(type(n).__name__ if not isinstance(n, E.Call) else n.op)
        return None

    assert E.transform(e, visit) is e
    assert seen == ["Var", "Const", "mul", "Const", "add"]
    doubled = E.transform(e, lambda n: c(int(n.value) * 2) if isinstance(n, E.Const) else None)
    assert doubled == call("add", call("mul", v("a"), c(6)), c(8))


@pytest.mark.parametrize(
    "expr, expected",
    [
        (call("add", v("a"), c(0)), v("a")),
        (call("add", c(0), v("a")), v("a")),
        (call("sub", v("a"), c(0)), v("a")),
        (call("mul", v("a"), c(1)), v("a")),
        (call("mul", c(1), v("a")), v("a")),
        (call("mul", v("a"), c(0)), c(0)),
        (call("floordiv", v("a"), c(1)), v("a")),
        (call("floormod", v("a"), c(1)), c(0)),
        (call("add", c(2), c(3)), c(5)),
        (call("mul", c(4), c(5)), c(20)),
        (call("floordiv", c(-7), c(2)), c(-4)),   # floor semantics, like TIR FloorDiv
        (call("floormod", c(-7), c(2)), c(1)),
        # nested: (a * 1 + 0) // 1 -> a
        (call("floordiv", call("add", call("mul", v("a"), c(1)), c(0)), c(1)), v("a")),
        # reshape-style index with extent-1 dims folded: ((0 * 6) + a) % 12 stays a modulo
        (call("floormod", call("add", call("mul", c(0), c(6)), v("a")), c(12)),
         call("floormod", v("a"), c(12))),
    ],
)
def test_simplify_integer_index_arithmetic(expr: E.Expr, expected: E.Expr) -> None:
    assert E.simplify(expr) == expected


def test_simplify_leaves_division_by_zero_and_float_constants_alone() -> None:
    div0 = call("floordiv", c(3), c(0))
    assert E.simplify(div0) == div0
    f = call("add", E.Const(F32, 1.5), E.Const(F32, 2.0), dtype=F32)
    assert E.simplify(f) == f   # data arithmetic is not folded (only index arithmetic)


def test_to_text() -> None:
    ids = E.Load("int64", "ids", (v("o0"),))
    e = call("select", call("lt", v("r0"), c(4), dtype="bool"),
             call("exp", E.Load(F32, "x", (call("cast", ids), v("r0"))), dtype=F32),
             E.ValueRef(F32, "t2"), dtype=F32)
    assert E.to_text(e) == "select((r0 < 4), exp(x[int32(ids[o0]), r0]), %t2)"
    assert E.to_text(call("floormod", v("a"), c(7))) == "(a % 7)"
    assert E.to_text(E.Const(F32, 0.5)) == "0.5"


def test_op_tables_are_consistent() -> None:
    assert not E.UNARY_OPS & E.BINARY_OPS
    assert E.COMPARE_OPS <= (E.UNARY_OPS | E.BINARY_OPS)
