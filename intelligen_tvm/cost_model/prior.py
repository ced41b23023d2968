"""Analytical prior: a time estimate for ranking candidates when no trained model exists.

A memory-bound kernel takes its DRAM bytes over the bandwidth it can draw.  The bandwidth
it draws falls with low occupancy (too few bytes in flight), partial last waves, strided
loads, scalar (unvectorized) access and serial reduction tails; every launch costs a few us
(a row split across groups launches a kernel to combine the partials, maybe one more to
write row outputs).  Where
a step's DRAM round trip is not hidden by occupancy (scratchpad machines), every wave of steps
exposes it; double-buffered data overlaps a step's transfer with the previous step's compute.
The constants are rough by design: the prior only has to order candidates sensibly.
"""

from __future__ import annotations

import math

from ..gir.hardware import HardwareModel

LAUNCH_US = 3.0


def predicted_time_us(f: dict[str, float], hw: HardwareModel) -> float:
    efficiency = min(1.0, 0.25 + f["occupancy"])                     # latency hiding
    waves = f["waves"]
    efficiency *= waves / math.ceil(waves) if waves >= 1 else waves  # idle processors
    efficiency *= 1.0 / (1.0 + 3.0 * f["strided_loads"] / max(1.0, f["n_loads"]))
    efficiency *= {1.0: 0.6, 2.0: 0.85}.get(f["vector"], 1.0)
    transfer_us = f["dram_bytes"] / (hw.dram_gbps * 1e3 * max(efficiency, 1e-3))
    sync_us = 0.02 * f["n_syncs"] * f["serial_steps"] + 0.01 * f["n_shuffles"]
    compute_us = 1e-6 * f["n_transcendental"] * f["outer_size"] * max(1.0, f["row_size"]) / hw.processors
    exposed_us = hw.step_latency_us * math.ceil(waves)
    busy_us = max(transfer_us, compute_us) if f["buffers"] > 1 else transfer_us + compute_us
    return LAUNCH_US * f["kernels"] + exposed_us + busy_us + sync_us
