"""The MetaSchedule contestant's pieces: the in-process builder and runner on llvm, and (no GPU
needed) that a cuda target with the limits compare.py gives it yields MetaSchedule design spaces."""

from __future__ import annotations

from pathlib import Path

import pytest
import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.arg_info import TensorInfo

from intelligen_tvm import from_onnx, suite
from intelligen_tvm.benchmark.metaschedule import InProcessBuilder, InProcessRunner, check_ffi, fuse_for_tuning
from intelligen_tvm.cost_model.measure import MeasureSettings
from tests.helpers import detach_unnamed_metaschedule_handlers

CUDA = {"kind": "cuda", "arch": "sm_90", "max_threads_per_block": 1024,
        "max_shared_memory_per_block": 49152, "thread_warp_size": 32}


def _add_one() -> tvm.IRModule:
    a = te.placeholder((64,), name="a")
    b = te.compute((64,), lambda i: a[i] + 1.0, name="b")
    return tvm.IRModule({"main": te.create_prim_func([a, b])})


@pytest.mark.slow  # MetaSchedule's build imports TVM's tensor intrinsics: ~20 s once per process
def test_in_process_builder_and_runner_time_a_kernel() -> None:
    builder = InProcessBuilder()
    target = tvm.target.Target({"kind": "llvm", "num-cores": 1})
    built = builder.build([ms.builder.BuilderInput(_add_one(), target)])
    assert built[0].error_msg is None and built[0].artifact_path in builder.modules
    runner = InProcessRunner(builder, MeasureSettings(repeat=3, warmup=1))
    info = [TensorInfo("float32", [64]), TensorInfo("float32", [64])]
    futures = runner.run([ms.runner.RunnerInput(built[0].artifact_path, "cpu", info),
                          ms.runner.RunnerInput("in-process:missing", "cpu", info)])
    good, missing = (f.result() for f in futures)
    assert good.error_msg is None and len(good.run_secs) == 3 and all(float(s) > 0 for s in good.run_secs)
    assert not builder.modules  # each module is handed to the runner once, then dropped
    assert missing.run_secs is None and "missing" in missing.error_msg


@pytest.mark.slow
def test_builder_reports_build_errors() -> None:
    """A GPU thread binding cannot be built for llvm: an error result, not an exception."""
    sch = tvm.s_tir.Schedule(_add_one())
    (loop,) = sch.get_loops(sch.get_sblock("b"))
    sch.bind(loop, "threadIdx.x")
    builder = InProcessBuilder()
    result = builder.build([ms.builder.BuilderInput(sch.mod, tvm.target.Target({"kind": "llvm"}))])[0]
    assert result.artifact_path is None and result.error_msg.startswith("build: ")
    assert not builder.modules


@pytest.mark.slow
def test_cuda_design_spaces_without_a_gpu(tmp_path: Path) -> None:
    """GPU readiness short of a GPU: tasks extract and every task gets thread-bound design spaces
    (MetaSchedule checks the target's thread / shared-memory limits here)."""
    detach_unnamed_metaschedule_handlers()
    check_ffi()  # a clear failure instead of a segfault that would end the whole test run
    target = tvm.target.Target(CUDA)
    case = suite.get_case("add_layer_norm")
    mod = fuse_for_tuning(from_onnx(case.build(small=True)), target)
    tasks = ms.relax_integration.extract_tasks(mod, target)
    assert tasks
    contexts, _ = ms.relax_integration.extracted_tasks_to_tune_contexts(tasks, str(tmp_path), num_threads=1)
    for ctx in contexts:
        spaces = ctx.generate_design_space()
        assert spaces and all("threadIdx.x" in s.mod.script() for s in spaces)


def test_ffi_versions_that_crash_metaschedule_are_refused() -> None:
    for bad in ("0.1.15", "0.1.15.post2", "0.2.0"):
        with pytest.raises(RuntimeError, match="apache-tvm-ffi<0.1.15"):
            check_ffi(bad)
    for good in ("0.1.14.post0", "0.1.14.post1"):
        check_ffi(good)
