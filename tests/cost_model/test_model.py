"""CostModel on synthetic records from a known law: it must learn the within-region order,
save to a file that plain xgboost loads, and tolerate missing and extra features."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import xgboost

from intelligen_tvm.cost_model.evaluation import spearman_per_region, split_by_region, top1_regret
from intelligen_tvm.cost_model.model import META_KEY, CostModel
from tests.cost_model.synthetic import synthetic_records


@pytest.fixture(scope="module")
def data() -> tuple[CostModel, list, list]:
    train, held = split_by_region(synthetic_records(40, seed=0), holdout=0.25, seed=0)
    return CostModel().fit(train), train, held


class GlobalHeuristic:
    """Widest vector, most threads: right for long rows, wrong for short ones."""

    def predict(self, features: list[dict[str, float]]) -> np.ndarray:
        return np.array([-10 * f["vector"] - f["threads_per_group"] / 1024 for f in features])


def test_ranks_held_out_regions_well(data) -> None:
    model, _, held = data
    rho = spearman_per_region(model, held)
    assert len(rho.per_group) == 10
    assert rho.mean > 0.85 and rho.min > 0.6
    assert rho.mean > spearman_per_region(GlobalHeuristic(), held).mean + 0.2
    regret = top1_regret(model, held)
    assert regret.mean < 0.15
    assert regret.mean < top1_regret(GlobalHeuristic(), held).mean / 3


def test_rank_is_predicted_fastest_first(data) -> None:
    model, _, held = data
    feats = [r.features for r in held if r.region == held[0].region]
    order = model.rank(feats)
    assert sorted(order.tolist()) == list(range(len(feats)))
    assert np.all(np.diff(model.predict(feats)[order]) >= 0)
    assert np.allclose(model.predict_us(feats), np.exp(model.predict(feats)))


def test_missing_extra_and_reordered_features(data) -> None:
    model, _, held = data
    f = dict(held[0].features)
    base = model.predict([f])[0]
    assert model.predict([{**f, "not_a_feature": 1e9, "another": True}])[0] == base
    assert model.predict([dict(reversed(list(f.items())))])[0] == base
    without = {k: v for k, v in f.items() if k != "distractor"}
    assert model.predict([without])[0] == model.predict([{**without, "distractor": math.nan}])[0]
    assert np.isfinite(model.predict([{}])).all()  # every feature missing still predicts
    assert model.predict([]).shape == (0,)
    with pytest.raises(ValueError, match="vector"):
        model.predict([{**f, "vector": "four"}])


def test_saved_model_loads_in_plain_xgboost(data, tmp_path: Path) -> None:
    model, train, held = data
    path = tmp_path / "cost_model.json"
    model.save(path)
    json.loads(path.read_text())  # xgboost's JSON format, not UBJSON/binary
    assert [p.name for p in tmp_path.iterdir()] == ["cost_model.json"]  # no temp file left behind

    plain = xgboost.Booster(model_file=str(path))
    names = plain.feature_names
    assert names == sorted(names) == model.feature_names
    meta = json.loads(plain.attr(META_KEY))
    assert meta["feature_names"] == names and meta["label"] == "log(median_us)"
    assert meta["n_records"] == len(train) and meta["targets"] == ["cuda -arch=sm_90"]
    x = np.array([[r.features.get(n, np.nan) for n in names] for r in held])
    expected = model.predict([r.features for r in held])
    assert np.allclose(plain.predict(xgboost.DMatrix(x, feature_names=names)), expected)

    loaded = CostModel.load(path)
    assert loaded.feature_names == names and loaded.metadata == meta
    assert np.array_equal(loaded.predict([r.features for r in held]), expected)


def test_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        CostModel().predict([{"a": 1.0}])
    with pytest.raises(RuntimeError):
        CostModel().save(tmp_path / "m.json")
    with pytest.raises(ValueError):
        CostModel().fit([])
    bad = synthetic_records(1)
    bad[0].features["bytes[dram]"] = 1.0
    with pytest.raises(ValueError, match="bytes"):
        CostModel().fit(bad)
