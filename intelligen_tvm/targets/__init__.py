"""Backends: each renders the same planned dataflow graph (see render.py)."""

from __future__ import annotations

import tvm
from tvm.script import tirx as T

from ..cost_model.target_kinds import EXTERNAL_KINDS, as_target, target_kind
from ..dataflow_graph.cpu_plan import CpuStrategy
from ..gir.hardware import HardwareModel
from ..gir.program import Program
from .cpu import CpuDialect
from .cpu_backend import render_cpu_program
from .cuda import CudaDialect
from .presets import cpu_preset, preset_for
from .render import render_program
from .rocm import RocmDialect
from .script_builder import Untranslatable, build_prim_func_from_script

# llvm renders CPU plans with the CPU backend (cpu_backend.py); a GPU plan on llvm (planned with
# a GPU preset's model, `lower_region(..., hw=)`) with the thread-emulating CpuDialect, a test tool.
DIALECTS = {"cuda": CudaDialect, "rocm": RocmDialect, "llvm": CpuDialect}


def renders_tir(target_kind: str) -> bool:
    """Kernels for this target are TVMScript TIR built by TVM (not an external codegen's source)."""
    return target_kind in DIALECTS


def hardware_model(target) -> HardwareModel:
    """The planner's view of a target: its preset, chosen by kind and arch (mcpu on rocm)."""
    target = as_target(target)
    if isinstance(target, str):
        return preset_for(target).model
    if target.kind.name == "llvm":
        return cpu_preset(target).model
    return preset_for(target.kind.name, str(target.attrs.get("arch") or target.attrs.get("mcpu") or "")).model


def render_source(program: Program, target_kind: str, func_name: str) -> str:
    """TVMScript text of the region's kernel for `target_kind`."""
    if target_kind == "llvm" and all(isinstance(k.strategy, CpuStrategy) for k in program.kernels):
        return render_cpu_program(program, func_name)
    return render_program(program, DIALECTS[target_kind](), func_name)


class _ParseNamespace:
    """`T` for parsing a rendered source.  There `T.prim_func(s_tir=True)` only names the
    dialect (the parser reads `s_tir` off the syntax), but calling TVM's decorator captures
    the caller's whole stack (`inspect.stack`), which deep inside `tvm.compile` cost most of
    a region's parse time."""

    def __getattr__(self, name: str):
        return getattr(T, name)

    @staticmethod
    def prim_func(**_options):
        return T.prim_func   # carries the "tirx" dispatch token


_PARSE_VARS = {"T": _ParseNamespace()}


def parse_source(source: str) -> tvm.tirx.PrimFunc:
    """The PrimFunc of `source` by TVM's TVMScript parser (the reference of `source_prim_func`)."""
    return tvm.script.from_source(source, extra_vars=_PARSE_VARS)


def source_prim_func(source: str) -> tvm.tirx.PrimFunc:
    """The PrimFunc of a rendered source: built by the builder calls the parser would make
    (script_builder.py, 7x faster), parsed where the source leaves the renderers' subset."""
    try:
        return build_prim_func_from_script(source)
    except Untranslatable:
        return parse_source(source)


def build_prim_func(program: Program, target_kind: str, func_name: str) -> tuple[str, tvm.tirx.PrimFunc]:
    """The region's TVMScript source and its PrimFunc."""
    source = render_source(program, target_kind, func_name)
    return source, source_prim_func(source)
