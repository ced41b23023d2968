"""Compile time of relax_pipeline="intelligen" next to TVM's default pipeline, per model and target.

    python scripts/compile_time.py [--targets llvm,cuda] [--repeat 3] [--out results/compile_time]

Models: every public suite case (full shapes), softmax and log-softmax over a 50257-wide
vocabulary (GPT-2's, [32, 50257]), and the encoder layers of BERT-base, BERT-large and
MiniLM-L12-H384 (`suite.bert_encoder_layer`, seq 128, batch 8).  Each model is imported once;
each (model, target, pipeline) is compiled `--repeat` times in this process and the median wall
time is reported (the first compile of a process also pays TVM's lazy imports, so one warm-up
compile runs before timing).  cuda builds need nvcc only, no GPU.  Writes results.json and a
Markdown table (results.md) with the ratio intelligen / default and the issue's limits
(<= 10 s per model, <= 2x the default pipeline).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import onnx
import tvm
from onnx import TensorProto, helper
from tvm.target import codegen

import intelligen_tvm
from intelligen_tvm import suite
from intelligen_tvm.cost_model.bundle_runner import cpu_model

VOCAB = 50257
ENCODERS = {
    "bert_base_layer": {"seq": 128, "batch": 8, "hidden": 768, "heads": 12, "ffn": 3072},
    "bert_large_layer": {"seq": 128, "batch": 8, "hidden": 1024, "heads": 16, "ffn": 4096},
    "minilm_layer": {"seq": 128, "batch": 8, "hidden": 384, "heads": 12, "ffn": 1536},
}


def vocab_model(op: str) -> onnx.ModelProto:
    shape = [32, VOCAB]
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], axis=-1)], op.lower(),
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def models() -> dict[str, onnx.ModelProto]:
    found = {case.name: case.build() for case in suite.SUITE}
    found["vocab_softmax"] = vocab_model("Softmax")
    found["vocab_log_softmax"] = vocab_model("LogSoftmax")
    found.update({name: suite.bert_encoder_layer(**dims) for name, dims in ENCODERS.items()})
    return found


def make_target(kind: str) -> tvm.target.Target:
    if kind == "llvm":
        return tvm.target.Target({"kind": "llvm", "mcpu": codegen.llvm_get_system_cpu(), "num-cores": os.cpu_count() or 1})
    return tvm.target.Target({"kind": "cuda", "arch": "sm_90", "max_threads_per_block": 1024,
                              "max_shared_memory_per_block": 49152, "thread_warp_size": 32})


def seconds(mod: tvm.IRModule, target: tvm.target.Target, pipeline: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        tvm.compile(mod, target=target, relax_pipeline=pipeline)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="llvm,cuda")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", default="", help="comma-separated subset of the models")
    parser.add_argument("--out", type=Path, default=Path("results") / "compile_time")
    args = parser.parse_args()
    chosen = models()
    if args.models:
        chosen = {n: m for n, m in chosen.items() if n in args.models.split(",")}
    rows = []
    for kind in args.targets.split(","):
        target = make_target(kind)
        warm = intelligen_tvm.from_onnx(chosen[next(iter(chosen))])
        for pipeline in ("default", "intelligen"):
            tvm.compile(warm, target=target, relax_pipeline=pipeline)
        for name, model in chosen.items():
            mod = intelligen_tvm.from_onnx(model)
            row = {"model": name, "target": kind}
            for pipeline in ("default", "intelligen"):
                row[pipeline] = seconds(mod, target, pipeline, args.repeat)
            row["ratio"] = row["intelligen"] / row["default"]
            rows.append(row)
            print(f"{kind:5s} {name:22s} default {row['default']:7.2f} s  intelligen {row['intelligen']:7.2f} s  "
                  f"ratio {row['ratio']:5.2f}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = {"command": "python scripts/compile_time.py " + " ".join(sys.argv[1:]), "commit": commit,
            "cpu": cpu_model(), "machine": platform.machine(), "cores": os.cpu_count(), "tvm": tvm.__version__,
            "load_average": os.getloadavg(), "repeat": args.repeat}
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"Compile time (median of {args.repeat}, seconds), commit {commit}, `{meta['command']}`", "",
             "| target | model | default | intelligen | ratio | <= 10 s | <= 2x |", "|---|---|---:|---:|---:|---|---|"]
    lines += [f"| {r['target']} | {r['model']} | {r['default']:.2f} | {r['intelligen']:.2f} | {r['ratio']:.2f} | "
              f"{'yes' if r['intelligen'] <= 10 else 'NO'} | {'yes' if r['ratio'] <= 2 else 'NO'} |" for r in rows]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
