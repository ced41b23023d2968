"""Where a GPU-style plan puts each thread's elements: one class per plan family, chosen once
by the renderer (`geometry_of`), so that the renderer itself never asks which family it renders.

Every geometry answers the same questions in TIR text over the thread indices `g` (group),
`u` (unit), `l` (lane), the chunk `c`, the vector lane `v` and the streaming step `st`:
which row a thread works on, which of the row's threads it is, whether its row and element
exist, the region axes' coordinates, whether a value is per element or per row, and how a
lane's elements are indexed.
"""

from __future__ import annotations

from ..gir.program import Kernel
from ..gir.strategy import ParallelStrategy, PlanFamily
from ..gir.symbolic import symbols_of


def coords(axes, flat: str, plus: str = "") -> dict[str, str]:
    """Coordinates of a row-major flattened index; `plus` is added to the innermost axis
    (the vector lane), which never crosses it because the vector width divides it."""
    out: dict[str, str] = {}
    stride = 1
    for i, ax in enumerate(reversed(axes)):
        inner = f"({flat} // {stride})" if stride > 1 else flat
        outermost = i == len(axes) - 1
        text = inner if outermost else f"({inner} % {ax.extent})"
        if i == 0 and plus:
            text = f"({text} + {plus})"
        out[ax.name] = text
        stride *= ax.extent
    return out


class RowGeometry:
    """Rows over groups (`rows_per_group` each), `threads_per_row` threads per row, a lane's
    elements `chunks` x `vector`, streamed in `serial` steps (also the phases of a split row)."""

    chunked = True             # a lane holds chunks x vector elements (flat: one vector)
    units_split_rows = False   # column: the units of a group share each lane's row

    def __init__(self, kernel: Kernel, s: ParallelStrategy):
        self.kernel, self.s = kernel, s
        self.row_axes = {a.name for a in kernel.row}

    def tid(self) -> str:
        return f"(u * {self.s.lanes} + l)"

    def t(self) -> str:
        s = self.s
        return self.tid() if s.rows_per_group == 1 else f"({self.tid()} % {s.threads_per_row})"

    def row(self) -> str:
        s = self.s
        return f"(g * {s.rows_per_group} + {self.tid()} // {s.threads_per_row})" if s.rows_per_group > 1 else "g"

    def n_base(self, c: str) -> str:
        s = self.s
        step = f"(st * {s.chunks} + {c})" if s.streams else c
        return f"((({step}) * {s.threads_per_row} + {self.t()}) * {s.vector})"

    def row_valid(self, load_side: bool) -> str | None:
        s = self.s
        return None if s.groups * s.rows_per_group == s.outer_size else f"{self.row()} < {s.outer_size}"

    def n_valid(self, c: str) -> str | None:
        s = self.s
        if s.serial * s.chunks * s.threads_per_row * s.vector == s.row_size:
            return None
        return f"{self.n_base(c)} + v < {s.row_size}"

    def coords(self, load_side: bool) -> dict[str, str]:
        out = coords(self.kernel.outer, self.row())
        if self.kernel.row:
            out |= coords(self.kernel.row, self.n_base("c"), "v" if self.s.vector > 1 else "")
        return out

    def axis_text(self, load_side: bool) -> dict[str, str]:
        """Region axes as int32 (GIR index arithmetic is int32): with symbolic extents the
        coordinates are computed in int64 (the shape variables' type) and cast back."""
        out = self.coords(load_side)
        if symbols_of(self.kernel.axes.values()):
            out = {name: f'T.Cast("int32", {text})' for name, text in out.items()}
        return out

    def is_row(self, name: str) -> bool:
        return bool(self.kernel.values[name].axes & self.row_axes)

    def elem(self) -> str:
        return "c * %d + v" % self.s.vector


class ColumnGeometry(RowGeometry):
    """A reduction over a strided axis: each lane owns one outer element (a column), the units
    of a group split the reduction axis between them."""

    units_split_rows = True

    def t(self) -> str:
        return "u"

    def row(self) -> str:
        return f"(g * {self.s.lanes} + l)"


class FlatGeometry(RowGeometry):
    """Elementwise: every lane one vector of consecutive elements, every value per element."""

    chunked = False

    def row(self) -> str:
        s = self.s
        return f"((((g * {s.units} + u) * {s.lanes} + l)) * {s.vector})"

    def row_valid(self, load_side: bool) -> str | None:
        s = self.s
        return None if s.groups * s.units * s.lanes * s.vector == s.outer_size else f"{self.row()} < {s.outer_size}"

    def n_valid(self, c: str) -> str | None:
        return None

    def coords(self, load_side: bool) -> dict[str, str]:
        return coords(self.kernel.outer, self.row(), "v" if self.s.vector > 1 else "")

    def is_row(self, name: str) -> bool:
        return True

    def elem(self) -> str:
        return "v"


class TileGeometry(RowGeometry):
    """A transpose through a shared-memory square: lanes follow the load-contiguous axis `a`
    before the barrier (coalesced loads) and the store-contiguous axis `b` after it."""

    def row_valid(self, load_side: bool) -> str | None:
        s = self.s
        # the coordinates before their int32 cast: a symbolic extent is an int64 shape variable
        axes, text = self.kernel.axes, self.coords(load_side)
        conds = [f"{text[x]} < {axes[x]}" for x in s.tile_axes if axes[x] % s.lanes]
        return " and ".join(conds) or None

    def n_valid(self, c: str) -> str | None:
        return None

    def coords(self, load_side: bool) -> dict[str, str]:
        s = self.s
        a, b = s.tile_axes
        axes = self.kernel.axes
        tile = s.lanes
        na, nb = -(-axes[a] // tile), -(-axes[b] // tile)
        along, across = ("l", f"(u + {s.units} * c)")
        a_off, b_off = (along, across) if load_side else (across, along)
        out = {a: f"((g // {nb}) % {na} * {tile} + {a_off})", b: f"(g % {nb} * {tile} + {b_off})"}
        rest = tuple(ax for ax in self.kernel.outer if ax.name not in (a, b))
        return out | coords(rest, f"(g // {na * nb})")

    def is_row(self, name: str) -> bool:
        return True


GEOMETRIES: dict[PlanFamily, type[RowGeometry]] = {
    PlanFamily.ROW: RowGeometry, PlanFamily.COLUMN: ColumnGeometry, PlanFamily.FLAT: FlatGeometry,
    PlanFamily.TILE: TileGeometry,
}


def geometry_of(kernel: Kernel) -> RowGeometry:
    """The geometry of a planned kernel (a split row is expanded into row phases before)."""
    family = kernel.strategy.kind
    if family not in GEOMETRIES:
        raise ValueError(f"no thread geometry for a {family} kernel (expand a split_row kernel into its phases first)")
    return GEOMETRIES[family](kernel, kernel.strategy)
