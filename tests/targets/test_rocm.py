"""ROCm (gfx90a) builds of every suite case at full size, without a GPU and without ROCm: the
project-local toolchain (scripts/setup_rocm_toolchain.sh) links TVM's AMDGPU objects into
HSACO code objects.  intelligen takes every region as on CUDA, with wave64 plans; the kernels'
numerics are checked on the CPU lowering of the same plans (same gfx90a hardware model)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

import numpy as np
import pytest
import tvm
from tvm import relax

import intelligen_tvm
from intelligen_tvm import suite, targets
from intelligen_tvm.dataflow_graph.choices import enumerate_candidates
from intelligen_tvm.dataflow_graph.fuse import build_kernel
from intelligen_tvm.dataflow_graph.plan import plan_kernel
from intelligen_tvm.dataflow_graph.rewrites import monotonic_rewrites
from intelligen_tvm.gir.program import Program
from intelligen_tvm.gir.strategy import ParallelStrategy, PlanFamily
from intelligen_tvm.gir.verify import verify
from intelligen_tvm.region import lower_region, plan_region
from intelligen_tvm.targets import rocm_toolchain
from intelligen_tvm.targets.presets import AMD_GFX90A
from intelligen_tvm.testing import amdgpu_kernel_metadata, device_modules, rocm_code_object
from tests.helpers import chain_stages, run_prim_func, suite_model, suite_region

ROCM = tvm.target.Target({"kind": "rocm", "mcpu": "gfx90a"})
HW = AMD_GFX90A.model
NAMES = [c.name for c in suite.SUITE]
EM_AMDGPU, ET_DYN = 224, 3
REQUIRE = "INTELLIGEN_REQUIRE_ROCM_TOOLCHAIN"


@functools.cache
def _toolchain() -> str | None:
    """Activate the ROCm build toolchain, creating it first if needed; None when usable,
    else why not."""
    try:
        rocm_toolchain.activate()
        return None
    except rocm_toolchain.ToolchainMissing as missing:
        if shutil.which("apt-get") is None:
            return f"{missing}; apt-get not available to create it"
        proc = subprocess.run(["bash", str(rocm_toolchain.SETUP_SCRIPT)], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            return f"{missing}; {rocm_toolchain.SETUP_SCRIPT.name} failed: {proc.stderr.strip()[-500:]}"
    rocm_toolchain.activate()
    return None


@pytest.fixture(scope="module")
def toolchain() -> None:
    reason = _toolchain()
    if reason is None:
        return
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@functools.cache
def rocm_build(name: str) -> tuple[dict, str, bytes]:
    """(explain report, assembly, HSACO code object) of the full-size case, built once."""
    mod = intelligen_tvm.from_onnx(suite_model(name, small=False))
    report = intelligen_tvm.explain(mod, ROCM)
    executable = tvm.compile(mod, target=ROCM, relax_pipeline="intelligen")
    (hip,) = device_modules(executable, "hip")
    return report, hip.inspect_source("asm"), rocm_code_object(executable)


@pytest.mark.usefixtures("toolchain")
@pytest.mark.parametrize("name", NAMES)
def test_every_case_builds_hsaco_with_intelligen_regions(name: str) -> None:
    report, asm, code = rocm_build(name)
    assert report["target"] == "rocm"
    (region,) = report["regions"]
    assert region["handled_by"] == "intelligen", region
    assert region["dram_bytes_planned"] == region["dram_bytes_ideal"] <= region["dram_bytes_naive"]
    s = region["strategy"]
    assert s["lanes_per_unit"] == 64
    threads = s["units_per_group"] * 64
    assert threads <= 256
    # a linked AMDGPU code object (ld.lld's shared ELF, not the relocatable object)
    assert code[:4] == b"\x7fELF"
    assert int.from_bytes(code[16:18], "little") == ET_DYN
    assert int.from_bytes(code[18:20], "little") == EM_AMDGPU
    assert '.amdgcn_target "amdgcn-amd-amdhsa-hcc-gfx90a"' in asm
    # one kernel, ours, compiled for wave64 and for at least the threads we launch
    meta = amdgpu_kernel_metadata(asm)
    assert list(meta) == [f"{region['name']}_kernel"], list(meta)
    (m,) = meta.values()
    assert m["wavefront_size"] == 64
    assert m["max_flat_workgroup_size"] >= threads
    # rows and vectors live in VGPRs: no scratch, no spills
    assert m["private_segment_fixed_size"] == 0 and m["vgpr_spill_count"] == 0, m


@pytest.mark.usefixtures("toolchain")
@pytest.mark.parametrize("name", NAMES)
def test_reductions_are_wave64_butterflies(name: str) -> None:
    """Row reductions shuffle across 64 lanes with ds_bpermute: log2(64) = 6 steps each;
    partial results of several waves (and transpose tiles) go through LDS."""
    report, asm, _ = rocm_build(name)
    s = report["regions"][0]["strategy"]
    (m,) = amdgpu_kernel_metadata(asm).values()
    shuffles = asm.count("ds_bpermute_b32")
    if s["kind"] == "row" and s["threads_per_row"] >= 64:
        assert shuffles > 0 and shuffles % 6 == 0, shuffles
    else:
        assert shuffles == 0
    group_scope = (s["kind"] == "row" and s["threads_per_row"] > 64) or s["kind"] in ("column", "tile")
    assert (m["group_segment_fixed_size"] > 0) == group_scope, m


@pytest.mark.usefixtures("toolchain")
def test_softmax_shuffles_twice_six_steps() -> None:
    """softmax over 1024 columns: a wave per row, max and sum are two 6-step all-reduces."""
    _, asm, _ = rocm_build("softmax")
    assert asm.count("ds_bpermute_b32") == 12


@pytest.mark.usefixtures("toolchain")
def test_transpose_tile_is_a_wave_wide() -> None:
    """A transpose goes through a 64 x 65 LDS tile (one wave along an edge, padded rows)."""
    sp, _ = chain_stages(lambda x: relax.op.exp(relax.op.permute_dims(x, [1, 0])), [(130, 70)])
    lowered = lower_region(sp, "tile", ROCM)
    assert lowered.kernel.strategy.kind == "tile" and lowered.kernel.strategy.lanes == 64
    lib = tvm.compile(tvm.IRModule({"tile": lowered.prim_func}), target=ROCM)
    (hip,) = device_modules(lib, "hip")
    (m,) = amdgpu_kernel_metadata(hip.inspect_source("asm")).values()
    assert m["group_segment_fixed_size"] >= (64 * 65 - 1) * 4, m
    assert m["max_flat_workgroup_size"] >= 256


def test_rocm_tir_uses_64_lane_shuffles() -> None:
    """The TIR we emit for rocm reads the xor partner with a plain shuffle over 64 lanes
    (TVM has no rocm lowering for tvm_warp_shuffle_xor)."""
    sp = suite_region("softmax", small=False, target_kind=ROCM)[0]
    source = lower_region(sp, "r", ROCM).source
    assert "tvm_warp_shuffle_xor" not in source
    assert source.count("T.tvm_warp_shuffle(T.tvm_warp_activemask(), ") == 2
    assert "T.bitwise_xor(l, T.shift_left(1, k)), 64, 64)" in source
    assert source.count("for k in T.unroll(6):") == 2
    assert 'T.thread_binding(64, thread="threadIdx.x")' in source


def test_narrow_values_widen_and_wide_values_are_refused() -> None:
    from intelligen_tvm.gir.errors import Unsupported
    from intelligen_tvm.targets.rocm import RocmDialect

    s = ParallelStrategy(PlanFamily.ROW, 1, 1, 64, 64, 1, 1, 1, 1, 1, 64)
    half = RocmDialect().shuffle_xor("a[0]", "m", s, "float16")
    assert half.startswith('T.Cast("float16", T.tvm_warp_shuffle(') and 'T.Cast("float32", a[0])' in half
    with pytest.raises(Unsupported):
        RocmDialect().shuffle_xor("a[0]", "m", s, "float64")


@pytest.mark.parametrize("name", NAMES)
def test_cpu_lowering_of_the_gfx90a_plan_matches_reference(name: str) -> None:
    """The rocm kernel's plan, rendered for llvm (wave64 lanes become loops), against onnx."""
    sp, feed, expected = suite_region(name, small=True, target_kind=ROCM)
    on_cpu = lower_region(sp, "r", "llvm", hw=HW)
    assert on_cpu.kernel.strategy == plan_region(sp, "r", ROCM).kernel.strategy
    assert on_cpu.kernel.strategy.lanes == 64
    (actual,) = run_prim_func(on_cpu.prim_func, [feed[n] for n in sp.inputs])
    (out,) = sp.outputs
    np.testing.assert_allclose(actual, expected[out], rtol=1e-4, atol=1e-5)


