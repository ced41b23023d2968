"""Symbolic extents: a dimension known only at run time (ONNX dim_param, Relax R.Tensor(("n", 768))).

A `SymInt` is an int whose value is a *representative* size (the hint the planner plans for)
and which also carries the extent as an expression of the symbols (`text`).  Everything that
plans, counts bytes or ranks candidates reads it as that int; arithmetic on it keeps the
expression, so a grid size or a bound computed from a symbolic extent renders as the
run-time expression.  Equality is by expression, never by value: `n == 128` is False even
when n's hint is 128, so every test of the kind "this bound is exact" or "the vector width
divides this extent" fails safely (the guard is kept, the vector is not used), and truth is
always True (a symbolic remainder might be non-zero).  Order comparisons (<, >) read the
hint: they are planning decisions, which is what the hint is for.
"""

from __future__ import annotations

import re

DEFAULT_HINT = 128   # representative size of a symbol the user gave no hint for
# Names the generated TIR defines (loop variables, registers, buffers): a symbol is renamed off them.
GENERATED_NAMES = re.compile(r"[gulvcwkjT]|st|t\d+.*|b_.*|h_.*|sred\d+")


def symbol(name: str, hint: int) -> SymInt:
    """The extent of the symbol `name` (renamed `name_` if generated code uses that name)."""
    return SymInt(f"{name}_" if GENERATED_NAMES.fullmatch(name) else name, hint)


class SymInt(int):
    text: str
    symbols: frozenset[tuple[str, int]]   # (symbol, hint) of every symbol in the expression

    def __new__(cls, text: str, hint: int, symbols: frozenset[tuple[str, int]] | None = None) -> SymInt:
        obj = super().__new__(cls, hint)
        obj.text = text
        obj.symbols = frozenset({(text, hint)}) if symbols is None else symbols
        return obj

    def __reduce__(self):
        return (SymInt, (self.text, int(self), self.symbols))

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return self.text

    def __eq__(self, other) -> bool:
        return isinstance(other, SymInt) and other.text == self.text

    def __ne__(self, other) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(("SymInt", self.text))

    def __bool__(self) -> bool:
        return True

    def _binary(self, other, op: str, value: int, reflected: bool = False):
        neutral = {"+": 0, "*": 1} if reflected else {"+": 0, "-": 0, "*": 1, "//": 1}
        if not isinstance(other, SymInt) and op in neutral and int(other) == neutral[op]:
            return self
        if not isinstance(other, SymInt) and op == "%" and not reflected and int(other) == 1:
            return 0
        a, b = (other, self) if reflected else (self, other)
        symbols = self.symbols | (other.symbols if isinstance(other, SymInt) else frozenset())
        return SymInt(f"({_text(a)} {op} {_text(b)})", value, symbols)

    def __add__(self, o):
        return self._binary(o, "+", int(self) + int(o)) if isinstance(o, int) else NotImplemented

    def __radd__(self, o):
        return self._binary(o, "+", int(o) + int(self), True) if isinstance(o, int) else NotImplemented

    def __sub__(self, o):
        return self._binary(o, "-", int(self) - int(o)) if isinstance(o, int) else NotImplemented

    def __rsub__(self, o):
        return self._binary(o, "-", int(o) - int(self), True) if isinstance(o, int) else NotImplemented

    def __mul__(self, o):
        return self._binary(o, "*", int(self) * int(o)) if isinstance(o, int) else NotImplemented

    def __rmul__(self, o):
        return self._binary(o, "*", int(o) * int(self), True) if isinstance(o, int) else NotImplemented

    def __floordiv__(self, o):
        return self._binary(o, "//", int(self) // int(o)) if isinstance(o, int) else NotImplemented

    def __rfloordiv__(self, o):
        return self._binary(o, "//", int(o) // int(self), True) if isinstance(o, int) else NotImplemented

    def __mod__(self, o):
        return self._binary(o, "%", int(self) % int(o)) if isinstance(o, int) else NotImplemented

    def __rmod__(self, o):
        return self._binary(o, "%", int(o) % int(self), True) if isinstance(o, int) else NotImplemented

    def __neg__(self):
        return SymInt(f"(0 - {self.text})", -int(self), self.symbols)


def _text(x: int) -> str:
    return x.text if isinstance(x, SymInt) else str(int(x))


def is_symbolic(x) -> bool:
    return isinstance(x, SymInt)


def symbols_of(values) -> dict[str, int]:
    """The symbols appearing in some extents (ints or SymInts), with their hints."""
    found: dict[str, int] = {}
    for v in values:
        if isinstance(v, SymInt):
            found.update(v.symbols)
    return dict(sorted(found.items()))


def ceil_div(a: int, b: int) -> int:
    """Ceiling division that renders as one readable expression when `a` is symbolic."""
    if isinstance(a, SymInt) and not isinstance(b, SymInt):
        return a if b == 1 else SymInt(f"(({a.text} + {b - 1}) // {b})", -(-int(a) // b), a.symbols)
    return -(-a // b)
