"""The default plan of a kernel: its parallel strategy and reduction scopes.

Hardware enters only as a `HardwareModel` value (units of lanes, limits), handed in by
the target; this module never names a backend.  Searching over the alternatives is the
cost model's job; here one good default is picked per region shape:

- no row axes (elementwise/injective): *flat* — consecutive vectors of the flattened
  outer space per lane;
- row axes contiguous in memory: *row* — a unit (short rows) or a whole group (long rows)
  owns a row, the row is held in registers across all its reductions;
- row axes strided (reduce over a leading axis): *column* — lanes own adjacent outer
  elements (coalesced), units split the row, the row streams through a serial loop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..gir import expr as E
from ..gir.program import Kernel, Load, Reduce, Scope, dtype_bytes, numel, slice_footprint
from ..gir_lowering.tir_reader import Unsupported
from .transpose_tile import TILE, stage_through_sram, transposed_axis


@dataclass(frozen=True)
class HardwareModel:
    """What the planner needs to know of a target (filled from a preset in targets/)."""

    lanes_per_unit: int
    max_threads_per_group: int
    sram_bytes_per_group: int
    reg_elems_per_lane: int
    vector_bytes: int
    processors: int = 1                     # SMs / compute units running groups concurrently
    max_threads_per_processor: int = 2048
    dram_gbps: float = 100.0                # nominal DRAM bandwidth (datasheet), for the prior only
    step_latency_us: float = 0.0            # DRAM round trip a serial step exposes unless its loads are
                                            # double-buffered (scratchpad machines; 0 where occupancy hides it)


@dataclass(frozen=True)
class ParallelStrategy:
    kind: str                 # flat | row | column | tile
    groups: int
    units: int                # units per group
    lanes: int                # lanes per unit
    threads_per_row: int      # T: threads sharing one row
    rows_per_group: int
    vector: int               # V elements per vector access
    chunks: int               # C vectors per lane per serial step
    serial: int               # S serial steps over the row
    outer_size: int           # rows (or flat elements)
    row_size: int             # N elements per row
    tile_axes: tuple[str, str] | None = None   # (load-contiguous, store-contiguous) for kind tile
    buffers: int = 1          # on-chip copies of the streamed data: 2 = the next step's loads overlap this step

    @property
    def per_lane(self) -> int:
        return self.chunks * self.vector

    def __str__(self) -> str:
        return (f"{self.kind}(groups={self.groups}, units={self.units}, lanes={self.lanes}, "
                f"threads_per_row={self.threads_per_row}, rows_per_group={self.rows_per_group}, "
                f"vector={self.vector}, chunks={self.chunks}, serial={self.serial}"
                + (f", buffers={self.buffers})" if self.buffers > 1 else ")"))

    def describe(self) -> dict:
        return {"kind": self.kind, "groups": self.groups, "units_per_group": self.units,
                "lanes_per_unit": self.lanes, "threads_per_row": self.threads_per_row,
                "rows_per_group": self.rows_per_group, "vector": self.vector,
                "elems_per_lane": self.per_lane * self.serial}



def _pow2_at_least(x: int) -> int:
    p = 1
    while p < x:
        p *= 2
    return p


def _vector_width(extent: int, dtype_bytes: int, hw: HardwareModel) -> int:
    for v in (hw.vector_bytes // dtype_bytes, 4, 2):
        if v > 1 and extent % v == 0:
            return v
    return 1


def _main_load(kernel: Kernel, buffers) -> Load | None:
    lds = [i for i in kernel.instrs if isinstance(i, Load)]
    if not lds:
        return None
    return max(lds, key=lambda ld: slice_footprint(ld.src, kernel.axes, buffers, kernel.values))


def plan_family(kernel: Kernel, buffers) -> str:
    """Which kind of plan the region's shape calls for (the knobs come separately)."""
    if not kernel.row:
        a = transposed_axis(kernel)
        if a is not None and kernel.axes[a] >= TILE // 2 and kernel.outer[-1].extent >= TILE // 2:
            return "tile"
        return "flat"
    main = _main_load(kernel, buffers)
    last = main.src.index[-1] if main is not None and main.src.index else None
    if isinstance(last, E.Var) and kernel.outer and last.name == kernel.outer[-1].name:
        return "column"
    return "row"


def with_strategy(kernel: Kernel, strategy: ParallelStrategy, hw: HardwareModel) -> Kernel:
    """Attach a strategy; reduction scopes follow from how many threads share a row, and a
    tile strategy stages its transposed loads through SRAM."""
    if strategy.kind == "tile":
        kernel = stage_through_sram(kernel, strategy.tile_axes[0])
    if strategy.kind == "column":
        _check_single_pass(kernel)
    scope = Scope.UNIT if strategy.threads_per_row <= hw.lanes_per_unit else Scope.GROUP
    if strategy.kind == "column":
        scope = Scope.GROUP
    instrs = [replace(i, scope=scope) if isinstance(i, Reduce) else i for i in kernel.instrs]
    return replace(kernel, instrs=instrs, strategy=strategy)


