"""Rows split across groups (split_row): the CPU lowering of the phases computes what numpy
computes (tails where the row is not a multiple of splits x threads x vector, keepdims, several
row axes, integer sums, row outputs through the apply phase), and the one PrimFunc with its
DRAM workspace builds into several kernels for CUDA (source) and ROCm (HSACO)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
from tvm import relax

import intelligen_tvm
from intelligen_tvm.gir.program import Compute, numel
from intelligen_tvm.region import lower_region, plan_region
from intelligen_tvm.targets.presets import AMD_GFX90A
from intelligen_tvm.testing import amdgpu_kernel_metadata, device_modules, device_sources
from tests.helpers import chain_stages, check_nvcc_compiles, relax_module, run_prim_func
from tests.targets.test_rocm import toolchain  # noqa: F401  (the fixture builds the ROCm toolchain)

op = relax.op


def _rms(x, w):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * w


# name, graph, numpy reference, input shapes, dtype, kernels (2: partial + finish, 3: + apply)
CASES = [
    ("sum_tail", lambda x: op.sum(x, axis=[-1]), lambda x: x.sum(-1), [(3, 50000)], "float32", 2),
    ("sum_exact", lambda x: op.sum(x, axis=[-1]), lambda x: x.sum(-1), [(4, 1 << 16)], "float32", 2),
    # masked elements must not count after a compute: exp(0) = 1
    ("sum_exp_tail", lambda x: op.sum(op.exp(x), axis=[-1]), lambda x: np.exp(x).sum(-1), [(3, 50001)], "float32", 2),
    ("mean_keepdims", lambda x: op.mean(x, axis=[-1], keepdims=True), lambda x: x.mean(-1, keepdims=True),
     [(5, 1, 40000)], "float32", 2),
    ("max_two_row_axes_keepdims", lambda x: op.max(x, axis=[1, 2], keepdims=True),
     lambda x: x.max((1, 2), keepdims=True), [(3, 300, 700)], "float32", 2),
    ("min_odd_row", lambda x: op.min(x, axis=[-1]), lambda x: x.min(-1), [(2, 70001)], "float32", 2),
    ("int_sum", lambda x: op.sum(x, axis=[-1]), lambda x: x.sum(-1), [(3, 50000)], "int32", 2),
    ("rms_norm_odd_row", lambda x, w: op.nn.rms_norm(x, w, axes=[-1]), _rms, [(2, 70001), (70001,)], "float32", 3),
    ("center", lambda x: op.subtract(x, op.mean(x, axis=[-1], keepdims=True)),
     lambda x: x - x.mean(-1, keepdims=True), [(2, 50000)], "float32", 3),
]


def _feed(shapes, dtype: str) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    if dtype == "int32":
        return [rng.integers(-1000, 1000, s).astype(dtype) for s in shapes]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("preset", [None, AMD_GFX90A], ids=["sm90", "gfx90a"])
@pytest.mark.parametrize("name, fn, ref, shapes, dtype, kernels", CASES, ids=[c[0] for c in CASES])
def test_split_row_matches_numpy_on_the_cpu_lowering(name, fn, ref, shapes, dtype, kernels, preset) -> None:
    sp, _ = chain_stages(fn, shapes, [dtype] * len(shapes))
    hw = preset.model if preset else None
    lowered = lower_region(sp, "region0", "llvm", hw=hw)
    s = lowered.kernel.strategy
    assert s.kind == "split_row" and s.splits > 1
    assert len(lowered.optimized.kernels) == kernels
    n = s.row_size
    partial = lowered.optimized.kernels[0]
    masked = any(isinstance(i, Compute) and i.op == "select" for i in partial.instrs)
    assert masked == (s.splits * s.serial * s.chunks * s.threads_per_row * s.vector != n)
    # planned DRAM bytes: each workspace written once and read once; an apply phase re-reads x
    program = lowered.optimized
    workspace = sum(b.nbytes for b in program.buffers.values() if b.name not in (*program.inputs, *program.outputs))
    reread = numel(shapes[0]) * np.dtype(dtype).itemsize if kernels == 3 else 0
    assert lowered.dram_bytes_planned == lowered.dram_bytes_ideal + 2 * workspace + reread
    inputs = _feed(shapes, dtype)
    (got,) = run_prim_func(lowered.prim_func, inputs)
    want = ref(*[a.astype(np.float64 if dtype != "int32" else np.int64) for a in inputs])
    assert got.shape == want.shape and got.dtype == np.dtype(dtype)
    if dtype == "int32":
        np.testing.assert_array_equal(got, want)
    else:
        # float32 sums of ~1e5 normals: a few 1e-4 absolute
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3 if name.startswith("sum") else 1e-5)


def test_the_exact_case_really_has_no_tail() -> None:
    sp, _ = chain_stages(lambda x: op.sum(x, axis=[-1]), [(4, 1 << 16)])
    s = plan_region(sp, "region0", "llvm").kernel.strategy
    assert s.splits * s.serial * s.chunks * s.threads_per_row * s.vector == 1 << 16


RMS = (lambda x, w: op.nn.rms_norm(x, w, axes=[-1]), [(2, 1 << 20), (1 << 20,)])
SUM = (lambda x: op.sum(x, axis=[-1]), [(16, 1 << 20)])


def test_relax_pipeline_runs_a_split_region_on_llvm() -> None:
    """The whole path: region selection, one call_tir whose PrimFunc allocates the workspaces."""
    fn, shapes = RMS
    mod = relax_module(fn, shapes)
    target = tvm.target.Target({"kind": "llvm"})
    (region,) = intelligen_tvm.explain(mod, target)["regions"]
    assert region["handled_by"] == "intelligen" and region["kernels"] == 3
    assert region["strategy"]["kind"] == "split_row" and region["strategy"]["splits"] > 1
    executable = tvm.compile(mod, target=target, relax_pipeline="intelligen")
    vm = relax.VirtualMachine(executable, tvm.cpu())
    x, w = _feed(shapes, "float32")
    got = vm["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(w)).numpy()
    np.testing.assert_allclose(got, _rms(x.astype(np.float64), w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("graph, kernels", [(SUM, 2), (RMS, 3)], ids=["sum", "rms_norm"])
def test_cuda_source_has_one_kernel_per_phase(graph, kernels, tmp_path) -> None:
    fn, shapes = graph
    target = tvm.target.Target({"kind": "cuda", "arch": "sm_90"})
    mod = relax_module(fn, shapes)
    (region,) = intelligen_tvm.explain(mod, target)["regions"]
    s = region["strategy"]
    assert s["kind"] == "split_row" and region["kernels"] == kernels
    (source,) = device_sources(tvm.compile(mod, target=target, relax_pipeline="intelligen"), "cuda")
    found = list(re.finditer(r'extern "C" __global__ void __launch_bounds__\((\d+)\) (\w+)\(([^)]*)\) \{', source))
    assert [m.group(2) for m in found] == [f"{region['name']}_kernel"] + [f"{region['name']}_kernel_{k}" for k in
                                                                          range(1, kernels)]
    assert int(found[0].group(1)) == s["units_per_group"] * s["lanes_per_unit"]
    # the partial phase leaves its results in the workspace that the finishing phase reads
    workspace = re.search(r"float\* __restrict__ (b_ws_\w+)", found[0].group(3)).group(1)
    assert workspace in found[1].group(3)
    partial = source[found[0].start():found[1].start()]
    assert "float4" in partial and "__shfl_xor_sync" in partial and workspace in partial
    check_nvcc_compiles(source, tmp_path / "split.cu")


@pytest.mark.usefixtures("toolchain")
def test_rocm_code_object_has_one_kernel_per_phase() -> None:
    fn, shapes = RMS
    target = tvm.target.Target({"kind": "rocm", "mcpu": "gfx90a"})
    mod = relax_module(fn, shapes)
    (region,) = intelligen_tvm.explain(mod, target)["regions"]
    assert region["strategy"]["kind"] == "split_row" and region["kernels"] == 3
    (hip,) = device_modules(tvm.compile(mod, target=target, relax_pipeline="intelligen"), "hip")
    meta = amdgpu_kernel_metadata(hip.inspect_source("asm"))
    assert len(meta) == 3
    assert all(m["wavefront_size"] == 64 and m["max_flat_workgroup_size"] <= 256 for m in meta.values())
