"""Command line of the GPU campaign (``scripts/gpu_campaign.py``)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from . import build, ingest, rehearse, runner

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def _names(text: str) -> list[str] | None:
    names = [n.strip() for n in text.split(",") if n.strip()]
    return names or None


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu_campaign.py", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compile the bundle (no GPU needed)")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--target", choices=sorted(build.TARGETS), default="cuda")
    b.add_argument("--small", action="store_true", help="small shapes")
    b.add_argument("--cases", default="", help="comma-separated cases (default: every suite case + BERT)")
    b.add_argument("--trials", type=int, default=64, help="candidates per region (the prior's best)")
    r = sub.add_parser("run", help="on the GPU machine (same as python DIR/campaign_runner.py DIR)")
    r.add_argument("directory", type=Path)
    r.add_argument("rest", nargs=argparse.REMAINDER, help="runner options (--budget-s, --results-out, ...)")
    i = sub.add_parser("ingest", help="records, retrained model, README section and plots")
    i.add_argument("directory", type=Path)
    i.add_argument("--results", type=Path, default=None, help="where the run's result files came back to")
    i.add_argument("--out", type=Path, default=ROOT / "results" / "gpu_campaign")
    i.add_argument("--readme", type=Path, default=ROOT / "README.md")
    i.add_argument("--records", type=Path, default=None, help="default: OUT/records.jsonl")
    i.add_argument("--model", type=Path, default=None, help="default: OUT/cost_model.json")
    i.add_argument("--no-plot", action="store_true")
    h = sub.add_parser("rehearse", help="build + run with the CPU standing in, and the real run's estimate")
    h.add_argument("--work", type=Path, default=None, help="default: a temporary directory")
    h.add_argument("--cases", default="", help="comma-separated cases (default: every suite case + BERT)")
    h.add_argument("--trials", type=int, default=8, help="candidates per region in the rehearsal")
    h.add_argument("--python", default=sys.executable, help="the interpreter that plays the GPU machine's")
    h.add_argument("--full-bundle", type=Path, default=ROOT / "artifacts" / "gpu_campaign",
                   help="a full sm_90 bundle built by `build` (measured when present, else estimated)")
    h.add_argument("--budget-s", type=float, default=300.0)
    h.add_argument("--no-estimate", action="store_true",
                   help="skip the real bundle's size and device-time estimate (minutes on 2 cores)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.command == "build":
        manifest = build.build_bundle(args.out, args.target, small=args.small, cases=_names(args.cases),
                                      trials=args.trials)
        for line in manifest["runtime"]["missing"]:
            print(f"missing from the bundle (the device must have it): {line}")
        n = sum(c.get("candidates", 0) for c in manifest["cases"])
        est = rehearse.estimate_device_seconds(manifest["cases"])
        print(f"{args.out}: {len(manifest['cases'])} cases, {n} candidates, built in "
              f"{manifest['build']['seconds']:.0f} s; estimated device run {est['total_s']:.0f} s")
        print(f"bundle size: {manifest['bytes'] / MIB:.1f} MiB ({manifest['bytes']} bytes)")
        return 0 if manifest["bytes"] <= rehearse.LIMIT_BYTES else 1
    if args.command == "run":
        return runner.main([str(args.directory), *args.rest])
    if args.command == "ingest":
        summary = ingest.ingest(args.directory, args.out, args.readme, args.records, args.model,
                                plot=not args.no_plot, results_dir=args.results)
        print(summary)
        return 0
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        return rehearse.rehearse(args.work, _names(args.cases), args.trials, args.python, args.full_bundle,
                                 ROOT / "README.md", args.budget_s,
                                 estimate=not args.no_estimate)
    with tempfile.TemporaryDirectory(prefix="gpu_campaign_rehearsal_") as tmp:
        return rehearse.rehearse(Path(tmp), _names(args.cases), args.trials, args.python, args.full_bundle,
                                 ROOT / "README.md", args.budget_s,
                                 estimate=not args.no_estimate)
