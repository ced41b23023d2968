"""Cost model and search: candidate features, measurement records (JSONL), the XGBoost model
that ranks candidates by predicted log time, and its held-out evaluation."""

from .evaluation import Score, spearman, spearman_per_region, split_by_region, top1_regret
from .model import CostModel
from .records import Record, RecordDB

__all__ = ["CostModel", "Record", "RecordDB", "Score", "spearman", "spearman_per_region", "split_by_region",
           "top1_regret"]
