"""Split row: few long rows with one reduction level; several groups share a row, their
partial results meet in a DRAM workspace and a second launch finishes them
(dataflow_graph/split_row.py builds the phases).  A refinement of the row family: the row
family's default and space include it."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product

from ...gir.hardware import HardwareModel
from ...gir.program import Buffer, Kernel, numel
from ...gir.strategy import ParallelStrategy, PlanFamily
from ...gir.symbolic import is_symbolic
from ...gir.sweeps import stream_passes
from .base import DEFAULT_STREAM_CHUNKS, STREAM_CHUNKS, STREAM_THREADS, VECTORS

SPLITS = (4, 16, 64, 256)   # groups sharing a row (split_row); each streams at least one whole step
SPLIT_MIN_ROW_STEPS = 8   # streamed steps a row spans at least before the default plan splits it
SPLIT_OPS = frozenset({"sum", "prod", "max", "min"})   # partial results combine with the same op


def splittable(kernel: Kernel) -> bool:
    """Whether a row can be split across groups with one combining launch: all reductions
    on one level (their partials combine independently), each an associative op.  The row
    outputs (rms_norm's x * rsqrt(mean)) then need only the finished per-row values and one
    more sweep.  Deeper regions (softmax's max then sum, layer norm's mean then variance)
    are refused: every further level would need its own partial and finishing launches and
    one more DRAM sweep of the row.  So are online sums, whose partials would need rescaling
    by their groups' maxima, and symbolic extents (the workspaces and the split would be
    sized at run time)."""
    if is_symbolic(numel(a.extent for a in (*kernel.outer, *kernel.row))):
        return False
    levels = [p for p in stream_passes(kernel).passes if p.reduces]
    return len(levels) == 1 and all(r.op in SPLIT_OPS and r.shift is None for r in levels[0].reduces)


def split_row_strategy(kernel: Kernel, hw: HardwareModel, splits: int, threads: int, vector: int,
                       chunks: int) -> ParallelStrategy:
    """About `splits` groups per row (`threads` lanes each), each streaming a contiguous
    slice of whole steps (threads x vector x chunks elements); the last slice may end early.
    The slice is rounded up to whole steps, which can leave fewer splits than asked."""
    rows = numel(a.extent for a in kernel.outer)
    n = numel(a.extent for a in kernel.row)
    step = threads * vector * chunks
    serial = -(-n // (splits * step))
    splits = -(-n // (serial * step))
    return ParallelStrategy(PlanFamily.SPLIT_ROW, rows * splits, max(1, threads // hw.lanes_per_unit),
                            hw.lanes_per_unit, threads, 1, vector, chunks, serial, rows, n, splits=splits)


class SplitRow:
    kind = PlanFamily.SPLIT_ROW

    def applies(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> bool:
        return bool(kernel.row) and splittable(kernel)

    def default_for(self, kernel: Kernel, hw: HardwareModel, vector: int) -> ParallelStrategy | None:
        """Fewer rows than processors leave most of the machine idle with a group per row:
        split each row into as many slices (one streamed step at least) as fill the machine
        with resident groups.  A row shorter than SPLIT_MIN_ROW_STEPS steps stays whole: its
        sweep is too short to pay for a second launch."""
        rows = numel(a.extent for a in kernel.outer)
        n = numel(a.extent for a in kernel.row)
        threads = hw.default_threads_per_group
        step = threads * vector * DEFAULT_STREAM_CHUNKS
        if rows >= hw.processors or n < SPLIT_MIN_ROW_STEPS * step or not splittable(kernel):
            return None
        resident = hw.processors * (hw.max_threads_per_processor // threads)
        return split_row_strategy(kernel, hw, min(-(-resident // rows), n // step), threads, vector,
                                  DEFAULT_STREAM_CHUNKS)

    def space(self, kernel: Kernel, buffers: Mapping[str, Buffer], hw: HardwareModel) -> list[ParallelStrategy]:
        """Splits of the row whose slices are whole steps of the streamed-row knobs (rounding
        a slice up to whole steps can merge two split counts into one plan: kept once)."""
        if not splittable(kernel):
            return []
        n = numel(a.extent for a in kernel.row)
        found = {split_row_strategy(kernel, hw, g, t, vec, chunks)
                 for g, t, vec, chunks in product(SPLITS, STREAM_THREADS, VECTORS, STREAM_CHUNKS)
                 if t <= hw.max_threads_per_group and kernel.row[-1].extent % vec == 0 and g * t * vec * chunks <= n}
        return sorted((s for s in found if s.splits > 1), key=lambda s: (s.splits, s.threads_per_row, s.vector, s.chunks))


SPLIT_ROW = SplitRow()
