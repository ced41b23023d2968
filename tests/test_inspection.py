"""inspection: each region's planned program, and the occupancy that ptxas's numbers allow."""

from __future__ import annotations

import shutil

import pytest

import intelligen_tvm
from intelligen_tvm import suite
from intelligen_tvm.inspection import PtxasKernel, cuda_source, ptxas_report, region_details

CUDA = {"kind": "cuda", "arch": "sm_90"}


@pytest.mark.parametrize("threads, registers, smem, occupancy", [
    (128, 22, 0, 1.0),            # 16 blocks of 4 warps fill the SM's 64 warps
    (1024, 64, 0, 0.5),           # 64 regs x 1024 threads = the whole register file: one block
    (256, 255, 0, 0.125),         # 255 regs (allocated per warp in units of 256): one block of 8 warps
    (128, 32, 48 * 1024, 0.25),   # shared memory: 228 KiB / (48 + 1) KiB = 4 blocks of 4 warps
    (32, 16, 0, 0.5),             # at most 32 blocks per SM
])
def test_sm90_occupancy(threads, registers, smem, occupancy) -> None:
    assert PtxasKernel("k", threads, registers, 0, 0, smem).occupancy == occupancy


def test_region_details_follow_the_report() -> None:
    """The BERT encoder layer: regions repeat (two residual + LayerNorm), fallbacks interleave."""
    mod = intelligen_tvm.from_onnx(suite.bert_encoder_layer(small=True))
    report, details = region_details(mod, CUDA)
    assert [d.report for d in details] == report["regions"] == intelligen_tvm.explain(mod, CUDA)["regions"]
    taken = [d for d in details if d.handled]
    assert len(taken) >= 4 and len(taken) < len(details)
    fingerprints = [d.report["fingerprint"] for d in taken]
    assert len(set(fingerprints)) < len(fingerprints)   # a repeated region
    for d in taken:
        assert d.program.name == d.name and d.program.kernels[0].name.startswith(d.name)
        assert d.program.kernels[0].strategy.describe() == d.report["strategy"]
        assert set(d.program.inputs) | set(d.program.outputs) <= set(d.program.buffers)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_ptxas_reads_every_kernel_of_a_split_row() -> None:
    """A split row launches a partial and a finishing kernel: ptxas reports both."""
    from tests.helpers import relax_module
    from tvm import relax

    mod = relax_module(lambda x: relax.op.sum(x, axis=[-1]), [(4, 1 << 17)])
    _, (detail,) = region_details(mod, CUDA)
    assert detail.report["strategy"]["kind"] == "split_row"
    source = cuda_source(detail, CUDA)
    kernels = ptxas_report(source)
    assert len(kernels) == 2 and all(k.registers > 0 and k.threads > 0 for k in kernels)
    assert all(f"{k.name}(" in source for k in kernels) and len({k.name for k in kernels}) == 2
