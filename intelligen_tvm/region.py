"""One region end to end: stages -> naive GIR -> dataflow graph rewrites -> plan -> TIR."""

from __future__ import annotations

import contextlib
import copy
import functools
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import tvm

from . import targets
from .cost_model.model import CostModel
from .cost_model.ranking import rank
from .dataflow_graph.choices import Candidate, default_choice, planned_candidates, verifies
from .dataflow_graph.cpu_plan import is_cpu
from .dataflow_graph.fuse import build_kernel
from .dataflow_graph.plan import program_dram_bytes
from .dataflow_graph.rewrite_check import RewriteCheck, verifying_rewrites
from .dataflow_graph.rewrites import monotonic_rewrites
from .gir.errors import Unsupported, VerifyError
from .gir.fingerprint import region_fingerprint
from .gir.hardware import HardwareModel
from .gir.program import Kernel, Load, Program, slice_footprint
from .gir.symbolic import is_symbolic, symbols_of
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

    @functools.cached_property   # asked by the report, the kernel memo and tuning
    def fingerprint(self) -> str:
        return region_fingerprint(self.rewritten, self.shell)

    @property
    def kernel(self) -> Kernel:
        return self.chosen

    @property
    def symbols(self) -> dict[str, int]:
        """Symbolic dimensions of the region and the sizes it was planned (and counted) at."""
        return symbols_of(d for b in self.naive.buffers.values() for d in b.shape)

    def renamed(self, name: str) -> LoweredRegion:
        """The same region under another name (its programs and kernels renamed)."""
        if name == self.optimized.name:
            return self
        old = self.optimized.name
        return self.replaced(naive=self.naive.renamed(name), optimized=self.optimized.renamed(name),
                             rewritten=self.rewritten.renamed(old, name), chosen=self.chosen.renamed(old, name))

    def replaced(self, **changes) -> LoweredRegion:
        """`dataclasses.replace` keeping the fingerprint once computed (names, sources and
        PrimFuncs are not part of it; the structure the changes keep is)."""
        changed = replace(self, **changes)
        if "fingerprint" in self.__dict__:
            changed.__dict__["fingerprint"] = self.fingerprint
        return changed


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


# Picks the planned candidate of a region: (rewritten kernel, its program shell, hardware) -> planned.
Chooser = Callable[[Kernel, Program, HardwareModel], Candidate]


# Cost models trained on real measurements that ship with the package, by hardware family
# (scripts/collect_cpu_records.py writes the CPU one).
SHIPPED_MODELS = {"cpu": Path(__file__).parent / "cost_model" / "models" / "cpu.json"}


@functools.cache
def shipped_model(family: str) -> CostModel | None:
    path = SHIPPED_MODELS.get(family)
    return CostModel.load(path) if path is not None and path.exists() else None


# The kernels one compilation already built, by (fingerprint, strategy, target kind): the
# regions of one structure (a fingerprint: the region up to names; a model repeats its regions
# once per layer) share one planned region (relax_integration plans each call-set structure
# once), and here one kernel, so TVMScript is built once per structure and LLVM/NVCC compile
# it once too (the BlockBuilder adds an identical PrimFunc once).  Scoped to one compilation,
# so that every compile pays for its own work.
_REPEATS: ContextVar[dict | None] = ContextVar("intelligen_repeats", default=None)


@contextlib.contextmanager
def repeats_worked_out_once():
    """Within the block, a region whose structure and plan were seen before gets the kernel
    (source and PrimFunc) of the first such region, without building it again."""
    token = _REPEATS.set({})
    try:
        yield
    finally:
        _REPEATS.reset(token)


def _worked_out_once(key: tuple, work: Callable[[], object]):
    """`work()`, or inside `repeats_worked_out_once` what it gave the first time for `key`."""
    repeats = _REPEATS.get()
    if repeats is None:
        return work()
    if key not in repeats:
        repeats[key] = work()
    return repeats[key]


def model_pick(kernel: Kernel, shell: Program, hw: HardwareModel, model: CostModel) -> Candidate:
    """The candidate `model` predicts fastest among those with the least planned DRAM traffic
    (the default plan when nothing verifies).  A prediction never buys a second pass over DRAM:
    the model is trained on few records per family, and the region's one-pass promise (each
    input read once, each output written once) is what plain compilation keeps; `tune()`
    measures the others."""
    planned = planned_candidates(kernel, shell, hw)
    for dram in sorted({c.dram_bytes for c in planned}):   # verified lazily, in ranking order
        tier = [c for c in planned if c.dram_bytes == dram]
        picked = next((c for c, _ in rank(tier, hw, model) if verifies(c, hw)), None)
        if picked is not None:
            return picked
    return default_choice(kernel, shell, hw)


def shipped_choice(kernel: Kernel, shell: Program, hw: HardwareModel) -> Candidate:
    """Plain compilation: the shipped model's pick where one exists for the hardware (CPUs),
    else the default plan."""
    model = shipped_model("cpu") if is_cpu(hw) else None
    return default_choice(kernel, shell, hw) if model is None else model_pick(kernel, shell, hw, model)


