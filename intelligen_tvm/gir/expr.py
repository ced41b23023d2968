"""Scalar expressions of GIR: what one lane computes for one element.

GIR instructions operate on tiles; the element-level meaning of a compute instruction
and the index function of a slice are both expressed with this small, backend-free
expression language.  It is deliberately tiny: variables (region axes or register
values), constants, buffer loads (for gather indices) and calls of named operators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

UNARY_OPS = frozenset(
    {"exp", "log", "sqrt", "rsqrt", "erf", "tanh", "sigmoid", "abs", "neg", "not",
     "floor", "ceil", "round", "sin", "cos", "exp2", "log2", "log1p", "tan", "trunc"}
)
BINARY_OPS = frozenset(
    {"add", "sub", "mul", "div", "floordiv", "floormod", "max", "min", "pow",
     "lt", "le", "gt", "ge", "eq", "ne", "and", "or"}
)
COMPARE_OPS = frozenset({"lt", "le", "gt", "ge", "eq", "ne", "and", "or", "not"})


@dataclass(frozen=True)
class Expr:
    dtype: str


@dataclass(frozen=True)
class Var(Expr):
    """A region axis (in index functions) or a named loop/thread coordinate."""

    name: str


@dataclass(frozen=True)
class Const(Expr):
    value: float | int | bool


@dataclass(frozen=True)
class Load(Expr):
    """An element of a buffer; inside index functions this is a gather (e.g. ids[o0, o1])."""

    buffer: str
    indices: tuple[Expr, ...]


@dataclass(frozen=True)
class ValueRef(Expr):
    """The per-lane element of a register value (an SSA name of the GIR program)."""

    value: str


@dataclass(frozen=True)
class Call(Expr):
    """A named operator: unary/binary ops, "select" (cond, a, b) or "cast" (a)."""

    op: str
    args: tuple[Expr, ...]


def const(value: float | int, dtype: str) -> Const:
    return Const(dtype, value)


def children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, Load):
        return expr.indices
    if isinstance(expr, Call):
        return expr.args
    return ()


def walk(expr: Expr) -> Iterator[Expr]:
    """Pre-order traversal."""
    yield expr
    for child in children(expr):
        yield from walk(child)


def rebuild(expr: Expr, new_children: tuple[Expr, ...]) -> Expr:
    if isinstance(expr, Load):
        return Load(expr.dtype, expr.buffer, new_children)
    if isinstance(expr, Call):
        return Call(expr.dtype, expr.op, new_children)
    return expr


def transform(expr: Expr, fn: Callable[[Expr], Expr | None]) -> Expr:
    """Bottom-up rewrite: `fn` returns a replacement or None to keep the (rebuilt) node."""
    kids = children(expr)
    if kids:
        new_kids = tuple(transform(k, fn) for k in kids)
        if new_kids != kids:
            expr = rebuild(expr, new_kids)
    replaced = fn(expr)
    return expr if replaced is None else replaced


def substitute(expr: Expr, mapping: dict[str, Expr]) -> Expr:
    """Replace variables by name."""
    return transform(expr, lambda e: mapping.get(e.name) if isinstance(e, Var) else None)


def free_vars(expr: Expr) -> set[str]:
    return {e.name for e in walk(expr) if isinstance(e, Var)}


def loads(expr: Expr) -> list[Load]:
    return [e for e in walk(expr) if isinstance(e, Load)]


def walk_value_refs(exprs: tuple[Expr, ...]) -> set[str]:
    return {e.value for x in exprs for e in walk(x) if isinstance(e, ValueRef)}


def simplify(expr: Expr) -> Expr:
    """Constant folding and identities for integer index arithmetic (x+0, x*1, x*0, x//1, x%1)."""

    def fold(e: Expr) -> Expr | None:
        if not isinstance(e, Call) or len(e.args) != 2 or e.op not in {"add", "sub", "mul", "floordiv", "floormod"}:
            return None
        a, b = e.args
        if isinstance(a, Const) and isinstance(b, Const) and not e.dtype.startswith("float"):
            x, y = int(a.value), int(b.value)
            value = {"add": x + y, "sub": x - y, "mul": x * y,
                     "floordiv": x // y if y else None, "floormod": x % y if y else None}[e.op]
            return None if value is None else Const(e.dtype, value)
        if e.op in {"add", "sub"} and isinstance(b, Const) and b.value == 0:
            return a
        if e.op == "add" and isinstance(a, Const) and a.value == 0:
            return b
        if e.op == "mul":
            if isinstance(b, Const) and b.value == 1:
                return a
            if isinstance(a, Const) and a.value == 1:
                return b
            if (isinstance(a, Const) and a.value == 0) or (isinstance(b, Const) and b.value == 0):
                return Const(e.dtype, 0)
        if e.op == "floordiv" and isinstance(b, Const) and b.value == 1:
            return a
        if e.op == "floormod" and isinstance(b, Const) and b.value == 1:
            return Const(e.dtype, 0)
        return None

    return transform(expr, fold)


def to_text(expr: Expr) -> str:
    """Human-readable form used by the GIR text dump."""
    if isinstance(expr, Var):
        return expr.name
    if isinstance(expr, Const):
        return repr(expr.value)
    if isinstance(expr, ValueRef):
        return f"%{expr.value}"
    if isinstance(expr, Load):
        return f"{expr.buffer}[{', '.join(to_text(i) for i in expr.indices)}]"
    assert isinstance(expr, Call)
    infix = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "floormod": "%",
             "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
    if expr.op in infix:
        a, b = expr.args
        return f"({to_text(a)} {infix[expr.op]} {to_text(b)})"
    if expr.op == "cast":
        return f"{expr.dtype}({to_text(expr.args[0])})"
    return f"{expr.op}({', '.join(to_text(a) for a in expr.args)})"
