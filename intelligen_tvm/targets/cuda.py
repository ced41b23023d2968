"""CUDA dialect: thread bindings, registers in `local` scope, `shared` SRAM, warp shuffles."""

from __future__ import annotations

from ..dataflow_graph.plan import ParallelStrategy
from .render import SYNC, combine_text


class CudaDialect:
    name = "cuda"

    def reg(self, name: str, index: str) -> str:
        return f"{name}[{index}]"

    def reg_alloc(self, name: str, size: int, dtype: str, s: ParallelStrategy) -> str:
        return f'{name} = T.alloc_buffer(({size},), "{dtype}", scope="local")'

    def sram_alloc(self, name: str, size: int, dtype: str) -> str:
        return f'{name} = T.alloc_buffer(({size},), "{dtype}", scope="shared")'

    def unit_allreduce(self, acc: str, op: str, width: int, s: ParallelStrategy) -> list:
        """Butterfly over `width` lanes with shuffles: every lane ends with the result."""
        steps = width.bit_length() - 1
        a = f"{acc}[0]"
        shfl = f"T.tvm_warp_shuffle_xor(T.tvm_warp_activemask(), {a}, T.shift_left(1, k), {s.lanes}, {s.lanes})"
        return [[f"for k in T.unroll({steps}):", f"    {a} = {combine_text(op, a, shfl)}"]]

    def kernel_body(self, s: ParallelStrategy, allocs: list[str], segments: list) -> list[str]:
        lines = [f'for g in T.thread_binding({s.groups}, thread="blockIdx.x"):',
                 f'    for u in T.thread_binding({s.units}, thread="threadIdx.y"):',
                 f'        for l in T.thread_binding({s.lanes}, thread="threadIdx.x"):']
        pad = " " * 12
        lines += [pad + a for a in allocs]
        for seg in segments:
            if seg is SYNC:
                lines.append(pad + 'T.tvm_storage_sync("shared")')
            else:
                lines += [pad + line for line in seg]
        return lines
