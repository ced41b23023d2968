"""Backends: each renders the same planned dataflow graph (see render.py)."""

from __future__ import annotations

from tvm.script import tirx as T

import tvm

from ..dataflow_graph.plan import HardwareModel
from ..gir.program import Program
from .cpu import CpuDialect
from .cuda import CudaDialect
from .presets import PRESETS
from .render import render_program

DIALECTS = {"cuda": CudaDialect, "llvm": CpuDialect}


def supported(target_kind: str) -> bool:
    return target_kind in DIALECTS


def renders_tir(target_kind: str) -> bool:
    """Kernels for this target are TVMScript TIR built by TVM (not an external codegen's source)."""
    return target_kind in DIALECTS


def hardware_model(target_kind: str) -> HardwareModel:
    return PRESETS[target_kind].model


def render_source(program: Program, target_kind: str, func_name: str) -> str:
    """TVMScript text of the region's kernel for `target_kind`."""
    return render_program(program, DIALECTS[target_kind](), func_name)


def parse_source(source: str) -> tvm.tirx.PrimFunc:
    return tvm.script.from_source(source, extra_vars={"T": T})
