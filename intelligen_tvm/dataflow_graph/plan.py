"""The default plan of a kernel: its parallel strategy and reduction scopes.

Hardware enters only as a `HardwareModel` value (units of lanes, limits), handed in by
the target; this module never names a backend.  Searching over the alternatives is the
cost model's job; here one good default is picked per region shape:

- no row axes (elementwise/injective): *flat* — consecutive vectors of the flattened
  outer space per lane;
- row axes contiguous in memory: *row* — a unit (short rows) or a whole group (long rows)
  owns a row, the row is held in registers across all its reductions;
- row axes strided (reduce over a leading axis): *column* — lanes own adjacent outer
  elements (coalesced), units split the row, the row streams through a serial loop;
- few long rows with one reduction level: *split_row* — several groups share a row, their
  partial results meet in a DRAM workspace and a second launch finishes them
  (`split_row.py` builds the phases).
"""

from __future__ import annotations

from dataclasses import replace

from ..gir import expr as E
from ..gir.errors import Unsupported
from ..gir.hardware import HardwareModel
from ..gir.program import (Kernel, Level, Load, Program, Reduce, Scope, dtype_bytes, kernel_dram_bytes, numel,
                           slice_footprint)
from ..gir.strategy import ParallelStrategy, PlanFamily
from ..gir.sweeps import stream_passes
from .single_pass import single_pass_statistics
from .transpose_tile import stage_through_sram, transposed_axis


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


def plan_family(kernel: Kernel, buffers, hw: HardwareModel) -> PlanFamily:
    """Which kind of plan the region's shape calls for (the knobs come separately).
    A transpose tile is as wide as a unit; it pays off once both edges fill half of it."""
    if not kernel.row:
        a = transposed_axis(kernel)
        half = hw.lanes_per_unit // 2
        if a is not None and kernel.axes[a] >= half and kernel.outer[-1].extent >= half:
            return PlanFamily.TILE
        return PlanFamily.FLAT
    main = _main_load(kernel, buffers)
    last = main.src.index[-1] if main is not None and main.src.index else None
    if isinstance(last, E.Var) and kernel.outer and last.name == kernel.outer[-1].name:
        return PlanFamily.COLUMN
    return PlanFamily.ROW


def with_strategy(kernel: Kernel, strategy: ParallelStrategy, hw: HardwareModel) -> Kernel:
    """Attach a strategy; reduction scopes follow from how many threads share a row, and a
    tile strategy stages its transposed loads through SRAM."""
    if strategy.kind is PlanFamily.TILE:
        kernel = stage_through_sram(kernel, strategy.tile_axes[0], tile=strategy.lanes)
    if strategy.single_pass:
        kernel = single_pass_statistics(kernel)
    scope = Scope.UNIT if strategy.threads_per_row <= hw.lanes_per_unit else Scope.GROUP
    if strategy.kind is PlanFamily.COLUMN:
        scope = Scope.GROUP
    instrs = [replace(i, scope=scope) if isinstance(i, Reduce) else i for i in kernel.instrs]
    kernel = replace(kernel, instrs=instrs, strategy=strategy)
    streams = strategy.serial > 1 or strategy.kind is PlanFamily.SPLIT_ROW
    return replace(kernel, sweeps=stream_passes(kernel) if streams else None)


