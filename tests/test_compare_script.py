"""scripts/compare.py end to end on llvm, small shapes: every contestant checked and timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "compare.py"
CASES = ["softmax", "bias_add", "transpose_relu"]


def test_compare_small_llvm(tmp_path: Path) -> None:
    out = tmp_path / "compare"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--target", "llvm", "--small", "--cases", ",".join(CASES),
         "--repeat", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "results.json").read_text())
    assert report["target"] == {"kind": "llvm"}
    assert report["tvm_version"] and report["git_commit"] and report["device"]
    assert [row["case"] for row in report["rows"]] == CASES
    expected = {"intelligen", "tvm_default"}
    if report["torch_version"]:
        expected |= {"torch_eager", "torch_compile"}
    for row in report["rows"]:
        assert row["ideal_bytes"] > 0
        assert row["copy"]["copy_gbps"] > 0 and row["copy"]["copy_ok"]
        assert expected <= set(row["contestants"])
        for name in expected:
            c = row["contestants"][name]
            assert c["numerics_ok"], (row["case"], name, c)
            assert c["time_us"] > 0 and c["gbps"] > 0 and c["fraction_of_copy"] > 0
        assert row["speedup_vs_best_baseline"] > 0
    table = (out / "results.md").read_text()
    assert "| case | contestant |" in table
    for case in CASES:
        assert f"| {case} | intelligen | ok |" in table


def test_metaschedule_flag_fails_loudly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--small", "--cases", "softmax", "--metaschedule-trials", "2",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "metaschedule" in proc.stderr
    assert not (tmp_path / "results.json").exists()
