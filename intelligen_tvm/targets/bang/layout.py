"""How a planned kernel's region space maps onto NRAM tiles of an MLU core.

The region space splits into *tile rows* (axes enumerated by rows, split over tasks) and
*columns* (axes laid out contiguously in one NRAM row, padded to the vector granularity).
For a reduction region the columns are its row axes; for an elementwise region they are
the longest suffix of axes that every DRAM access reads contiguously and that fits NRAM.
Every value then has one of four on-chip shapes (`Shape`).  Index functions are analysed
as `rest + sum(coeff * axis)` so that a row of a slice becomes one `__memcpy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from ...gir import expr as E
from ...gir.errors import Unsupported
from ...gir.program import Axis, Buffer, Kernel, Load, Slice, Store, Value, numel
from ...gir.verify import index_bounds


class Shape(str, Enum):
    ROW = "row"          # [tile_rows, npad]: varies over tile rows and columns
    STAT = "stat"        # [tile_rows]: one element per tile row (row statistics, gather indices)
    VEC = "vec"          # [npad]: columns only, the same for every row (gamma, bias)
    SCALAR = "scalar"    # one element for the whole kernel


@dataclass(frozen=True)
class Affine:
    """offset = rest + sum(coeffs[a] * a) over the analysed axes; `rest` is free of them."""

    coeffs: dict[str, int]
    rest: E.Expr


_ZERO = E.Const("int64", 0)


def _fold_bounded(expr: E.Expr, axes: dict[str, int]) -> E.Expr:
    """x // m -> 0 and x % m -> x where x is known to lie in [0, m) (reshape index maps)."""

    def fold(e: E.Expr) -> E.Expr | None:
        if not (isinstance(e, E.Call) and e.op in ("floordiv", "floormod") and isinstance(e.args[1], E.Const)):
            return None
        bounds = index_bounds(e.args[0], axes)
        m = int(e.args[1].value)
        if bounds is None or not (0 <= bounds[0] and bounds[1] < m):
            return None
        return E.Const(e.dtype, 0) if e.op == "floordiv" else e.args[0]

    return E.simplify(E.transform(E.simplify(expr), fold))


def _add(a: E.Expr, b: E.Expr) -> E.Expr:
    return E.simplify(E.Call("int64", "add", (a, b)))


def _scale(a: E.Expr, k: int) -> E.Expr:
    return E.simplify(E.Call("int64", "mul", (a, E.Const("int64", k))))


def affine(expr: E.Expr, names: set[str], axes: dict[str, int]) -> Affine | None:
    """`expr` as an affine function of the axes in `names`, or None when it is not one."""
    expr = _fold_bounded(expr, axes)
    if not (E.free_vars(expr) & names):
        return Affine({}, expr)
    if isinstance(expr, E.Var):
        return Affine({expr.name: 1}, _ZERO)
    if not isinstance(expr, E.Call) or expr.op not in ("add", "sub", "mul"):
        return None
    a, b = (affine(x, names, axes) for x in expr.args)
    if a is None or b is None:
        return None
    if expr.op == "mul":
        const, other = (a, b) if isinstance(a.rest, E.Const) and not a.coeffs else (b, a)
        if const.coeffs or not isinstance(const.rest, E.Const):
            return None
        k = int(const.rest.value)
        return Affine({n: c * k for n, c in other.coeffs.items()}, _scale(other.rest, k))
    sign = 1 if expr.op == "add" else -1
    coeffs = dict(a.coeffs)
    for n, c in b.coeffs.items():
        coeffs[n] = coeffs.get(n, 0) + sign * c
    rest = _add(a.rest, b.rest) if sign == 1 else _add(a.rest, _scale(b.rest, -1))
    return Affine({n: c for n, c in coeffs.items() if c}, rest)


def slice_offset(sl: Slice, buf: Buffer, names: set[str], axes: dict[str, int]) -> Affine | None:
    """The flat element offset of a slice, affine in `names` (None when it is not)."""
    coeffs: dict[str, int] = {}
    rest: E.Expr = _ZERO
    stride = 1
    for ix, dim in zip(reversed(sl.index), reversed(buf.shape)):
        part = affine(ix, names, axes)
        if part is None:
            return None
        for n, c in part.coeffs.items():
            coeffs[n] = coeffs.get(n, 0) + c * stride
        rest = _add(rest, _scale(part.rest, stride))
        stride *= dim
    return Affine({n: c for n, c in coeffs.items() if c}, rest)


