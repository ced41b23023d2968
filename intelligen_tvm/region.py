"""One region end to end: stages -> naive GIR -> dataflow graph rewrites -> plan -> TIR."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import tvm

from . import targets
from .dataflow_graph.fuse import build_kernel
from .dataflow_graph.plan import plan_kernel, program_dram_bytes
from .dataflow_graph.rewrites import monotonic_rewrites
from .dataflow_graph.split_row import planned_program
from .gir.errors import Unsupported
from .gir.fingerprint import region_fingerprint
from .gir.hardware import HardwareModel
from .gir.program import Kernel, Load, Program, slice_footprint
from .gir.verify import verify
from .gir_lowering.naive import lower_naive
from .gir_lowering.tir_reader import StageProgram


@dataclass(frozen=True)
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

    def renamed(self, name: str) -> LoweredRegion:
        """The same region under another name (its programs and kernels renamed)."""
        if name == self.optimized.name:
            return self
        old = self.optimized.name
        return replace(self, naive=self.naive.renamed(name), optimized=self.optimized.renamed(name),
                       rewritten=self.rewritten.renamed(old, name), chosen=self.chosen.renamed(old, name))


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


def plan_region(stages: StageProgram, name: str, target, choose: Chooser = default_choice,
                hw: HardwareModel | None = None) -> LoweredRegion:
    """Everything up to a verified plan, nothing rendered: region selection plans every
    trial merge this way.  Raises `Unsupported` with the reason when the region cannot be
    taken.

    `target` is a tvm Target, a dict, a kind name or an external codegen's kind ("bang"); it
    picks, unless `hw` is given, the hardware preset.  An explicit `hw` plans for other
    hardware than the target's: the CPU lowering (llvm) of a ROCm plan checks wave64
    numerics without a GPU."""
    if not stages.outputs:
        raise Unsupported("the region has no outputs")
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
    return LoweredRegion(naive, optimized, ideal, program_dram_bytes(naive), program_dram_bytes(optimized),
                         stage_program=stages, rewritten=rewritten, chosen=chosen)


def render_region(planned: LoweredRegion, name: str, target) -> LoweredRegion:
    """The planned region under `name`, with its TIR source and PrimFunc when the target is
    rendered as TIR (an external codegen emits its own source later)."""
    lowered = planned.renamed(name)
    kind = targets.target_kind(target)
    if not targets.renders_tir(kind):
        return lowered
    source, prim_func = targets.build_prim_func(lowered.optimized, kind, name)
    return replace(lowered, source=source, prim_func=prim_func)


def lower_region(stages: StageProgram, name: str, target, choose: Chooser = default_choice,
                 hw: HardwareModel | None = None) -> LoweredRegion:
    """`plan_region`, then `render_region`."""
    return render_region(plan_region(stages, name, target, choose, hw), name, target)
