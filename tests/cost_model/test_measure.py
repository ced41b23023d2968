"""LocalMeasurer on llvm: builds and times small TVMScript kernels; failures become results."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm.script import tirx as T

from intelligen_tvm.cost_model import bundle_runner
from tests.cost_model.kernels import vector_add
from intelligen_tvm.cost_model.measure import (
    LocalMeasurer,
    MeasureInput,
    MeasureResult,
    device_kind,
    symbol_name,
)

N = 1 << 16
LLVM = {"kind": "llvm"}



def gpu_vector_add(n: int = N):
    @T.prim_func
    def func(A: T.Buffer((n,), "float32"), B: T.Buffer((n,), "float32"), C: T.Buffer((n,), "float32")):
        bx = T.launch_thread("blockIdx.x", n // 256)
        tx = T.launch_thread("threadIdx.x", 256)
        C[bx * 256 + tx] = A[bx * 256 + tx] + B[bx * 256 + tx]

    return func


def gather(n: int = N):
    """Int indices must be valid: the measurer fills int arguments with zeros."""

    @T.prim_func
    def func(X: T.Buffer((n,), "float32"), I: T.Buffer((n,), "int64"), Y: T.Buffer((n,), "float32")):
        for i in range(n):
            Y[i] = X[I[i]]

    return func


def test_from_prim_func_reads_specs():
    inp = MeasureInput.from_prim_func("gather", gather(64))
    assert inp.arg_specs == [((64,), "float32"), ((64,), "int64"), ((64,), "float32")]


def test_measures_each_candidate_with_positive_times():
    measurer = LocalMeasurer(LLVM, repeat=5, warmup=1)
    inputs = [
        MeasureInput.from_prim_func("add", vector_add(N)),
        MeasureInput.from_prim_func("gather", gather()),
    ]
    results = measurer.measure(inputs)
    assert [r.name for r in results] == ["add", "gather"]
    for r in results:
        assert r.error is None, r.error
        assert len(r.times_us) == 5 and all(t > 0 for t in r.times_us)
        assert r.median_us is not None and r.median_us > 0
        assert r.device and r.device == bundle_runner.cpu_model()


def test_without_flush_and_with_number():
    results = LocalMeasurer(LLVM, repeat=3, number=4, flush_l2=False).measure(
        [MeasureInput.from_prim_func("add", vector_add(1024))]
    )
    assert results[0].ok and len(results[0].times_us) == 3


def test_build_error_is_a_result():
    bad = MeasureInput("bad", "not a prim func", [((4,), "float32")])
    good = MeasureInput.from_prim_func("good", vector_add(256))
    results = LocalMeasurer(LLVM, repeat=2).measure([bad, good])
    assert results[0].error and results[0].error.startswith("build:") and not results[0].ok
    assert results[0].times_us == [] and results[0].median_us is None
    assert results[1].ok


def test_run_error_is_a_result():
    # Shapes that disagree with the kernel's buffers: the packed call checks and raises.
    inp = MeasureInput("wrong_shapes", vector_add(256), [((8,), "float32")] * 3)
    (result,) = LocalMeasurer(LLVM, repeat=2).measure([inp])
    assert isinstance(result, MeasureResult)
    assert result.error and result.error.startswith("run:")


def test_absent_device_is_a_result():
    cuda = tvm.runtime.cuda(0)
    if cuda.exist:
        pytest.skip("this host has a GPU")
    (result,) = LocalMeasurer({"kind": "cuda", "arch": "sm_90"}, repeat=2).measure(
        [MeasureInput.from_prim_func("add", gpu_vector_add(1024))]
    )
    assert result.error is not None and result.error.startswith("run:"), result.error
    assert "absent" in result.device


def test_random_args_ints_are_zero_floats_normal():
    dev = tvm.runtime.cpu(0)
    specs = [((1000,), "int32"), ((1000,), "float32"), ((16,), "float16"), ((16,), "bfloat16")]
    ints, floats, halves, bf16 = bundle_runner.make_args(tvm.runtime, specs, dev, seed=1)
    assert not ints.numpy().any()
    values = floats.numpy()
    assert 0.8 < values.std() < 1.2 and abs(values.mean()) < 0.2
    assert np.isfinite(halves.numpy()).all()
    assert bf16.dtype == "bfloat16"


def test_names_and_kinds():
    assert device_kind(LLVM) == "cpu"
    assert device_kind({"kind": "cuda", "arch": "sm_90"}) == "cuda"
    assert symbol_name("softmax/plan 3") == "ig_softmax_plan_3"
