"""The Cambricon MLU (BANG C) backend: NRAM tile layout, plan candidates, the renderer.
The Relax side (partitioning, the external codegen hook) is `intelligen_tvm.mlu`."""

from .render import INTRINSICS

__all__ = ["INTRINSICS"]
