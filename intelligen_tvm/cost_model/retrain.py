"""Retrain the XGBoost cost model from measurement records: the logic of
``scripts/retrain_cost_model.py``, also run by the GPU campaign's ``ingest``.

First fits on the training regions and reports the held-out quality (top-1 regret: how much
slower the model's pick is than the best measured candidate; Spearman of predicted vs measured
time within each region), then refits on every record and saves the model.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from .evaluation import spearman_per_region, split_by_region, top1_regret
from .model import CostModel
from .records import Record, RecordDB


def load_records(paths: Sequence[str], target: str | None, log: Callable[[str], None] = print) -> list[Record]:
    records: list[Record] = []
    for path in paths:
        db = RecordDB(path)
        if not db.path.exists():
            print(f"{path}: not found", file=sys.stderr)
        loaded = db.load()
        log(f"{path}: {len(loaded)} records, {db.skipped} corrupt or truncated lines skipped")
        records += [r for r in loaded if target is None or r.target == target]
    return records


def retrain(paths: Sequence[str], out: str, holdout: float = 0.2, seed: int = 0, target: str | None = None,
            log: Callable[[str], None] = print) -> CostModel | None:
    """Report held-out quality, then fit on every record and save to ``out``; None (nothing
    saved) when there are no records."""
    records = load_records(paths, target, log)
    if not records:
        print("no records to train on", file=sys.stderr)
        return None
    regions = {r.region for r in records}
    log(f"{len(records)} records, {len(regions)} regions, targets: {sorted({r.target for r in records})}")

    train, held = split_by_region(records, holdout, seed)
    if train and held:
        model = CostModel().fit(train)
        regret, rho = top1_regret(model, held), spearman_per_region(model, held)
        n_held = len({r.region for r in held})
        log(f"held-out ({n_held} of {len(regions)} regions, seed {seed}): "
            f"top-1 regret mean {regret.mean:.3f} max {regret.max:.3f} ({len(regret.per_group)} groups); "
            f"Spearman mean {rho.mean:.3f} ({len(rho.per_group)} groups with >= 3 candidates)")
    else:
        log("held-out: skipped (needs at least two regions and --holdout > 0)")

    model = CostModel().fit(records)
    model.save(out)
    log(f"saved {out}: trained on {len(records)} records, {len(model.feature_names)} features")
    return model
