"""Scalar expressions of GIR: what one lane computes for one element.

GIR instructions operate on tiles; the element-level meaning of a compute instruction
and the index function of a slice are both expressed with this small, backend-free
expression language.  It is deliberately tiny: variables (region axes or register
values), constants, buffer loads (for gather indices) and calls of named operators.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Iterator, Mapping

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


# (argument texts, result dtype) -> text of one operator in one dialect
OpText = Callable[[list[str], str], str]


def infix(symbol: str) -> OpText:
    return lambda args, _dtype: f"({args[0]} {symbol} {args[1]})"


def template(text: str) -> OpText:
    """An operator written as a format string of its arguments ({0}, {1}, ...)."""
    return lambda args, _dtype: text.format(*args)


class Printer:
    """The one expression visitor of every dialect (GIR text, TIR, C): a dialect names the
    leaves (axes, constants, register values, gathers) and gives one operator table,
    `code_for_op` (in tinygrad's style); `unknown_op` answers for an op not in it."""

    code_for_op: Mapping[str, OpText] = {}

    def __call__(self, e: Expr) -> str:
        if isinstance(e, Var):
            return self.var(e)
        if isinstance(e, Const):
            return self.const(e)
        if isinstance(e, ValueRef):
            return self.value(e)
        if isinstance(e, Load):
            return self.load(e)
        assert isinstance(e, Call)
        return self.call(e.op, e.dtype, [self(a) for a in e.args])

    @classmethod
    def call(cls, op: str, dtype: str, args: list[str]) -> str:
        fn = cls.code_for_op.get(op)
        return fn(args, dtype) if fn is not None else cls.unknown_op(op, dtype, args)

    @classmethod
    def unknown_op(cls, op: str, dtype: str, args: list[str]) -> str:
        raise ValueError(f"{cls.__name__} has no text for {op} on {dtype}")

    def var(self, e: Var) -> str:
        raise NotImplementedError

    def const(self, e: Const) -> str:
        raise NotImplementedError

    def value(self, e: ValueRef) -> str:
        raise NotImplementedError

    def load(self, e: Load) -> str:
        raise NotImplementedError


class TextPrinter(Printer):
    """The human-readable form of the GIR text dump."""

    code_for_op = {**{op: infix(sym) for op, sym in {
        "add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "floormod": "%",
        "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}.items()},
        "cast": lambda args, dtype: f"{dtype}({args[0]})"}

    @classmethod
    def unknown_op(cls, op: str, dtype: str, args: list[str]) -> str:
        return f"{op}({', '.join(args)})"

    def var(self, e: Var) -> str:
        return e.name

    def const(self, e: Const) -> str:
        return repr(e.value)

    def value(self, e: ValueRef) -> str:
        return f"%{e.value}"

    def load(self, e: Load) -> str:
        return f"{e.buffer}[{', '.join(self(i) for i in e.indices)}]"


def to_text(expr: Expr) -> str:
    """Human-readable form used by the GIR text dump."""
    return TextPrinter()(expr)
