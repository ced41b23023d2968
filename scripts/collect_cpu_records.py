"""Measure CPU candidates of real regions, write the records, retrain and ship the CPU cost model.

    python scripts/collect_cpu_records.py [--trials 32] [--repeat 10] [--threads N] [--small]
        [--cases softmax,...] [--models bert_base,bert_large,minilm] [--out results/cpu_records]
        [--no-install] [--retrain-only]

Regions: every public suite case (full shapes unless --small) and the memory-intensive regions
of three encoder architectures built by `suite.bert_encoder_layer`: BERT-base (hidden 768,
12 heads, FFN 3072, seq 128), BERT-large (1024, 16, 4096, seq 128) and MiniLM-L12-H384 (384,
12, 1536, seq 128), batch 8; each distinct region (by fingerprint) once (a rerun into the same OUT
measures only the regions its records lack).

Per region, `--trials` candidates are measured on this host (`tvm.compile` for
llvm -mcpu=<host> -num-cores=<threads>, TVM's time evaluator, caches flushed between repeats):
the default plan, the best half by the analytical prior and the rest spread evenly over the
remaining choice space (so that the model also sees bad candidates).  Every measurement is a
record (format: intelligen_tvm/cost_model/records.py) appended to OUT/records.jsonl.  Then the
XGBoost model is fitted on a region split, its held-out top-1 regret and Spearman are printed
and written to OUT/summary.json, it is refitted on every record and saved to OUT/cpu_model.json
and (unless --no-install) to the package (intelligen_tvm/cost_model/models/cpu.json), which
plain compilation on llvm then uses.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import tvm
from tvm.target import codegen

from intelligen_tvm import suite, targets
from intelligen_tvm.cost_model.bundle_runner import cpu_model
from intelligen_tvm.cost_model.features import features
from intelligen_tvm.cost_model.evaluation import spearman_per_region, split_by_region, top1_regret
from intelligen_tvm.cost_model.measure import LocalMeasurer
from intelligen_tvm.cost_model.model import CostModel
from intelligen_tvm.cost_model.records import RecordDB
from intelligen_tvm.dataflow_graph.choices import default_choice, enumerate_candidates
from intelligen_tvm.frontend import from_onnx
from intelligen_tvm.region import SHIPPED_MODELS
from intelligen_tvm.targets.presets import cpu_preset
from intelligen_tvm.tuning import _records, collect_regions, measure_inputs, rank, strategy_key

ROOT = Path(__file__).resolve().parent.parent
# name -> bert_encoder_layer arguments (real architectures' layer shapes)
MODELS = {
    "bert_base": {"seq": 128, "batch": 8, "hidden": 768, "heads": 12, "ffn": 3072},
    "bert_large": {"seq": 128, "batch": 8, "hidden": 1024, "heads": 16, "ffn": 4096},
    "minilm": {"seq": 128, "batch": 8, "hidden": 384, "heads": 12, "ffn": 1536},
}


def sample(ranked: list, default, trials: int) -> list:
    """The default, the prior's best half, the rest spread evenly over the remaining ranking."""
    chosen = [default] + [k for k, _ in ranked if k.strategy != default.strategy][: trials // 2]
    taken = {k.strategy for k in chosen}
    rest = [k for k, _ in ranked if k.strategy not in taken]
    want = trials - len(chosen)
    if want > 0 and rest:
        chosen += rest[:: max(1, len(rest) // want)][:want]
    return chosen[:trials]


def modules(args) -> list[tuple[str, tvm.IRModule]]:
    cases = args.cases.split(",") if args.cases else [c.name for c in suite.SUITE]
    out = [(name, from_onnx(suite.get_case(name).build(small=args.small))) for name in cases]
    for name in filter(None, args.models.split(",")):
        out.append((name, from_onnx(suite.bert_encoder_layer(**MODELS[name], small=args.small))))
    return out


def retrain(records: list, out: Path, seed: int) -> dict:
    train, held = split_by_region(records, 0.2, seed)
    quality: dict = {"records": len(records), "regions": len({r.region for r in records})}
    if train and held:
        model = CostModel().fit(train)
        regret, rho = top1_regret(model, held), spearman_per_region(model, held)
        quality |= {"heldout_regions": len({r.region for r in held}), "top1_regret_mean": regret.mean,
                    "top1_regret_max": regret.max, "spearman_mean": rho.mean,
                    "per_region_regret": {k[0]: v for k, v in regret.per_group.items()}}
    CostModel().fit(records).save(out)
    return quality


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=32, help="candidates measured per region")
    parser.add_argument("--repeat", type=int, default=10, help="timed repeats per candidate")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cores (TVM_NUM_THREADS)")
    parser.add_argument("--small", action="store_true", help="small shapes (a quick check of the pipeline)")
    parser.add_argument("--cases", default="", help="comma-separated suite cases (default: all)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated architectures (or '')")
    parser.add_argument("--out", default="results/cpu_records")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out region split")
    parser.add_argument("--no-install", action="store_true", help="do not copy the model into the package")
    parser.add_argument("--retrain-only", action="store_true", help="no measurement: retrain from OUT/records.jsonl")
    args = parser.parse_args(argv)
    os.environ["TVM_NUM_THREADS"] = str(args.threads)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = tvm.target.Target({"kind": "llvm", "mcpu": codegen.llvm_get_system_cpu(), "num-cores": args.threads})
    hw = targets.hardware_model(target)
    measurer = LocalMeasurer(target, repeat=args.repeat)
    db = RecordDB(out / "records.jsonl")
    started = time.time()
    target_name = f"llvm {codegen.llvm_get_system_cpu()}"
    seen = {r.region for r in db.load() if r.target == target_name}   # a rerun measures only new regions
    measured = 0
    for source, mod in ([] if args.retrain_only else modules(args)):
        for region in collect_regions(mod, target):
            if region.fingerprint in seen:
                continue
            seen.add(region.fingerprint)
            t0 = time.time()
            ranked = rank(enumerate_candidates(region.kernel, region.shell, hw), hw)
            default = default_choice(region.kernel, region.shell, hw)
            picked = sample(ranked, default, args.trials)
            results = measurer.measure(measure_inputs(region, picked, target))
            new = _records(target, ((region.fingerprint, strategy_key(k.strategy), features(k, hw), res)
                                    for k, res in zip(picked, results)))
            db.append(new)
            measured += len(new)
            best = min((r.median_us for r in new), default=float("nan"))
            failed = [res.error for res in results if res.error]
            print(f"{source:22s} {region.name:22s} {len(ranked):4d} candidates, {len(new):3d} measured, "
                  f"best {best:10.1f} us, {time.time() - t0:6.1f} s" + (f", {len(failed)} failed: {failed[0]}" if failed
                                                                        else ""), flush=True)
    collect_s = time.time() - started
    records = [r for r in db.load() if r.target == target_name]
    quality = retrain(records, out / "cpu_model.json", args.seed)
    if not args.no_install:
        SHIPPED_MODELS["cpu"].parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "cpu_model.json", SHIPPED_MODELS["cpu"])
    summary = {"cpu": cpu_model(), "threads": args.threads, "machine": platform.machine(),
               "load_average": os.getloadavg(), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
               "measured": measured, "collect_seconds": collect_s, "small": args.small,
               "preset": cpu_preset(target).name} | quality
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "per_region_regret"}, indent=2))
    return 0 if records else 1


if __name__ == "__main__":
    sys.exit(main())
