"""Compare IntelliGen against what users run today, on one target and device, in one run.

    intelligen-tvm bench [--target llvm|cuda] [--small] [--cases softmax,bias_add]
                              [--trials 32] [--repeat 10] [--with-bert] [--plot]
                              [--contestants intelligen,tvm_default,...] [--threads N]
                              [--intelligen-records FILE] [--isolation process|none]
                              [--out results/compare]

Contestants (each one's outputs are checked against ``onnx.reference`` with the suite's
tolerances BEFORE its time counts; a mismatch is reported with no time):

- ``intelligen_tuned``  ``intelligen_tvm.tune(mod, target, trials=N)`` (candidates ranked by the
  shipped CPU cost model on llvm, by the analytical prior elsewhere; the top N per region
  measured), then ``tvm.compile`` with ``intelligen_tvm.pipeline(records=...)``; besides its
  tuning wall time, the time after which every region's best-so-far was within 5% of its final
  best (``tune_s_to_5pct``, from the records' timestamps). ``--intelligen-records FILE``
  compiles with records measured elsewhere (e.g. ``ingest_tuning_bundle`` after a bundle ran on
  the GPU host) instead.
- ``intelligen``  untuned: ``relax_pipeline="intelligen"``: on llvm the shipped CPU cost model's
  pick per region (no measurement), elsewhere the default plan.
- ``tvm_default``  ``relax_pipeline="default"``: on GPU targets FuseOps + DLight rules; on llvm it
  only legalizes (one unscheduled loop nest per op, no fusion): a weak CPU baseline.
- ``onnxruntime``  ONNX Runtime's CPU execution provider on the same ONNX model (llvm only,
  when ``import onnxruntime`` works), all graph optimizations, ``--threads`` intra-op threads.
- ``metaschedule``  TVM MetaSchedule with the same N trials per fused region (evolutionary search,
  XGBoost cost model), compiled with ``compile_relax`` (DLight for anything untuned).
- ``torch_eager`` / ``torch_compile`` (``mode="max-autotune", dynamic=False``) when
  ``import torch`` works (torch is optional; the reason is recorded when they are skipped).

Timing: TVM contestants with the Relax VM's time evaluator, torch and ONNX Runtime with a
synchronized wall clock; median of ``--repeat`` repeats of calls batched to ~10 ms. Physical
limit, in the same run: a device copy moving the case's ideal traffic (inputs + outputs + float
weights, once each).

Isolation (``--isolation process``, the default): every contestant of every case (and the copy)
builds and runs in a process of its own, so that no other runtime's thread pool spins on the
cores while it is timed (TVM's, torch's OpenMP and ONNX Runtime's pools all busy-wait after a
call; two of them on two cores made torch's CPU times come out as multiples of 8 ms).  The
driver computes the inputs and the onnx.reference outputs once and hands them over in files.

On llvm the target is ``llvm -mcpu=<this host's CPU> -num-cores=<threads>`` for every TVM
contestant (plain ``llvm`` compiles for a generic x86-64 with SSE2 only), and intelligen's
kernels come from the CPU backend (targets/cpu_backend.py).
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
from intelligen_tvm.cost_model.target_kinds import device_kind
from intelligen_tvm.cost_model.bundle_runner import device_name
from intelligen_tvm.progress import progress
from intelligen_tvm.region import shipped_model
from intelligen_tvm.testing import reference_outputs, tolerances

ROOT = Path(__file__).resolve().parent.parent.parent   # the source tree: its git commit is recorded
ALL = ("intelligen_tuned", "intelligen", "tvm_default", "metaschedule", "onnxruntime", "torch_eager",
       "torch_compile")
NOTES = {
    "llvm": [
        "CPU run: intelligen's kernels are the CPU backend's (tasks of rows across cores, SIMD vectors, "
        "rows held in L1/L2); every TVM contestant builds for llvm -mcpu=<host>",
        "tvm_default on llvm = relax 'default' pipeline: LegalizeOps only (no fusion, no schedule)",
        "intelligen (untuned) = the shipped CPU cost model's pick per region (the default plan while no "
        "model is installed), no measurement",
    ],
    "cuda": ["tvm_default on cuda = tvm.compile's GPU default pipeline (FuseOps + DLight rules)",
             "intelligen (untuned) = default plan per region: no GPU cost model ships"],
}
ISOLATION_NOTE = {"process": "each contestant built and timed in a process of its own (no other thread pool running)",
                  "none": "all contestants in one process (thread pools of other runtimes may spin while one is timed)"}


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
    needs max_threads_per_block / shared memory), llvm for this host's CPU with the threads in use."""
    if name == "llvm":
        from tvm.target import codegen  # pylint: disable=import-outside-toplevel

        return tvm.target.Target({"kind": "llvm", "mcpu": codegen.llvm_get_system_cpu(),
                                  "num-cores": threads or os.cpu_count() or 1})
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

    def __init__(self, name: str, model: onnx.ModelProto, inputs: list[np.ndarray], dims: dict, dev: Any,
                 expected: list[np.ndarray] | None = None):
        self.name, self.model, self.inputs, self.dims, self.dev = name, model, inputs, dims, dev
        self.expected = reference_outputs(model, inputs) if expected is None else expected
        self.rtol, self.atol = tolerances(model)
        self.ideal = timing.ideal_bytes(model, inputs, self.expected)
        self.mod = intelligen_tvm.from_onnx(model)
        self.vm_args = [tvm.runtime.tensor(np.ascontiguousarray(a), dev) for a in inputs]

    def save(self, directory: Path) -> None:
        """What a worker process needs: the model, inputs, reference outputs and dims."""
        directory.mkdir(parents=True, exist_ok=True)
        onnx.save(self.model, str(directory / "model.onnx"))
        np.savez(directory / "data.npz", *self.inputs, *self.expected)
        (directory / "case.json").write_text(json.dumps({"name": self.name, "dims": self.dims,
                                                          "inputs": len(self.inputs)}))

    @classmethod
    def load(cls, directory: Path, dev: Any) -> Case:
        meta = json.loads((directory / "case.json").read_text())
        data = np.load(directory / "data.npz")
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
        n = meta["inputs"]
        return cls(meta["name"], onnx.load(str(directory / "model.onnx")), arrays[:n], meta["dims"], dev,
                   expected=arrays[n:])


