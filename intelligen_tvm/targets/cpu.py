"""CPU lowering of the same graph, for numerics without an accelerator.

Groups become a parallel loop; units and lanes become loops; a lane's registers become
arrays indexed by (unit, lane); the code between two barriers is one phase, run for
every (unit, lane) before the next phase starts — exactly the guarantee a barrier gives.
"""

from __future__ import annotations

from ..gir.strategy import ParallelStrategy
from .render import SYNC, combine_text


class CpuDialect:
    name = "cpu"

    def reg(self, name: str, index: str) -> str:
        return f"{name}[u, l, {index}]"

    def reg_alloc(self, name: str, size: int, dtype: str, s: ParallelStrategy) -> str:
        return f'{name} = T.alloc_buffer(({s.units}, {s.lanes}, {size}), "{dtype}")'

    def sram_alloc(self, name: str, size: int, dtype: str) -> str:
        return f'{name} = T.alloc_buffer(({size},), "{dtype}")'

    def unit_allreduce(self, acc: str, op: str, width: int, s: ParallelStrategy, dtype: str) -> list:
        """The first lane of each `width`-lane segment folds the others, then all copy it."""
        mine, other = f"{acc}[u, l, 0]", f"{acc}[u, l + j, 0]"
        leader = "0" if width == s.lanes else f"l // {width} * {width}"
        return [
            SYNC,
            [f"if l == {leader}:", f"    for j in T.serial(1, {width}):",
             f"        {mine} = {combine_text(op, mine, other)}"],
            SYNC,
            [f"{mine} = {acc}[u, {leader}, 0]"],
        ]

    def kernel_body(self, s: ParallelStrategy, allocs: list[str], segments: list) -> list[str]:
        lines = [f"for g in T.parallel({s.groups}):"]
        lines += ["    " + a for a in allocs]
        for seg in segments:
            if seg is SYNC or not seg:
                continue
            lines.append(f"    for u, l in T.grid({s.units}, {s.lanes}):")
            lines += ["        " + line for line in seg]
        return lines