def plan_kernel(kernel: Kernel, buffers, hw: HardwareModel) -> Kernel:
    """The default plan: one good choice of knobs per family."""
    family = plan_family(kernel, buffers, hw)
    units = hw.default_threads_per_group // hw.lanes_per_unit
    if family is PlanFamily.TILE:
        strategy = tile_strategy(kernel, hw, units=units)
    elif family is PlanFamily.FLAT:
        width = max(dtype_bytes(b.dtype) for b in buffers.values())
        vec = _vector_width(kernel.outer[-1].extent, width, hw) if kernel.outer else 1
        strategy = flat_strategy(kernel, hw, units=units, vector=vec)
    elif family is PlanFamily.COLUMN:
        strategy = _default_column(kernel, hw, units)
    else:
        n = numel(a.extent for a in kernel.row)
        lanes = hw.lanes_per_unit
        t = lanes if n <= 32 * lanes else min(hw.max_threads_per_group, max(2 * lanes, _pow2_at_least(-(-n // 16))))
        vec = _vector_width(kernel.row[-1].extent, 4, hw)
        while vec > 1 and n < t * vec:
            vec //= 2
        strategy = row_strategy(kernel, hw, t, vec, 4 if t == lanes else 1)
        if strategy.per_lane > hw.reg_elems_per_lane:   # too long to hold: stream it
            strategy = row_strategy(kernel, hw, t, vec, 1, chunks=DEFAULT_STREAM_CHUNKS)
        strategy = _default_split(kernel, hw, vec) or strategy
    if strategy.kind is not PlanFamily.SPLIT_ROW and strategy.serial > 1:   # streamed: as few sweeps as the statistics allow
        try:
            return with_strategy(kernel, replace(strategy, single_pass=True), hw)
        except Unsupported:
            pass
    return with_strategy(kernel, strategy, hw)


def _default_column(kernel: Kernel, hw: HardwareModel, units: int) -> ParallelStrategy:
    """Hold the strided row in registers when it fits (one DRAM read), with as few units
    (at least the default) as the register budget allows; otherwise stream it (one sweep
    per reduction level)."""
    n = numel(a.extent for a in kernel.row)
    if len(stream_passes(kernel).passes) == 1 or n > hw.max_threads_per_group // hw.lanes_per_unit * hw.reg_elems_per_lane:
        return column_strategy(kernel, hw, units, chunks=4)
    units = next(u for u in range(units, max(units, n) + 1) if -(-n // u) <= hw.reg_elems_per_lane)
    return column_strategy(kernel, hw, units, chunks=-(-n // units))


def tile_strategy(kernel: Kernel, hw: HardwareModel, units: int) -> ParallelStrategy:
    """One group per tile x tile square of (a, innermost), the tile as wide as a unit; lanes
    along one edge, units stride over the other, each lane handles tile / units elements."""
    a, b = transposed_axis(kernel), kernel.outer[-1].name
    axes = kernel.axes
    tile = hw.lanes_per_unit
    tiles = -(-axes[a] // tile) * -(-axes[b] // tile)
    rest = numel(ax.extent for ax in kernel.outer if ax.name not in (a, b))
    return ParallelStrategy(PlanFamily.TILE, rest * tiles, units, tile, 1, tile, 1,
                            tile // units, 1, numel(axes.values()), 1, tile_axes=(a, b))


def flat_strategy(kernel: Kernel, hw: HardwareModel, units: int, vector: int) -> ParallelStrategy:
    outer = numel(a.extent for a in kernel.outer)
    threads = units * hw.lanes_per_unit
    groups = max(1, -(-outer // (threads * vector)))
    return ParallelStrategy(PlanFamily.FLAT, groups, units, hw.lanes_per_unit, 1, threads, vector, 1, 1, outer, 1)


def row_strategy(kernel: Kernel, hw: HardwareModel, threads_per_row: int, vector: int,
                 rows_per_group: int, chunks: int | None = None) -> ParallelStrategy:
    """`threads_per_row` lanes (a sub-warp, a warp or several warps) own a row.  With no
    `chunks` the whole row is held in registers; with `chunks` it streams in serial steps."""
    rows = numel(a.extent for a in kernel.outer)
    n = numel(a.extent for a in kernel.row)
    lanes = hw.lanes_per_unit
    per_step = chunks or -(-n // (threads_per_row * vector))
    serial = -(-n // (threads_per_row * vector * per_step))
    units = max(1, rows_per_group * threads_per_row // lanes)
    groups = -(-rows // rows_per_group)
    return ParallelStrategy(PlanFamily.ROW, groups, units, lanes, threads_per_row, rows_per_group, vector, per_step,
                            serial, rows, n)


def column_strategy(kernel: Kernel, hw: HardwareModel, units: int, chunks: int) -> ParallelStrategy:
    rows = numel(a.extent for a in kernel.outer)
    n = numel(a.extent for a in kernel.row)
    lanes = hw.lanes_per_unit
    serial = -(-n // (units * chunks))
    groups = -(-rows // lanes)
    return ParallelStrategy(PlanFamily.COLUMN, groups, units, lanes, units, lanes, 1, chunks, serial, rows, n)


DEFAULT_STREAM_CHUNKS = 4   # vectors per lane per serial step when a row streams (default plan)
SPLIT_MIN_ROW_STEPS = 8   # streamed steps a row spans at least before the default plan splits it
SPLIT_OPS = frozenset({"sum", "prod", "max", "min"})   # partial results combine with the same op


def splittable(kernel: Kernel) -> bool:
    """Whether a row can be split across groups with one combining launch: all reductions
    on one level (their partials combine independently), each an associative op.  The row
    outputs (rms_norm's x * rsqrt(mean)) then need only the finished per-row values and one
    more sweep.  Deeper regions (softmax's max then sum, layer norm's mean then variance)
    are refused: every further level would need its own partial and finishing launches and
    one more DRAM sweep of the row.  So are online sums, whose partials would need rescaling
    by their groups' maxima."""
    levels = [p for p in stream_passes(kernel).passes if p.reduces]
    return len(levels) == 1 and all(r.op in SPLIT_OPS and r.shift is None for r in levels[0].reduces)


def split_row_strategy(kernel: Kernel, hw: HardwareModel, splits: int, threads: int, vector: int,
                       chunks: int) -> ParallelStrategy:
    """About `splits` groups per row (`threads` lanes each), each streaming a contiguous
    slice of whole steps (threads x vector x chunks elements); the last slice may end early.
    The slice is rounded up to whole steps, which can leave fewer splits than asked."""
    rows = numel(a.extent for a in kernel.outer)
    n = numel(a.extent for a in kernel.row)
    step = threads * vector * chunks
    serial = -(-n // (splits * step))
    splits = -(-n // (serial * step))
    return ParallelStrategy(PlanFamily.SPLIT_ROW, rows * splits, max(1, threads // hw.lanes_per_unit), hw.lanes_per_unit,
                            threads, 1, vector, chunks, serial, rows, n, splits=splits)


def _default_split(kernel: Kernel, hw: HardwareModel, vector: int) -> ParallelStrategy | None:
    """Fewer rows than processors leave most of the machine idle with a group per row: split
    each row into as many slices (one streamed step at least) as fill the machine with
    resident groups.  A row shorter than SPLIT_MIN_ROW_STEPS steps stays whole: its sweep
    is too short to pay for a second launch."""
    rows = numel(a.extent for a in kernel.outer)
    n = numel(a.extent for a in kernel.row)
    threads = hw.default_threads_per_group
    step = threads * vector * DEFAULT_STREAM_CHUNKS
    if rows >= hw.processors or n < SPLIT_MIN_ROW_STEPS * step or not splittable(kernel):
        return None
    resident = hw.processors * (hw.max_threads_per_processor // threads)
    return split_row_strategy(kernel, hw, min(-(-resident // rows), n // step), threads, vector, DEFAULT_STREAM_CHUNKS)


def program_dram_bytes(program: Program) -> int:
    """Bytes moved between DRAM and the chip by the program's moves (re-reads of streamed rows
    and workspaces between kernels counted)."""
    return sum(planned_dram_bytes(k, program.buffers) for k in program.kernels)


def planned_dram_bytes(kernel: Kernel, buffers) -> int:
    """DRAM bytes of a planned kernel: a streamed row re-reads its loads in every sweep."""
    assert kernel.strategy is None or kernel.strategy.kind is not PlanFamily.SPLIT_ROW, "count the phases of a split row"
    total = kernel_dram_bytes(kernel, buffers)
    if kernel.strategy is None or kernel.strategy.serial == 1:
        return total
    loads = [i for p in kernel.sweeps.passes for i in p.sweep if isinstance(i, Load) and i.level is Level.DRAM]
    once = {id(i): i for i in loads}
    for ins in once.values():
        extra = sum(i is ins for i in loads) - 1
        total += extra * slice_footprint(ins.src, kernel.axes, buffers, kernel.values)
    return total