def contest(case: Case, build: Callable[[], tuple[Any, float | None]], run_once: Callable[[Any], list],
            timer: Callable[[Any], float], note: str | None = None) -> dict:
    """Build (and tune), check numerics, then time; failures become a status, never a number."""
    row: dict = {"numerics_ok": False, "time_us": None, "gbps": None}
    if note:
        row["note"] = note
    try:
        start = time.perf_counter()
        handle, tune = build()
        tune = tune if isinstance(tune, dict) else {"tune_s": tune}
        row["build_s"] = time.perf_counter() - start - (tune["tune_s"] or 0.0)
        row.update(tune)
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


def time_to_within(records_path: str, start: float, slack: float = 0.05) -> float | None:
    """Tuning seconds after which every region's best-so-far was within `slack` of its final best,
    regions tuned one after the other (each record's share of the time: since the previous one)."""
    from intelligen_tvm.cost_model.records import RecordDB  # pylint: disable=import-outside-toplevel

    records = sorted(RecordDB(records_path).load(), key=lambda r: r.timestamp)
    if not records:
        return None
    final = {}
    for r in records:
        final[r.region] = min(final.get(r.region, float("inf")), r.median_us)
    spent, needed, best, previous = {}, {}, {}, start
    for r in records:
        spent[r.region] = spent.get(r.region, 0.0) + r.timestamp - previous
        previous = r.timestamp
        best[r.region] = min(best.get(r.region, float("inf")), r.median_us)
        if r.region not in needed and best[r.region] <= (1 + slack) * final[r.region]:
            needed[r.region] = spent[r.region]
    return sum(needed.values())


