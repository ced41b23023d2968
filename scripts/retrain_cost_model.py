"""Retrain the XGBoost cost model from measurement records; the same as `intelligen-tvm retrain`.

The job lives in `intelligen_tvm/cost_model/retrain.py` (see its docstring, or --help).
"""

from __future__ import annotations

import sys

from intelligen_tvm.cost_model.retrain import main

if __name__ == "__main__":
    sys.exit(main())
