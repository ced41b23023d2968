"""What the GPU dialects share: thread bindings (group = blockIdx.x, unit = threadIdx.y,
lane = threadIdx.x), registers in `local` scope, SRAM in `shared` scope (LDS on AMD), and a
butterfly all-reduce over the lanes of a unit; each GPU says how one xor-shuffle is written."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..gir.strategy import ParallelStrategy
from .render import SYNC, combine_text

LANE = "l"   # the lane variable of kernel_body


class GpuDialect(ABC):
    name = "gpu"

    def reg(self, name: str, index: str) -> str:
        return f"{name}[{index}]"

    def reg_alloc(self, name: str, size: int, dtype: str, s: ParallelStrategy) -> str:
        return f'{name} = T.alloc_buffer(({size},), "{dtype}", scope="local")'

    def sram_alloc(self, name: str, size: int, dtype: str) -> str:
        return f'{name} = T.alloc_buffer(({size},), "{dtype}", scope="shared")'

    @abstractmethod
    def shuffle_xor(self, value: str, mask: str, s: ParallelStrategy, dtype: str) -> str:
        """`value` as held by the lane whose index differs from this one's in the bits of `mask`."""

    def unit_allreduce(self, acc: str, op: str, width: int, s: ParallelStrategy, dtype: str) -> list:
        """Butterfly over `width` lanes with shuffles: every lane ends with the result."""
        steps = width.bit_length() - 1
        a = f"{acc}[0]"
        shfl = self.shuffle_xor(a, "T.shift_left(1, k)", s, dtype)
        return [[f"for k in T.unroll({steps}):", f"    {a} = {combine_text(op, a, shfl)}"]]

    def kernel_body(self, s: ParallelStrategy, allocs: list[str], segments: list) -> list[str]:
        lines = [f'for g in T.thread_binding({s.groups}, thread="blockIdx.x"):',
                 f'    for u in T.thread_binding({s.units}, thread="threadIdx.y"):',
                 f'        for {LANE} in T.thread_binding({s.lanes}, thread="threadIdx.x"):']
        pad = " " * 12
        lines += [pad + a for a in allocs]
        for seg in segments:
            if seg is SYNC:
                lines.append(pad + 'T.tvm_storage_sync("shared")')
            else:
                lines += [pad + line for line in seg]
        return lines
