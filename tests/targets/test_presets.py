"""Hardware presets as data: picked by target kind and arch, and the plans follow them."""

from __future__ import annotations

import pytest
import tvm

from intelligen_tvm import targets
from intelligen_tvm.dataflow_graph.fuse import build_kernel
from intelligen_tvm.dataflow_graph.plan import plan_kernel
from intelligen_tvm.dataflow_graph.rewrites import monotonic_rewrites
from intelligen_tvm.targets.presets import AMD_GFX90A, AMD_GFX942, CAMBRICON_MLU590, NVIDIA_SM90, preset_for
from tests.helpers import suite_region


@pytest.mark.parametrize("target, preset", [
    ({"kind": "rocm", "mcpu": "gfx90a"}, AMD_GFX90A),
    ({"kind": "rocm", "mcpu": "gfx942"}, AMD_GFX942),
    ({"kind": "rocm", "mcpu": "gfx1100"}, AMD_GFX90A),     # no preset of its own: the family default
    ({"kind": "cuda", "arch": "sm_90"}, NVIDIA_SM90),
    ({"kind": "llvm"}, NVIDIA_SM90),
    ("bang", CAMBRICON_MLU590),                              # an external codegen's kind
])
def test_preset_is_picked_by_kind_and_arch(target, preset) -> None:
    assert targets.hardware_model(target) is preset.model
    if isinstance(target, dict):
        assert targets.hardware_model(tvm.target.Target(target)) is preset.model
        arch = target.get("arch") or target.get("mcpu") or ""
        assert preset_for(target["kind"], arch) is preset


def test_cdna_presets_are_wave64_with_64k_lds() -> None:
    for preset in (AMD_GFX90A, AMD_GFX942):
        hw = preset.model
        assert hw.lanes_per_unit == 64 and hw.sram_bytes_per_group == 64 * 1024
        assert hw.default_threads_per_group == 256 and hw.max_threads_per_group == 256
    assert (AMD_GFX90A.model.processors, AMD_GFX942.model.processors) == (110, 304)
    assert AMD_GFX942.model.dram_gbps > AMD_GFX90A.model.dram_gbps


@pytest.mark.parametrize("name, kind", [("softmax", "row"), ("swiglu", "flat"), ("sum_axis0", "column")])
def test_default_plans_fill_the_default_threads_per_group(name: str, kind: str) -> None:
    """256 threads per group on both: 8 warps on CUDA, 4 wavefronts on ROCm (rows: 4 rows per
    group of one unit each)."""
    sp = suite_region(name, small=True)[0]
    for preset, units in ((NVIDIA_SM90, 8), (AMD_GFX90A, 4)):
        kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
        s = plan_kernel(kernel, sp.buffers, preset.model).strategy
        assert s.kind == kind and s.lanes == preset.model.lanes_per_unit
        if kind != "row":
            assert s.units == units, s
