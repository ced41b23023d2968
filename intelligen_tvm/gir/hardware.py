"""The hardware model: what planning, verification and the prior know of a target.

Hardware enters the IR's consumers only as this value; the presets in targets/ fill it,
so no stage above targets/ ever names a backend.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HardwareModel:
    """What the planner needs to know of a target (filled from a preset in targets/)."""

    lanes_per_unit: int
    max_threads_per_group: int
    sram_bytes_per_group: int
    reg_elems_per_lane: int
    vector_bytes: int
    processors: int = 1                     # SMs / compute units running groups concurrently
    max_threads_per_processor: int = 2048
    dram_gbps: float = 100.0                # nominal DRAM bandwidth (datasheet), for the prior only
    default_threads_per_group: int = 256    # threads per group of the default plans
    regs_per_processor: int = 65536         # 32-bit lane registers per processor (occupancy)
    max_groups_per_processor: int = 32      # resident groups per processor (occupancy)
    step_latency_us: float = 0.0            # DRAM round trip a serial step exposes unless its loads are
                                            # double-buffered (scratchpad machines; 0 where occupancy hides it)
