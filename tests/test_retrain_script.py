"""scripts/retrain_cost_model.py as a command: held-out report, model saved from all records, exit 1
when there is nothing to train on."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import xgboost

from intelligen_tvm.cost_model.records import RecordDB
from tests.cost_model.synthetic import synthetic_records

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "retrain_cost_model.py"


def _main(*args: str) -> int:
    """The script's main() in this process (no interpreter start-up)."""
    spec = importlib.util.spec_from_file_location("retrain_cost_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(list(args))


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_retrain_reports_held_out_quality_and_saves(tmp_path: Path) -> None:
    records = synthetic_records(30, seed=3)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    RecordDB(a).append(records[:300])
    with open(a, "a") as f:
        f.write('{"truncated": \n')
    RecordDB(b).append(records[300:])
    out = tmp_path / "model.json"

    proc = _run("--records", str(a), "--records", str(b), "--out", str(out), "--holdout", "0.3", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert f"{a}: 300 records, 1 corrupt" in proc.stdout
    held = re.search(r"held-out \((\d+) of 30 regions.*regret mean ([\d.]+) max ([\d.]+).*Spearman mean ([\d.]+)",
                     proc.stdout)
    assert held, proc.stdout
    assert int(held[1]) == 9 and float(held[2]) < 0.2 and float(held[4]) > 0.8

    booster = xgboost.Booster(model_file=str(out))
    meta = json.loads(booster.attr("intelligen_tvm"))
    assert meta["n_records"] == len(records)  # the saved model is refit on every record
    assert booster.feature_names == meta["feature_names"]


def test_no_records_exits_1(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("garbage\n")
    out = tmp_path / "model.json"
    proc = _run("--records", str(empty), "--records", str(tmp_path / "missing.jsonl"), "--out", str(out))
    assert proc.returncode == 1 and "no records" in proc.stderr and not out.exists()

    RecordDB(empty).append(synthetic_records(2))
    assert _main("--records", str(empty), "--out", str(out), "--target", "llvm") == 1  # none for llvm
    assert not out.exists()
    assert _main("--records", str(empty), "--out", str(out), "--target", "cuda -arch=sm_90") == 0
    assert out.exists()