def tvm_builders(case: Case, args: argparse.Namespace, target: tvm.target.Target, work: Path) -> dict:
    def compiled(pipeline):
        return lambda: (tvm.compile(case.mod, target=target, relax_pipeline=pipeline), None)

    def tuned_intelligen():
        if args.intelligen_records:
            return tvm.compile(case.mod, target=target,
                               relax_pipeline=intelligen_tvm.pipeline(records=str(args.intelligen_records))), None
        records = str(work / f"{case.name}_intelligen_records.jsonl")
        start = time.time()
        intelligen_tvm.tune(case.mod, target, trials=args.trials, records=records, progress=False)
        tune = {"tune_s": time.time() - start, "tune_s_to_5pct": time_to_within(records, start)}
        return tvm.compile(case.mod, target=target, relax_pipeline=intelligen_tvm.pipeline(records=records)), tune

    def tuned_metaschedule():
        from intelligen_tvm.benchmark.metaschedule import tune_and_compile  # pylint: disable=import-outside-toplevel

        importlib.import_module("tvm.s_tir.tensor_intrin")   # ~20 s once per process: not its search time
        result = tune_and_compile(case.mod, target, args.trials)
        return result.executable, result.tune_s

    ranker = "the shipped CPU cost model" if args.target == "llvm" else "the analytical prior"
    notes = {"intelligen_tuned": (f"records from {args.intelligen_records}" if args.intelligen_records
                                  else f"{args.trials} trials per region, ranked by {ranker}"),
             "intelligen": ("shipped CPU cost model's pick (untuned)" if args.target == "llvm" and shipped_model("cpu")
                            else "default plan (untuned)"),
             "metaschedule": f"{args.trials} trials per fused region, evolutionary search + XGBoost"}
    dev = case.dev
    run_once = lambda ex: timing.run_vm(ex, dev, case.vm_args)  # noqa: E731
    timer = lambda ex: timing.time_vm(ex, dev, case.vm_args, args.repeat)  # noqa: E731
    builders = {"intelligen_tuned": tuned_intelligen, "intelligen": compiled("intelligen"),
                "tvm_default": compiled("default"), "metaschedule": tuned_metaschedule}
    return {name: (build, run_once, timer, notes.get(name)) for name, build in builders.items()}


def torch_builders(case: Case, args: argparse.Namespace) -> dict:
    torch, reason = try_import_torch()
    if torch is None:
        return {n: reason for n in ("torch_eager", "torch_compile")}
    if args.threads:
        torch.set_num_threads(args.threads)
    made = torch_function(torch, case.name, case.model, case.dims)
    if made is None:
        return {n: "skipped: no torch version" for n in ("torch_eager", "torch_compile")}
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

    return {"torch_eager": (lambda: (fn, None), run_once, timer, None),
            "torch_compile": (compiled, run_once, timer, None)}


