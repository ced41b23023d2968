"""Bring a campaign's results home: records into the database, the cost model retrained, the
summary table and plots written, and the README's GPU section regenerated between its markers."""

from __future__ import annotations

import json
import os
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..benchmark import report
from ..cost_model.records import Record
from ..cost_model import retrain
from ..tuning import ingest_tuning_bundle
from . import runner

BEGIN, END = "<!-- gpu-results:begin -->", "<!-- gpu-results:end -->"
OURS = ("intelligen", "intelligen_prior")
BASELINES = ("tvm_default", "torch_eager", "torch_compile")


def load(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bundle's manifest and the runner's results (raises if the runner never wrote any)."""
    manifest = json.loads((directory / runner.MANIFEST_NAME).read_text())
    path = directory / runner.RESULTS_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path}: run `python {directory}/campaign_runner.py {directory}` on the GPU host")
    return manifest, json.loads(path.read_text())


def ingest_records(directory: Path, manifest: dict[str, Any], records: Path) -> list[Record]:
    """Every measured candidate of every case as a record (``ingest_tuning_bundle``)."""
    new: list[Record] = []
    for case in manifest["cases"]:
        tuning = directory / case["dir"] / (case.get("tuning") or "")
        if case.get("tuning") and (tuning / "results.json").exists():
            new += ingest_tuning_bundle(tuning, manifest["target"], str(records))
    return new


def best_candidates(directory: Path, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per case: measured/failed/disagreeing counts and the fastest agreeing candidate's median."""
    out = {}
    for case in manifest["cases"]:
        path = directory / case["dir"] / (case.get("tuning") or "") / "results.json"
        if not case.get("tuning") or not path.exists():
            continue
        results = json.loads(path.read_text())["results"]
        good = [statistics.median(r["times_us"]) for r in results
                if r.get("error") is None and r.get("times_us") and r.get("agrees", True)]
        out[case["name"]] = {"total": case.get("candidates", 0), "measured": len(results),
                             "failed": sum(r.get("error") is not None for r in results),
                             "disagree": sum(r.get("agrees") is False for r in results),
                             "best_us": min(good) if good else None}
    return out


def rows(directory: Path, manifest: dict[str, Any], results: dict[str, Any]) -> list[dict[str, Any]]:
    """One summarized row per case (``benchmark.report`` format): times, fraction of copy,
    best baseline and our speedups."""
    copy = results.get("copy") or {}
    cands = best_candidates(directory, manifest)
    out = []
    for case in manifest["cases"]:
        got = (results.get("cases") or {}).get(case["name"])
        if got is None:
            continue
        contestants = {}
        for name, c in got["contestants"].items():
            c = dict(c)
            c["gbps"] = case["ideal_bytes"] / (c["time_us"] * 1e-6) / 1e9 if c.get("time_us") else None
            contestants[name] = c
        row = {"case": case["name"], "ideal_bytes": case["ideal_bytes"],
               "copy": {"copy_gbps": copy.get("copy_gbps") or float("nan")},
               "contestants": contestants, "candidates": cands.get(case["name"])}
        out.append(report.summarize(row, OURS) if copy.get("copy_gbps") else {**row, "best_baseline": None,
                                                                               "speedup_vs_best_baseline": {}})
    return out


def _time(c: dict | None) -> str:
    if not c:
        return "-"
    if c.get("time_us") is None:
        return (c.get("status") or "no time").split(":")[0]
    frac = c.get("fraction_of_copy")
    text = f"{c['time_us']:.1f}" + (f" ({frac:.0%})" if frac else "")
    return text + (f", compile {c['compile_s']:.0f} s" if c.get("compile_s") is not None else "")


def markdown(manifest: dict[str, Any], results: dict[str, Any], table: list[dict[str, Any]]) -> str:
    """The README section's body."""
    dev, host, torch = results.get("device") or {}, results.get("host") or {}, results.get("torch") or {}
    copy = results.get("copy") or {}
    lines = [
        f"Device: **{dev.get('name', '?')}** (compute {dev.get('compute_version', '?')}, "
        f"{dev.get('multi_processor_count', '?')} SMs), CUDA driver {host.get('cuda_driver_version', '?')}, "
        f"torch {torch.get('version', 'absent')}, Python {host.get('python', '?')}; TVM {manifest.get('tvm')} "
        f"runtime-only from the bundle ({'yes' if (results.get('tvm_runtime') or {}).get('from_bundle') else 'NO'}); "
        f"run {results.get('elapsed_s', 0):.0f} s of a {results.get('budget_s', 0):.0f} s budget"
        f"{'' if results.get('finished') else ', DID NOT FINISH'}. Copy: {copy.get('copy_gbps', float('nan')):.0f} GB/s.",
        "",
        "Median microseconds (fraction of the copy bandwidth); only outputs that matched the "
        "`onnx.reference` samples have a time. `intelligen` = default plan, `intelligen_prior` = the "
        "analytical prior's pick (no GPU-trained model existed when the bundle was built); best "
        "candidate = fastest measured candidate kernel (one call, L2 flushed: not the same timing as "
        "the whole-model columns); speedups over the best of TVM default / torch eager / torch.compile.",
        "",
        "| case | ideal MB | intelligen | intelligen_prior | tvm_default | torch_eager | torch_compile "
        "| best candidate | candidates measured (failed, disagree) / total | speedup intelligen | speedup prior |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table:
        c, cand = r["contestants"], r.get("candidates") or {}
        best = f"{cand['best_us']:.1f}" if cand.get("best_us") else "-"
        counts = (f"{cand['measured']} ({cand['failed']}, {cand['disagree']}) / {cand['total']}" if cand else "-")
        speed = [f"{r['speedup_vs_best_baseline'][k]:.2f}x" if k in r["speedup_vs_best_baseline"] else "-" for k in OURS]
        lines.append(f"| {r['case']} | {r['ideal_bytes'] / 1e6:.1f} | " + " | ".join(
            _time(c.get(k)) for k in (*OURS, *BASELINES)) + f" | {best} | {counts} | " + " | ".join(speed) + " |")
    geo = report.geomean_speedups(table, OURS)
    lines += ["", "Geomean speedup over the best baseline: "
              + (", ".join(f"{k} {v:.2f}x" for k, v in geo.items()) or "none")]
    bad = [f"{r['case']}/{k}" for r in table for k, c in r["contestants"].items() if not c.get("numerics_ok")]
    lines.append("Numerics or run failures: " + (", ".join(bad) if bad else "none"))
    if results.get("errors"):
        lines.append("Runner errors: " + "; ".join(str(e)[:200] for e in results["errors"]))
    if results.get("cut"):
        lines.append("Cut by the runner's deadline: " + "; ".join(results["cut"]))
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, body: str) -> None:
    """Replace what lies between the markers (appended as a new section when there are none)."""
    text = readme.read_text() if readme.exists() else ""
    block = f"{BEGIN}\n{body}{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## GPU campaign results\n\n" + block + "\n"
    readme.write_text(text)


def merge_results(directory: Path, results: Path) -> int:
    """Copy the result files a run brought back (``--results-out``) into the bundle."""
    copied = 0
    for path in sorted(results.rglob(runner.RESULTS_NAME)):
        dest = directory / path.relative_to(results)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        copied += 1
    return copied


def ingest(directory: Path, out: Path, readme: Path | None, records: Path | None = None,
           model: Path | None = None, plot: bool = True, results_dir: Path | None = None,
           log: Callable[[str], None] = print) -> dict[str, Any]:
    """Records, retrained model, ``out/{results.json,results.md,*.png}`` and the README section.
    ``results_dir``: where the run's result files came back to, if not into the bundle itself."""
    if results_dir is not None and results_dir.resolve() != directory.resolve():
        log(f"{merge_results(directory, results_dir)} result files merged from {results_dir}")
    manifest, results = load(directory)
    out.mkdir(parents=True, exist_ok=True)
    records = records or out / "records.jsonl"
    new = ingest_records(directory, manifest, records)
    log(f"{len(new)} records appended to {records}")
    trained = False
    if new:
        model = model or out / "cost_model.json"
        trained = retrain.main(["--records", str(records), "--out", str(model)]) == 0
    table = rows(directory, manifest, results)
    body = markdown(manifest, results, table)
    (out / "results.json").write_text(json.dumps({"manifest": {k: v for k, v in manifest.items() if k != "cases"},
                                                  "device_results": results, "rows": table}, indent=1, default=str))
    (out / "results.md").write_text(body)
    plots = []
    if plot and table:
        title = f"{manifest['target']['kind']}: {(results.get('device') or {}).get('name', '?')}"
        plots = report.plot(table, out, title, OURS)
        where = Path(os.path.relpath(out, readme.parent)) if readme is not None else out
        body += "\n" + "\n".join(f"![{p}]({where.as_posix()}/{p})" for p in plots) + "\n"
    if readme is not None:
        update_readme(readme, body)
    return {"records": len(new), "model": str(model) if trained else None, "rows": len(table), "plots": plots}
