"""Backends: each renders the same planned dataflow graph (see render.py)."""

from __future__ import annotations

from tvm.script import tirx as T

import tvm

from ..dataflow_graph.plan import HardwareModel
from ..gir.program import Program
from .cpu import CpuDialect
from .cuda import CudaDialect
from .presets import preset_for
from .render import render_program
from .rocm import RocmDialect

DIALECTS = {"cuda": CudaDialect, "rocm": RocmDialect, "llvm": CpuDialect}


def as_target(target) -> tvm.target.Target:
    """A tvm Target from a Target, a kind name ("llvm") or a dict ({"kind": "rocm", ...})."""
    return target if isinstance(target, tvm.target.Target) else tvm.target.Target(target)


def supported(target_kind: str) -> bool:
    return target_kind in DIALECTS


def hardware_model(target) -> HardwareModel:
    """The planner's view of a target: its preset, chosen by kind and arch (mcpu on rocm)."""
    return preset_for(as_target(target)).model


def render_source(program: Program, target_kind: str, func_name: str) -> str:
    """TVMScript text of the region's kernel for `target_kind`."""
    return render_program(program, DIALECTS[target_kind](), func_name)


def parse_source(source: str) -> tvm.tirx.PrimFunc:
    return tvm.script.from_source(source, extra_vars={"T": T})
