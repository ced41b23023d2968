"""C text of GIR scalar expressions: per-row statistics, gather indices and DRAM offsets.

What runs per element of a whole row goes through vector instructions (render.py); what
runs once per row (a mean, a reciprocal square root, a gather index) is scalar C here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...gir import expr as E
from ...gir.errors import Unsupported

C_TYPES = {"float32": "float", "int64": "int64_t", "int32": "int32_t", "bool": "bool", "int8": "int8_t"}

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "/", "floormod": "%",
          "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!=", "and": "&&", "or": "||"}
_FLOAT_UNARY = {"exp": "expf({})", "log": "logf({})", "sqrt": "sqrtf({})", "rsqrt": "(1.0f / sqrtf({}))",
                "erf": "erff({})", "tanh": "tanhf({})", "sigmoid": "(1.0f / (1.0f + expf(-{})))",
                "abs": "fabsf({})", "floor": "floorf({})", "ceil": "ceilf({})"}


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
class CPrinter:
    """`axis_text` names region axes; `value_text` gives the element of a register value."""

    axis_text: dict[str, str]
    value_text: Callable[[str], str]

    def __call__(self, e: E.Expr) -> str:
        if isinstance(e, E.Var):
            return self.axis_text[e.name]
        if isinstance(e, E.Const):
            return literal(e)
        if isinstance(e, E.ValueRef):
            return self.value_text(e.value)
        if isinstance(e, E.Load):
            raise Unsupported(f"an index reads DRAM buffer {e.buffer} directly")
        assert isinstance(e, E.Call)
        return self.call(e.op, e.dtype, [self(a) for a in e.args])

    @staticmethod
    def call(op: str, dtype: str, args: list[str]) -> str:
        is_float = dtype.startswith("float")
        if op in _INFIX:
            return f"({args[0]} {_INFIX[op]} {args[1]})"
        if op == "select":
            return f"({args[0]} ? {args[1]} : {args[2]})"
        if op == "cast":
            return f"(({c_type(dtype)})({args[0]}))"
        if op == "neg":
            return f"(-{args[0]})"
        if op == "not":
            return f"(!{args[0]})"
        if op in ("max", "min"):
            if is_float:
                return f"f{op}f({args[0]}, {args[1]})"
            cmp = ">" if op == "max" else "<"
            return f"(({args[0]}) {cmp} ({args[1]}) ? ({args[0]}) : ({args[1]}))"
        if op == "pow" and is_float:
            return f"powf({args[0]}, {args[1]})"
        if op in _FLOAT_UNARY and is_float:
            return _FLOAT_UNARY[op].format(args[0])
        raise Unsupported(f"no scalar C for {op} on {dtype}")
