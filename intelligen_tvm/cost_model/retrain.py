"""Retrain the XGBoost cost model from measurement records (JSONL, see cost_model/records.py).

    intelligen-tvm retrain --records results/records.jsonl [--records more.jsonl]
        --out cost_model.json [--holdout 0.2] [--seed 0] [--target "cuda -arch=sm_90"]

First fits on the training regions and prints the held-out quality (top-1 regret: how much
slower the model's pick is than the best measured candidate; Spearman of predicted vs measured
time within each region), then refits on every record and saves the model.  Exit status 1 if
there are no records.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .evaluation import spearman_per_region, split_by_region, top1_regret
from .model import CostModel
from .records import Record, RecordDB


def load_records(paths: Sequence[str], target: str | None) -> list[Record]:
    records: list[Record] = []
    for path in paths:
        db = RecordDB(path)
        if not db.path.exists():
            print(f"{path}: not found", file=sys.stderr)
        loaded = db.load()
        print(f"{path}: {len(loaded)} records, {db.skipped} corrupt or truncated lines skipped")
        records += [r for r in loaded if target is None or r.target == target]
    return records


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--records", action="append", required=True, help="JSONL records file (repeatable)")
    parser.add_argument("--out", required=True, help="where to write the model (xgboost JSON)")
    parser.add_argument("--holdout", type=float, default=0.2, help="fraction of regions held out for scoring")
    parser.add_argument("--seed", type=int, default=0, help="seed of the region split")
    parser.add_argument("--target", help="use only records of this exact target string")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    records = load_records(args.records, args.target)
    if not records:
        print("no records to train on", file=sys.stderr)
        return 1
    regions = {r.region for r in records}
    print(f"{len(records)} records, {len(regions)} regions, targets: {sorted({r.target for r in records})}")

    train, held = split_by_region(records, args.holdout, args.seed)
    if train and held:
        model = CostModel().fit(train)
        regret, rho = top1_regret(model, held), spearman_per_region(model, held)
        n_held = len({r.region for r in held})
        print(f"held-out ({n_held} of {len(regions)} regions, seed {args.seed}): "
              f"top-1 regret mean {regret.mean:.3f} max {regret.max:.3f} ({len(regret.per_group)} groups); "
              f"Spearman mean {rho.mean:.3f} ({len(rho.per_group)} groups with >= 3 candidates)")
    else:
        print("held-out: skipped (needs at least two regions and --holdout > 0)")

    model = CostModel().fit(records)
    model.save(args.out)
    print(f"saved {args.out}: trained on {len(records)} records, {len(model.feature_names)} features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
