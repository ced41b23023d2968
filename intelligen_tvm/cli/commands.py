"""The subcommands: each is (summary, add_arguments, run)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from . import EXIT_FAILED, EXIT_INPUT, EXIT_MISSING_TOOL, TARGET_HELP, CliError, parse_target
from ..progress import count, progress


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:300]}" if text else type(err).__name__


def _stage(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---- shared arguments ----------------------------------------------------------------------


def _add_model_and_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--target", required=True, help=TARGET_HELP)


def _add_choice(p: argparse.ArgumentParser) -> None:
    p.add_argument("--records", help="measurement records (JSONL, from `tune`): compile the fastest measured plans")
    p.add_argument("--cost-model", help="a trained cost model (from `retrain`) that ranks each region's candidates")


def load_model(path: str):
    """The ONNX file as a Relax module; missing, unreadable and unimportable files are input errors."""
    import onnx  # pylint: disable=import-outside-toplevel

    from ..frontend import from_onnx  # pylint: disable=import-outside-toplevel

    if not Path(path).is_file():
        raise CliError(f"model not found: {path}")
    try:
        model = onnx.load(path)
    except Exception as err:  # pylint: disable=broad-except  # protobuf raises several kinds
        raise CliError(f"{path} is not a readable ONNX model ({_first_line(err)})") from err
    try:
        return from_onnx(model)
    except Exception as err:  # pylint: disable=broad-except  # TVM's importer raises several kinds
        raise CliError(f"TVM's ONNX importer rejected {path} ({_first_line(err)}); see the README's "
                       "export advice (torch.onnx.export(..., dynamo=True) or intelligen_tvm.from_torch)") from err


def load_cost_model(path: str | None):
    """The trained model at `path` (None: none given)."""
    from ..cost_model.model import CostModel  # pylint: disable=import-outside-toplevel

    if path is None:
        return None
    if not Path(path).is_file():
        raise CliError(f"cost model not found: {path}")
    try:
        return CostModel.load(path)
    except Exception as err:  # pylint: disable=broad-except  # xgboost raises its own kinds
        raise CliError(f"{path} is not a cost model ({_first_line(err)})") from err


def make_chooser(args: argparse.Namespace, target):
    """How each region's plan is chosen: records, else the cost model, else the default plan."""
    from ..tuning import RecordChooser  # pylint: disable=import-outside-toplevel

    model = load_cost_model(args.cost_model)
    try:
        return RecordChooser(args.records, model, target=target)
    except FileNotFoundError as err:
        raise CliError(str(err)) from err


class CountingChooser:
    """Shows the regions as they are planned: a bar when their number is known (the build after
    the report), else a count (while regions are being selected)."""

    def __init__(self, inner: Callable, total: int | None, show: bool):
        self.inner, self.total, self.show, self.done = inner, total, show, 0

    def __call__(self, kernel, shell, hw):
        if self.show and self.total:
            progress(min(self.done, self.total), self.total, f"lowering {shell.name}")
        elif self.show and self.total is None:
            count(self.done + 1, "regions planned")
        self.done += 1
        return self.inner(kernel, shell, hw)

    def finish(self) -> None:
        if self.show and self.total is None and self.done and sys.stderr.isatty():
            sys.stderr.write("\n")


def _summary(report: dict) -> dict:
    regions = report["regions"]
    taken = [r for r in regions if r["handled_by"] == "intelligen"]
    return {"regions": len(regions), "intelligen": len(taken), "fallback": len(regions) - len(taken),
            "dram_bytes_planned": sum(r["dram_bytes_planned"] for r in taken),
            "dram_bytes_naive": sum(r["dram_bytes_naive"] for r in taken)}


def _region_line(r: dict) -> str:
    ops = " + ".join(r["ops"])
    if r["handled_by"] != "intelligen":
        return f"  {r['name']}  fallback ({r['reason']})  ops: {ops}"
    return (f"  {r['name']}  intelligen  {r['strategy']['kind']}  DRAM planned {r['dram_bytes_planned']} "
            f"(naive {r['dram_bytes_naive']})  kernels {r['kernels']}  ops: {ops}")


