"""The sweeps of a streamed row: which instructions each pass over the row recomputes.

An analysis of a kernel's instructions (no hardware, no choice): the planner records its
result on every kernel whose row streams (`Kernel.sweeps`), and the renderers, the features
and the DRAM count read it from there.
"""

from __future__ import annotations

from .program import Identity, Instr, Kernel, Reduce, Store, StreamPass, Sweeps


def stream_passes(kernel: Kernel) -> Sweeps:
    """Split a kernel for a row that streams instead of staying on chip.

    A reduction of nesting level k (softmax's max is 1, its sum 2) can only start once the
    reductions below it have ended, so it needs its own sweep, which recomputes the row
    values it depends on from DRAM.  Returns the instructions before the first sweep and
    the sweeps; a final sweep writes the row outputs.
    """
    row_axes = {a.name for a in kernel.row}
    instrs = [i for i in kernel.instrs if not isinstance(i, Identity)]
    level: dict[str, int] = {}
    producer: dict[str, Instr] = {}

    def level_of(ins: Instr) -> int:
        if isinstance(ins, Reduce):   # an online sum's shift is accumulated beside it, not before
            return level[ins.src] + 1
        return max((level[r] for r in ins.reads), default=0)

    def on_row(ins: Instr) -> bool:
        if isinstance(ins, Store):
            return bool(ins.dst.axes() & row_axes or kernel.values[ins.src].axes & row_axes)
        return not isinstance(ins, Reduce) and any(kernel.values[w].axes & row_axes for w in ins.writes)

    for ins in instrs:
        for w in ins.writes:
            level[w], producer[w] = level_of(ins), ins

    def row_deps(roots: list[Instr]) -> set[int]:
        seen: set[int] = set()
        todo = [r for root in roots for r in root.reads]
        while todo:
            ins = producer.get(todo.pop())
            if ins is not None and on_row(ins) and id(ins) not in seen:
                seen.add(id(ins))
                todo.extend(ins.reads)
        return seen

    reduces = [i for i in instrs if isinstance(i, Reduce)]
    depth = max((level_of(r) for r in reduces), default=0)
    scalar = [i for i in instrs if not on_row(i) and not isinstance(i, Reduce)]
    before = tuple(i for i in scalar if level_of(i) == 0)
    passes = []
    for k in range(1, depth + 1):
        mine = [r for r in reduces if level_of(r) == k]
        deps = row_deps(mine)
        sweep = tuple(i for i in instrs if id(i) in deps or any(i is r for r in mine))
        passes.append(StreamPass(sweep, tuple(mine), tuple(i for i in scalar if level_of(i) == k)))
    stores = [i for i in instrs if isinstance(i, Store) and on_row(i)]
    if stores:
        deps = row_deps(stores) | {id(i) for i in stores}
        passes.append(StreamPass(tuple(i for i in instrs if id(i) in deps), (), ()))
    return Sweeps(before, tuple(passes))
