"""Column: row axes strided in memory (a reduction over a leading axis); lanes own adjacent
outer elements (coalesced), units split the row, which is held on chip when it fits and
otherwise streams through a serial loop."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product

from ...gir import expr as E
from ...gir.hardware import HardwareModel
from ...gir.program import Buffer, Kernel, Load, numel, slice_footprint
from ...gir.errors import Unsupported
from ...gir.strategy import ParallelStrategy, PlanFamily
from ...gir.symbolic import is_symbolic
from ...gir.sweeps import stream_passes
from .base import default_units, with_single_pass_choice, with_unroll_choice

COLUMN_UNITS = (2, 4, 8, 16)
COLUMN_CHUNKS = (1, 2, 4, 8)


def column_strategy(kernel: Kernel, hw: HardwareModel, units: int, chunks: int) -> ParallelStrategy:
    rows = numel(a.extent for a in kernel.outer)
    n = numel(a.extent for a in kernel.row)
    lanes = hw.lanes_per_unit
    serial = -(-n // (units * chunks))
    groups = -(-rows // lanes)
    return ParallelStrategy(PlanFamily.COLUMN, groups, units, lanes, units, lanes, 1, chunks, serial, rows, n)


def _main_load(kernel: Kernel, buffers: Mapping[str, Buffer]) -> Load | None:
    lds = [i for i in kernel.instrs if isinstance(i, Load)]
    if not lds:
        return None
    return max(lds, key=lambda ld: slice_footprint(ld.src, kernel.axes, buffers, kernel.values))


class Column:
    kind = PlanFamily.COLUMN

    def applies(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> bool:
        """The largest load walks the innermost outer axis fastest: the row is strided."""
        if not kernel.row:
            return False
        main = _main_load(kernel, buffers)
        last = main.src.index[-1] if main is not None and main.src.index else None
        return isinstance(last, E.Var) and bool(kernel.outer) and last.name == kernel.outer[-1].name

    def default(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> ParallelStrategy:
        """Hold the strided row in registers when it fits (one DRAM read), with as few units
        (at least the default) as the register budget allows; otherwise stream it (one sweep
        per reduction level)."""
        units = default_units(hw)
        n = numel(a.extent for a in kernel.row)
        if is_symbolic(n):
            raise Unsupported(f"symbolic shape: a strided row of symbolic length {n} (column plan) is not planned")
        if len(stream_passes(kernel).passes) == 1 or n > hw.max_threads_per_group // hw.lanes_per_unit * hw.reg_elems_per_lane:
            return column_strategy(kernel, hw, units, chunks=4)
        units = next(u for u in range(units, max(units, n) + 1) if -(-n // u) <= hw.reg_elems_per_lane)
        return column_strategy(kernel, hw, units, chunks=-(-n // units))

    def space(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> list[ParallelStrategy]:
        """Streamed (several serial steps) or held on chip (one step: `chunks` covers the row)."""
        n = numel(a.extent for a in kernel.row)
        if is_symbolic(n):   # a strided row of symbolic length: not planned (see default)
            return []
        out = [column_strategy(kernel, hw, u, c) for u, c in product(COLUMN_UNITS, COLUMN_CHUNKS)]
        out += [column_strategy(kernel, hw, u, -(-n // u)) for u in COLUMN_UNITS
                if -(-n // u) not in COLUMN_CHUNKS and -(-n // u) <= hw.reg_elems_per_lane]
        return with_unroll_choice(with_single_pass_choice(out))


COLUMN = Column()
