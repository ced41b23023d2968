"""Region report of the whole public suite: what IntelliGen takes, its DRAM traffic, and
whether the kernels build (CUDA sm_90 through nvcc) and match onnx.reference (llvm, CPU
lowering of the same dataflow graph).

    python scripts/suite_report.py [--small] [--out results/suite_report.json]

No timing here: this machine has no GPU.  Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import tvm

import intelligen_tvm
from intelligen_tvm import suite
from intelligen_tvm.testing import (assert_close, build_and_run, device_sources, nvcc_check,
                                    reference_outputs, tolerances)

CUDA = {"kind": "cuda", "arch": "sm_90"}


def report_case(case: suite.SuiteCase, small: bool, workdir: Path) -> dict:
    model = case.build(small=small)
    mod = intelligen_tvm.from_onnx(model)
    regions = intelligen_tvm.explain(mod, tvm.target.Target(CUDA))["regions"]
    inputs = suite.make_inputs(case, np.random.default_rng(0), small=small)
    start = time.time()
    actual = build_and_run(mod, {"kind": "llvm"}, inputs, relax_pipeline="intelligen")
    expected = reference_outputs(model, inputs)
    assert_close(actual, expected, *tolerances(model))
    err = max(float(np.abs(a - b).max()) for a, b in zip(actual, expected))
    executable = tvm.compile(mod, target=tvm.target.Target(CUDA), relax_pipeline="intelligen")
    source = workdir / f"{case.name}.cu"
    source.write_text("\n".join(device_sources(executable, "cuda")))
    return {
        "case": case.name,
        "regions": regions,
        "llvm_max_abs_error": err,
        "cuda_build": nvcc_check(source, CUDA["arch"]),
        "seconds": round(time.time() - start, 2),
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| case | regions (ops) | handled by | kernels | strategy | DRAM ideal | naive | planned | llvm max err | nvcc sm_90 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for r in row["regions"]:
            strategy = r.get("strategy") or {}
            kind = strategy.get("kind", r.get("reason", ""))
            lines.append(
                f"| {row['case']} | {'+'.join(r['ops'])} | {r['handled_by']} | {r['kernels']} | {kind} "
                f"| {r.get('dram_bytes_ideal', '-')} | {r.get('dram_bytes_naive', '-')} | {r.get('dram_bytes_planned', '-')} "
                f"| {row['llvm_max_abs_error']:.2e} | {'OK' if ': OK' in row['cuda_build'] else row['cuda_build'][:40]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="shrunk shapes (seconds)")
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [report_case(case, args.small, Path(tmp)) for case in suite.SUITE]
    print(markdown(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
