"""Planning a kernel: its parallel strategy and reduction scopes.

Hardware enters only as a `HardwareModel` value (units of lanes, limits), handed in by
the target; this module never names a backend.  Searching over the alternatives is the
cost model's job; the default plan comes from the first plan family (families/, one file
each: flat, tile, column, row with its split_row refinement) that applies to the kernel.
"""

from __future__ import annotations

from dataclasses import replace

from ..gir.errors import Unsupported
from ..gir.hardware import HardwareModel
from ..gir.program import Kernel, Level, Load, Program, Reduce, Scope, kernel_dram_bytes, slice_footprint
from ..gir.strategy import ParallelStrategy, PlanFamily
from ..gir.sweeps import stream_passes
from .families import family_of
from .single_pass import single_pass_statistics
from .transpose_tile import stage_through_sram


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
    streams = strategy.streams or strategy.kind is PlanFamily.SPLIT_ROW
    return replace(kernel, sweeps=stream_passes(kernel) if streams else None)


def plan_kernel(kernel: Kernel, buffers, hw: HardwareModel) -> Kernel:
    """The default plan: the default of the first family that applies."""
    strategy = family_of(kernel, buffers, hw).default(kernel, buffers, hw)
    if strategy.kind is not PlanFamily.SPLIT_ROW and strategy.streams:   # streamed: as few sweeps as the statistics allow
        try:
            return with_strategy(kernel, replace(strategy, single_pass=True), hw)
        except Unsupported:
            pass
    return with_strategy(kernel, strategy, hw)


def program_dram_bytes(program: Program) -> int:
    """Bytes moved between DRAM and the chip by the program's moves (re-reads of streamed rows
    and workspaces between kernels counted)."""
    return sum(planned_dram_bytes(k, program.buffers) for k in program.kernels)


def planned_dram_bytes(kernel: Kernel, buffers) -> int:
    """DRAM bytes of a planned kernel: a streamed row re-reads its loads in every sweep."""
    assert kernel.strategy is None or kernel.strategy.kind is not PlanFamily.SPLIT_ROW, "count the phases of a split row"
    total = kernel_dram_bytes(kernel, buffers)
    if kernel.strategy is None or not kernel.strategy.streams:
        return total
    loads = [i for p in kernel.sweeps.passes for i in p.sweep if isinstance(i, Load) and i.level is Level.DRAM]
    once = {id(i): i for i in loads}
    for ins in once.values():
        extra = sum(i is ins for i in loads) - 1
        total += extra * slice_footprint(ins.src, kernel.axes, buffers, kernel.values)
    return total
