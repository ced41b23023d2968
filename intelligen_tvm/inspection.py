"""What the compiler did to each region, for people: the report, the planned GIR program, the
generated kernel source and, on cuda, what ptxas says of each kernel (registers, spills, shared
memory) with the occupancy that follows.

Regions come from `explain()` with a recording chooser: region selection plans trial merges
with its own chooser and hands each final region to ours once, in report order, so the
recordings, matched to the report by fingerprint, rebuild each planned program without
reaching into region selection's internals.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import tvm

from . import targets
from .dataflow_graph.choices import Candidate
from .gir.fingerprint import region_fingerprint
from .gir.hardware import HardwareModel
from .gir.program import Kernel, Program
from .region import Chooser, default_choice
from .relax_integration import explain


@dataclass(frozen=True)
class RegionDetail:
    """One region of the region report; `program` is its planned GIR (None for a fallback)."""

    report: dict
    program: Program | None = None
    rewritten: Kernel | None = None   # after the monotonic rewrites, before planning

    @property
    def name(self) -> str:
        return self.report["name"]

    @property
    def handled(self) -> bool:
        return self.program is not None


@dataclass(eq=False)   # region selection keys its plans by chooser: hashed by identity
class _Recorder:
    inner: Chooser
    seen: list[tuple[str, Kernel, Program, Candidate]] = field(default_factory=list)

    def __call__(self, kernel: Kernel, shell: Program, hw: HardwareModel) -> Candidate:
        chosen = self.inner(kernel, shell, hw)
        self.seen.append((region_fingerprint(kernel, shell), kernel, shell, chosen))
        return chosen


def region_details(mod: tvm.IRModule, target, choose: Chooser = default_choice) -> tuple[dict, list[RegionDetail]]:
    """`explain(mod, target)` and, per region, its planned GIR program under the region's name."""
    recorder = _Recorder(choose)
    report = explain(mod, target, choose=recorder)
    # a region repeated up to names is planned once (its first copy); one that failed after
    # planning was recorded but not reported
    planned = {}
    for seen in recorder.seen:
        planned.setdefault(seen[0], seen)
    details = []
    for region in report["regions"]:
        if region["handled_by"] != "intelligen":
            details.append(RegionDetail(region))
            continue
        _, kernel, shell, chosen = planned[region["fingerprint"]]
        program = chosen.program.renamed(region["name"])
        details.append(RegionDetail(region, program, kernel.renamed(shell.name, region["name"])))
    return report, details


def kernel_source(detail: RegionDetail, target) -> str:
    """The region's kernel as TVMScript TIR for `target` (what TVM builds)."""
    return targets.render_source(detail.program, targets.target_kind(target), detail.name)


# ---- CUDA: what ptxas says ------------------------------------------------------------------

# sm_90 limits per SM (CUDA occupancy calculator): 65536 registers allocated per warp in units
# of 256, 64 warps, 32 blocks, 228 KiB shared memory of which a block may use 227 KiB, 1 KiB of
# it reserved per block.
SM90_LIMITS = {"regs": 65536, "reg_unit": 256, "warps": 64, "blocks": 32, "smem": 228 * 1024,
               "smem_reserved": 1024}


@dataclass(frozen=True)
class PtxasKernel:
    name: str
    threads: int            # per block, from __launch_bounds__
    registers: int
    spill_stores: int
    spill_loads: int
    smem_bytes: int

    @property
    def occupancy(self) -> float:
        """Resident warps per SM / 64 (sm_90), limited by registers, shared memory and blocks."""
        lim = SM90_LIMITS
        warps = -(-self.threads // 32)
        regs_per_warp = -(-max(1, self.registers) * 32 // lim["reg_unit"]) * lim["reg_unit"]
        blocks = min(lim["blocks"], lim["warps"] // warps, lim["regs"] // (regs_per_warp * warps))
        if self.smem_bytes:
            blocks = min(blocks, lim["smem"] // (self.smem_bytes + lim["smem_reserved"]))
        return blocks * warps / lim["warps"]

    def describe(self) -> dict:
        return {"kernel": self.name, "threads": self.threads, "registers": self.registers,
                "spill_stores": self.spill_stores, "spill_loads": self.spill_loads,
                "smem_bytes": self.smem_bytes, "occupancy": round(self.occupancy, 3)}


def cuda_source(detail: RegionDetail, target) -> str:
    """The CUDA C that TVM generates for the region's kernel."""
    target = targets.as_target(target)
    _, func = targets.build_prim_func(detail.program, target.kind.name, detail.name)
    built = tvm.compile(tvm.IRModule({detail.name: func}), target=target)
    stack, sources = [built.mod], []
    while stack:
        module = stack.pop()
        if module.kind == "cuda":
            sources.append(module.inspect_source(""))
        stack.extend(module.imports)
    if len(sources) != 1:
        raise RuntimeError(f"expected one CUDA module for {detail.name}, found {len(sources)}")
    return sources[0]


def parse_ptxas(output: str, source: str) -> list[PtxasKernel]:
    """Per kernel: registers, spills and shared memory from `ptxas -v`, block size from the source."""
    threads = {name: int(n) for n, name in re.findall(r"__launch_bounds__\((\d+)\)[^\n]*?\s(\w+)\(", source)}
    kernels = []
    for block in re.split(r"ptxas info\s*: Compiling entry function '", output)[1:]:
        name = block.split("'", 1)[0]
        spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", block)
        used = re.search(r"Used (\d+) registers", block)
        smem = re.search(r"(\d+) bytes smem", block)
        kernels.append(PtxasKernel(name, threads.get(name, 0), int(used[1]) if used else 0,
                                   int(spills[1]) if spills else 0, int(spills[2]) if spills else 0,
                                   int(smem[1]) if smem else 0))
    return kernels


def ptxas_report(source: str, arch: str = "sm_90") -> list[PtxasKernel] | str:
    """`nvcc -Xptxas -v` on generated CUDA source; a string says why there is no report."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return "nvcc not found on PATH: no ptxas report"
    with tempfile.TemporaryDirectory(prefix="intelligen_ptxas_") as tmp:
        path = Path(tmp) / "kernel.cu"
        path.write_text(source)
        proc = subprocess.run([nvcc, f"-arch={arch}", "-cubin", "-w", "-Xptxas", "-v", "-o",
                               str(path.with_suffix(".cubin")), str(path)],
                              capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return f"nvcc failed ({proc.returncode}): {proc.stderr.strip()[-1000:]}"
    return parse_ptxas(proc.stderr + proc.stdout, source)
