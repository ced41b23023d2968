#!/usr/bin/env python
"""Main job: one BERT-base encoder layer, ONNX -> Relax -> tvm.compile(relax_pipeline="intelligen").

Builds the ONNX model itself (seeded random weights) into artifacts/, imports it, compiles it,
runs it on the CPU and checks it against onnx.reference (exit status 1 on mismatch), then prints
which memory-intensive regions IntelliGen took, what DRAM traffic they need (ideal / naive /
planned) and with how many kernels. ``--target cuda`` only builds (no GPU is needed for that) and
says whether the build succeeded.

    python scripts/demo_bert_encoder.py [--small] [--target llvm|cuda] [--out report.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import tvm

import intelligen_tvm  # registers the "intelligen" relax pipeline
from intelligen_tvm import suite
from intelligen_tvm.frontend import from_onnx  # re-exported as intelligen_tvm.from_onnx
from intelligen_tvm.testing import device_sources, max_abs_error, nvcc_check, reference_outputs, run, tolerances

ROOT = Path(__file__).resolve().parent.parent
TARGETS: dict[str, dict[str, Any]] = {
    "llvm": {"kind": "llvm"},
    "cuda": {"kind": "cuda", "arch": "sm_90"},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--small", action="store_true", help="tiny shapes (seq 16, hidden 64)")
    p.add_argument("--target", choices=sorted(TARGETS), default="llvm")
    p.add_argument("--out", type=Path, help="write the region report JSON here")
    p.add_argument("--onnx", type=Path, help="where to write the model (default: artifacts/)")
    p.add_argument(
        "--pipeline",
        default="intelligen",
        help='relax pipeline for tvm.compile; "default" is TVM\'s own (the baseline)',
    )
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--dynamic", action="store_true",
                   help="batch and seq as ONNX dim_params: compile once, check at several sizes")
    return p.parse_args(argv)


def _bytes(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _cell(value: Any, width: int) -> str:
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def format_report(report: dict[str, Any]) -> str:
    """The explain() report as a fixed-width table, one region per row, totals at the bottom."""
    cols = [("region", 22), ("ops", 36), ("by", 10), ("ideal", 10), ("naive", 10),
            ("planned", 10), ("kernels", 7), ("strategy", 40)]  # fmt: skip
    lines = [f"target: {report.get('target', '?')}"]
    lines.append("  ".join(f"{name:<{w}}" for name, w in cols))
    lines.append("  ".join("-" * w for _, w in cols))
    totals = {"dram_bytes_ideal": 0, "dram_bytes_naive": 0, "dram_bytes_planned": 0}
    for r in report.get("regions", []):
        taken = r.get("handled_by") == "intelligen"
        strategy = r.get("strategy") if taken else f"fallback: {r.get('reason', '?')}"
        row = [
            r.get("name", "?"),
            r.get("ops", []),
            r.get("handled_by", "?"),
            *(_bytes(r.get(f"dram_bytes_{k}")) for k in ("ideal", "naive", "planned")),
            r.get("kernels", "-"),
            strategy or "-",
        ]
        lines.append("  ".join(f"{_cell(v, w):<{w}}" for v, (_, w) in zip(row, cols)))
        for key in totals:
            if taken and isinstance(r.get(key), (int, float)):
                totals[key] += r[key]
    n_taken = sum(r.get("handled_by") == "intelligen" for r in report.get("regions", []))
    lines.append(
        f"{n_taken}/{len(report.get('regions', []))} regions taken by intelligen; their DRAM bytes "
        f"ideal {_bytes(totals['dram_bytes_ideal'])}, naive {_bytes(totals['dram_bytes_naive'])}, "
        f"planned {_bytes(totals['dram_bytes_planned'])}"
    )
    return "\n".join(lines)


def _check_pipeline(name: str) -> None:
    try:
        tvm.relax.get_pipeline(name)
    except ValueError:
        sys.exit(
            f"error: relax pipeline {name!r} is not registered (importing intelligen_tvm should "
            "register 'intelligen'); run with --pipeline default for TVM's own pipeline"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _check_pipeline(args.pipeline)

    # 1. The model, built by the project itself and written to disk like an exported model.
    stem = "bert_encoder" + ("_small" if args.small else "") + ("_dynamic" if args.dynamic else "")
    onnx_path = args.onnx or ROOT / "artifacts" / f"{stem}.onnx"
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(suite.bert_encoder_layer(seq=args.seq, batch=args.batch, small=args.small,
                                       dynamic=args.dynamic), onnx_path)
    model = onnx.load(str(onnx_path))
    # A dynamic model is compiled once and checked at batch x seq = 1x1, 2x7 and the given size.
    sizes = [(1, 1), (2, 7), (args.batch, args.seq)] if args.dynamic else [(args.batch, args.seq)]
    all_dims = [suite.bert_encoder_dims(seq=s, batch=b, small=args.small) for b, s in sizes]
    dims = all_dims[-1]
    print(f"model: {onnx_path} ({len(model.graph.node)} nodes, dims {dict(dims)}"
          + (", batch and seq symbolic)" if args.dynamic else ")"))

    # 2. Import and compile.
    mod = from_onnx(model)
    target = tvm.target.Target(TARGETS[args.target])
    print(f"compiling for {target.kind.name} with relax_pipeline={args.pipeline!r} ...")
    start = time.perf_counter()
    # Symbolic batch and seq are planned for (and bytes reported at) the given size.
    hints = {"batch": dims["b"], "seq": dims["s"]} if args.dynamic else None
    pipeline = intelligen_tvm.pipeline(symbol_hints=hints) if hints and args.pipeline == "intelligen" else args.pipeline
    try:
        executable = tvm.compile(mod, target=target, relax_pipeline=pipeline)
    except Exception as err:  # noqa: BLE001 - report any build failure, then fail
        failure = f"BUILD FAILED for {TARGETS[args.target]}: {type(err).__name__}: {err}"
        print(failure, file=sys.stderr)
        return 1
    print(f"built for {TARGETS[args.target]} in {time.perf_counter() - start:.1f} s")

    # 3. Numerics against onnx.reference (CPU only; a cuda build is not run here).
    status = 0
    if args.target == "llvm":
        rng = np.random.default_rng(0)
        for size_dims in all_dims:
            inputs = suite.make_inputs_from_specs(suite.bert_encoder_input_specs(), size_dims, rng)
            actual = run(executable, target, inputs)
            expected = reference_outputs(model, inputs)
            rtol, atol = tolerances(model)
            err = max_abs_error(actual, expected)
            ok = len(actual) == len(expected) and all(
                a.shape == e.shape and np.allclose(a, e, rtol=rtol, atol=atol)
                for a, e in zip(actual, expected)
            )
            at = f" at batch {size_dims['b']}, seq {size_dims['s']}" if args.dynamic else ""
            print(f"max abs error vs onnx.reference{at}: {err:.3g} (rtol {rtol}, atol {atol})")
            if not ok:
                print("MISMATCH: compiled output differs from onnx.reference", file=sys.stderr)
                status = 1
    else:
        sources = device_sources(executable, "cuda")
        source_path = onnx_path.with_name(onnx_path.stem + "_cuda.cu")
        source_path.write_text("\n".join(sources))
        kernels = sum(src.count("__global__") for src in sources)
        print(f"cuda module: {kernels} kernels, source in {source_path}")
        nvcc_result = nvcc_check(source_path, TARGETS["cuda"]["arch"])
        print(nvcc_result)
        if "FAILED" in nvcc_result:
            status = 1
        print("cuda build only: not run (numerics are checked on the llvm target)")

    # 4. What IntelliGen did with each memory-intensive region.
    explain = getattr(intelligen_tvm, "explain", None)
    if explain is None:
        print("intelligen_tvm.explain is not available yet: no region report")
        return status
    report = explain(mod, target, symbol_hints=hints) if hints else explain(mod, target)
    print(format_report(report))
    out_path = args.out or onnx_path.with_name(onnx_path.stem + f"_{args.target}_report.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"report: {out_path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
