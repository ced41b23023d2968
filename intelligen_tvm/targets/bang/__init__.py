"""Cambricon MLU (BANG C) through Relax's external codegen hook.

    mod = intelligen_tvm.targets.bang.partition_for_mlu(mod)   # annotate the regions taken
    mod = tvm.relax.transform.RunCodegen()(mod)                 # BANG C per region
    mod.attrs["external_mods"][0].inspect_source()

`explain_mlu(mod)` lists the regions taken and, for the others, why they stay with TVM.
"""

from .hook import CODEGEN, emit_function, explain_mlu, partition_for_mlu
from .render import INTRINSICS

__all__ = ["CODEGEN", "INTRINSICS", "emit_function", "explain_mlu", "partition_for_mlu"]
