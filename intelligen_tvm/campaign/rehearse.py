"""Rehearse the GPU campaign without a GPU, and estimate what the real run will cost.

The rehearsal builds the bundle for llvm at small shapes, runs ``campaign_runner.py`` in a clean
subprocess with the CPU as the device (the same code path: the bundle's runtime-only TVM
unpacked from its tarball, none of this package, the installed TVM hidden behind the bundle's),
checks what came back (numerics of every executable, every candidate measured and agreeing,
the runtime really the bundle's and without the compiler library) and ingests it into a
scratch records file, model and README copy.

The real bundle (every suite case and the BERT layer, full shapes, sm_90) is built by ``build``
(tens of minutes on a 2-core machine: TVMScript parsing of ~1000 candidates and nvcc). When one
exists, its size and candidate counts are used; otherwise the size is extrapolated from a small
sm_90 sample and the counts are enumerated at full shapes (no rendering).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tvm

from .. import targets
from ..cost_model.bundle import PACKED_NAME as PACKED
from ..cost_model.ranking import rank
from ..dataflow_graph.choices import enumerate_candidates
from ..frontend import from_onnx
from ..tuning import collect_regions
from . import build, ingest, runner

MIB = 1 << 20
LIMIT_BYTES = 60 * MIB
RUN_BUDGET_S = 480.0
# What the estimate assumes about the GPU host (no GPU has been available to measure them):
ASSUMED = {
    "startup_s": 30.0,             # interpreter, torch import, CUDA context, unpacking
    "dram_gbps": 3000.0,           # H100 SXM 3.35 TB/s, H200 4.8 TB/s: below both
    "candidate_efficiency": 0.25,  # a poor candidate reaches a quarter of that
    "host_gbps": 5.0,              # pageable host<->device copies, numpy sampling
    "launch_s": 0.003,             # per candidate: function look-up, time evaluator set-up
    "flush_s": 1e-4,               # L2 flush before each repeat
    "whole_model_s": 0.25,         # per executable: run, check, warm-up, 10 repeats of ~10 ms
    "torch_compile_s": 12.0,       # per case, default mode, Inductor + Triton compile
    "copy_s": 2.0,
}


# ---------------------------------------------------------------------------------------------
# Counts and estimates


def full_counts(trials: int, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Per case at full shapes for sm_90: the candidates the bundle would hold (top ``trials``
    per region by the prior) with their planned DRAM bytes, and the case's element count."""
    target = tvm.target.Target(build.TARGETS["cuda"])
    hw = targets.hardware_model(target)
    out = []
    for case in build.case_models(small=False, names=names):
        model, weights = build.externalize_weights(case.model)
        dram = []
        for region in collect_regions(from_onnx(model), target):
            ranked = rank(enumerate_candidates(region.kernel, region.shell, hw), hw)[:trials]
            dram += [f.get("dram_bytes", 0.0) for _, f in ranked]
        elements = sum(int(np.prod(s["shape"])) for s in case.inputs + weights)
        out.append({"name": case.name, "candidate_dram_bytes": dram, "elements": elements,
                    "torch": True})
    return out


def draw_ns_per_element() -> float:
    """``runner.make_array`` speed on this machine (the GPU host's CPU is likely faster)."""
    n = 1 << 22
    start = time.perf_counter()
    runner.make_array({"shape": [n]}, 1)
    return (time.perf_counter() - start) / n * 1e9


