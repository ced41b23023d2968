"""The interface every plan family implements, and what the families share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from ...gir.hardware import HardwareModel
from ...gir.program import Buffer, Kernel
from ...gir.strategy import ParallelStrategy, PlanFamily

VECTORS = (1, 2, 4)
STREAM_THREADS = (256, 1024)   # a streamed row: a block sweeps it, chunks vectors per lane per step
STREAM_CHUNKS = (1, 4)
DEFAULT_STREAM_CHUNKS = 4   # vectors per lane per serial step when a row streams (default plan)


class Family(Protocol):
    """One plan family: whether it applies to a (rewritten, unplanned) kernel, its default
    strategy, and its choice space (every strategy worth verifying)."""

    kind: PlanFamily

    def applies(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> bool: ...
    def default(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> ParallelStrategy: ...
    def space(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> list[ParallelStrategy]: ...


def default_units(hw: HardwareModel) -> int:
    return hw.default_threads_per_group // hw.lanes_per_unit


def pow2_at_least(x: int) -> int:
    p = 1
    while p < x:
        p *= 2
    return p


def vector_width(extent: int, dtype_bytes: int, hw: HardwareModel) -> int:
    for v in (hw.vector_bytes // dtype_bytes, 4, 2):
        if v > 1 and extent % v == 0:
            return v
    return 1


def with_single_pass_choice(found: list[ParallelStrategy]) -> list[ParallelStrategy]:
    """Each streamed strategy also with online statistics (kept where the region allows it)."""
    return found + [replace(s, single_pass=True) for s in found if s.streams]


def with_unroll_choice(found: list[ParallelStrategy]) -> list[ParallelStrategy]:
    """Each strategy with several chunks per lane also as a rolled loop."""
    return found + [replace(s, unroll=False) for s in found if s.chunks > 1]
