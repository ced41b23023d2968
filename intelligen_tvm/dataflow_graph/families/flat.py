"""Flat: no row axes (elementwise/injective); consecutive vectors of the flattened outer
space per lane."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product

from ...gir.hardware import HardwareModel
from ...gir.program import Buffer, Kernel, dtype_bytes, numel
from ...gir.strategy import ParallelStrategy, PlanFamily
from .base import VECTORS, default_units, vector_width

FLAT_UNITS = (2, 4, 8)


def flat_strategy(kernel: Kernel, hw: HardwareModel, units: int, vector: int) -> ParallelStrategy:
    outer = numel(a.extent for a in kernel.outer)
    threads = units * hw.lanes_per_unit
    groups = -(-outer // (threads * vector)) or 1   # not max(): a symbolic count must stay symbolic
    return ParallelStrategy(PlanFamily.FLAT, groups, units, hw.lanes_per_unit, 1, threads, vector, 1, 1, outer, 1)


class Flat:
    kind = PlanFamily.FLAT

    def applies(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> bool:
        return not kernel.row

    def default(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> ParallelStrategy:
        """Vectors as wide as the widest dtype allows."""
        width = max(dtype_bytes(b.dtype) for b in buffers.values())
        vec = vector_width(kernel.outer[-1].extent, width, hw) if kernel.outer else 1
        return flat_strategy(kernel, hw, units=default_units(hw), vector=vec)

    def space(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> list[ParallelStrategy]:
        inner = kernel.outer[-1].extent if kernel.outer else 1
        return [flat_strategy(kernel, hw, u, v) for u, v in product(FLAT_UNITS, VECTORS) if inner % v == 0]


FLAT = Flat()