@functools.cache
def _gfx90a_candidates(name: str, small: bool):
    sp, feed, expected = suite_region(name, small=small, target_kind=ROCM)
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    program = Program("r", sp.buffers, sp.inputs, sp.outputs, [])
    return kernel, program, feed, expected, enumerate_candidates(kernel, program, HW)


@pytest.mark.parametrize("name", NAMES)
def test_gfx90a_candidates_verify_and_use_whole_waves(name: str) -> None:
    kernel, program, _, _, found = _gfx90a_candidates(name, small=False)
    assert found
    for cand in found:
        s = cand.strategy
        assert s.lanes == 64 and (s.units * s.lanes) % 64 == 0 and s.units * s.lanes <= 256, s
        verify(cand.program, HW)   # a split row: its phase kernels
    assert plan_kernel(kernel, program.buffers, HW).strategy in {c.strategy for c in found}


@pytest.mark.parametrize("name", ["softmax", "layer_norm", "rms_norm", "mean_last", "sum_axis0",
                                  "long_softmax", "attention_transpose"])
def test_sampled_gfx90a_candidates_match_reference(name: str) -> None:
    """Sub-wave rows, a wave per row and several waves per row (LDS between waves), on the CPU."""
    _, program, feed, expected, found = _gfx90a_candidates(name, small=True)
    (out,) = program.outputs
    for k, cand in enumerate(found[:: max(1, len(found) // 8)]):
        planned = cand.program.renamed(f"c{k}")
        func = targets.source_prim_func(targets.render_source(planned, "llvm", f"c{k}"))
        (actual,) = run_prim_func(func, [feed[n] for n in program.inputs])
        np.testing.assert_allclose(actual, expected[out], rtol=1e-4, atol=1e-5, err_msg=str(cand.strategy))