def prepare_toolchain(target) -> None:
    """rocm builds link with our lld-22 and device bitcode (see targets/rocm_toolchain.py)."""
    if target.kind.name != "rocm":
        return
    from ..targets import rocm_toolchain  # pylint: disable=import-outside-toplevel

    try:
        rocm_toolchain.activate()
    except rocm_toolchain.ToolchainMissing as err:
        raise CliError(str(err), EXIT_MISSING_TOOL) from err


# ---- compile -------------------------------------------------------------------------------


def add_compile(p: argparse.ArgumentParser) -> None:
    _add_model_and_target(p)
    _add_choice(p)
    p.add_argument("-o", "--output", help="the compiled library (default: MODEL's name with .so, here)")
    p.add_argument("--report", help="write the region report (JSON) here")
    p.add_argument("--quiet", action="store_true", help="no progress and no region list")


def run_compile(args: argparse.Namespace, _argv: list[str]) -> int:
    import tvm  # pylint: disable=import-outside-toplevel

    from ..relax_integration import explain, intelligen_pipeline  # pylint: disable=import-outside-toplevel

    target = parse_target(args.target)
    show = not args.quiet
    if show:
        _stage(f"importing {args.model}")
    mod = load_model(args.model)
    choose = make_chooser(args, target)
    if show:
        _stage("selecting regions")
    selecting = CountingChooser(choose, None, show)
    report = explain(mod, target, choose=selecting)
    selecting.finish()
    summary = _summary(report)
    if show:
        _stage(f"{summary['regions']} regions: {summary['intelligen']} by intelligen, "
               f"{summary['fallback']} left to TVM")
        for r in report["regions"]:
            _stage(_region_line(r))
    counting = CountingChooser(choose, summary["intelligen"], show)
    prepare_toolchain(target)
    try:
        executable = tvm.compile(mod, target=target, relax_pipeline=intelligen_pipeline(counting))
    except Exception as err:  # pylint: disable=broad-except  # TVM's build: report, do not trace
        raise CliError(f"TVM build failed ({_first_line(err)})", EXIT_FAILED) from err
    if show and summary["intelligen"]:
        progress(summary["intelligen"], summary["intelligen"], "lowered")
    output = Path(args.output or Path(args.model).with_suffix(".so").name)
    try:
        executable.export_library(str(output))
    except Exception as err:  # pylint: disable=broad-except
        raise CliError(f"writing {output} failed ({_first_line(err)})", EXIT_FAILED) from err
    if show:
        _stage(f"wrote {output}")
    if args.report:
        document = {"model": str(args.model), "target": json.loads(str(target)), "output": str(output),
                    "summary": summary, "regions": report["regions"]}
        Path(args.report).write_text(json.dumps(document, indent=1))
        if show:
            _stage(f"wrote {args.report}")
    return 0


# ---- inspect -------------------------------------------------------------------------------


def add_inspect(p: argparse.ArgumentParser) -> None:
    _add_model_and_target(p)
    _add_choice(p)
    p.add_argument("--region", help="print the GIR of this region (its number or name)")
    p.add_argument("--source", action="store_true", help="with --region: also the kernel's TVMScript (and CUDA C on cuda)")
    p.add_argument("--picture", metavar="DIR", help="draw each region's dataflow graph into DIR (needs Graphviz's dot)")
    p.add_argument("--format", choices=("svg", "png"), default="svg", help="picture format (default svg)")
    p.add_argument("--no-ptxas", action="store_true", help="cuda: skip building each kernel for nvcc -Xptxas -v")
    p.add_argument("--json", metavar="FILE", help="write everything shown as JSON")


def _find_region(details: list, key: str):
    for n, d in enumerate(details):
        if key in (str(n), d.name):
            return d
    raise CliError(f"--region {key}: no such region (0..{len(details) - 1} or a name)")


