"""CUDA builds of every suite case at full size (build only, no GPU needed): intelligen takes every
region, and the generated CUDA source shows the plan — warp shuffles for row reductions, float4
where 4-wide vectors were planned, shared memory for group-scope reductions and transpose tiles —
and compiles with nvcc; cases that launch few threads also run in the CPU emulation of CUDA
(cuda_emulation.py) against onnx.reference."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tvm

import intelligen_tvm
from intelligen_tvm import suite
from tests.helpers import model_region, suite_model
from tests.targets.cuda_emulation import (CudaBuild, check_outputs, compile_cuda, emulate, region_inputs,
                                          shifted_inputs)

CUDA = {"kind": "cuda", "arch": "sm_90"}
EMULATED_THREADS = 1 << 16   # full-size cases launching at most this many threads are also emulated
NAMES = [c.name for c in suite.SUITE]


@functools.cache
def cuda_compiled(name: str) -> tuple[dict, CudaBuild]:
    """(explain report, CUDA source with its launches) of the full-size case, built once per session."""
    mod = intelligen_tvm.from_onnx(suite_model(name, small=False))
    report = intelligen_tvm.explain(mod, tvm.target.Target(CUDA))
    return report, compile_cuda(mod)


def cuda_build(name: str) -> tuple[dict, str]:
    """(explain report, all generated CUDA source) of the full-size case."""
    report, build = cuda_compiled(name)
    return report, build.source


def _kernels(source: str) -> dict[str, str]:
    """Kernel name -> body text (from its definition to the next kernel definition)."""
    heads = list(re.finditer(r'extern "C" __global__ void __launch_bounds__\((\d+)\) (\w+)\([^)]*\) \{', source))
    out = {}
    for k, m in enumerate(heads):
        end = heads[k + 1].start() if k + 1 < len(heads) else len(source)
        out[m.group(2)] = source[m.start():end]
    return out


def _regions(name: str) -> list[dict]:
    return cuda_build(name)[0]["regions"]


@pytest.mark.parametrize("name", NAMES)
def test_every_region_is_taken_by_intelligen(name: str) -> None:
    report, source = cuda_build(name)
    assert report["target"] == "cuda"
    regions = report["regions"]
    assert [r["handled_by"] for r in regions] == ["intelligen"], regions
    (region,) = regions
    assert region["kernels"] == 1
    assert region["dram_bytes_planned"] == region["dram_bytes_ideal"] <= region["dram_bytes_naive"]
    # one kernel in the whole module, and it is ours
    assert list(_kernels(source)) == [f"{region['name']}_kernel"]


@pytest.mark.parametrize("name", NAMES)
def test_source_shows_the_plan(name: str) -> None:
    _, source = cuda_build(name)
    kernels = _kernels(source)
    for region in _regions(name):
        if region["handled_by"] != "intelligen":
            continue
        s = region["strategy"]
        body = kernels[f"{region['name']}_kernel"]
        threads = s["units_per_group"] * s["lanes_per_unit"]
        assert f"__launch_bounds__({threads})" in body
        row_reduction = s["kind"] == "row"
        group_scope = (s["kind"] == "row" and s["threads_per_row"] > s["lanes_per_unit"]) or s["kind"] == "column"
        # rows reduce inside a warp with butterfly shuffles (log2(32) = 5 steps per reduction)
        assert ("__shfl_xor_sync" in body) == (row_reduction and s["threads_per_row"] > 1)
        if row_reduction:
            assert body.count("__shfl_xor_sync") % 5 == 0
        # 4-wide fp32 vectors become float4 accesses
        assert ("float4" in body) == (s["vector"] == 4), s
        # partial results of several warps meet in shared memory, behind a barrier
        if group_scope or s["kind"] == "tile":
            assert "__shared__" in body and "__syncthreads()" in body
        else:
            assert "__shared__" not in body and "__syncthreads" not in body


def test_expected_plans_of_the_suite() -> None:
    """The published shapes land on the plans the design calls for."""
    plan = {n: _regions(n)[0]["strategy"] for n in NAMES}
    for n in ("softmax", "layer_norm", "add_layer_norm", "decomposed_layer_norm", "attention_softmax",
              "bert_embedding", "mean_last"):
        assert plan[n]["kind"] == "row" and plan[n]["threads_per_row"] == 32, n   # one warp per row
    assert plan["rms_norm"]["threads_per_row"] == 256                  # 4096 columns: a block per row
    assert plan["long_softmax"]["threads_per_row"] == 1024             # 32768 columns
    assert plan["sum_axis0"]["kind"] == "column"
    assert plan["transpose_relu"]["kind"] == "tile"
    for n in ("bias_gelu_erf", "swiglu", "relu_add", "bias_add", "attention_transpose"):
        assert plan[n]["kind"] == "flat" and plan[n]["vector"] == 4, n
    for n in ("softmax", "layer_norm", "rms_norm", "long_softmax", "bert_embedding"):
        assert plan[n]["vector"] == 4, n


def test_row_reduction_keeps_the_row_in_registers() -> None:
    """softmax over 1024 columns: x is read with float4 loads once, out written once; max and
    sum are two warp all-reduces; no shared memory."""
    _, source = cuda_build("softmax")
    (body,) = _kernels(source).values()
    assert body.count("__shfl_xor_sync") == 10
    assert "max(" in body
    loads = re.findall(r"= \*\(float4\*\)\(b_t0_ptr", body)
    stores = re.findall(r"\*\(float4\*\)\(b_t1_ptr [^=]*\) =", body)
    assert len(loads) == 8 and len(stores) == 8    # 1024 / (32 lanes * 4) = 8 chunks each


def test_transpose_tile_keeps_its_padding() -> None:
    """The 32x32 tile is stored with a row stride of 33 (bank-conflict-free transposed reads);
    TVM may trim the unused last pad element but must not compact the stride."""
    _, source = cuda_build("transpose_relu")
    (body,) = _kernels(source).values()
    (size,) = re.findall(r"__shared__ alignas\(\d+\) float (\w+)\[(\d+)\]", body)
    assert int(size[1]) >= 32 * 33 - 1
    assert re.search(rf"{size[0]}\[[^\]]*\* 33\)", body)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
@pytest.mark.parametrize("name", NAMES)
def test_source_compiles_with_nvcc(name: str, tmp_path: Path) -> None:
    _, source = cuda_build(name)
    cu = tmp_path / f"{name}.cu"
    cu.write_text(source)
    cubin = cu.with_suffix(".cubin")
    proc = subprocess.run(["nvcc", "-arch=sm_90", "-cubin", "-o", str(cubin), str(cu)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert cubin.stat().st_size > 0
    report, build = cuda_compiled(name)
    (host,) = build.hosts.values()
    if sum(ln.threads_at({}) for ln in host.launches) <= EMULATED_THREADS:
        model = suite_model(name, small=False)
        inputs = shifted_inputs(suite.get_case(name), np.random.default_rng(0), False, "scaled")
        sp, feed, expected = model_region(model, inputs, "cuda")
        (got,) = emulate(build, host.name).run(region_inputs(host, sp, feed))
        want = expected[sp.outputs[0]]
        check_outputs([got], [want], 1e-4, 1e-4 * float(np.abs(want).max()), what=name)
