"""Hardware presets as data: picked by target kind and arch, and the plans follow them."""

from __future__ import annotations

import os

import pytest
import tvm

from intelligen_tvm import targets
from intelligen_tvm.dataflow_graph.fuse import build_kernel
from intelligen_tvm.dataflow_graph.plan import plan_kernel
from intelligen_tvm.dataflow_graph.rewrites import monotonic_rewrites
from intelligen_tvm.dataflow_graph.cpu_plan import CpuModel
from intelligen_tvm.targets.presets import (AMD_GFX90A, AMD_GFX942, CAMBRICON_MLU590, NVIDIA_SM90, host_caches,
                                            preset_for)
from tests.helpers import suite_region


@pytest.mark.parametrize("target, preset", [
    ({"kind": "rocm", "mcpu": "gfx90a"}, AMD_GFX90A),
    ({"kind": "rocm", "mcpu": "gfx942"}, AMD_GFX942),
    ({"kind": "rocm", "mcpu": "gfx1100"}, AMD_GFX90A),     # no preset of its own: the family default
    ({"kind": "cuda", "arch": "sm_90"}, NVIDIA_SM90),
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


@pytest.mark.parametrize("target, vector_bytes, isa", [
    ({"kind": "llvm", "mcpu": "skylake-avx512"}, 64, "avx512f"),
    ({"kind": "llvm", "mcpu": "haswell"}, 32, "avx2"),
    ({"kind": "llvm", "mcpu": "x86-64"}, 16, "sse2"),
    ({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "neoverse-n1"}, 16, "neon"),
])
def test_cpu_model_reads_the_vector_width_off_the_llvm_target(target, vector_bytes, isa) -> None:
    hw = targets.hardware_model(target | {"num-cores": 6})
    assert isinstance(hw, CpuModel)
    assert (hw.vector_bytes, hw.isa, hw.cores, hw.processors) == (vector_bytes, isa, 6, 6)
    assert hw.lanes_per_unit == 1 and hw.max_threads_per_group == 1


def test_plain_llvm_is_this_host() -> None:
    """No mcpu/mattr: the host's CPU, its core count and its caches (sysfs on Linux)."""
    hw = targets.hardware_model({"kind": "llvm"})
    caches = host_caches()
    assert isinstance(hw, CpuModel) and hw.cores == (os.cpu_count() or 1)
    assert (hw.l1_bytes, hw.l2_bytes, hw.l3_bytes) == (caches["l1_bytes"], caches["l2_bytes"], caches["l3_bytes"])
    assert 0 < hw.l1_bytes < hw.l2_bytes < hw.l3_bytes


def test_host_caches_read_sysfs(tmp_path) -> None:
    for i, (kind, level, size) in enumerate([("Data", 1, "48K"), ("Instruction", 1, "32K"), ("Unified", 2, "2048K"),
                                             ("Unified", 3, "260M")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "type").write_text(kind + "\n")
        (d / "level").write_text(f"{level}\n")
        (d / "size").write_text(size + "\n")
    assert host_caches(tmp_path) == {"l1_bytes": 48 * 1024, "l2_bytes": 2048 * 1024, "l3_bytes": 260 * 1024 * 1024}
