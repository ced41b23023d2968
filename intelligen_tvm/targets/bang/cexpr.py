"""C text of GIR scalar expressions: per-row statistics, gather indices and DRAM offsets.

What runs per element of a whole row goes through vector instructions (render.py); what
runs once per row (a mean, a reciprocal square root, a gather index) is scalar C here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...gir import expr as E
from ...gir.errors import Unsupported

C_TYPES = {"float32": "float", "int64": "int64_t", "int32": "int32_t", "bool": "bool", "int8": "int8_t"}

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "/", "floormod": "%",
          "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!=", "and": "&&", "or": "||"}
_FLOAT_ONLY = {"exp": "expf({0})", "log": "logf({0})", "sqrt": "sqrtf({0})", "rsqrt": "(1.0f / sqrtf({0}))",
               "erf": "erff({0})", "tanh": "tanhf({0})", "sigmoid": "(1.0f / (1.0f + expf(-{0})))",
               "abs": "fabsf({0})", "floor": "floorf({0})", "ceil": "ceilf({0})", "pow": "powf({0}, {1})"}


def _float_only(op: str, text: str) -> E.OpText:
    def op_text(args: list[str], dtype: str) -> str:
        if not dtype.startswith("float"):
            raise Unsupported(f"no scalar C for {op} on {dtype}")
        return text.format(*args)
    return op_text


def _min_max(op: str) -> E.OpText:
    cmp = ">" if op == "max" else "<"
    return lambda args, dtype: (f"f{op}f({args[0]}, {args[1]})" if dtype.startswith("float")
                                else f"(({args[0]}) {cmp} ({args[1]}) ? ({args[0]}) : ({args[1]}))")


def c_type(dtype: str) -> str:
    if dtype not in C_TYPES:
        raise Unsupported(f"dtype {dtype} has no BANG C type here")
    return C_TYPES[dtype]


def float_literal(value: float) -> str:
    """An exact fp32 literal (9 significant digits round-trip a float)."""
    v = float(np.float32(value))
    if not np.isfinite(v):
        return "INFINITY" if v > 0 else "-INFINITY" if v < 0 else "NAN"
    text = f"{v:.9g}"
    return text + ("f" if any(ch in text for ch in ".e") else ".0f")


def literal(c: E.Const) -> str:
    if c.dtype == "bool":
        return "true" if c.value else "false"
    if c.dtype.startswith("float"):
        return float_literal(float(c.value))
    return f"(({c_type(c.dtype)}){int(c.value)})"


@dataclass
class CPrinter(E.Printer):
    """`axis_text` names region axes; `value_text` gives the element of a register value."""

    axis_text: dict[str, str]
    value_text: Callable[[str], str]

    code_for_op: ClassVar = {
        **{op: E.infix(sym) for op, sym in _INFIX.items()},
        "select": E.template("({0} ? {1} : {2})"), "cast": lambda args, dtype: f"(({c_type(dtype)})({args[0]}))",
        "neg": E.template("(-{0})"), "not": E.template("(!{0})"), "max": _min_max("max"), "min": _min_max("min"),
        **{op: _float_only(op, text) for op, text in _FLOAT_ONLY.items()},
    }

    @classmethod
    def unknown_op(cls, op: str, dtype: str, args: list[str]) -> str:
        raise Unsupported(f"no scalar C for {op} on {dtype}")

    def var(self, e: E.Var) -> str:
        return self.axis_text[e.name]

    def const(self, e: E.Const) -> str:
        return literal(e)

    def value(self, e: E.ValueRef) -> str:
        return self.value_text(e.value)

    def load(self, e: E.Load) -> str:
        raise Unsupported(f"an index reads DRAM buffer {e.buffer} directly")
