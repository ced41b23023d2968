"""Compare IntelliGen against what users run today, on one target and device, in one run.

    intelligen-tvm bench [--target llvm|cuda] [--small] [--cases softmax,bias_add]
                              [--trials 32] [--repeat 10] [--with-bert] [--plot]
                              [--contestants intelligen,tvm_default,...]
                              [--intelligen-records FILE] [--out results/compare]

Contestants (each one's outputs are checked against ``onnx.reference`` with the suite's
tolerances BEFORE its time counts; a mismatch is reported with no time):

- ``intelligen_tuned``  ``intelligen_tvm.tune(mod, target, trials=N)`` (candidates ranked by the
  analytical prior, the top N per region measured), then ``tvm.compile`` with
  ``intelligen_tvm.pipeline(records=...)``. ``--intelligen-records FILE`` compiles with records
  measured elsewhere (e.g. ``ingest_tuning_bundle`` after a bundle ran on the GPU host) instead.
- ``intelligen``  untuned: ``relax_pipeline="intelligen"``. No pretrained cost model ships yet, so
  this is the default plan of every region (the analytical prior is not consulted).
- ``tvm_default``  ``relax_pipeline="default"``: on GPU targets FuseOps + DLight rules; on llvm it
  only legalizes (one unscheduled loop nest per op, no fusion): a weak CPU baseline.
- ``metaschedule``  TVM MetaSchedule with the same N trials per fused region (evolutionary search,
  XGBoost cost model), compiled with ``compile_relax`` (DLight for anything untuned).
- ``torch_eager`` / ``torch_compile`` (``mode="max-autotune", dynamic=False``) when
  ``import torch`` works (torch is optional; the reason is recorded when they are skipped).

Timing: TVM contestants with the Relax VM's time evaluator, torch with a synchronized wall clock;
median of ``--repeat`` repeats of calls batched to ~10 ms. Physical limit, in the same run: a
device copy moving the case's ideal traffic (inputs + outputs + float weights, once each).

On llvm the intelligen kernels are the CPU lowering of the GPU plan (groups, warps and lanes
emulated by loops, made to check numerics, not to be fast): CPU times say nothing about GPU
performance. Real figures need ``--target cuda`` on a GPU host, where everything above runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import tvm

import intelligen_tvm
from intelligen_tvm import suite
from intelligen_tvm.benchmark import report, timing
from intelligen_tvm.benchmark.torch_cases import torch_function
from intelligen_tvm.cost_model.bundle_runner import device_name
from intelligen_tvm.progress import progress
from intelligen_tvm.testing import reference_outputs, tolerances

ROOT = Path(__file__).resolve().parent.parent.parent   # the source tree: its git commit is recorded
ALL = ("intelligen_tuned", "intelligen", "tvm_default", "metaschedule", "torch_eager", "torch_compile")
NOTES = {
    "llvm": [
        "CPU-only run: intelligen on llvm is the thread-emulating numerics lowering of the GPU plan, "
        "not a CPU schedule; its CPU times say nothing about GPU speed",
        "tvm_default on llvm = relax 'default' pipeline: LegalizeOps only (no fusion, no schedule)",
    ],
    "cuda": ["tvm_default on cuda = tvm.compile's GPU default pipeline (FuseOps + DLight rules)"],
}
UNTUNED_NOTE = ("intelligen (untuned) = default plan per region: no pretrained cost model ships, "
                "so nothing ranks candidates without measurements")


# ---------------------------------------------------------------------------------------------
# Environment


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make_target(name: str, dev: Any, threads: int) -> tvm.target.Target:
    """The target the TVM contestants build for: the GPU's own limits when there is one (MetaSchedule
    needs max_threads_per_block / shared memory), llvm with the CPU threads in use."""
    if name == "llvm":
        return tvm.target.Target({"kind": "llvm", "num-cores": threads or os.cpu_count() or 1})
    if dev.exist:
        return tvm.target.Target.from_device(dev)
    return tvm.target.Target({"kind": "cuda", "arch": "sm_90", "max_threads_per_block": 1024,
                              "max_shared_memory_per_block": 49152, "thread_warp_size": 32})


def driver(dev: Any, name: str) -> str:
    if name == "llvm":
        return f"{platform.system()} {platform.release()}"
    return f"cuda driver {getattr(dev, 'driver_version', '?')}, runtime api {getattr(dev, 'api_version', '?')}"


def try_import_torch() -> tuple[Any, str | None]:
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except Exception as err:  # pylint: disable=broad-except  # any failure: no torch contestants
        return None, f"torch_eager / torch_compile skipped: `import torch` failed ({type(err).__name__}: {err})"
    return torch, None


# ---------------------------------------------------------------------------------------------
# One case


class Case:
    """One workload: the model, its inputs, the reference outputs and the device arguments."""

    def __init__(self, name: str, model: onnx.ModelProto, inputs: list[np.ndarray], dims: dict, dev: Any):
        self.name, self.model, self.inputs, self.dims, self.dev = name, model, inputs, dims, dev
        self.expected = reference_outputs(model, inputs)
        self.rtol, self.atol = tolerances(model)
        self.ideal = timing.ideal_bytes(model, inputs, self.expected)
        self.mod = intelligen_tvm.from_onnx(model)
        self.vm_args = [tvm.runtime.tensor(np.ascontiguousarray(a), dev) for a in inputs]


def contest(case: Case, build: Callable[[], tuple[Any, float | None]], run_once: Callable[[Any], list],
            timer: Callable[[Any], float], note: str | None = None) -> dict:
    """Build (and tune), check numerics, then time; failures become a status, never a number."""
    row: dict = {"numerics_ok": False, "time_us": None, "gbps": None}
    if note:
        row["note"] = note
    try:
        start = time.perf_counter()
        handle, tune_s = build()
        row["build_s"] = time.perf_counter() - start - (tune_s or 0.0)
        row["tune_s"] = tune_s
        ok, err = timing.check(run_once(handle), case.expected, case.rtol, case.atol)
        row.update(numerics_ok=ok, max_abs_error=err)
        if not ok:
            row["status"] = "MISMATCH: not timed"
            return row
        seconds = timer(handle)
        row.update(time_us=seconds * 1e6, gbps=case.ideal / seconds / 1e9)
    except Exception as exc:  # pylint: disable=broad-except  # report the failure, keep going
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        row["status"] = f"failed: {type(exc).__name__}: {first}"
    return row


def tvm_contestants(case: Case, args: argparse.Namespace, target: tvm.target.Target, work: Path) -> dict:
    dev = case.dev

    def compiled(pipeline):
        return lambda: (tvm.compile(case.mod, target=target, relax_pipeline=pipeline), None)

    def tuned_intelligen():
        if args.intelligen_records:
            return tvm.compile(case.mod, target=target,
                               relax_pipeline=intelligen_tvm.pipeline(records=str(args.intelligen_records))), None
        records = str(work / f"{case.name}_intelligen_records.jsonl")
        start = time.perf_counter()
        intelligen_tvm.tune(case.mod, target, trials=args.trials, records=records, progress=False)
        tune_s = time.perf_counter() - start
        return tvm.compile(case.mod, target=target, relax_pipeline=intelligen_tvm.pipeline(records=records)), tune_s

    def tuned_metaschedule():
        from intelligen_tvm.benchmark.metaschedule import tune_and_compile  # pylint: disable=import-outside-toplevel

        result = tune_and_compile(case.mod, target, args.trials)
        return result.executable, result.tune_s

    builders = {"intelligen_tuned": tuned_intelligen, "intelligen": compiled("intelligen"),
                "tvm_default": compiled("default"), "metaschedule": tuned_metaschedule}
    notes = {"intelligen_tuned": (f"records from {args.intelligen_records}" if args.intelligen_records
                                  else f"{args.trials} trials per region, ranked by the analytical prior"),
             "intelligen": "default plan (untuned)",
             "metaschedule": f"{args.trials} trials per fused region, evolutionary search + XGBoost"}
    out = {}
    for name, build in builders.items():
        if name in args.contestants and (args.trials > 0 or name not in ("intelligen_tuned", "metaschedule")
                                         or (name == "intelligen_tuned" and args.intelligen_records)):
            print(f"  {name}", flush=True)
            out[name] = contest(case, build, lambda ex: timing.run_vm(ex, dev, case.vm_args),
                                lambda ex: timing.time_vm(ex, dev, case.vm_args, args.repeat), notes.get(name))
    return out


def torch_contestants(case: Case, args: argparse.Namespace, torch: Any) -> dict:
    wanted = [n for n in ("torch_eager", "torch_compile") if n in args.contestants]
    if torch is None or not wanted:
        return {}
    made = torch_function(torch, case.name, case.model, case.dims)
    if made is None:
        return {n: {"numerics_ok": False, "time_us": None, "status": "skipped: no torch version"} for n in wanted}
    fn, weights = made
    tdev = "cuda" if args.target == "cuda" else "cpu"
    targs = [torch.from_numpy(np.ascontiguousarray(a)).to(tdev) for a in case.inputs] + [w.to(tdev) for w in weights]
    sync = torch.cuda.synchronize if tdev == "cuda" else (lambda: None)

    def run_once(f):
        with torch.no_grad():
            out = f(*targs)
        return [o.detach().cpu().numpy() for o in (out if isinstance(out, (tuple, list)) else [out])]

    def timer(f):
        with torch.no_grad():
            return timing.median_seconds(lambda: f(*targs), sync, args.repeat)

    def compiled():
        torch._dynamo.reset()  # pylint: disable=protected-access  # no cache hits across cases
        f = torch.compile(fn, mode="max-autotune", dynamic=False)
        start = time.perf_counter()
        run_once(f)  # compile + autotune happen on the first call: that is its tuning time
        return f, time.perf_counter() - start

    builders = {"torch_eager": lambda: (fn, None), "torch_compile": compiled}
    out = {}
    for name in wanted:
        print(f"  {name}", flush=True)
        out[name] = contest(case, builders[name], run_once, timer)
    return out


def measure(case: Case, args: argparse.Namespace, target: tvm.target.Target, torch: Any, work: Path) -> dict:
    contestants = tvm_contestants(case, args, target, work)
    contestants.update(torch_contestants(case, args, torch))
    copy = timing.copy_bandwidth(target, case.dev, case.ideal, args.repeat)
    return report.summarize({"case": case.name, "ideal_bytes": case.ideal, "copy": copy,
                             "contestants": contestants})


# ---------------------------------------------------------------------------------------------
# Driver


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=("llvm", "cuda"), default="llvm")
    parser.add_argument("--small", action="store_true", help="shrunk shapes (seconds on a CPU)")
    parser.add_argument("--cases", default="", help="comma-separated suite cases (default: all)")
    parser.add_argument("--trials", type=int, default=32,
                        help="tuning trials per region for intelligen_tuned AND metaschedule (0: neither)")
    parser.add_argument("--repeat", type=int, default=10, help="timing repeats (median reported)")
    parser.add_argument("--contestants", default=",".join(ALL), help=f"subset of {','.join(ALL)}")
    parser.add_argument("--intelligen-records", type=Path, default=None,
                        help="compile intelligen_tuned from these records instead of tuning here")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for every contestant (TVM thread pool, torch); 0: all cores. "
                             "1 keeps times stable on a busy machine")
    parser.add_argument("--with-bert", action="store_true", help="also the BERT-base encoder layer")
    parser.add_argument("--out", type=Path, default=Path("results") / "compare")
    parser.add_argument("--plot", action="store_true", help="write fraction_of_copy.png and speedup.png")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return check_arguments(parser, parser.parse_args(argv))


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    args.contestants = [c.strip() for c in args.contestants.split(",") if c.strip()]
    unknown = sorted(set(args.contestants) - set(ALL))
    if unknown:
        parser.error(f"unknown contestants {unknown}")
    return args


def main(argv: list[str] | None = None, prog: str = "python scripts/compare.py") -> int:
    return run(parse(argv), prog + " " + " ".join(sys.argv[1:] if argv is None else argv))


def run(args: argparse.Namespace, command: str) -> int:
    """The comparison; `command` is recorded with the results (how to make them again)."""
    commit = git_commit()  # before anything runs: what the numbers were measured with
    dev = tvm.cpu(0) if args.target == "llvm" else tvm.cuda(0)
    if not dev.exist:
        print(f"error: --target {args.target} needs a {args.target} device and none exists here", file=sys.stderr)
        return 2
    if args.threads:  # read when TVM's thread pool starts (first parallel kernel) and by OpenMP
        os.environ["TVM_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
    target = make_target(args.target, dev, args.threads)
    torch, torch_note = try_import_torch() if {"torch_eager", "torch_compile"} & set(args.contestants) else (None, None)
    if torch is not None and args.threads:
        torch.set_num_threads(args.threads)
    if "metaschedule" in args.contestants and args.trials > 0:
        # MetaSchedule's first TuneContext imports TVM's tensor intrinsics (~20 s of TVMScript
        # parsing, once per process); done here so that each case's tune_s is its own search
        importlib.import_module("tvm.s_tir.tensor_intrin")
    notes = list(NOTES[args.target]) + [UNTUNED_NOTE] + ([torch_note] if torch_note else [])
    names = [n.strip() for n in args.cases.split(",") if n.strip()] or [c.name for c in suite.SUITE]
    rng = np.random.default_rng(0)
    rows = []
    total = len(names) + bool(args.with_bert)
    with tempfile.TemporaryDirectory(prefix="compare_") as tmp:
        for n, name in enumerate(names):
            progress(n, total, name)
            print(f"[{name}]", flush=True)
            sc = suite.get_case(name)
            dims = dict(sc.dims_for(args.small))
            case = Case(name, sc.build(small=args.small), suite.make_inputs(sc, rng, small=args.small), dims, dev)
            rows.append(measure(case, args, target, torch, Path(tmp)))
        if args.with_bert:
            progress(len(names), total, "bert_encoder_layer")
            print("[bert_encoder_layer]", flush=True)
            dims = suite.bert_encoder_dims(small=args.small)
            inputs = suite.make_inputs_from_specs(suite.bert_encoder_input_specs(), dims, rng)
            case = Case("bert_encoder_layer", suite.bert_encoder_layer(small=args.small), inputs, dict(dims), dev)
            rows.append(measure(case, args, target, torch, Path(tmp)))
    progress(total, total, "done")
    meta = {
        "device": device_name(dev), "driver": driver(dev, args.target), "target": json.loads(str(target)),
        "versions": {"tvm": tvm.__version__, "torch": None if torch is None else torch.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "git_commit": commit, "command": command.strip(),
        "settings": {"small": args.small, "threads": args.threads or os.cpu_count(), "repeat": args.repeat, "trials": args.trials, "cases": names,
                     "with_bert": args.with_bert, "contestants": args.contestants,
                     "timing": "median of repeats, calls batched to ~10 ms per repeat",
                     "copy": "device copy of ideal_bytes (half read, half written): best of the runtime "
                             "copy and a TVM-built copy kernel"},
        "notes": notes, "geomean_speedup": report.geomean_speedups(rows),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({**meta, "rows": rows}, indent=1, default=str))
    table = report.markdown(rows, meta)
    (args.out / "results.md").write_text(table)
    print(table)
    if args.plot:
        cpu_only = " (CPU-only run: says nothing about GPU speed)" if args.target == "llvm" else ""
        report.plot(rows, args.out, f"{args.target}: {meta['device']}{cpu_only}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
