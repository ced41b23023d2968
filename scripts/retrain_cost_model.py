"""Retrain the XGBoost cost model from measurement records (JSONL, see cost_model/records.py).

    python scripts/retrain_cost_model.py --records results/records.jsonl [--records more.jsonl]
        --out cost_model.json [--holdout 0.2] [--seed 0] [--target "cuda -arch=sm_90"]

First fits on the training regions and prints the held-out quality (top-1 regret: how much
slower the model's pick is than the best measured candidate; Spearman of predicted vs measured
time within each region), then refits on every record and saves the model.  Exit status 1 if
there are no records.  The logic is ``intelligen_tvm.cost_model.retrain``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from intelligen_tvm.cost_model.retrain import retrain


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", action="append", required=True, help="JSONL records file (repeatable)")
    parser.add_argument("--out", required=True, help="where to write the model (xgboost JSON)")
    parser.add_argument("--holdout", type=float, default=0.2, help="fraction of regions held out for scoring")
    parser.add_argument("--seed", type=int, default=0, help="seed of the region split")
    parser.add_argument("--target", help="use only records of this exact target string")
    args = parser.parse_args(argv)
    model = retrain(args.records, args.out, args.holdout, args.seed, args.target)
    return 0 if model is not None else 1


if __name__ == "__main__":
    sys.exit(main())
