"""Hardware parameters as data, one preset per device family, picked by target kind and arch."""

from __future__ import annotations

from dataclasses import dataclass

from ..gir.hardware import HardwareModel


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


def _cdna(processors: int, dram_gbps: float) -> HardwareModel:
    """AMD CDNA (gfx9) compute units: wavefronts of 64 lanes, 64 KiB LDS per workgroup,
    4 SIMDs of 512 VGPRs x 64 lanes per CU, at most 8 waves per SIMD (2048 threads per CU).

    Groups are capped at 256 threads although the hardware allows 1024: TVM's AMDGPU codegen
    compiles every kernel with amdgpu-flat-work-group-size 1..256 unless it can ask a present
    device (it cannot on a build machine), so a larger group would not launch.  A lane keeps
    up to 128 row elements in VGPRs (half of the 256 architectural VGPRs)."""
    return HardwareModel(lanes_per_unit=64, max_threads_per_group=256, sram_bytes_per_group=64 * 1024,
                         reg_elems_per_lane=128, vector_bytes=16, processors=processors,
                         max_threads_per_processor=2048, dram_gbps=dram_gbps,
                         default_threads_per_group=256, regs_per_processor=4 * 512 * 64,
                         max_groups_per_processor=16)


# AMD Instinct MI250X datasheet, per GCD (each GCD is one device): 110 CUs, 1.6 TB/s HBM2e
# (MI210, also gfx90a: 104 CUs, 1.6 TB/s).
AMD_GFX90A = HardwarePreset("amd-gfx90a", _cdna(processors=110, dram_gbps=1600.0))
# AMD Instinct MI300X datasheet: 304 CUs, 5.3 TB/s HBM3.
AMD_GFX942 = HardwarePreset("amd-gfx942", _cdna(processors=304, dram_gbps=5300.0))

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

# kind -> {arch: preset}; the "" entry serves an arch without a preset of its own.
# llvm is the numerics lowering of the CUDA plan by default; region.lower_region renders it
# with any other preset's model when given one (`hw=`), e.g. to check the wave64 plans.
PRESETS: dict[str, dict[str, HardwarePreset]] = {
    "cuda": {"": NVIDIA_SM90},
    "llvm": {"": NVIDIA_SM90},
    "rocm": {"gfx90a": AMD_GFX90A, "gfx942": AMD_GFX942, "": AMD_GFX90A},
    "bang": {"": CAMBRICON_MLU590},
}
BY_NAME = {p.name: p for by_arch in PRESETS.values() for p in by_arch.values()}


def preset_for(kind: str, arch: str = "") -> HardwarePreset:
    """The preset of a target kind and arch (`arch` on cuda, `mcpu` on rocm)."""
    by_arch = PRESETS[kind]
    return by_arch.get(arch, by_arch[""])
