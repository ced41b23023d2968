"""Transpose through a padded shared-memory tile.

When the innermost axis of a load (`a`, contiguous in the input) differs from the
innermost axis of the region (`b`, contiguous in the output), one of the two accesses is
strided whichever way lanes are mapped.  Staging through SRAM makes both coalesced:
lanes run along `a` while loading a tile x tile square (as wide as a unit: 32 on CUDA, 64 on
ROCm), a barrier, then lanes run along `b` while reading it back transposed.  The tile's rows
are padded by one element so that the transposed read hits different banks.
"""

from __future__ import annotations

from dataclasses import replace

from ..gir import expr as E
from ..gir.program import Buffer, Kernel, Level, Load, Slice, Store, Sync

PAD = 1


def transposed_axis(kernel: Kernel) -> str | None:
    """The axis `a` that a load walks contiguously while the region's innermost axis is
    another one, or None when every load is already contiguous along the innermost axis."""
    if not kernel.outer or kernel.row:
        return None
    inner = kernel.outer[-1].name
    for ins in kernel.instrs:
        if not isinstance(ins, Load) or not ins.src.index:
            continue
        last = ins.src.index[-1]
        plain = [i.name for i in ins.src.index if isinstance(i, E.Var)]
        if isinstance(last, E.Var) and last.name != inner and inner in plain:
            return last.name
    return None


def stage_through_sram(kernel: Kernel, a: str, tile: int) -> Kernel:
    """Rewrite every load whose last index is `a` into DRAM->REG, REG->SRAM, sync,
    SRAM->REG (the GIR of the staged copy); the phase before the sync uses the
    load-side lane mapping."""
    b = kernel.outer[-1].name
    mod = lambda axis: E.Call("int32", "floormod", (E.Var("int32", axis), E.Const("int32", tile)))  # noqa: E731
    before, after, local = [], [], dict(kernel.local_buffers)
    values = dict(kernel.values)
    for ins in kernel.instrs:
        last = ins.src.index[-1] if isinstance(ins, Load) and ins.src.index else None
        if isinstance(last, E.Var) and last.name == a:
            name = f"tile{len(local)}"
            local[name] = Buffer(name, (tile, tile + PAD), values[ins.dst].dtype, Level.SRAM)
            staged = f"{ins.dst}_dram"
            values[staged] = replace(values[ins.dst], name=staged)
            tile_slice = Slice(name, (mod(b), mod(a)))
            before += [replace(ins, dst=staged), Store(tile_slice, staged, Level.SRAM)]
            after.append(Load(ins.dst, tile_slice, Level.SRAM))
        else:
            after.append(ins)
    return replace(kernel, instrs=before + [Sync(Level.SRAM)] + after, values=values, local_buffers=local)
