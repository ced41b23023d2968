#!/usr/bin/env python
"""The GPU campaign as one prepared command (logic: intelligen_tvm/campaign/).

    python scripts/gpu_campaign.py build --out DIR          # here: compile everything for sm_90
    python DIR/campaign_runner.py DIR --results-out OUT     # on the GPU machine (<= 8 min)
    python scripts/gpu_campaign.py ingest DIR --results OUT # here: records, model, README
    python scripts/gpu_campaign.py rehearse                 # here: all of it with the CPU as the GPU
"""

from __future__ import annotations

import sys

from intelligen_tvm.campaign.cli import main

if __name__ == "__main__":
    sys.exit(main())
