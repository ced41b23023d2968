"""Features of a planned candidate, read off its dataflow graph and strategy.

They describe what the hardware will do: bytes moved per memory level, instructions by
kind, barriers and shuffles, on-chip footprint, how the grid fills the machine.  Every
value is a float so that a feature dict is a row of the cost model's matrix.
"""

from __future__ import annotations

import math

from ..dataflow_graph.choices import Candidate
from ..dataflow_graph.cpu_plan import CpuModel, CpuStrategy, held_bytes
from ..gir import expr as E
from ..gir.hardware import HardwareModel
from ..gir.program import Compute, Kernel, Level, Load, Reduce, Scope, Store, Sync, dtype_bytes
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


def features(candidate: Candidate, hw: HardwareModel) -> dict[str, float]:
    if isinstance(candidate.strategy, CpuStrategy):
        return cpu_features(candidate, hw)
    kernel = candidate.kernel
    s = kernel.strategy
    threads = s.units * s.lanes
    computes = [i for i in kernel.instrs if isinstance(i, Compute)]
    reduces = [i for i in kernel.instrs if isinstance(i, Reduce)]
    dram = candidate.dram_bytes   # a split row: its partial and finishing kernels
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
        "sweeps": float(len(kernel.sweeps.passes) if s.streams else 1),
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
        "kernels": float(len(candidate.program.kernels)),
        "workspace_bytes": float(candidate.workspace_bytes),
        "splits": float(s.splits),
    }
    out |= {f"kind_{k}": float(s.kind is k) for k in KINDS}
    return out


def cpu_features(candidate: Candidate, hw: CpuModel) -> dict[str, float]:
    """A CPU candidate: DRAM bytes, how tasks fill the cores, vector width in registers,
    accumulators, sweeps and what each recomputes, held bytes against L1/L2, scalar tails."""
    s: CpuStrategy = candidate.kernel.strategy
    placed = candidate.placement_facts.get("cpu_features")
    if placed is None:   # once per placement: its candidates share the dict
        placed = candidate.placement_facts["cpu_features"] = _cpu_placement_features(candidate, hw)
    rounds = math.ceil(s.groups / hw.cores)
    step = s.vector * s.accumulators
    out = {
        "dram_bytes": placed["dram_bytes"],
        "log_dram_bytes": placed["log_dram_bytes"],
        "dram_over_l2": placed["dram_over_l2"],
        "dram_over_l3": placed["dram_over_l3"],
        "tasks": float(s.groups),
        "log_tasks": math.log2(max(1, s.groups)),
        "tasks_per_core": s.groups / hw.cores,
        "core_balance": s.groups / (rounds * hw.cores),
        "bytes_per_task": placed["dram_bytes"] / max(1, s.groups),
        "rows_per_task": float(s.rows_per_group),
        "vector": float(s.vector),
        "vector_registers": s.vector * placed["elem_bytes"] / hw.vector_bytes,
        "accumulators": float(s.accumulators),
        "step_elems": float(step),
        "held": float(s.held),
        "reload": float(s.reload and s.held),
        "row_bytes": float(s.row_size * placed["elem_bytes"]),
        "row_over_l1": s.row_size * placed["elem_bytes"] / hw.l1_bytes,
        "tail_fraction": (s.row_size % step) / s.row_size if s.kind in ("row", "flat") else 0.0,
        "outer_size": float(s.outer_size),
        "row_size": float(s.row_size),
        "elements": float(s.outer_size * max(1, s.row_size)),
        "tile": float(s.tile),
        "cores": float(hw.cores),
        "isa_vector_bytes": float(hw.vector_bytes),
    }
    out |= {k: v for k, v in placed.items() if k not in out and k != "elem_bytes"}
    out |= {f"kind_{k}": float(s.kind == k) for k in KINDS}
    return out


def _cpu_placement_features(candidate: Candidate, hw: CpuModel) -> dict[str, float]:
    """The features that read the planned kernel's instructions, sweeps and DRAM traffic but
    not the knobs its placement leaves open (tasks, vector width, accumulators), with the
    widest element's bytes."""
    kernel = candidate.kernel
    s: CpuStrategy = kernel.strategy
    dram = candidate.dram_bytes
    computes = [i for i in kernel.instrs if isinstance(i, Compute)]
    sweeps = kernel.sweeps if s.kind in ("row", "column") else None
    swept = [i for p in sweeps.passes for i in p.sweep] if sweeps else list(kernel.instrs)
    held = held_bytes(kernel)
    return {
        "elem_bytes": max(dtype_bytes(v.dtype) for v in kernel.values.values()),
        "dram_bytes": float(dram),
        "log_dram_bytes": math.log2(max(1, dram)),
        "dram_over_l2": dram / (hw.l2_bytes * hw.cores),
        "dram_over_l3": dram / hw.l3_bytes,
        "held_bytes": float(held),
        "held_over_l1": held / hw.l1_bytes,
        "held_over_l2": held / hw.l2_bytes,
        "sweeps": float(len(sweeps.passes)) if sweeps else 1.0,
        "swept_instrs": float(len(swept)),
        "swept_loads": float(sum(isinstance(i, Load) for i in swept)),
        "swept_transcendental": float(sum(isinstance(i, Compute) and i.op in TRANSCENDENTAL for i in swept)),
        "n_loads": float(sum(isinstance(i, Load) for i in kernel.instrs)),
        "n_stores": float(sum(isinstance(i, Store) for i in kernel.instrs)),
        "n_compute": float(len(computes)),
        "n_transcendental": float(sum(i.op in TRANSCENDENTAL for i in computes)),
        "n_reduce": float(sum(isinstance(i, Reduce) for i in kernel.instrs)),
        "strided_loads": float(_cpu_strided_loads(kernel)),
        "sram_bytes": float(sum(b.nbytes for b in kernel.local_buffers.values())),
    }


def _cpu_strided_loads(kernel: Kernel) -> int:
    """DRAM loads whose innermost index is not the axis the vector runs along (gathered)."""
    s = kernel.strategy
    fast = (s.tile_axes[0] if s.kind == "tile" else kernel.row[-1].name if s.kind == "row"
            else kernel.outer[-1].name if kernel.outer else None)
    count = 0
    for ins in kernel.instrs:
        if isinstance(ins, Load) and ins.level is Level.DRAM and ins.src.index:
            last = ins.src.index[-1]
            count += bool(E.free_vars(last)) and not (isinstance(last, E.Var) and last.name == fast)
    return count