def row_major(axes: tuple[Axis, ...], unit: int = 1) -> dict[str, int]:
    """Strides of row-major axes (innermost last) in units of `unit` elements."""
    out, stride = {}, unit
    for ax in reversed(axes):
        out[ax.name] = stride
        stride *= ax.extent
    return out


@dataclass(frozen=True)
class TileLayout:
    rows: tuple[Axis, ...]
    cols: tuple[Axis, ...]
    tile_rows: int
    align_elems: int      # elements of one 128-byte vector (fp32)

    @property
    def n(self) -> int:
        return numel(a.extent for a in self.cols)

    @property
    def npad(self) -> int:
        return align_up(self.n, self.align_elems)

    @property
    def n_rows(self) -> int:
        return numel(a.extent for a in self.rows)

    @property
    def n_tiles(self) -> int:
        return -(-self.n_rows // self.tile_rows)

    @property
    def stat_len(self) -> int:
        return align_up(self.tile_rows, self.align_elems)

    def shape_of(self, value: Value) -> Shape:
        col = bool(value.axes & {a.name for a in self.cols})
        row = bool(value.axes & {a.name for a in self.rows})
        return {(True, True): Shape.ROW, (False, True): Shape.STAT,
                (True, False): Shape.VEC, (False, False): Shape.SCALAR}[(col, row)]


def align_up(x: int, k: int) -> int:
    return -(-x // k) * k


def _accesses(kernel: Kernel) -> list[tuple[Slice, str]]:
    """Every DRAM access with the value it moves."""
    out = []
    for ins in kernel.instrs:
        if isinstance(ins, Load):
            out.append((ins.src, ins.dst))
        elif isinstance(ins, Store):
            out.append((ins.dst, ins.src))
    return out


def column_problem(kernel: Kernel, buffers: Mapping[str, Buffer], cols: tuple[Axis, ...]) -> str | None:
    """Why `cols` cannot be the NRAM row of this kernel (None when it can): every access of a
    value that varies over some column must vary over all of them, contiguously in DRAM."""
    names = {a.name for a in cols}
    want = row_major(cols)
    for sl, value in _accesses(kernel):
        used = kernel.values[value].axes & names
        if not used:
            continue
        if sl.predicate is not None:
            return f"{sl.buffer} is read under a guard (concatenation)"
        if used != names:
            return f"{sl.buffer} is broadcast along part of the row {sorted(names - used)}"
        off = slice_offset(sl, buffers[sl.buffer], names, kernel.axes)
        if off is None or off.coeffs != want:
            return f"{sl.buffer} is not contiguous along the row (needs an on-chip transpose)"
    return None


def choose_columns(kernel: Kernel, buffers: Mapping[str, Buffer], max_cols: int) -> tuple[Axis, ...]:
    """The NRAM row: a reduction's row axes; else the longest contiguous suffix that fits
    and leaves an axis to enumerate rows."""
    if kernel.row:
        problem = column_problem(kernel, buffers, kernel.row)
        if problem:
            raise Unsupported(f"row axes: {problem}")
        if numel(a.extent for a in kernel.row) > max_cols:
            raise Unsupported(f"a row of {numel(a.extent for a in kernel.row)} elements does not fit in NRAM "
                              "(splitting it over the cores of a cluster is not implemented)")
        return kernel.row
    if len(kernel.outer) < 2:
        raise Unsupported("a one-axis elementwise region: splitting its axis into rows is not implemented")
    last = "no axes"
    for k in range(len(kernel.outer) - 1, 0, -1):   # at least one axis is left for the rows
        cols = kernel.outer[-k:]
        if numel(a.extent for a in cols) > max_cols:
            continue
        last = column_problem(kernel, buffers, cols)
        if last is None:
            return cols
    raise Unsupported(f"no contiguous NRAM row: {last}")
