"""The parallel strategy of a kernel: how its region axes map to groups, units, lanes and
serial steps.  Part of the IR (a planned `Kernel` carries one); the planner in
dataflow_graph/ chooses it, the renderers in targets/ read it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PlanFamily(StrEnum):
    """The shape of a plan; its knobs are the strategy's other fields.  A `StrEnum` so that
    records and reports keep writing the plain name."""

    FLAT = "flat"            # no row axes: consecutive vectors of the flattened outer space per lane
    ROW = "row"              # contiguous rows: a unit or a group owns a row
    COLUMN = "column"        # strided rows: lanes own adjacent outer elements, units split the row
    TILE = "tile"            # a transpose staged through an SRAM tile
    SPLIT_ROW = "split_row"  # several groups share a row; a second launch finishes it


@dataclass(frozen=True)
class ParallelStrategy:
    kind: PlanFamily
    groups: int
    units: int                # units per group
    lanes: int                # lanes per unit
    threads_per_row: int      # T: threads sharing one row
    rows_per_group: int
    vector: int               # V elements per vector access
    chunks: int               # C vectors per lane per serial step
    serial: int               # S serial steps over the row
    outer_size: int           # rows (or flat elements)
    row_size: int             # N elements per row
    tile_axes: tuple[str, str] | None = None   # (load-contiguous, store-contiguous) for a tile
    unroll: bool = True       # unroll the loop over a lane's chunks (more ILP, more registers)
    single_pass: bool = False # streamed rows: statistics in one sweep (online softmax, shifted variance)
    buffers: int = 1          # on-chip copies of the streamed data: 2 = the next step's loads overlap this step
    splits: int = 1           # split_row: groups sharing one row, each streaming `serial` steps of it

    def __post_init__(self) -> None:
        if not isinstance(self.kind, PlanFamily):
            raise TypeError(f"a strategy's kind is a PlanFamily, not {self.kind!r}")

    @property
    def per_lane(self) -> int:
        return self.chunks * self.vector

    def __str__(self) -> str:
        return (f"{self.kind}(groups={self.groups}, units={self.units}, lanes={self.lanes}, "
                f"threads_per_row={self.threads_per_row}, rows_per_group={self.rows_per_group}, "
                f"vector={self.vector}, chunks={self.chunks}, serial={self.serial}"
                + ("" if self.unroll else ", unroll=False") + (", single_pass=True" if self.single_pass else "")
                + (f", buffers={self.buffers}" if self.buffers > 1 else "")
                + (f", splits={self.splits}" if self.splits > 1 else "") + ")")

    def describe(self) -> dict:
        return {"kind": self.kind.value, "groups": self.groups, "units_per_group": self.units,
                "lanes_per_unit": self.lanes, "threads_per_row": self.threads_per_row,
                "rows_per_group": self.rows_per_group, "vector": self.vector,
                "elems_per_lane": self.per_lane * self.serial, "unroll": self.unroll,
                "single_pass": self.single_pass} | ({"splits": self.splits} if self.splits > 1 else {})
