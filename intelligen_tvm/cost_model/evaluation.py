"""Held-out quality of a cost model, measured the way search uses it: within one region.

Search only ever compares candidates of the same region on the same target, so the scores are
per (region, target) group: top-1 regret (how much slower the model's pick is than the best
measured candidate) and Spearman rank correlation of predicted vs measured time.  Splits are
by region, never by record, so that a held-out score says how the model does on regions it
has not seen (new models, new shapes), not on repeats of its training data.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .records import Record


class Predictor(Protocol):
    """Anything that scores feature dicts, lower = faster (CostModel, or a wrapped prior)."""

    def predict(self, features: Sequence[Mapping[str, float]]) -> np.ndarray: ...


@dataclass
class Score:
    """A per-group score and its summary; ``mean``/``min``/``max`` are NaN when no group qualified."""

    mean: float
    min: float
    max: float
    per_group: dict[tuple[str, str], float]


def split_by_region(records: Sequence[Record], holdout: float = 0.2,
                    seed: int = 0) -> tuple[list[Record], list[Record]]:
    """(train, held-out): a seeded ``holdout`` fraction of the regions, all of their records.

    With two or more regions and ``holdout`` > 0, both sides get at least one region.
    """
    regions = sorted({r.region for r in records})
    random.Random(seed).shuffle(regions)
    n = round(holdout * len(regions))
    if holdout > 0 and len(regions) >= 2:
        n = min(max(n, 1), len(regions) - 1)
    held = set(regions[:n])
    return [r for r in records if r.region not in held], [r for r in records if r.region in held]


def group_by_region(records: Sequence[Record]) -> dict[tuple[str, str], list[Record]]:
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        groups[(r.region, r.target)].append(r)
    return dict(groups)


def top1_regret(model: Predictor, records: Sequence[Record]) -> Score:
    """Per group with >= 2 candidates: median time of the model's pick / best median - 1."""
    per: dict[tuple[str, str], float] = {}
    for key, group in group_by_region(records).items():
        if len(group) < 2:
            continue
        times = np.array([r.median_us for r in group])
        pick = int(np.argmin(model.predict([r.features for r in group])))
        per[key] = float(times[pick] / times.min() - 1.0)
    return _summary(per)


def spearman_per_region(model: Predictor, records: Sequence[Record], min_candidates: int = 3) -> Score:
    """Spearman of predicted vs measured time per group; groups where it is undefined are left out."""
    per: dict[tuple[str, str], float] = {}
    for key, group in group_by_region(records).items():
        if len(group) < min_candidates:
            continue
        rho = spearman(model.predict([r.features for r in group]), [r.median_us for r in group])
        if not math.isnan(rho):
            per[key] = rho
    return _summary(per)


def rankdata(x: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks 1..n; tied values share the average of the ranks they span."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])   # first index of each run of ties
    ends = np.r_[starts[1:], len(xs)]
    avg = (starts + ends + 1) / 2.0                            # mean of ranks start+1 .. end
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Pearson correlation of average-tie ranks; NaN if either side is constant."""
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / denom if denom > 0 else math.nan


def _summary(per: dict[tuple[str, str], float]) -> Score:
    values = list(per.values())
    if not values:
        return Score(math.nan, math.nan, math.nan, per)
    return Score(float(np.mean(values)), float(np.min(values)), float(np.max(values)), per)