def _ptxas(details: list, target) -> dict[str, object]:
    from ..inspection import cuda_source, ptxas_report  # pylint: disable=import-outside-toplevel

    arch = str(target.attrs.get("arch") or "sm_90")
    taken = [d for d in details if d.handled]
    found: dict[str, object] = {}
    for n, d in enumerate(taken):
        progress(n, len(taken), f"ptxas {d.name}")
        try:
            result = ptxas_report(cuda_source(d, target), arch)
        except Exception as err:  # pylint: disable=broad-except  # one region's build: say so, go on
            result = f"building the CUDA source failed ({_first_line(err)})"
        found[d.name] = result if isinstance(result, str) else [k.describe() for k in result]
    if taken:
        progress(len(taken), len(taken), "ptxas")
    return found


def run_inspect(args: argparse.Namespace, _argv: list[str]) -> int:
    from .. import targets  # pylint: disable=import-outside-toplevel
    from ..inspection import cuda_source, kernel_source, region_details  # pylint: disable=import-outside-toplevel

    target = parse_target(args.target)
    mod = load_model(args.model)
    report, details = region_details(mod, target, make_chooser(args, target))
    chosen = _find_region(details, args.region) if args.region is not None else None
    ptxas = _ptxas(details, target) if target.kind.name == "cuda" and not args.no_ptxas else {}
    print(f"{args.model} for {target.kind.name}: {len(details)} regions")
    for n, d in enumerate(details):
        r = d.report
        print(f"[{n}] {r['name']}: {' + '.join(r['ops'])}")
        if not d.handled:
            print(f"    fallback: {r['reason']}")
            continue
        ideal, naive, planned = r["dram_bytes_ideal"], r["dram_bytes_naive"], r["dram_bytes_planned"]
        print(f"    intelligen, {r['kernels']} kernel(s); plan {d.program.kernels[0].strategy}")
        ratio = f" ({planned / ideal:.2f}x ideal, naive {naive / planned:.2f}x planned)" if ideal and planned else ""
        print(f"    DRAM bytes: ideal {ideal}, naive {naive}, planned {planned}{ratio}")
        found = ptxas.get(d.name, [])
        if isinstance(found, str):
            print(f"    ptxas: {found}")
            continue
        for k in found:
            print(f"    ptxas {k['kernel']}: {k['threads']} threads, {k['registers']} registers, spills "
                  f"{k['spill_stores']}/{k['spill_loads']} B (store/load), smem {k['smem_bytes']} B, "
                  f"occupancy {k['occupancy']:.0%}")
    if chosen is not None:
        if not chosen.handled:
            raise CliError(f"{chosen.name} was left to TVM ({chosen.report['reason']}): it has no GIR", EXIT_INPUT)
        print()
        print(chosen.program.text())
        if args.source and targets.renders_tir(target.kind.name):
            print()
            print(kernel_source(chosen, target))
            if target.kind.name == "cuda":
                print()
                print(cuda_source(chosen, target))
    if args.json:
        doc = {"model": args.model, "target": json.loads(str(target)), "regions": report["regions"],
               "ptxas": ptxas}
        if chosen is not None:
            doc["gir"] = {chosen.name: chosen.program.text()}
        Path(args.json).write_text(json.dumps(doc, indent=1))
    if args.picture:
        _pictures(details, args.picture, args.format)
    return 0


def _pictures(details: list, directory: str, fmt: str) -> None:
    from ..picture import GraphvizMissing, write_region_pictures  # pylint: disable=import-outside-toplevel

    try:
        written = write_region_pictures(details, directory, fmt)
    except GraphvizMissing as err:
        raise CliError(str(err), EXIT_MISSING_TOOL) from err
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"no region was taken by intelligen: no picture in {directory}")


# ---- tune ----------------------------------------------------------------------------------


def add_tune(p: argparse.ArgumentParser) -> None:
    _add_model_and_target(p)
    p.add_argument("--records", default="intelligen_records.jsonl", help="append measurements here (JSONL)")
    p.add_argument("--trials", type=int, default=32, help="candidates measured per region (default 32)")
    p.add_argument("--cost-model", help="rank candidates with this trained model instead of the analytical prior")
    p.add_argument("--bundle", metavar="DIR", help="no device here: write a tuning bundle to run on the device host")
    p.add_argument("--ingest", metavar="DIR", help="turn a bundle that ran on the device host into records")


