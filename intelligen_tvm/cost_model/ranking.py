"""Ranking candidates: the one place a chooser asks which plan is predicted fastest."""

from __future__ import annotations

import numpy as np

from ..dataflow_graph.choices import Candidate
from ..gir.hardware import HardwareModel
from .features import features
from .prior import predicted_time_us


def rank(candidates: list[Candidate], hw: HardwareModel, model=None) -> list[tuple[Candidate, dict]]:
    """Candidates with their features, predicted fastest first: by the trained `model`
    (a `CostModel`) when given, else by the analytical prior."""
    feats = [features(c, hw) for c in candidates]
    scores = model.predict(feats) if model is not None else [predicted_time_us(f, hw) for f in feats]
    order = np.argsort(np.asarray(scores, dtype=float), kind="stable")
    return [(candidates[i], feats[i]) for i in order]
