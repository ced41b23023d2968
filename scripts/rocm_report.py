"""ROCm build report of the whole public suite: per case the plan intelligen picks for the
target, what the HSACO kernel needs (VGPRs, LDS), how long tvm.compile takes, and how many
verified candidates the region has on this target (and on CUDA sm_90, for comparison).

    python scripts/rocm_report.py [--mcpu gfx90a] [--small] [--out results/rocm_report.json]

Build only: needs the toolchain of scripts/setup_rocm_toolchain.sh, no GPU.  Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import tvm

import intelligen_tvm
from intelligen_tvm import suite, targets
from intelligen_tvm.dataflow_graph.choices import enumerate_candidates
from intelligen_tvm.targets import rocm_toolchain
from intelligen_tvm.testing import amdgpu_kernel_metadata, device_modules, rocm_code_object
from intelligen_tvm.tuning import collect_regions

CUDA = tvm.target.Target({"kind": "cuda", "arch": "sm_90"})


def candidate_count(mod: tvm.IRModule, target: tvm.target.Target) -> int:
    hw = targets.hardware_model(target)
    return sum(len(enumerate_candidates(r.kernel, r.shell, hw)) for r in collect_regions(mod, target))


def report_case(case: suite.SuiteCase, target: tvm.target.Target, small: bool) -> dict:
    mod = intelligen_tvm.from_onnx(case.build(small=small))
    regions = intelligen_tvm.explain(mod, target)["regions"]
    start = time.perf_counter()
    executable = tvm.compile(mod, target=target, relax_pipeline="intelligen")
    seconds = time.perf_counter() - start
    (hip,) = device_modules(executable, "hip")
    return {
        "case": case.name,
        "regions": regions,
        "compile_seconds": round(seconds, 2),
        "code_object_bytes": len(rocm_code_object(executable)),
        "kernels": amdgpu_kernel_metadata(hip.inspect_source("asm")),
        "candidates": candidate_count(mod, target),
        "candidates_cuda": candidate_count(mod, CUDA),
    }


def markdown(rows: list[dict], mcpu: str) -> str:
    lines = [f"| case | handled by | strategy | threads/group | threads/row | VGPRs | LDS bytes | HSACO bytes "
             f"| compile s | candidates {mcpu} | candidates sm_90 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        (region,) = row["regions"]
        s = region["strategy"] or {}
        meta = next(iter(row["kernels"].values()))
        lines.append(
            f"| {row['case']} | {region['handled_by']} | {s.get('kind', region.get('reason'))} "
            f"| {s.get('units_per_group', 0) * s.get('lanes_per_unit', 0)} | {s.get('threads_per_row')} "
            f"| {meta['vgpr_count']} | {meta['group_segment_fixed_size']} | {row['code_object_bytes']} "
            f"| {row['compile_seconds']} | {row['candidates']} | {row['candidates_cuda']} |")
    total = sum(r["compile_seconds"] for r in rows)
    lines.append(f"\ntvm.compile for rocm {mcpu}, all {len(rows)} cases: {total:.1f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mcpu", default="gfx90a")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rocm_toolchain.activate()
    target = tvm.target.Target({"kind": "rocm", "mcpu": args.mcpu})
    rows = [report_case(case, target, args.small) for case in suite.SUITE]
    print(markdown(rows, args.mcpu))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