def estimate_device_seconds(cases: list[dict[str, Any]], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Seconds the runner needs for everything in ``cases`` (manifest entries or ``full_counts``),
    under ``ASSUMED``; the runner's own budget cuts torch.compile and late candidate tiers first."""
    settings = settings or {"repeat": 20, "warmup": 2}
    a = ASSUMED
    draw_ns = draw_ns_per_element()
    per_repeat = int(settings["repeat"]) + int(settings["warmup"])
    cases_s = candidates_s = 0.0
    n_candidates = 0
    for case in cases:
        elements = case.get("elements") or sum(int(np.prod(s["shape"])) for s in case["inputs"] + case["weights"])
        draw_s = elements * draw_ns * 1e-9  # drawn once per case
        cases_s += draw_s + 2 * 4 * elements / (a["host_gbps"] * 1e9) + 4 * a["whole_model_s"]
        for dram in case.get("candidate_dram_bytes", []):
            kernel_s = dram / (a["dram_gbps"] * 1e9 * a["candidate_efficiency"])
            check_s = 2 * dram / (a["host_gbps"] * 1e9)
            candidates_s += per_repeat * (kernel_s + a["flush_s"]) + check_s + a["launch_s"]
            n_candidates += 1
    torch_compile_s = a["torch_compile_s"] * sum(1 for c in cases if c.get("torch"))
    total = a["startup_s"] + cases_s + a["copy_s"] + candidates_s + torch_compile_s
    return {"total_s": total, "startup_s": a["startup_s"], "cases_s": cases_s, "candidates_s": candidates_s,
            "candidates": n_candidates, "torch_compile_s": torch_compile_s, "copy_s": a["copy_s"],
            "draw_ns_per_element_here": draw_ns, "assumed": dict(a), "budget_s": RUN_BUDGET_S}


def full_bundle_facts(full: Path | None, log: Callable[[str], None], trials: int = 64,
                      sample_trials: int = 8) -> dict[str, Any]:
    """Size and device-time estimate of the real bundle: measured when ``full`` holds one,
    otherwise extrapolated from a small sm_90 sample of one case (compressed bytes per
    candidate and per case's executables, the runtime as packed) and full-shape counts."""
    manifest_path = full / runner.MANIFEST_NAME if full else None
    if manifest_path is not None and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("device_kind") == "cuda" and not manifest.get("small"):
            settings = _first_settings(full, manifest)
            return {"source": f"built: {full}", "bytes": build.directory_bytes(full),
                    "estimate": estimate_device_seconds(manifest["cases"], settings)}
    log("no full sm_90 bundle here: extrapolating (`python scripts/gpu_campaign.py build --out DIR` builds it)")
    counts = full_counts(trials)
    with tempfile.TemporaryDirectory(prefix="campaign_sample_") as tmp:
        sample = build.build_bundle(Path(tmp) / "sample", "cuda", small=True, cases=["softmax"], with_bert=False,
                                    trials=sample_trials, log=lambda m: None)
        sizes = _sample_sizes(Path(tmp) / "sample", sample)
    n = sum(len(c["candidate_dram_bytes"]) for c in counts)
    total = sizes["fixed"] + len(counts) * sizes["per_case"] + n * sizes["per_candidate"]
    return {"source": f"estimated: {n} candidates x {sizes['per_candidate'] / 1024:.1f} KiB + {len(counts)} cases x "
                      f"{sizes['per_case'] / 1024:.0f} KiB + {sizes['fixed'] / MIB:.1f} MiB runtime and runner "
                      "(compressed sizes of a small-shape softmax sm_90 sample)",
            "bytes": int(total), "estimate": estimate_device_seconds(counts)}


def _sample_sizes(directory: Path, manifest: dict[str, Any]) -> dict[str, float]:
    """Compressed bytes of a one-case sample bundle, split into what scales with candidates,
    with cases, and neither."""
    deflated = manifest["build"]["binaries"]["deflated_by_file"]
    owners = manifest["build"]["fatbins_by_owner"]
    case = manifest["cases"][0]
    tuning = directory / case["dir"] / case["tuning"]
    per_candidate = (sum(deflated[f] for f in set(owners.get("candidates", [])))
                     + deflated[f"{case['dir']}/{case['tuning']}/{PACKED}"]
                     + sum(p.stat().st_size for p in tuning.glob("*.json"))) / case["candidates"]
    exec_files = [f"{case['dir']}/{f}" for f in case["executables"].values()]
    exec_fatbins = set(owners.get("executables", [])) - set(owners.get("candidates", []))
    per_case = (sum(deflated[f] for f in exec_files) + sum(deflated[f] for f in exec_fatbins)
                + sum(p.stat().st_size for p in (directory / case["dir"]).glob("*.npz")))
    fixed = manifest["bytes"] - per_candidate * case["candidates"] - per_case
    return {"per_candidate": per_candidate, "per_case": per_case, "fixed": max(0.0, fixed)}


def _first_settings(directory: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    for case in manifest["cases"]:
        if case.get("tuning"):
            return json.loads((directory / case["dir"] / case["tuning"] / "manifest.json").read_text())["settings"]
    return None


# ---------------------------------------------------------------------------------------------
# The rehearsal


def clean_env(threads: int) -> dict[str, str]:
    """What the runner sees: no PYTHONPATH (this package and the installed TVM's location are
    not handed to it), few threads (a 2-core machine)."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(TVM_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    return env


def check_results(directory: Path) -> list[str]:
    """What must hold after a rehearsal run; an empty list when everything worked."""
    manifest, results = ingest.load(directory)
    problems = [f"runner error: {e}" for e in results.get("errors", [])]
    rt = results.get("tvm_runtime") or {}
    if not rt.get("from_bundle"):
        problems.append(f"tvm/tvm_ffi not imported from the bundle: {rt.get('tvm_path')} {rt.get('tvm_ffi_file')}")
    if not rt.get("runtime_only") or rt.get("compiler_library_mapped", True):
        problems.append("TVM was not runtime-only (compiler library loaded)")
    if not results.get("finished"):
        problems.append("the runner did not finish")
    for case in manifest["cases"]:
        got = (results.get("cases") or {}).get(case["name"])
        if got is None:
            problems.append(f"{case['name']}: not run")
            continue
        for name in case["executables"]:
            c = got["contestants"].get(name) or {}
            if not c.get("numerics_ok") or not c.get("time_us"):
                problems.append(f"{case['name']}/{name}: {c.get('status') or 'numerics differ'}")
    for name, c in ingest.best_candidates(directory, manifest).items():
        if c["measured"] != c["total"] or c["failed"] or c["disagree"]:
            problems.append(f"{name}: candidates measured {c['measured']}/{c['total']}, failed {c['failed']}, "
                            f"disagree {c['disagree']}")
    if not (results.get("copy") or {}).get("copy_gbps"):
        problems.append("no copy bandwidth")
    return problems


def rehearse(work: Path, cases: list[str] | None, trials: int, python: str, full: Path | None,
             readme: Path, budget_s: float = 300.0, threads: int = 1, estimate: bool = True,
             log: Callable[[str], None] = print) -> int:
    """Build (llvm, small), run in a clean subprocess, check, ingest; then (``estimate``) the
    real bundle's size and device time. Returns 0 when everything worked and the real run fits."""
    start = time.perf_counter()
    bundle = work / "bundle"
    log(f"[1/4] build: llvm, small shapes, {trials} candidates per region -> {bundle}")
    manifest = build.build_bundle(bundle, "llvm", small=True, cases=cases, trials=trials, log=log)
    log(f"      {len(manifest['cases'])} cases, {manifest['bytes'] / MIB:.1f} MiB, {manifest['build']['seconds']:.0f} s")
    log(f"[2/4] run: {python} {bundle / build.RUNNER_FILE} (clean environment, CPU as the device)")
    cmd = [python, str(bundle / build.RUNNER_FILE), str(bundle), "--device", "cpu", "--budget-s", str(budget_s),
           "--repeat", "3", "--results-out", str(work / "returned")]
    proc = subprocess.run(cmd, cwd=work, env=clean_env(threads), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        log(proc.stdout[-3000:] + proc.stderr[-3000:])
    problems = check_results(bundle) if proc.returncode == 0 else [f"runner exit status {proc.returncode}"]
    for cut in json.loads((bundle / runner.RESULTS_NAME).read_text()).get("cut", []) if proc.returncode == 0 else []:
        log(f"      cut by the deadline (CPU stand-in): {cut}")
    log("[3/4] ingest into scratch records, model and README copy")
    scratch_readme = work / "README.md"
    scratch_readme.write_text(readme.read_text() if readme.exists() else "")
    summary = ingest.ingest(bundle, work / "ingested", scratch_readme, plot=False, results_dir=work / "returned",
                            log=lambda m: log("      " + m))
    if ingest.BEGIN not in scratch_readme.read_text():
        problems.append("README section not written")
    if summary["records"] != sum(c.get("candidates", 0) for c in manifest["cases"]):
        problems.append(f"{summary['records']} records ingested")
    if not estimate:
        for p in problems:
            log(f"PROBLEM: {p}")
        log(f"rehearsal {'passed' if not problems else 'FAILED'} in {time.perf_counter() - start:.0f} s "
            "(the real bundle was not estimated)")
        return 0 if not problems else 1
    log("[4/4] the real bundle: every suite case + BERT, full shapes, sm_90")
    facts = full_bundle_facts(full, log=lambda m: log("      " + m))
    est = facts["estimate"]
    log(f"      {facts['source']}")
    log("      device seconds (assumed GPU host, see ASSUMED): " + ", ".join(
        f"{k} {est[k]:.0f}" for k in ("startup_s", "cases_s", "copy_s", "candidates_s", "torch_compile_s")))
    if facts["bytes"] > LIMIT_BYTES:
        problems.append(f"bundle {facts['bytes'] / MIB:.1f} MiB > {LIMIT_BYTES / MIB:.0f} MiB")
    if est["total_s"] > RUN_BUDGET_S:
        problems.append(f"estimated run {est['total_s']:.0f} s > {RUN_BUDGET_S:.0f} s (the runner cuts it there)")
    for p in problems:
        log(f"PROBLEM: {p}")
    log(f"rehearsal {'passed' if not problems else 'FAILED'} in {time.perf_counter() - start:.0f} s")
    log(f"bundle {facts['bytes'] / MIB:.1f} MiB ({facts['source'].split(':')[0]}), "
        f"estimated device run {est['total_s']:.0f} s for {est['candidates']} candidates")
    return 0 if not problems else 1
