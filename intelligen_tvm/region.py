"""One region end to end: stages -> naive GIR -> dataflow graph rewrites -> plan -> TIR."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Callable

import tvm

from . import targets
from .dataflow_graph.fuse import build_kernel
from .dataflow_graph.plan import plan_kernel, program_dram_bytes
from .dataflow_graph.rewrites import monotonic_rewrites
from .dataflow_graph.split_row import planned_program
from .gir.errors import Unsupported
from .gir.hardware import HardwareModel
from .gir.program import Kernel, Load, Program, slice_footprint
from .gir.verify import verify
from .gir_lowering.naive import lower_naive
from .gir_lowering.tir_reader import StageProgram


@dataclass
class LoweredRegion:
    naive: Program
    optimized: Program
    dram_bytes_ideal: int
    dram_bytes_naive: int
    dram_bytes_planned: int
    prim_func: tvm.tirx.PrimFunc | None = None
    stage_program: StageProgram | None = None
    rewritten: Kernel | None = None   # after the monotonic rewrites, before planning
    chosen: Kernel | None = None      # the planned candidate (a split_row one spans several kernels)
    source: str = ""

    @property
    def shell(self) -> Program:
        return replace(self.optimized, kernels=[])

    @property
    def fingerprint(self) -> str:
        return region_fingerprint(self.rewritten, self.shell)

    @property
    def kernel(self) -> Kernel:
        return self.chosen


def ideal_dram_bytes(kernel: Kernel, program: Program) -> int:
    """Each region input read once (its distinct accessed elements) + each output written once."""
    per_input: dict[str, int] = {}
    seen: set = set()
    for ins in kernel.instrs:
        if isinstance(ins, Load) and ins.src.buffer in program.inputs:
            key = (ins.src.buffer, ins.src.index)
            if key not in seen:
                seen.add(key)
                per_input[ins.src.buffer] = per_input.get(ins.src.buffer, 0) + slice_footprint(ins.src, kernel.axes, program.buffers, kernel.values)
    total = sum(min(b, program.buffers[name].nbytes) for name, b in per_input.items())
    return total + sum(program.buffers[o].nbytes for o in program.outputs)


# Picks the planned kernel of a region: (rewritten kernel, its program shell, hardware) -> planned.
Chooser = Callable[[Kernel, Program, HardwareModel], Kernel]


def default_choice(kernel: Kernel, shell: Program, hw: HardwareModel) -> Kernel:
    return plan_kernel(kernel, shell.buffers, hw)


def region_fingerprint(kernel: Kernel, shell: Program) -> str:
    """Identity of a rewritten region independent of tensor names: records of one region
    measured in one model serve the same region in another."""
    text = Program(shell.name, shell.buffers, shell.inputs, shell.outputs, [replace(kernel, name="k")]).text()
    text = text.split("\n", 1)[1]
    roles = [*(f"in{i}" for i in range(len(shell.inputs))), *(f"out{i}" for i in range(len(shell.outputs)))]
    for name, role in zip([*shell.inputs, *shell.outputs], roles):
        text = re.sub(rf"\b{re.escape(name)}\b", role, text)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def lower_region(stages: StageProgram, name: str, target, emit: bool = True,
                 choose: Chooser = default_choice, hw: HardwareModel | None = None) -> LoweredRegion:
    """Raises `Unsupported` with the reason when the region cannot be taken.

    `target` is a tvm Target, a dict, a kind name or an external codegen's kind ("bang"); it
    picks the dialect and, unless `hw` is given, the hardware preset.  An explicit `hw` plans
    for other hardware than the target's: the CPU lowering (llvm) of a ROCm plan checks wave64
    numerics without a GPU.  With `emit=False` (trial merges during region selection), or for
    a target that is not rendered as TIR (an external codegen emits its own source later), no
    TIR is rendered."""
    if not stages.outputs:
        raise Unsupported("the region has no outputs")
    target = targets.as_target(target)
    hw = hw or targets.hardware_model(target)
    naive = lower_naive(stages, name)
    fused, _ = build_kernel(stages, name)
    ideal = ideal_dram_bytes(fused, naive)
    rewritten = monotonic_rewrites(fused, stages.inputs, stages.outputs)
    used = {b for b in stages.buffers if b in stages.inputs or b in stages.outputs}
    shell = Program(name, {b: stages.buffers[b] for b in used}, list(stages.inputs), list(stages.outputs))
    chosen = choose(rewritten, shell, hw)
    optimized = planned_program(shell, chosen, hw)
    verify(optimized, hw)
    lowered = LoweredRegion(naive, optimized, ideal, program_dram_bytes(naive), program_dram_bytes(optimized),
                            stage_program=stages, rewritten=rewritten, chosen=chosen)
    kind = targets.target_kind(target)
    if not emit or not targets.renders_tir(kind):
        return lowered
    lowered.source = targets.render_source(optimized, kind, name)
    lowered.prim_func = targets.parse_source(lowered.source)
    return lowered
