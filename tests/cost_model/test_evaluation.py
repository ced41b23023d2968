"""Held-out scores: region splits, top-1 regret, Spearman with average-tie ranks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from intelligen_tvm.cost_model.evaluation import (rankdata, spearman, spearman_per_region, split_by_region,
                                                  top1_regret)
from intelligen_tvm.cost_model.records import Record


def _rec(region: str, t: float, target: str = "llvm", **features: float) -> Record:
    return Record(region, target, "cpu", {}, {"t": t, **features}, [t], "test", 0.0)


class Oracle:
    def __init__(self, sign: float = 1.0) -> None:
        self.sign = sign

    def predict(self, features: list[dict[str, float]]) -> np.ndarray:
        return self.sign * np.array([f["t"] for f in features])


def test_rankdata_averages_ties() -> None:
    assert rankdata([10, 20, 20, 5, 20]).tolist() == [2.0, 4.0, 4.0, 1.0, 4.0]
    assert rankdata([3.0, 1.0, 2.0]).tolist() == [3.0, 1.0, 2.0]
    assert rankdata([7, 7]).tolist() == [1.5, 1.5]


def test_spearman_known_values() -> None:
    a = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert spearman(a, [10, 20, 30, 40, 50]) == pytest.approx(1.0)
    assert spearman(a, [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    # No ties: the textbook formula 1 - 6 sum(d^2) / (n (n^2 - 1)).
    b = [2.0, 1.0, 4.0, 3.0, 5.0]
    assert spearman(a, b) == pytest.approx(1 - 6 * 4 / (5 * 24))
    # Ties: Pearson of ranks [1,2,3,4] vs [1.5,1.5,3,4].
    ra, rb = np.array([1, 2, 3, 4.0]), np.array([1.5, 1.5, 3, 4])
    assert spearman([1, 2, 3, 4], [7, 7, 8, 9]) == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    assert math.isnan(spearman([1, 2, 3], [4, 4, 4]))


def test_top1_regret_per_region_and_target() -> None:
    records = [_rec("a", 10), _rec("a", 15), _rec("a", 40),
               _rec("b", 2), _rec("b", 3),
               _rec("a", 5, target="cuda"), _rec("a", 6, target="cuda"),
               _rec("lonely", 1)]  # one candidate: nothing to choose, left out
    best = top1_regret(Oracle(), records)
    assert best.mean == 0.0 and best.max == 0.0
    assert set(best.per_group) == {("a", "llvm"), ("b", "llvm"), ("a", "cuda")}
    worst = top1_regret(Oracle(-1.0), records)
    assert worst.per_group == pytest.approx({("a", "llvm"): 3.0, ("b", "llvm"): 0.5, ("a", "cuda"): 0.2})
    assert worst.mean == pytest.approx(3.7 / 3) and worst.max == pytest.approx(3.0)
    assert math.isnan(top1_regret(Oracle(), [_rec("x", 1)]).mean)


def test_spearman_per_region_needs_three_candidates() -> None:
    records = [_rec("a", t) for t in (1, 2, 3, 4)] + [_rec("b", t) for t in (1, 2)] + \
              [_rec("c", t, u=-t) for t in (3, 1, 2)]
    score = spearman_per_region(Oracle(), records)
    assert set(score.per_group) == {("a", "llvm"), ("c", "llvm")} and score.mean == pytest.approx(1.0)

    class ByU:
        def predict(self, features: list[dict[str, float]]) -> np.ndarray:
            return np.array([f.get("u", 0.0) for f in features])

    score = spearman_per_region(ByU(), records)  # "a": constant prediction, undefined, left out
    assert set(score.per_group) == {("c", "llvm")} and score.mean == pytest.approx(-1.0)


def test_split_by_region_is_seeded_and_disjoint() -> None:
    records = [_rec(f"r{i}", float(j + 1)) for i in range(10) for j in range(3)]
    train, held = split_by_region(records, holdout=0.2, seed=1)
    assert len(held) == 6 and len(train) == 24
    assert not {r.region for r in train} & {r.region for r in held}
    assert split_by_region(records, 0.2, seed=1) == (train, held)
    assert any({r.region for r in split_by_region(records, 0.2, seed=s)[1]} != {r.region for r in held}
               for s in range(2, 6))
    # Tiny inputs: both sides non-empty when possible; no holdout keeps everything for training.
    two = records[:6]
    assert [len({r.region for r in side}) for side in split_by_region(two, 0.01)] == [1, 1]
    assert [len({r.region for r in side}) for side in split_by_region(two, 0.99)] == [1, 1]
    assert split_by_region(records, 0.0) == (records, [])
