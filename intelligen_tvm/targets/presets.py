"""Hardware parameters as data, one preset per device family, picked by target kind and arch."""

from __future__ import annotations

from dataclasses import dataclass

import tvm

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

# kind -> {arch: preset}; the "" entry serves an arch without a preset of its own.
# llvm is the numerics lowering of the CUDA plan by default; region.lower_region renders it
# with any other preset's model when given one (`hw=`), e.g. to check the wave64 plans.
PRESETS: dict[str, dict[str, HardwarePreset]] = {
    "cuda": {"": NVIDIA_SM90},
    "llvm": {"": NVIDIA_SM90},
    "rocm": {"gfx90a": AMD_GFX90A, "gfx942": AMD_GFX942, "": AMD_GFX90A},
}
BY_NAME = {p.name: p for by_arch in PRESETS.values() for p in by_arch.values()}


def preset_for(target: tvm.target.Target) -> HardwarePreset:
    """The preset of a target: by kind, then by its arch (`arch` on cuda, `mcpu` on rocm)."""
    by_arch = PRESETS[target.kind.name]
    arch = str(target.attrs.get("arch") or target.attrs.get("mcpu") or "")
    return by_arch.get(arch, by_arch[""])
