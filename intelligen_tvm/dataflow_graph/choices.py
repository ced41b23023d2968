"""The choice space of a region: every valid set of plan knobs for its family.

The monotonic rewrites leave one dataflow graph per region; what remains open is how it
maps onto the hardware.  Knob values are data here; a combination is a candidate when it
passes the verifier (registers, shared memory, threads per group, scopes).  Ranking them
is the cost model's job.
"""

from __future__ import annotations

from itertools import product

from ..gir.program import Kernel, Program
from ..gir.verify import VerifyError, verify
from ..gir_lowering.tir_reader import Unsupported
from .plan import (HardwareModel, ParallelStrategy, column_strategy, flat_strategy, plan_family,
                   row_strategy, tile_strategy, with_strategy)

ROW_THREADS = (8, 16, 32, 64, 128, 256, 512, 1024)
VECTORS = (1, 2, 4)
ROWS_PER_GROUP = (1, 2, 4, 8)
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
    return out


def _flat_strategies(kernel: Kernel, hw: HardwareModel) -> list[ParallelStrategy]:
    inner = kernel.outer[-1].extent if kernel.outer else 1
    return [flat_strategy(kernel, hw, u, v) for u, v in product(FLAT_UNITS, VECTORS) if inner % v == 0]


def strategies(kernel: Kernel, buffers, hw: HardwareModel) -> list[ParallelStrategy]:
    family = plan_family(kernel, buffers, hw)
    if family == "row":
        return _row_strategies(kernel, hw)
    if family == "column":
        return [column_strategy(kernel, hw, u, c) for u, c in product(COLUMN_UNITS, COLUMN_CHUNKS)]
    if family == "tile":
        return [tile_strategy(kernel, hw, u) for u in TILE_UNITS]
    return _flat_strategies(kernel, hw)


def enumerate_candidates(kernel: Kernel, program: Program, hw: HardwareModel) -> list[Kernel]:
    """Planned variants of an unplanned (rewritten) kernel that pass the verifier."""
    found = []
    for strategy in strategies(kernel, program.buffers, hw):
        try:
            candidate = with_strategy(kernel, strategy, hw)
            verify(Program(program.name, program.buffers, program.inputs, program.outputs, [candidate]), hw)
        except (Unsupported, VerifyError):
            continue
        found.append(candidate)
    return found
