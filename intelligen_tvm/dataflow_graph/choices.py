"""The choice space of a region: every valid set of plan knobs for its family.

Row regions: threads per row from one lane to a block, rows per group, vector width, the
row held in registers or streamed through serial steps (one sweep per reduction level,
re-reading DRAM; two statistics in one sweep with online softmax or shifted variance), unrolled or
rolled chunk loops, and for rows with one reduction level the row split across several
groups whose partial results a second launch combines.  Column regions: units splitting the
strided row, held on chip or streamed.  Transposes: a padded SRAM tile or a direct strided
copy.  Elementwise: units per group and vector width.

The monotonic rewrites leave one dataflow graph per region; what remains open is how it
maps onto the hardware.  Knob values are data here; a combination is a candidate when it
passes the verifier (registers, shared memory, threads per group, scopes).  Ranking them
is the cost model's job.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import product

from ..gir.errors import Unsupported, VerifyError
from ..gir.hardware import HardwareModel
from ..gir.program import Kernel, Program, numel
from ..gir.strategy import ParallelStrategy, PlanFamily
from ..gir.verify import verify
from .plan import (column_strategy, flat_strategy, plan_family, row_strategy, split_row_strategy, splittable,
                   tile_strategy, with_strategy)
from .split_row import planned_program

ROW_THREADS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
VECTORS = (1, 2, 4)
ROWS_PER_GROUP = (1, 2, 4, 8, 16, 32)
STREAM_THREADS = (256, 1024)   # a streamed row: a block sweeps it, chunks vectors per lane per step
STREAM_CHUNKS = (1, 4)
SPLITS = (4, 16, 64, 256)   # groups sharing a row (split_row); each streams at least one whole step
FLAT_UNITS = (2, 4, 8)
COLUMN_UNITS = (2, 4, 8, 16)
COLUMN_CHUNKS = (1, 2, 4, 8)
TILE_UNITS = (4, 8, 16)


def _row_strategies(kernel: Kernel, hw: HardwareModel) -> list[ParallelStrategy]:
    n = 1
    for a in kernel.row:
        n *= a.extent
    lanes = hw.lanes_per_unit
    out = []
    for t, vec, rpg in product(ROW_THREADS, VECTORS, ROWS_PER_GROUP):
        if kernel.row[-1].extent % vec or t * vec > 2 * n:
            continue   # the vector must not cross the row; most lanes must have work
        if (t < lanes and (rpg * t) % lanes) or (t > lanes and rpg != 1) or t % min(t, lanes):
            continue   # whole units per group; rows spanning units own their group
        out.append(row_strategy(kernel, hw, t, vec, rpg))
    out += [row_strategy(kernel, hw, t, vec, 1, chunks) for t, vec, chunks in product(STREAM_THREADS, VECTORS, STREAM_CHUNKS)
            if t <= hw.max_threads_per_group and kernel.row[-1].extent % vec == 0 and t * vec * chunks < n]
    return _with_unroll_choice(_with_single_pass_choice(out) + _split_strategies(kernel, hw, n))


def _with_single_pass_choice(found: list[ParallelStrategy]) -> list[ParallelStrategy]:
    """Each streamed strategy also with online statistics (kept where the region allows it)."""
    return found + [replace(s, single_pass=True) for s in found if s.serial > 1]


def _split_strategies(kernel: Kernel, hw: HardwareModel, n: int) -> list[ParallelStrategy]:
    """Splits of the row whose slices are whole steps of the streamed-row knobs (rounding
    a slice up to whole steps can merge two split counts into one plan: kept once)."""
    if not splittable(kernel):
        return []
    found = {split_row_strategy(kernel, hw, g, t, vec, chunks)
             for g, t, vec, chunks in product(SPLITS, STREAM_THREADS, VECTORS, STREAM_CHUNKS)
             if t <= hw.max_threads_per_group and kernel.row[-1].extent % vec == 0 and g * t * vec * chunks <= n}
    return sorted((s for s in found if s.splits > 1), key=lambda s: (s.splits, s.threads_per_row, s.vector, s.chunks))


def _with_unroll_choice(found: list[ParallelStrategy]) -> list[ParallelStrategy]:
    """Each strategy with several chunks per lane also as a rolled loop."""
    return found + [replace(s, unroll=False) for s in found if s.chunks > 1]


def _column_strategies(kernel: Kernel, hw: HardwareModel) -> list[ParallelStrategy]:
    """Streamed (several serial steps) or held on chip (one step: `chunks` covers the row)."""
    n = numel(a.extent for a in kernel.row)
    out = [column_strategy(kernel, hw, u, c) for u, c in product(COLUMN_UNITS, COLUMN_CHUNKS)]
    out += [column_strategy(kernel, hw, u, -(-n // u)) for u in COLUMN_UNITS
            if -(-n // u) not in COLUMN_CHUNKS and -(-n // u) <= hw.reg_elems_per_lane]
    return _with_unroll_choice(_with_single_pass_choice(out))


def _flat_strategies(kernel: Kernel, hw: HardwareModel) -> list[ParallelStrategy]:
    inner = kernel.outer[-1].extent if kernel.outer else 1
    return [flat_strategy(kernel, hw, u, v) for u, v in product(FLAT_UNITS, VECTORS) if inner % v == 0]


def strategies(kernel: Kernel, buffers, hw: HardwareModel) -> list[ParallelStrategy]:
    family = plan_family(kernel, buffers, hw)
    if family is PlanFamily.ROW:
        return _row_strategies(kernel, hw)
    if family is PlanFamily.COLUMN:
        return _column_strategies(kernel, hw)
    if family is PlanFamily.TILE:   # through the padded SRAM tile, or a direct strided copy
        return [tile_strategy(kernel, hw, u) for u in TILE_UNITS] + _flat_strategies(kernel, hw)
    return _flat_strategies(kernel, hw)


def enumerate_candidates(kernel: Kernel, program: Program, hw: HardwareModel) -> list[Kernel]:
    """Planned variants of an unplanned (rewritten) kernel that pass the verifier."""
    found = []
    for strategy in strategies(kernel, program.buffers, hw):
        try:
            candidate = with_strategy(kernel, strategy, hw)
            verify(planned_program(program, candidate, hw), hw)
        except (Unsupported, VerifyError):
            continue
        found.append(candidate)
    return found
