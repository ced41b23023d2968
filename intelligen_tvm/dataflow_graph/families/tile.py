"""Tile: a transpose staged through an SRAM tile as wide as a unit (the space also holds
the direct strided copy, i.e. the flat plans)."""

from __future__ import annotations

from collections.abc import Mapping

from ...gir.hardware import HardwareModel
from ...gir.program import Buffer, Kernel, numel
from ...gir.strategy import ParallelStrategy, PlanFamily
from ..transpose_tile import transposed_axis
from .base import default_units
from .flat import FLAT

TILE_UNITS = (4, 8, 16)


def tile_strategy(kernel: Kernel, hw: HardwareModel, units: int) -> ParallelStrategy:
    """One group per tile x tile square of (a, innermost), the tile as wide as a unit; lanes
    along one edge, units stride over the other, each lane handles tile / units elements."""
    a, b = transposed_axis(kernel), kernel.outer[-1].name
    axes = kernel.axes
    tile = hw.lanes_per_unit
    tiles = -(-axes[a] // tile) * -(-axes[b] // tile)
    rest = numel(ax.extent for ax in kernel.outer if ax.name not in (a, b))
    return ParallelStrategy(PlanFamily.TILE, rest * tiles, units, tile, 1, tile, 1,
                            tile // units, 1, numel(axes.values()), 1, tile_axes=(a, b))


class Tile:
    kind = PlanFamily.TILE

    def applies(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> bool:
        """A transpose tile pays off once both edges fill half of it."""
        if kernel.row:
            return False
        a = transposed_axis(kernel)
        half = hw.lanes_per_unit // 2
        return a is not None and kernel.axes[a] >= half and kernel.outer[-1].extent >= half

    def default(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> ParallelStrategy:
        return tile_strategy(kernel, hw, units=default_units(hw))

    def space(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> list[ParallelStrategy]:
        return [tile_strategy(kernel, hw, u) for u in TILE_UNITS] + FLAT.space(kernel, buffers, hw)


TILE = Tile()
