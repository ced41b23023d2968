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

from dataclasses import dataclass, field, replace

from ..gir.errors import Unsupported, VerifyError
from ..gir.hardware import HardwareModel
from ..gir.program import Kernel, Program
from ..gir.strategy import ParallelStrategy
from ..gir.verify import verify
from .cpu_plan import cpu_placements, cpu_strategies, is_cpu, plan_cpu_kernel
from .families import family_of
from .plan import plan_kernel, program_dram_bytes, with_strategy
from .split_row import expand_program


@dataclass(frozen=True)
class Candidate:
    """A planned kernel of a region with what it launches, made once and carried to ranking,
    tuning and rendering: the program (the kernel, or a split row's phases and their DRAM
    workspaces) and that program's DRAM traffic."""

    kernel: Kernel
    program: Program
    dram_bytes: int
    workspace_bytes: int
    # Facts of the placement (the planned kernel up to the knobs that change neither its
    # instructions nor its sweeps: on a CPU tasks, vector width, accumulators), worked out
    # once by whoever first needs them and shared by the candidates of one placement
    # (`planned_alike`).
    placement_facts: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def strategy(self) -> ParallelStrategy:
        return self.kernel.strategy

    def planned_alike(self, kernel: Kernel) -> Candidate:
        """The candidate of `kernel`, planned with the same placement as this one's (a
        single-kernel program: the same instructions, sweeps and DRAM traffic)."""
        assert len(self.program.kernels) == 1 and kernel.instrs == self.kernel.instrs
        return replace(self, kernel=kernel, program=replace(self.program, kernels=(kernel,)))


def planned_candidate(shell: Program, kernel: Kernel, hw: HardwareModel) -> Candidate:
    """`kernel` (planned) as the candidate of the region `shell` (its buffers, no kernels)."""
    program = expand_program(replace(shell, kernels=(kernel,)), hw)
    workspace = sum(b.nbytes for name, b in program.buffers.items() if name not in shell.buffers)
    return Candidate(kernel, program, program_dram_bytes(program), workspace)

def strategies(kernel: Kernel, buffers, hw: HardwareModel) -> list[ParallelStrategy]:
    """The choice space of the family that plans the kernel (the CPU family on a CPU)."""
    if is_cpu(hw):
        return cpu_strategies(kernel, buffers, hw)
    return family_of(kernel, buffers, hw).space(kernel, buffers, hw)


def _placed_kernels(kernel: Kernel, buffers, hw: HardwareModel) -> list[tuple[Kernel, Kernel]]:
    """`kernel` planned with every strategy of its space the planner accepts, each with the
    first kernel of its placement (on a GPU every plan is its own)."""
    space = strategies(kernel, buffers, hw)
    if is_cpu(hw):
        return cpu_placements(kernel, space, hw)
    found = []
    for strategy in space:
        try:
            planned = with_strategy(kernel, strategy, hw)
        except Unsupported:
            continue
        found.append((planned, planned))
    return found


def planned_candidates(kernel: Kernel, shell: Program, hw: HardwareModel) -> list[Candidate]:
    """Every strategy of the space the planner accepts, in the space's order, not yet verified
    (a chooser that needs one candidate verifies only the ones it considers, in its order)."""
    first_of: dict[int, Candidate] = {}   # by the first kernel of a placement (alive in the list)
    found = []
    for planned, first in _placed_kernels(kernel, shell.buffers, hw):
        if id(first) not in first_of:
            first_of[id(first)] = planned_candidate(shell, first, hw)
        base = first_of[id(first)]
        found.append(base if planned is first else base.planned_alike(planned))
    return found


def verifies(candidate: Candidate, hw: HardwareModel) -> bool:
    try:
        verify(candidate.program, hw)
    except VerifyError:
        return False
    return True


def enumerate_candidates(kernel: Kernel, shell: Program, hw: HardwareModel) -> list[Candidate]:
    """Planned variants of an unplanned (rewritten) kernel that pass the verifier."""
    return [c for c in planned_candidates(kernel, shell, hw) if verifies(c, hw)]


def default_plan(kernel: Kernel, buffers, hw: HardwareModel) -> Kernel:
    """The default candidate: the CPU family's on a CPU, else the GPU families' (plan.py)."""
    return plan_cpu_kernel(kernel, buffers, hw) if is_cpu(hw) else plan_kernel(kernel, buffers, hw)


def default_choice(kernel: Kernel, shell: Program, hw: HardwareModel) -> Candidate:
    """The default plan as the region's candidate (the choice of plain compilation without a
    cost model)."""
    return planned_candidate(shell, default_plan(kernel, shell.buffers, hw), hw)