def _check_symbolic(kernel: Kernel, stages: StageProgram, kind: str) -> None:
    """Symbolic dimensions are planned by the TIR backends (a row of symbolic length always
    streams: verify() refuses it on chip); the BANG hook plans static shapes only."""
    sym = symbols_of(d for b in stages.buffers.values() for d in b.shape)
    if not sym:
        return
    if kind in targets.EXTERNAL_KINDS:
        raise Unsupported(f"symbolic shape ({', '.join(sym)}): the {kind} backend plans static shapes only")
    # The kernel binds a symbol only where it is the whole size of an input or output dimension
    # (its buffer is matched over it); a symbol met only inside an expression is never bound.
    params = [stages.buffers[b] for b in (*stages.inputs, *stages.outputs)]
    bound = {d.text for b in params for d in b.shape if is_symbolic(d) and len(d.symbols) == 1
             and d.text == next(iter(d.symbols))[0]}
    used = set(sym) | set(symbols_of(kernel.axes.values()))
    if used - bound:
        raise Unsupported(f"symbolic shape: {', '.join(sorted(used - bound))} is not the size of an input "
                          "or output dimension (the kernel could not bind it)")


@dataclass(frozen=True)
class RewrittenRegion:
    """A region up to the choice of its plan, what every chooser plans from: its naive
    program, its kernel after the monotonic rewrites, its buffers (`shell`), its ideal DRAM
    traffic, and the running check of the rewrites (when verifying)."""

    stages: StageProgram
    naive: Program
    rewritten: Kernel
    shell: Program
    ideal: int
    check: RewriteCheck | None


def rewrite_region(stages: StageProgram, name: str, target) -> RewrittenRegion:
    """Stages -> naive program -> one fused kernel -> monotonic rewrites.  Raises
    `Unsupported` with the reason when the region cannot be taken on `target`'s kind."""
    if not stages.outputs:
        raise Unsupported("the region has no outputs")
    naive = lower_naive(stages, name)
    check = RewriteCheck(naive) if verifying_rewrites() and RewriteCheck.applies(naive) else None
    as_program = lambda kernel: replace(naive, kernels=(kernel,))  # noqa: E731  # every buffer, one kernel
    fused, _ = build_kernel(stages, name)
    if check is not None:
        check.stage("fuse", as_program(fused))
    _check_symbolic(fused, stages, targets.target_kind(target))
    ideal = ideal_dram_bytes(fused, naive)
    after_stage = None if check is None else (lambda stage, kernel: check.stage(stage, as_program(kernel)))
    rewritten = monotonic_rewrites(fused, stages.inputs, stages.outputs, after_stage)
    used = {b for b in stages.buffers if b in stages.inputs or b in stages.outputs}
    shell = Program(name, {b: stages.buffers[b] for b in used}, list(stages.inputs), list(stages.outputs))
    return RewrittenRegion(stages, naive, rewritten, shell, ideal, check)


def plan_rewritten(region: RewrittenRegion, target, choose: Chooser = default_choice,
                   hw: HardwareModel | None = None) -> LoweredRegion:
    """The plan `choose` picks for the rewritten region, verified (see `plan_region`)."""
    hw = hw or targets.hardware_model(target)
    chosen = choose(region.rewritten, region.shell, hw)
    optimized = chosen.program
    try:
        verify(optimized, hw)
    except VerifyError as err:
        if symbols_of(d for b in region.stages.buffers.values() for d in b.shape):
            # bounds that hold at the hint sizes may not hold at every size (a symbolic axis
            # broadcast against a static dimension): refuse what cannot be proved for all sizes
            raise Unsupported(f"symbolic shape: not verifiable for every size ({err})") from err
        raise
    if region.check is not None:   # a verified plan: interpreting it is defined
        copy.copy(region.check).stage("plan", optimized)   # against the rewrites, for every chooser
    return LoweredRegion(region.naive, optimized, region.ideal, program_dram_bytes(region.naive), chosen.dram_bytes,
                         stage_program=region.stages, rewritten=region.rewritten, chosen=chosen.kernel)


def plan_region(stages: StageProgram, name: str, target, choose: Chooser = default_choice,
                hw: HardwareModel | None = None) -> LoweredRegion:
    """Everything up to a verified plan, nothing rendered.  Raises `Unsupported` with the
    reason when the region cannot be taken.

    `target` is a tvm Target, a dict, a kind name or an external codegen's kind ("bang"); it
    picks, unless `hw` is given, the hardware preset.  An explicit `hw` plans for other
    hardware than the target's: the CPU lowering (llvm) of a ROCm plan checks wave64
    numerics without a GPU."""
    return plan_rewritten(rewrite_region(stages, name, target), target, choose, hw)


def render_region(planned: LoweredRegion, name: str, target) -> LoweredRegion:
    """The planned region under `name`, with its TIR source and PrimFunc when the target is
    rendered as TIR (an external codegen emits its own source later)."""
    kind = targets.target_kind(target)
    if not targets.renders_tir(kind):
        return planned.renamed(name)
    key = (planned.fingerprint, planned.chosen.strategy, kind)   # before renaming: carried over
    lowered = planned.renamed(name)
    source, prim_func = _worked_out_once(key, lambda: targets.build_prim_func(lowered.optimized, kind, name))
    return lowered.replaced(source=source, prim_func=prim_func)


def lower_region(stages: StageProgram, name: str, target, choose: Chooser = default_choice,
                 hw: HardwareModel | None = None) -> LoweredRegion:
    """`plan_region`, then `render_region`."""
    return render_region(plan_region(stages, name, target, choose, hw), name, target)
