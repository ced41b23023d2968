"""Compile time of relax_pipeline="intelligen" next to TVM's default pipeline, per model and target.

    python scripts/compile_time.py [--targets llvm,cuda] [--repeat 3] [--min-seconds 2] [--out results/compile_time]

Models: every public suite case (full shapes), softmax and log-softmax over a 50257-wide
vocabulary (GPT-2's, [32, 50257]), the encoder layers of BERT-base, BERT-large and
MiniLM-L12-H384 (`suite.bert_encoder_layer`, seq 128, batch 8), and, when torch is installed,
whole real architectures with random weights imported by `from_torch` (`torch_models`): ViT-tiny
(12 layers, one 224x224 image), GPT-2 small (12 layers, LM head, one sequence of 128 tokens) and
two TinyLlama-1.1B decoder layers (seq 128).  Each model is imported once and compiled in this
process (the first compile of a process also pays TVM's lazy imports, so one warm-up compile
runs before timing).  The two pipelines compile alternately, at least `--repeat` times each and more for
models that compile in well under a second (until `--min-seconds` were spent, at most 25
pairs): medians of each, and the median of the pairs' ratios.  cuda builds need nvcc only, no
GPU.  Writes results.json and a Markdown table (results.md) with the ratio intelligen / default
and the issue's limits (<= 10 s per model, <= 2x the default pipeline).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
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
# from_torch architectures (intelligen_tvm.torch_models) -> layer count; None: the named model's
REAL_LAYERS = {"vit_tiny": None, "gpt2_small": None, "tinyllama": 2}


def vocab_model(op: str) -> onnx.ModelProto:
    shape = [32, VOCAB]
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], axis=-1)], op.lower(),
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def from_torch(name: str) -> tvm.IRModule:
    from intelligen_tvm import torch_models  # pylint: disable=import-outside-toplevel  # needs torch

    return intelligen_tvm.from_torch(*torch_models.instance(name, REAL_LAYERS[name]))


def models() -> dict[str, Callable[[], tvm.IRModule]]:
    """Model name -> its import into Relax, called only for the models chosen."""
    onnx_models = {case.name: case.build for case in suite.SUITE}
    onnx_models["vocab_softmax"] = lambda: vocab_model("Softmax")
    onnx_models["vocab_log_softmax"] = lambda: vocab_model("LogSoftmax")
    onnx_models.update({name: lambda d=dims: suite.bert_encoder_layer(**d) for name, dims in ENCODERS.items()})
    found = {name: lambda b=build: intelligen_tvm.from_onnx(b()) for name, build in onnx_models.items()}
    if importlib.util.find_spec("torch") is not None:
        found.update({name: lambda n=name: from_torch(n) for name in REAL_LAYERS})
    return found


def make_target(kind: str) -> tvm.target.Target:
    if kind == "llvm":
        return tvm.target.Target({"kind": "llvm", "mcpu": codegen.llvm_get_system_cpu(), "num-cores": os.cpu_count() or 1})
    return tvm.target.Target({"kind": "cuda", "arch": "sm_90", "max_threads_per_block": 1024,
                              "max_shared_memory_per_block": 49152, "thread_warp_size": 32})


def timed_pairs(mod: tvm.IRModule, target: tvm.target.Target, repeat: int, min_seconds: float,
                max_pairs: int = 25) -> tuple[list[float], list[float]]:
    """Wall times of compiles with TVM's default pipeline and intelligen's, alternately (a slow
    phase of a shared machine falls on both): at least `repeat` pairs, more until the pairs
    took `min_seconds` (single ops compile in tens of milliseconds), at most `max_pairs`."""
    default, ours = [], []
    while len(default) < repeat or (sum(default) + sum(ours) < min_seconds and len(default) < max_pairs):
        for pipeline, times in (("default", default), ("intelligen", ours)):
            start = time.perf_counter()
            tvm.compile(mod, target=target, relax_pipeline=pipeline)
            times.append(time.perf_counter() - start)
    return default, ours


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="llvm,cuda")
    parser.add_argument("--repeat", type=int, default=3, help="compiles per pipeline, at least")
    parser.add_argument("--min-seconds", type=float, default=2.0,
                        help="compile a model again (both pipelines) until this much time was spent, at most 25 times")
    parser.add_argument("--models", default="", help="comma-separated subset of the models")
    parser.add_argument("--out", type=Path, default=Path("results") / "compile_time")
    args = parser.parse_args()
    chosen = models()
    if args.models:
        unknown = set(args.models.split(",")) - set(chosen)
        if unknown:
            parser.error(f"unknown models {sorted(unknown)} (known: {', '.join(chosen)})")
        chosen = {n: m for n, m in chosen.items() if n in args.models.split(",")}
    targets = {kind: make_target(kind) for kind in args.targets.split(",")}
    rows = []
    for index, (name, import_model) in enumerate(chosen.items()):
        mod = import_model()
        for kind, target in targets.items():
            if index == 0:  # warm-up: TVM's lazy imports, ours
                for pipeline in ("default", "intelligen"):
                    tvm.compile(mod, target=target, relax_pipeline=pipeline)
            default, ours = timed_pairs(mod, target, args.repeat, args.min_seconds)
            row = {"model": name, "target": kind, "default": statistics.median(default),
                   "intelligen": statistics.median(ours), "compiles": len(default),
                   "ratio": statistics.median(b / a for a, b in zip(default, ours))}
            rows.append(row)
            print(f"{kind:5s} {name:22s} default {row['default']:7.2f} s  intelligen {row['intelligen']:7.2f} s  "
                  f"ratio {row['ratio']:5.2f}", flush=True)
    rows.sort(key=lambda r: list(targets).index(r["target"]))  # stable: models keep their order
    args.out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = {"command": "python scripts/compile_time.py " + " ".join(sys.argv[1:]), "commit": commit,
            "cpu": cpu_model(), "machine": platform.machine(), "cores": os.cpu_count(), "tvm": tvm.__version__,
            "load_average": os.getloadavg(), "repeat": args.repeat, "min_seconds": args.min_seconds}
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"Compile time (seconds, medians; ratio: median over alternating pairs of intelligen / default), "
             f"commit {commit}, `{meta['command']}`", "",
             "| target | model | compiles | default | intelligen | ratio | <= 10 s | <= 2x |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    lines += [f"| {r['target']} | {r['model']} | {r['compiles']} | {r['default']:.3f} | {r['intelligen']:.3f} | "
              f"{r['ratio']:.2f} | {'yes' if r['intelligen'] <= 10 else 'NO'} | {'yes' if r['ratio'] <= 2 else 'NO'} |"
              for r in rows]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
