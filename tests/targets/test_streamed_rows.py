"""Rows too long for registers stream in sweeps; the GPU builds of such plans (online softmax:
max and sum in one sweep, then the output sweep) go through TVM's CUDA and ROCm codegen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tvm
from tvm import relax

from intelligen_tvm.region import lower_region
from tests.helpers import chain_stages, check_nvcc_compiles
from tests.targets.test_rocm import toolchain  # noqa: F401  (the fixture)

op = relax.op
SHAPE = [(3, 70001)]


def _lowered(target: dict):
    sp, _ = chain_stages(lambda x: op.nn.softmax(x), SHAPE)
    return lower_region(sp, "streamed_softmax", target)


def test_cuda_source_sweeps_the_row_twice(tmp_path: Path) -> None:
    target = tvm.target.Target({"kind": "cuda", "arch": "sm_90"})
    lowered = _lowered(target)
    s = lowered.kernel.strategy
    assert s.serial > 1 and s.single_pass
    lib = tvm.compile(tvm.IRModule({"streamed_softmax": lowered.prim_func}), target=target)
    (cuda,) = [m for m in lib.mod.imports if m.kind == "cuda"] or lib.mod.imports
    source = cuda.inspect_source()
    assert len(re.findall(rf"for \(int (st\w*) = 0; \1 < {s.serial}; \+\+\1\)", source)) == 2
    assert "__shfl_xor_sync" in source and "expf(" in source
    check_nvcc_compiles(source, tmp_path / "streamed.cu")


@pytest.mark.usefixtures("toolchain")
def test_rocm_builds_the_streamed_plan() -> None:
    target = tvm.target.Target({"kind": "rocm", "mcpu": "gfx90a"})
    lowered = _lowered(target)
    assert lowered.kernel.strategy.serial > 1 and lowered.kernel.strategy.single_pass
    lib = tvm.compile(tvm.IRModule({"streamed_softmax": lowered.prim_func}), target=target)
    assert "ds_bpermute" in lib.mod.imports[0].inspect_source("asm")