def plan_kernel(kernel: Kernel, buffers, hw: HardwareModel) -> Kernel:
    """The default plan: one good choice of knobs per family."""
    family = plan_family(kernel, buffers)
    if family == "tile":
        strategy = tile_strategy(kernel, hw, units=8)
    elif family == "flat":
        width = max(dtype_bytes(b.dtype) for b in buffers.values())
        vec = _vector_width(kernel.outer[-1].extent, width, hw) if kernel.outer else 1
        strategy = flat_strategy(kernel, hw, units=8, vector=vec)
    elif family == "column":
        strategy = column_strategy(kernel, hw, units=8, chunks=4)
    else:
        n = numel(a.extent for a in kernel.row)
        lanes = hw.lanes_per_unit
        t = lanes if n <= 32 * lanes else min(hw.max_threads_per_group, max(2 * lanes, _pow2_at_least(-(-n // 16))))
        vec = _vector_width(kernel.row[-1].extent, 4, hw)
        while vec > 1 and n < t * vec:
            vec //= 2
        strategy = row_strategy(kernel, hw, t, vec, 4 if t == lanes else 1)
        if strategy.per_lane > hw.reg_elems_per_lane:
            raise Unsupported(f"a row of {n} elements does not fit in registers of {t} lanes")
    return with_strategy(kernel, strategy, hw)


def tile_strategy(kernel: Kernel, hw: HardwareModel, units: int) -> ParallelStrategy:
    """One group per TILE x TILE tile of (a, innermost); lanes along a TILE edge, units
    stride over the other, each lane handles TILE / units elements."""
    a, b = transposed_axis(kernel), kernel.outer[-1].name
    axes = kernel.axes
    tiles = -(-axes[a] // TILE) * -(-axes[b] // TILE)
    rest = numel(ax.extent for ax in kernel.outer if ax.name not in (a, b))
    return ParallelStrategy("tile", rest * tiles, units, hw.lanes_per_unit, 1, TILE, 1,
                            TILE // units, 1, numel(axes.values()), 1, tile_axes=(a, b))


def flat_strategy(kernel: Kernel, hw: HardwareModel, units: int, vector: int) -> ParallelStrategy:
    outer = numel(a.extent for a in kernel.outer)
    threads = units * hw.lanes_per_unit
    groups = max(1, -(-outer // (threads * vector)))
    return ParallelStrategy("flat", groups, units, hw.lanes_per_unit, 1, threads, vector, 1, 1, outer, 1)


def row_strategy(kernel: Kernel, hw: HardwareModel, threads_per_row: int, vector: int,
                 rows_per_group: int) -> ParallelStrategy:
    """`threads_per_row` lanes (a sub-warp, a warp or several warps) own a row."""
    rows = numel(a.extent for a in kernel.outer)
    n = numel(a.extent for a in kernel.row)
    lanes = hw.lanes_per_unit
    chunks = -(-n // (threads_per_row * vector))
    units = rows_per_group * threads_per_row // lanes
    groups = -(-rows // rows_per_group)
    return ParallelStrategy("row", groups, units, lanes, threads_per_row, rows_per_group, vector, chunks, 1, rows, n)


def column_strategy(kernel: Kernel, hw: HardwareModel, units: int, chunks: int) -> ParallelStrategy:
    rows = numel(a.extent for a in kernel.outer)
    n = numel(a.extent for a in kernel.row)
    lanes = hw.lanes_per_unit
    serial = -(-n // (units * chunks))
    groups = -(-rows // lanes)
    return ParallelStrategy("column", groups, units, lanes, units, lanes, 1, chunks, serial, rows, n)


def _check_single_pass(kernel: Kernel) -> None:
    """Streaming the row needs every row value to be computable before any reduction ends."""
    reduced = {i.dst for i in kernel.instrs if isinstance(i, Reduce)}
    tainted = set(reduced)
    row_axes = {a.name for a in kernel.row}
    for ins in kernel.instrs:
        if isinstance(ins, Reduce):
            if ins.src in tainted:
                raise Unsupported("a strided-row reduction depends on another reduction (multi-pass)")
            continue
        if any(r in tainted for r in ins.reads):
            for w in ins.writes:
                tainted.add(w)
                if row_axes & kernel.values[w].axes:
                    raise Unsupported("a strided row is needed again after its reduction")
