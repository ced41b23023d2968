"""Row: row axes contiguous in memory; a unit (short rows) or a whole group (long rows) owns
a row, held in registers across all its reductions, or streamed through serial steps when
it does not fit (one sweep per reduction level); few long rows are split (split_row.py)."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product

from ...gir.hardware import HardwareModel
from ...gir.program import Buffer, Kernel, numel
from ...gir.strategy import ParallelStrategy, PlanFamily
from ...gir.symbolic import is_symbolic
from .base import (DEFAULT_STREAM_CHUNKS, STREAM_CHUNKS, STREAM_THREADS, VECTORS, pow2_at_least, vector_width,
                   with_single_pass_choice, with_unroll_choice)
from .split_row import SPLIT_ROW

ROW_THREADS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
ROWS_PER_GROUP = (1, 2, 4, 8, 16, 32)


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


class Row:
    kind = PlanFamily.ROW

    def applies(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> bool:
        return bool(kernel.row)

    def default(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> ParallelStrategy:
        """A unit per short row, a group per long one; streamed when too long to hold, split
        when there are too few rows to fill the machine."""
        n = numel(a.extent for a in kernel.row)
        lanes = hw.lanes_per_unit
        t = lanes if n <= 32 * lanes else min(hw.max_threads_per_group, max(2 * lanes, pow2_at_least(-(-n // 16))))
        vec = vector_width(kernel.row[-1].extent, 4, hw)
        while vec > 1 and n < t * vec:
            vec //= 2
        strategy = row_strategy(kernel, hw, t, vec, 4 if t == lanes else 1)
        if is_symbolic(n) or strategy.per_lane > hw.reg_elems_per_lane:   # too long (or unbounded) to hold: stream it
            strategy = row_strategy(kernel, hw, t, vec, 1, chunks=DEFAULT_STREAM_CHUNKS)
        return SPLIT_ROW.default_for(kernel, hw, vec) or strategy

    def space(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> list[ParallelStrategy]:
        n = numel(a.extent for a in kernel.row)
        lanes = hw.lanes_per_unit
        out = []
        for t, vec, rpg in product(ROW_THREADS, VECTORS, ROWS_PER_GROUP) if not is_symbolic(n) else ():
            if kernel.row[-1].extent % vec or t * vec > 2 * n:
                continue   # the vector must not cross the row; most lanes must have work
            if (t < lanes and (rpg * t) % lanes) or (t > lanes and rpg != 1) or t % min(t, lanes):
                continue   # whole units per group; rows spanning units own their group
            out.append(row_strategy(kernel, hw, t, vec, rpg))
        out += [row_strategy(kernel, hw, t, vec, 1, chunks)
                for t, vec, chunks in product(STREAM_THREADS, VECTORS, STREAM_CHUNKS)
                if t <= hw.max_threads_per_group and kernel.row[-1].extent % vec == 0 and t * vec * chunks < n]
        return with_unroll_choice(with_single_pass_choice(out) + SPLIT_ROW.space(kernel, buffers, hw))


ROW = Row()
