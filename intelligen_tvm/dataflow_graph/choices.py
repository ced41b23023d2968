"""The choice space of a region: every valid set of plan knobs for its family.

Row regions: threads per row from one lane to a block, rows per group, vector width, the
row held in registers or streamed through serial steps (one sweep per reduction level,
re-reading DRAM; two statistics in one sweep with online softmax or shifted variance), unrolled or
rolled chunk loops, and for rows with one reduction level the row split across several
groups whose partial results a second launch combines.  Column regions: units splitting the
strided row, held on chip or streamed.  Transposes: a padded SRAM tile or a direct strided
copy.  Elementwise: units per group and vector width.

The monotonic rewrites leave one dataflow graph per region; what remains open is how it
maps onto the hardware.  Knob values are data in each family's file (families/); a combination is a candidate when it
passes the verifier (registers, shared memory, threads per group, scopes).  Ranking them
is the cost model's job.
"""

from __future__ import annotations

from ..gir.errors import Unsupported, VerifyError
from ..gir.hardware import HardwareModel
from ..gir.program import Kernel, Program
from ..gir.strategy import ParallelStrategy
from ..gir.verify import verify
from .families import family_of
from .plan import with_strategy
from .split_row import planned_program

def strategies(kernel: Kernel, buffers, hw: HardwareModel) -> list[ParallelStrategy]:
    """The choice space of the family that plans the kernel."""
    return family_of(kernel, buffers, hw).space(kernel, buffers, hw)


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