def run_tune(args: argparse.Namespace, _argv: list[str]) -> int:
    import tvm  # pylint: disable=import-outside-toplevel

    from .. import targets  # pylint: disable=import-outside-toplevel
    from ..cost_model.measure import device_kind  # pylint: disable=import-outside-toplevel
    from ..tuning import export_tuning_bundle, ingest_tuning_bundle, tune  # pylint: disable=import-outside-toplevel

    target = parse_target(args.target)
    if not targets.renders_tir(target.kind.name):
        raise CliError(f"cannot tune for {target.kind.name}: intelligen renders {', '.join(sorted(targets.DIALECTS))}")
    if args.ingest:
        if not Path(args.ingest).is_dir():
            raise CliError(f"bundle not found: {args.ingest}")
        new = ingest_tuning_bundle(args.ingest, target, args.records)
        print(f"{len(new)} records appended to {args.records}")
        return 0
    mod = load_model(args.model)
    model = load_cost_model(args.cost_model)
    if args.bundle:
        path = export_tuning_bundle(mod, target, args.bundle, trials=args.trials, model=model)
        print(f"wrote {path}: on the device host run `python {path}/bundle_runner.py {path} --device "
              f"{target.kind.name}`, bring it back and run `intelligen-tvm tune {args.model} --target "
              f"{args.target} --ingest {path} --records {args.records}`")
        return 0
    if not tvm.runtime.device(device_kind(target), 0).exist:
        raise CliError(f"no {target.kind.name} device on this machine: tune where it is, or use --bundle DIR",
                       EXIT_MISSING_TOOL)
    prepare_toolchain(target)
    best = tune(mod, target, trials=args.trials, records=args.records, model=model)
    print(f"{len(best)} regions tuned; records in {args.records}")
    print(f"compile with them: intelligen-tvm compile {args.model} --target {args.target} --records {args.records}")
    return 0


# ---- bench and retrain: the comparison and retraining jobs -----------------------------------


def add_bench(p: argparse.ArgumentParser) -> None:
    from ..benchmark import compare  # pylint: disable=import-outside-toplevel

    compare.add_arguments(p)
    p.set_defaults(subparser=p)


def run_bench(args: argparse.Namespace, argv: list[str]) -> int:
    import tvm  # pylint: disable=import-outside-toplevel

    from ..benchmark import compare  # pylint: disable=import-outside-toplevel
    from ..cost_model.target_kinds import device_kind  # pylint: disable=import-outside-toplevel

    args = compare.check_arguments(args.subparser, args)
    dev = tvm.device(device_kind(args.target), 0)
    if not dev.exist:
        raise CliError(f"--target {args.target} needs a {args.target} device and none exists here", EXIT_MISSING_TOOL)
    return compare.run(args, "intelligen-tvm " + " ".join(argv))


def add_retrain(p: argparse.ArgumentParser) -> None:
    from ..cost_model import retrain  # pylint: disable=import-outside-toplevel

    retrain.add_arguments(p)


def run_retrain(args: argparse.Namespace, _argv: list[str]) -> int:
    from ..cost_model import retrain  # pylint: disable=import-outside-toplevel

    return retrain.run(args)


COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "compile": ("compile an ONNX model to a library, with a region report", add_compile, run_compile),
    "inspect": ("show what the compiler did per region: plan, DRAM traffic, kernels, GIR, pictures",
                add_inspect, run_inspect),
    "tune": ("measure each region's best candidates on the target's device and keep records", add_tune, run_tune),
    "bench": ("compare IntelliGen with TVM, MetaSchedule and PyTorch on the suite (the comparison job)",
              add_bench, run_bench),
    "retrain": ("retrain the cost model from records and report its held-out quality", add_retrain, run_retrain),
}
