"""Hardware parameters as data, one preset per device family."""

from __future__ import annotations

from dataclasses import dataclass

from ..dataflow_graph.plan import HardwareModel


@dataclass(frozen=True)
class HardwarePreset:
    name: str
    model: HardwareModel


# H100 SXM datasheet values: 132 SMs, 2048 threads per SM, 3.35 TB/s HBM3.
NVIDIA_SM90 = HardwarePreset(
    "nvidia-sm90",
    HardwareModel(lanes_per_unit=32, max_threads_per_group=1024, sram_bytes_per_group=48 * 1024,
                  reg_elems_per_lane=64, vector_bytes=16, processors=132,
                  max_threads_per_processor=2048, dram_gbps=3350.0),
)

PRESETS = {"cuda": NVIDIA_SM90, "llvm": NVIDIA_SM90}
