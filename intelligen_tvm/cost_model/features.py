"""Features of a planned candidate, read off its dataflow graph and strategy.

They describe what the hardware will do: bytes moved per memory level, instructions by
kind, barriers and shuffles, on-chip footprint, how the grid fills the machine.  Every
value is a float so that a feature dict is a row of the cost model's matrix.
"""

from __future__ import annotations

import math

from ..dataflow_graph.plan import program_dram_bytes
from ..dataflow_graph.split_row import planned_program
from ..gir import expr as E
from ..gir.hardware import HardwareModel
from ..gir.program import Compute, Kernel, Level, Load, Program, Reduce, Scope, Store, Sync
from ..gir.strategy import PlanFamily

TRANSCENDENTAL = frozenset({"exp", "log", "erf", "tanh", "sigmoid", "sqrt", "rsqrt", "pow", "exp2", "log2",
                            "log1p", "sin", "cos", "tan"})
KINDS = (PlanFamily.ROW, PlanFamily.FLAT, PlanFamily.COLUMN, PlanFamily.TILE, PlanFamily.SPLIT_ROW)
ROW_KINDS = (PlanFamily.ROW, PlanFamily.SPLIT_ROW)   # threads share a row and reduce it with shuffles


def _strided_loads(kernel: Kernel) -> int:
    """DRAM loads whose innermost index is not the axis lanes walk (uncoalesced)."""
    s = kernel.strategy
    if s.kind is PlanFamily.TILE:
        fast = s.tile_axes[0]
    elif s.kind in (PlanFamily.FLAT, PlanFamily.COLUMN) or not kernel.row:
        fast = kernel.outer[-1].name if kernel.outer else None
    else:
        fast = kernel.row[-1].name
    count = 0
    for ins in kernel.instrs:
        if isinstance(ins, Load) and ins.level is Level.DRAM and ins.src.index:
            last = ins.src.index[-1]
            uses_axes = bool(E.free_vars(last))
            count += uses_axes and not (isinstance(last, E.Var) and last.name == fast)
    return count


def occupancy(kernel: Kernel, hw: HardwareModel) -> float:
    """Resident threads per processor / its maximum, limited by threads, registers and SRAM."""
    s = kernel.strategy
    threads = s.units * s.lanes
    row_values = sum(1 for v in kernel.values.values() if v.axes & {a.name for a in kernel.row} or s.kind not in ROW_KINDS)
    regs_per_lane = 16 + row_values * s.per_lane
    sram = sum(b.nbytes for b in kernel.local_buffers.values())
    sram += sum(1 for i in kernel.instrs if isinstance(i, Reduce) and i.scope is Scope.GROUP) * threads * 4
    groups = hw.max_threads_per_processor // threads
    groups = min(groups, hw.regs_per_processor // max(1, threads * regs_per_lane), hw.max_groups_per_processor)
    if sram:
        groups = min(groups, (4 * hw.sram_bytes_per_group) // sram)
    groups = max(groups, 1)   # a group too large for the register file still runs, spilling
    return max(0.0, min(1.0, groups * threads / hw.max_threads_per_processor))


def features(kernel: Kernel, program: Program, hw: HardwareModel) -> dict[str, float]:
    s = kernel.strategy
    threads = s.units * s.lanes
    computes = [i for i in kernel.instrs if isinstance(i, Compute)]
    reduces = [i for i in kernel.instrs if isinstance(i, Reduce)]
    launched = planned_program(program, kernel, hw)   # a split row: partial + finishing kernels
    dram = program_dram_bytes(launched)
    workspace = sum(b.nbytes for name, b in launched.buffers.items() if name not in program.buffers)
    occ = occupancy(kernel, hw)
    resident = max(1.0, occ * hw.max_threads_per_processor / threads) * hw.processors
    out = {
        "dram_bytes": float(dram),
        "log_dram_bytes": math.log2(max(1, dram)),
        "bytes_per_thread": dram / max(1, s.groups * threads),
        "groups": float(s.groups),
        "log_groups": math.log2(s.groups),
        "threads_per_group": float(threads),
        "threads_per_row": float(s.threads_per_row),
        "rows_per_group": float(s.rows_per_group),
        "vector": float(s.vector),
        "elems_per_lane": float(s.per_lane * s.serial),
        "serial_steps": float(s.serial),
        "unrolled": float(s.unroll),
        "single_pass": float(s.single_pass),
        "sweeps": float(len(kernel.sweeps.passes) if s.serial > 1 else 1),
        "outer_size": float(s.outer_size),
        "row_size": float(s.row_size),
        "n_loads": float(sum(isinstance(i, Load) for i in kernel.instrs)),
        "n_stores": float(sum(isinstance(i, Store) for i in kernel.instrs)),
        "n_compute": float(len(computes)),
        "n_transcendental": float(sum(i.op in TRANSCENDENTAL for i in computes)),
        "n_reduce": float(len(reduces)),
        "n_reduce_group": float(sum(i.scope is Scope.GROUP for i in reduces)),
        "n_shuffles": float(sum(math.log2(min(s.threads_per_row, s.lanes)) for i in reduces if s.kind in ROW_KINDS)),
        "n_syncs": float(sum(isinstance(i, Sync) for i in kernel.instrs) + 2 * sum(i.scope is Scope.GROUP for i in reduces)),
        "sram_bytes": float(sum(b.nbytes for b in kernel.local_buffers.values())),
        "strided_loads": float(_strided_loads(kernel)),
        "occupancy": occ,
        "waves": s.groups / resident,
        "grid_per_processor": s.groups / hw.processors,
        "buffers": float(s.buffers),
        "kernels": float(len(launched.kernels)),
        "workspace_bytes": float(workspace),
        "splits": float(s.splits),
    }
    out |= {f"kind_{k}": float(s.kind is k) for k in KINDS}
    return out
