"""Plan families, one file each behind one interface (`base.Family`), tried in order in
the style of DLight's ApplyDefaultSchedule: the first family that applies to a kernel plans
it (its default) and spans its choice space.  Split rows refine the row family
(`split_row.py`)."""

from __future__ import annotations

from collections.abc import Mapping

from ...gir.hardware import HardwareModel
from ...gir.program import Buffer, Kernel
from .base import Family
from .column import COLUMN
from .flat import FLAT
from .row import ROW
from .tile import TILE

FAMILIES: tuple[Family, ...] = (TILE, FLAT, COLUMN, ROW)


def family_of(kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> Family:
    return next(f for f in FAMILIES if f.applies(kernel, buffers, hw))
