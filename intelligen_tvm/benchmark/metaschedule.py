"""The MetaSchedule contestant: TVM's own tuner (Ansor's successor) with a trial budget per
region, then ``compile_relax`` with the tuned database (DLight schedules what was not tuned).

Why an in-process builder and runner: TVM's ``LocalBuilder`` starts a fresh worker process for
every batch, and each worker imports ``tvm.s_tir.tensor_intrin`` (about 17 s of TVMScript parsing
on the 2-core machine), so with the default 30 s timeout every candidate "fails to build". Here
candidates are built in this process and timed with the project's one timing call
(``MeasureSettings.time``: TVM's time evaluator with a cache flush per repeat).

Requires ``apache-tvm-ffi<0.1.15`` with ``apache-tvm==0.27.0.post1``: with tvm-ffi 0.1.15 the
JSON-graph serializer crashes on any ``IntImm`` (its value is an ``ffi.BigInt`` field), and
MetaSchedule serializes the task module as soon as a ``TuneContext`` is initialized
(``ToJSONGraph`` segfault).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any

import tvm
import tvm_ffi
from tvm import relax
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
from tvm.s_tir.meta_schedule.builder.local_builder import default_build
from tvm.s_tir.meta_schedule.runner import PyRunner, PyRunnerFuture, RunnerResult

from ..cost_model import bundle_runner as _rt
from ..cost_model.measure import MeasureSettings, device_kind


FIRST_BROKEN_FFI = (0, 1, 15)


def check_ffi(version: str | None = None) -> None:
    """Raise (instead of letting the process segfault) when the installed tvm-ffi is one whose
    ``ToJSONGraph`` crashes on TVM 0.27's IntImm, which every MetaSchedule ``TuneContext`` hits."""
    version = version or tvm_ffi.__version__
    numbers = tuple(int(p) for p in version.split("+")[0].split(".")[:3] if p.isdigit())
    if numbers >= FIRST_BROKEN_FFI:
        raise RuntimeError(f"apache-tvm-ffi {version} segfaults TVM 0.27's MetaSchedule (ToJSONGraph on "
                           "an IntImm); install apache-tvm-ffi<0.1.15 as setup.py pins it")


@derived_object
class InProcessBuilder(PyBuilder):
    """Builds candidates in this process; the "artifact path" is a key into ``modules``."""

    def __init__(self) -> None:
        super().__init__()
        self.modules: dict[str, Any] = {}
        self.count = 0

    def build(self, build_inputs: list) -> list:
        results = []
        for inp in build_inputs:
            try:
                module = default_build(inp.mod, inp.target, None)
            except Exception as err:  # pylint: disable=broad-except
                results.append(BuilderResult(None, _rt.error_text("build", err)))
                continue
            key = f"in-process:{self.count}"
            self.count += 1
            self.modules[key] = module
            results.append(BuilderResult(key, None))
        return results


@derived_object
class _Done(PyRunnerFuture):
    """A runner future that is already resolved (the run happened synchronously)."""

    def __init__(self, seconds: list[float] | None, error: str | None) -> None:
        super().__init__()
        self.seconds = seconds
        self.error = error

    def done(self) -> bool:
        return True

    def result(self) -> RunnerResult:
        return RunnerResult(self.seconds, self.error)


@derived_object
class InProcessRunner(PyRunner):
    """Times what ``builder`` built, on this process's device, with the project's settings."""

    def __init__(self, builder: InProcessBuilder, settings: MeasureSettings) -> None:
        super().__init__()
        self.builder = builder
        self.settings = settings

    def run(self, runner_inputs: list) -> list:
        futures = []
        for inp in runner_inputs:
            module = self.builder.modules.pop(str(inp.artifact_path), None)
            try:
                if module is None:
                    raise KeyError(f"no built module {inp.artifact_path}")
                dev = tvm.runtime.device(str(inp.device_type), 0)
                specs = [(tuple(int(d) for d in info.shape), str(info.dtype)) for info in inp.args_info]
                args = _rt.make_args(tvm.runtime, specs, dev, seed=self.settings.seed)
                times_us = self.settings.time(module, module.entry_name or "main", dev, args)
                futures.append(_Done([t * 1e-6 for t in times_us], None))
            except Exception as err:  # pylint: disable=broad-except
                futures.append(_Done(None, _rt.error_text("run", err)))
        return futures


def fuse_for_tuning(mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    """The Relax passes ``compile_relax`` applies before it reads the database, so that the
    tasks we tune are the functions it later looks up (same structural keys)."""
    from tvm.relax import pipeline as relax_pipeline  # pylint: disable=import-outside-toplevel

    try:
        dispatch = list(relax_pipeline.library_dispatch_passes(target))
    except (ValueError, AttributeError):
        dispatch = []
    seq = [*dispatch, relax.transform.LegalizeOps(), relax.transform.AnnotateTIROpPattern(),
           relax.transform.FoldConstant(), relax.transform.FuseOps(), relax.transform.FuseTIR()]
    with target, tvm.transform.PassContext(opt_level=3):
        return tvm.transform.Sequential(seq)(mod)


@dataclass
class MetaScheduleResult:
    """What tuning did: the executable, the tuning wall time (compile not included), the tasks,
    and how many measured records the database holds."""

    executable: Any
    tune_s: float
    tasks: list[str]
    trials_per_task: int
    measured: int


def tune_and_compile(mod: tvm.IRModule, target: Any, trials_per_region: int,
                     settings: MeasureSettings | None = None, work_dir: str | None = None,
                     seed: int = 0) -> MetaScheduleResult:
    """Tune every fused PrimFunc of ``mod`` with ``trials_per_region`` trials each (evolutionary
    search, XGBoost cost model: TVM's defaults), then compile with the tuned database."""
    target = target if isinstance(target, tvm.target.Target) else tvm.target.Target(target)
    device_kind(target)  # fails early for a target without a runtime device
    check_ffi()
    settings = settings or MeasureSettings(repeat=5, warmup=1)
    start = time.perf_counter()
    extracted = ms.relax_integration.extract_tasks(fuse_for_tuning(mod, target), target)
    with tempfile.TemporaryDirectory(prefix="ms_") as tmp:
        work = work_dir or tmp
        contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
            extracted, work, num_threads=1, seed=seed)
        database = ms.database.MemoryDatabase()
        builder = InProcessBuilder()
        if contexts:
            ms.tune.tune_tasks(
                tasks=contexts, task_weights=weights, work_dir=work,
                max_trials_global=trials_per_region * len(contexts),
                max_trials_per_task=trials_per_region,
                num_trials_per_iter=max(1, min(trials_per_region, 64)),
                builder=builder, runner=InProcessRunner(builder, settings), database=database,
                cost_model="xgb", task_scheduler="round-robin",
                # TVM's default callbacks also delete the artifact's folder; ours is no folder
                measure_callbacks=[ms.measure_callback.AddToDatabase(),
                                   ms.measure_callback.UpdateCostModel()])
        tune_s = time.perf_counter() - start
        executable = ms.relax_integration.compile_relax(database, mod, target, None)
    measured = sum(1 for _ in database.get_all_tuning_records())
    return MetaScheduleResult(executable, tune_s,
                              [t.task_name for t in extracted], trials_per_region, measured)
