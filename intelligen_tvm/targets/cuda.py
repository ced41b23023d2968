"""CUDA dialect: warp shuffles of 32 lanes (`__shfl_xor_sync`)."""

from __future__ import annotations

from ..gir.strategy import ParallelStrategy
from .gpu import GpuDialect


class CudaDialect(GpuDialect):
    name = "cuda"

    def shuffle_xor(self, value: str, mask: str, s: ParallelStrategy, dtype: str) -> str:
        return f"T.tvm_warp_shuffle_xor(T.tvm_warp_activemask(), {value}, {mask}, {s.lanes}, {s.lanes})"
