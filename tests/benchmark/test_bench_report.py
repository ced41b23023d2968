"""Summary numbers, tables and plots of a comparison run, on hand-made rows."""

from __future__ import annotations

import math
from pathlib import Path

from intelligen_tvm.benchmark import report


def _row(case: str, times: dict[str, float | None]) -> dict:
    contestants = {k: {"time_us": t, "gbps": None if t is None else 1000 / (t * 1e-6) / 1e9, "numerics_ok": t is not None,
                       "build_s": 0.5, "tune_s": 2.0 if k == "metaschedule" else None}
                   for k, t in times.items()}
    return report.summarize({"case": case, "ideal_bytes": 1000, "copy": {"copy_gbps": 1.0},
                             "contestants": contestants})


def test_speedup_is_over_the_fastest_baseline_that_has_a_time() -> None:
    row = _row("a", {"intelligen_tuned": 2.0, "intelligen": 4.0, "tvm_default": 8.0,
                     "metaschedule": 6.0, "torch_eager": None})
    assert row["best_baseline"] == "metaschedule"
    assert row["speedup_vs_best_baseline"] == {"intelligen_tuned": 3.0, "intelligen": 1.5}
    assert math.isclose(row["contestants"]["tvm_default"]["fraction_of_copy"], 0.125)
    assert row["contestants"]["torch_eager"]["fraction_of_copy"] is None


def test_geomean_skips_cases_without_a_speedup() -> None:
    rows = [_row("a", {"intelligen": 1.0, "tvm_default": 2.0}),
            _row("b", {"intelligen": 1.0, "tvm_default": 8.0}),
            _row("c", {"intelligen": None, "tvm_default": 8.0})]
    assert math.isclose(report.geomean_speedups(rows)["intelligen"], 4.0)
    assert "intelligen_tuned" not in report.geomean_speedups(rows)


def test_markdown_and_plots(tmp_path: Path) -> None:
    rows = [_row("softmax", {"intelligen_tuned": 2.0, "intelligen": 4.0, "metaschedule": 6.0}),
            _row("bias_add", {"intelligen_tuned": None, "intelligen": 4.0, "metaschedule": 2.0})]
    rows[1]["contestants"]["intelligen_tuned"]["status"] = "MISMATCH: not timed"
    meta = {"target": {"kind": "llvm"}, "device": "cpu", "git_commit": "abc",
            "versions": {"tvm": "0.27", "torch": None, "numpy": "2"},
            "settings": {"small": True, "repeat": 2, "trials": 2}, "notes": ["CPU-only run"]}
    text = report.markdown(rows, meta)
    assert "| softmax | 1000 | 1.0 | 2.0 (50%) | 4.0 (25%) | 6.0 (17%) | metaschedule | 3.00x | 1.50x |" in text
    assert "| bias_add | 1000 | 1.0 | MISMATCH | 4.0 (25%) | 2.0 (50%) | metaschedule | - | 0.50x |" in text
    assert "tune 2.0 + build 0.5" in text and "- CPU-only run" in text
    assert report.plot(rows, tmp_path, "t") == ["fraction_of_copy.png", "speedup.png"]
    assert all((tmp_path / p).stat().st_size > 1000 for p in ("fraction_of_copy.png", "speedup.png"))
