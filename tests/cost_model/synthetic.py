"""Synthetic records from a known timing law, so that tests can check that the cost model learns.

time_us = launch + bytes / (peak * vector_efficiency * thread_saturation) * idle_lane_penalty,
with 3% multiplicative noise.  The best (vector, threads) depends on the region's row size (too
many lanes for a short row idle), so a model must learn an interaction, not a global order.
These numbers are invented for tests and are not GPU measurements.
"""

from __future__ import annotations

import math
import random

from intelligen_tvm.cost_model.records import Record

VECTORS = (1, 2, 4)
THREADS = (32, 64, 128, 256, 512, 1024)


def law_us(nbytes: float, row: int, vector: int, threads: int) -> float:
    vec_eff = {1: 0.55, 2: 0.8, 4: 1.0}[vector]
    saturation = 1.0 - math.exp(-threads / 160.0)
    idle = max(1.0, threads * vector / row)  # lanes beyond the row's elements do nothing
    return 3.0 + nbytes / (2000.0 * vec_eff * saturation) * idle ** 0.7


def synthetic_records(n_regions: int = 40, seed: int = 0, target: str = "cuda -arch=sm_90",
                      repeats: int = 3) -> list[Record]:
    rng = random.Random(seed)
    records = []
    for g in range(n_regions):
        row = 2 ** rng.randint(6, 14)
        nbytes = float(row * 2 ** rng.randint(8, 14) * 4)
        for vector in VECTORS:
            for threads in THREADS:
                t = law_us(nbytes, row, vector, threads)
                features = {"dram_bytes": nbytes, "log_dram_bytes": math.log2(nbytes), "row_size": float(row),
                            "vector": float(vector), "threads_per_group": float(threads),
                            "distractor": rng.random()}
                if rng.random() < 0.1:
                    del features["distractor"]  # some records lack a feature
                records.append(Record(
                    region=f"region{g}", target=target, device="synthetic", version="test", timestamp=0.0,
                    candidate={"vector": vector, "threads": threads}, features=features,
                    times_us=[t * math.exp(rng.gauss(0.0, 0.03)) for _ in range(repeats)]))
    return records
