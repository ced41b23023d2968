"""MLU choices of a region: tile rows per task and NRAM double buffering.

Candidates are ParallelStrategy values like every other target's (a group is a tile of rows,
run by one core; `rows_per_group` is the tile, `buffers` the NRAM buffering depth), verified
by the GIR verifier and by the NRAM size of the kernel the renderer actually emits, and
ranked by the same cost model (the analytical prior unless a trained model is given).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...cost_model.ranking import rank
from ...dataflow_graph.choices import Candidate, planned_candidate
from ...dataflow_graph.plan import with_strategy
from ...gir.errors import Unsupported, VerifyError
from ...gir.hardware import HardwareModel
from ...gir.program import Kernel, Program, numel
from ...gir.strategy import ParallelStrategy, PlanFamily
from ...gir.verify import verify
from ..presets import Scratchpad, preset_for
from .layout import TileLayout, choose_columns
from .render import render_bang

TARGET_KIND = "bang"
BUFFERS = (1, 2)


@dataclass(frozen=True)
class Emitted:
    source: str
    nram_bytes: int
    layout: TileLayout
    params: list[tuple[str, str, tuple[int, ...]]]   # kernel arguments: (buffer, dtype, shape), outputs last
    n_outputs: int
    tasks: int


def scratchpad() -> Scratchpad:
    return preset_for(TARGET_KIND).scratchpad


def hardware() -> HardwareModel:
    return preset_for(TARGET_KIND).model


def _layout(kernel: Kernel, buffers, tile_rows: int, max_cols: int, pad: Scratchpad) -> TileLayout:
    cols = choose_columns(kernel, buffers, max_cols)
    names = {a.name for a in cols}
    rows = tuple(a for a in kernel.outer if a.name not in names)
    return TileLayout(rows, cols, tile_rows, pad.align_bytes // 4)


def emit(program: Program, func_name: str) -> Emitted:
    """BANG C of a planned program (its kernel's strategy fixes the tile and buffering)."""
    kernel = program.kernels[0]
    s: ParallelStrategy = kernel.strategy
    pad = scratchpad()
    layout = _layout(kernel, program.buffers, s.rows_per_group, s.row_size, pad)
    tasks = min(layout.n_tiles, pad.clusters * pad.cores_per_cluster)
    source, nram = render_bang(program, layout, func_name, s.buffers, tasks)
    params = [(b, program.buffers[b].dtype, program.buffers[b].shape) for b in [*program.inputs, *program.outputs]]
    return Emitted(source, nram, layout, params, len(program.outputs), tasks)


def _strategy(kernel: Kernel, layout: TileLayout, buffers: int) -> ParallelStrategy:
    return ParallelStrategy(PlanFamily.ROW if kernel.row else PlanFamily.FLAT, layout.n_tiles, 1, 1, 1, layout.tile_rows,
                            layout.align_elems, layout.npad // layout.align_elems, 1, layout.n_rows, layout.n,
                            buffers=buffers)


def trial_mlu(kernel: Kernel, shell: Program, hw: HardwareModel) -> Candidate:
    """Region selection's check: the region has an NRAM row layout (whether every op has a
    BANG lowering is decided on the final region, which is then taken or left whole)."""
    layout = _layout(kernel, shell.buffers, 1, scratchpad().local_bytes // 4 // 2, scratchpad())
    return planned_candidate(shell, with_strategy(kernel, _strategy(kernel, layout, 1), hw), hw)


def _tile_sizes(rows: int) -> list[int]:
    sizes, t = [], 1
    while t < rows:
        sizes.append(t)
        t *= 2
    return sizes + [rows]


def candidates(kernel: Kernel, shell: Program, hw: HardwareModel) -> list[Candidate]:
    """Every (tile rows, buffers) whose emitted kernel fits NRAM; the NRAM row is the
    longest contiguous one for which some tile fits.  Raises Unsupported with the reason
    when the renderer refuses the kernel or nothing fits."""
    pad = scratchpad()
    cap = pad.local_bytes // 4 // 2
    while cap >= pad.align_bytes // 4:
        found = []
        base = _layout(kernel, shell.buffers, 1, cap, pad)
        for tile_rows in _tile_sizes(base.n_rows):
            layout = TileLayout(base.rows, base.cols, tile_rows, base.align_elems)
            for buffers in BUFFERS:
                candidate = planned_candidate(shell, with_strategy(kernel, _strategy(kernel, layout, buffers), hw), hw)
                try:
                    verify(candidate.program, hw)
                except VerifyError:
                    continue
                if emit(candidate.program, "probe").nram_bytes <= pad.local_bytes:
                    found.append(candidate)
        if found or kernel.row:
            break
        cap //= 2
    if not found:
        n = numel(a.extent for a in base.cols)
        raise Unsupported(f"no tile of rows of {n} elements fits {pad.local_bytes} bytes of NRAM")
    return found


def choose_mlu(kernel: Kernel, shell: Program, hw: HardwareModel, model=None) -> Candidate:
    """The candidate the cost model ranks first (a `Chooser` for region selection)."""
    return rank(candidates(kernel, shell, hw), hw, model)[0][0]
