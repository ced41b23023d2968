"""XGBoost cost model: predicts log(kernel time) of a candidate from its feature dict.

Why the Booster API and not ``xgboost.XGBRegressor``: the sklearn wrapper needs scikit-learn
(not a dependency), and the Booster gives direct control over what the saved file holds.

Why log(time): candidates of one region differ by factors, regions by orders of magnitude; a
squared error on log time weighs a 2x miss the same for a 5 us and a 5 ms kernel.

The saved model is xgboost's own JSON (``xgboost.Booster(model_file=path)`` loads it with no
code from this package).  It carries the feature order twice: as the booster's
``feature_names`` and in the ``intelligen_tvm`` attribute (a JSON string with the label, the
feature names, the targets trained on, the record count and the package version).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from .records import Record, package_version

META_KEY = "intelligen_tvm"
FORMAT = "intelligen_tvm.cost_model/1"
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "reg:squarederror",
    "eta": 0.1,
    "max_depth": 4,  # shallow: hundreds to thousands of records per target, unseen regions at use
    "min_child_weight": 1.0,
    "subsample": 0.9,
    "colsample_bytree": 0.9,
    "seed": 0,
}


@dataclass
class CostModel:
    """Lower prediction = faster.  Feature dicts may miss keys (NaN) or carry extra ones (ignored)."""

    params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    num_boost_round: int = 300
    booster: xgb.Booster | None = None
    feature_names: list[str] = field(default_factory=list)

    def fit(self, records: Sequence[Record]) -> CostModel:
        if not records:
            raise ValueError("no records to fit")
        self.feature_names = sorted({k for r in records for k in r.features})
        if not self.feature_names:
            raise ValueError("the records carry no features")
        bad = [n for n in self.feature_names if any(c in n for c in "[]<")]
        if bad:
            raise ValueError(f"xgboost rejects feature names containing '[', ']' or '<': {bad}")
        label = np.log([r.median_us for r in records])
        dtrain = xgb.DMatrix(self._matrix([r.features for r in records]), label=label,
                             feature_names=self.feature_names, missing=np.nan)
        self.booster = xgb.train(self.params, dtrain, num_boost_round=self.num_boost_round)
        self.booster.set_attr(**{META_KEY: json.dumps({
            "format": FORMAT,
            "label": "log(median_us)",
            "feature_names": self.feature_names,
            "targets": sorted({r.target for r in records}),
            "n_records": len(records),
            "version": package_version(),
        })})
        return self

    def predict(self, features: Sequence[Mapping[str, float]]) -> np.ndarray:
        """Predicted natural log of the time in microseconds, one per feature dict."""
        if self.booster is None:
            raise RuntimeError("CostModel is not fitted; call fit() or CostModel.load()")
        if not features:
            return np.empty(0)
        # in place: no DMatrix per call (plain compilation predicts once per region); on one
        # thread: for a region's few hundred rows xgboost's thread pool costs more than it saves
        # (96 rows of a 300-tree model: 0.9 ms on one thread, 52 ms on the pool of a busy 2-core host)
        self.booster.set_param({"nthread": 1})
        return np.asarray(self.booster.inplace_predict(self._matrix(features), missing=np.nan), dtype=np.float64)

    def predict_us(self, features: Sequence[Mapping[str, float]]) -> np.ndarray:
        return np.exp(self.predict(features))

    def rank(self, features: Sequence[Mapping[str, float]]) -> np.ndarray:
        """Indices into ``features``, predicted fastest first (ties keep input order)."""
        return np.argsort(self.predict(features), kind="stable")

    def save(self, path: str | os.PathLike[str]) -> None:
        """xgboost JSON, written atomically (a reader never sees half a model)."""
        if self.booster is None:
            raise RuntimeError("nothing to save: the model is not fitted")
        path = Path(path)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_bytes(bytes(self.booster.save_raw("json")))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CostModel:
        booster = xgb.Booster(model_file=str(path))
        meta = json.loads(booster.attr(META_KEY) or "{}")
        names = meta.get("feature_names", booster.feature_names)
        if names is None:
            raise ValueError(f"{path}: no feature names in the model; cannot map feature dicts to columns")
        return cls(booster=booster, feature_names=list(names))

    @property
    def metadata(self) -> dict[str, Any]:
        return json.loads(self.booster.attr(META_KEY) or "{}") if self.booster is not None else {}

    def _matrix(self, features: Sequence[Mapping[str, float]]) -> np.ndarray:
        """One row per feature dict in the model's column order; a feature the dict lacks is
        missing (NaN), one the model does not know is ignored."""
        names = self.feature_names
        if not {type(v) for f in features for v in f.values()} <= {float, int, bool}:
            for f in features:   # say which feature is not a number
                for name, v in f.items():
                    _as_float(v, name)
        return np.array([[f.get(name, np.nan) for name in names] for f in features],
                        dtype=np.float64).reshape(len(features), len(names))


def _as_float(v: Any, name: str) -> float:
    if isinstance(v, (int, float, np.number)):  # bool is an int: True -> 1.0
        return float(v)
    raise ValueError(f"feature {name!r} = {v!r} is not a number")


__all__ = ["CostModel", "DEFAULT_PARAMS", "META_KEY"]
