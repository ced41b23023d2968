"""Hardware parameters as data, one preset per device family."""

from __future__ import annotations

from dataclasses import dataclass

from ..dataflow_graph.plan import HardwareModel


@dataclass(frozen=True)
class Scratchpad:
    """A core with a software-managed on-chip memory instead of caches and thread occupancy."""

    local_bytes: int          # usable private scratchpad per core (NRAM)
    align_bytes: int          # vector instructions work on whole multiples of this many bytes
    cores_per_cluster: int
    clusters: int
    cluster_bytes: int        # on-chip memory shared by the cores of a cluster (cluster SRAM)


@dataclass(frozen=True)
class HardwarePreset:
    name: str
    model: HardwareModel
    scratchpad: Scratchpad | None = None


# H100 SXM datasheet values: 132 SMs, 2048 threads per SM, 3.35 TB/s HBM3.
NVIDIA_SM90 = HardwarePreset(
    "nvidia-sm90",
    HardwareModel(lanes_per_unit=32, max_threads_per_group=1024, sram_bytes_per_group=48 * 1024,
                  reg_elems_per_lane=64, vector_bytes=16, processors=132,
                  max_threads_per_processor=2048, dram_gbps=3350.0),
)

# Cambricon MLU590.  From the issue: ~256 KB of NRAM usable per core, 4 cores per cluster,
# 128-byte vector granularity.  Cluster count, cluster SRAM, bandwidth and DMA latency are our
# assumptions (no datasheet was at hand): they only shape the analytical prior's ranking.
# A core is a processor running one task at a time; its "lanes" are vector instructions.
_MLU590_MEMORY = Scratchpad(local_bytes=256 * 1024, align_bytes=128, cores_per_cluster=4, clusters=12,
                            cluster_bytes=4 * 1024 * 1024)
CAMBRICON_MLU590 = HardwarePreset(
    "cambricon-mlu590",
    HardwareModel(lanes_per_unit=1, max_threads_per_group=1, sram_bytes_per_group=_MLU590_MEMORY.local_bytes,
                  reg_elems_per_lane=_MLU590_MEMORY.local_bytes // 4, vector_bytes=_MLU590_MEMORY.align_bytes,
                  processors=_MLU590_MEMORY.clusters * _MLU590_MEMORY.cores_per_cluster,
                  max_threads_per_processor=1, dram_gbps=2000.0, step_latency_us=2.0),
    _MLU590_MEMORY,
)

PRESETS = {"cuda": NVIDIA_SM90, "llvm": NVIDIA_SM90, "bang": CAMBRICON_MLU590}
