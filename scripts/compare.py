"""Compare IntelliGen against what users run today (TVM default, MetaSchedule, PyTorch eager and
torch.compile), on one target and device, in one run; the same as `intelligen-tvm bench`.

The job lives in `intelligen_tvm/benchmark/compare.py` (see its docstring, or --help).
"""

from __future__ import annotations

import sys

from intelligen_tvm.benchmark.compare import main

if __name__ == "__main__":
    sys.exit(main())