def ort_builders(case: Case, args: argparse.Namespace) -> dict:
    if args.target != "llvm":
        return {"onnxruntime": "skipped: the CPU execution provider only (llvm runs)"}
    try:
        import onnxruntime as ort  # pylint: disable=import-outside-toplevel
    except Exception as err:  # pylint: disable=broad-except  # optional contestant
        return {"onnxruntime": f"skipped: `import onnxruntime` failed ({type(err).__name__}: {err})"}
    feed = {i.name: np.ascontiguousarray(a) for i, a in zip(case.model.graph.input, case.inputs)}

    def build():
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(case.model.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"]), None

    return {"onnxruntime": (build, lambda s: list(s.run(None, feed)),
                            lambda s: timing.median_seconds(lambda: s.run(None, feed), lambda: None, args.repeat),
                            f"onnxruntime {ort.__version__}, CPUExecutionProvider")}


def run_contestant(case: Case, name: str, args: argparse.Namespace, target: tvm.target.Target, work: Path) -> dict:
    """One contestant of one case (or "copy": the copy bandwidth of the same bytes)."""
    if name == "copy":
        return timing.copy_bandwidth(target, case.dev, case.ideal, args.repeat)
    if name in ("torch_eager", "torch_compile"):
        made = torch_builders(case, args)[name]
    elif name == "onnxruntime":
        made = ort_builders(case, args)[name]
    else:
        if name in ("intelligen_tuned", "metaschedule") and args.trials <= 0 and not (
                name == "intelligen_tuned" and args.intelligen_records):
            return {"numerics_ok": False, "time_us": None, "status": "skipped: --trials 0"}
        made = tvm_builders(case, args, target, work)[name]
    if isinstance(made, str):
        return {"numerics_ok": False, "time_us": None, "status": made}
    build, run_once, timer, note = made
    return contest(case, build, run_once, timer, note)


def in_worker(case: Case, name: str, args: argparse.Namespace, work: Path) -> dict:
    """`run_contestant` in a fresh process (its thread pools are the only ones alive)."""
    directory = work / case.name
    if not (directory / "case.json").exists():
        case.save(directory)
    out = directory / f"{name}.json"
    cmd = [sys.executable, "-m", "intelligen_tvm.benchmark.compare", "--worker", name, "--case-dir", str(directory),
           "--worker-out", str(out), "--target", args.target, "--trials", str(args.trials),
           "--repeat", str(args.repeat), "--threads", str(args.threads)]
    if args.intelligen_records:
        cmd += ["--intelligen-records", str(args.intelligen_records)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"numerics_ok": False, "time_us": None, "status": f"failed: worker exited {proc.returncode}: {tail[0][:200]}"}
    return json.loads(out.read_text())


def measure(case: Case, args: argparse.Namespace, target: tvm.target.Target, work: Path) -> dict:
    run = (lambda name: in_worker(case, name, args, work)) if args.isolation == "process" else (
        lambda name: run_contestant(case, name, args, target, work))
    contestants = {}
    for name in args.contestants:
        print(f"  {name}", flush=True)
        contestants[name] = run(name)
    copy = run("copy")
    return report.summarize({"case": case.name, "ideal_bytes": case.ideal, "copy": copy,
                             "contestants": contestants})


def worker(args: argparse.Namespace) -> int:
    dev = tvm.device(device_kind(args.target), 0)
    case = Case.load(args.case_dir, dev)
    target = make_target(args.target, dev, args.threads)
    row = run_contestant(case, args.worker, args, target, args.case_dir)
    args.worker_out.write_text(json.dumps(row, default=str))
    return 0


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
    parser.add_argument("--isolation", choices=("process", "none"), default="process",
                        help="time every contestant in a process of its own (default) or all in this one")
    parser.add_argument("--out", type=Path, default=Path("results") / "compare")
    parser.add_argument("--plot", action="store_true", help="write fraction_of_copy.png and speedup.png")
    parser.add_argument("--worker", help=argparse.SUPPRESS)        # internal: run one contestant
    parser.add_argument("--case-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)


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
    dev = tvm.device(device_kind(args.target), 0)
    if not dev.exist:
        print(f"error: --target {args.target} needs a {args.target} device and none exists here", file=sys.stderr)
        return 2
    # Every contestant gets the same threads.  TVM's pool reads TVM_NUM_THREADS when it starts
    # (first parallel kernel); unset, it takes half the logical CPUs on x86 (it assumes
    # hyper-threads): one thread on a 2-core machine while ONNX Runtime and torch use both.
    args.threads = args.threads or os.cpu_count() or 1
    os.environ["TVM_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.worker:
        return worker(args)
    target = make_target(args.target, dev, args.threads)
    notes = list(NOTES[args.target]) + [ISOLATION_NOTE[args.isolation]]
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
            rows.append(measure(case, args, target, Path(tmp)))
        if args.with_bert:
            progress(len(names), total, "bert_encoder_layer")
            print("[bert_encoder_layer]", flush=True)
            dims = suite.bert_encoder_dims(small=args.small)
            inputs = suite.make_inputs_from_specs(suite.bert_encoder_input_specs(), dims, rng)
            case = Case("bert_encoder_layer", suite.bert_encoder_layer(small=args.small), inputs, dict(dims), dev)
            rows.append(measure(case, args, target, Path(tmp)))
    progress(total, total, "done")
    versions = {"tvm": tvm.__version__, "numpy": np.__version__, "python": platform.python_version()}
    for module in ("torch", "onnxruntime"):
        try:
            versions[module] = importlib.import_module(module).__version__
        except Exception:  # pylint: disable=broad-except  # optional contestants
            versions[module] = None
    meta = {
        "device": device_name(dev), "driver": driver(dev, args.target), "target": json.loads(str(target)),
        "versions": versions,
        "git_commit": commit, "command": command.strip(),
        "settings": {"small": args.small, "threads": args.threads, "repeat": args.repeat, "trials": args.trials, "cases": names,
                     "with_bert": args.with_bert, "contestants": args.contestants, "isolation": args.isolation,
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
        threads = f", {meta['settings']['threads']} threads" if args.target == "llvm" else ""
        report.plot(rows, args.out, f"{args.target}: {meta['device']}{threads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
