"""ROCm dialect: all-reduces over a wavefront of 64 lanes.

TVM 0.27 lowers `tvm_warp_shuffle` for rocm to `llvm.amdgcn.ds.bpermute` (source lane =
the given lane + this lane's segment base, from mbcnt) but has no rocm rule for
`tvm_warp_shuffle_xor`, so the xor partner is computed here and read with a plain shuffle.
ds_bpermute moves 32 bits: narrower values travel widened (exactly), wider ones cannot.
"""

from __future__ import annotations

import tvm

from ..gir.errors import Unsupported
from ..gir.strategy import ParallelStrategy
from .gpu import GpuDialect, LANE


def _carrier(dtype: str) -> str | None:
    """The 32-bit dtype that holds a `dtype` value exactly through a shuffle (None if it is one)."""
    t = tvm.DataType(dtype)
    if t.bits > 32 or t.lanes != 1:
        raise Unsupported(f"a {dtype} wavefront reduction: ds_bpermute moves 32-bit values")
    if t.bits == 32:
        return None
    return "float32" if dtype.startswith(("float", "bfloat")) else "int32"


class RocmDialect(GpuDialect):
    name = "rocm"

    def shuffle_xor(self, value: str, mask: str, s: ParallelStrategy, dtype: str) -> str:
        carrier = _carrier(dtype)
        moved = value if carrier is None else f'T.Cast("{carrier}", {value})'
        shfl = (f"T.tvm_warp_shuffle(T.tvm_warp_activemask(), {moved}, T.bitwise_xor({LANE}, {mask}), "
                f"{s.lanes}, {s.lanes})")
        return shfl if carrier is None else f'T.Cast("{dtype}", {shfl})'
