"""scripts/compare.py end to end on llvm, small shapes, few trials: every TVM contestant
(MetaSchedule and tuned IntelliGen included) built, checked against onnx.reference and timed;
JSON, Markdown and plots written; contestants isolated in processes of their own; ONNX Runtime."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import detach_unnamed_metaschedule_handlers

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "compare.py"
TVM_CONTESTANTS = ["intelligen_tuned", "intelligen", "tvm_default", "metaschedule"]


def run_script(*args: str, env: dict | None = None, timeout: int = 400) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def load_script():
    spec = importlib.util.spec_from_file_location("compare_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_compare_smoke_llvm(tmp_path: Path) -> None:
    """In this process (not a subprocess) so that MetaSchedule's one-time import of TVM's tensor
    intrinsics (~20 s) is shared with the other MetaSchedule tests."""
    detach_unnamed_metaschedule_handlers()
    cases = ["softmax", "transpose_relu"]
    out = tmp_path / "compare"
    assert load_script().main(["--target", "llvm", "--small", "--cases", ",".join(cases), "--trials", "2",
                               "--repeat", "2", "--contestants", ",".join(TVM_CONTESTANTS), "--isolation", "none",
                               "--out", str(out), "--plot"]) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["target"]["kind"] == "llvm"
    assert report["versions"]["tvm"] and report["versions"]["numpy"] and report["git_commit"]
    assert report["device"] and report["driver"]
    assert any("CPU backend" in n for n in report["notes"]) and report["target"]["mcpu"]
    assert [row["case"] for row in report["rows"]] == cases
    for row in report["rows"]:
        assert row["copy"]["copy_ok"] and row["copy"]["copy_gbps"] > 0
        assert row["copy"]["kernel_copy_us"] is not None, row["copy"]
        assert list(row["contestants"]) == TVM_CONTESTANTS
        for name, c in row["contestants"].items():
            assert c["numerics_ok"], (row["case"], name, c.get("status"))
            assert c["max_abs_error"] < 1e-4
            assert c["time_us"] > 0 and 0 < c["fraction_of_copy"]
        for name in ("intelligen_tuned", "metaschedule"):
            assert row["contestants"][name]["tune_s"] > 0  # the tuning wall time is recorded
        assert 0 < row["contestants"]["intelligen_tuned"]["tune_s_to_5pct"] <= row["contestants"]["intelligen_tuned"]["tune_s"]
        assert row["best_baseline"] in ("tvm_default", "metaschedule")
        assert set(row["speedup_vs_best_baseline"]) == {"intelligen_tuned", "intelligen"}
    assert set(report["geomean_speedup"]) == {"intelligen_tuned", "intelligen"}
    table = (out / "results.md").read_text()
    assert "| case | ideal bytes | copy GB/s | intelligen_tuned |" in table
    assert all(f"| {case} |" in table for case in cases)
    for png in ("fraction_of_copy.png", "speedup.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_torch_contestants_skipped_with_reason(tmp_path: Path) -> None:
    """Without torch the run still completes (each contestant in its own process) and says why
    torch is missing; ONNX Runtime runs and matches."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "torch.py").write_text("raise ImportError('torch is not installed here')\n")
    repo = str(SCRIPT.parent.parent)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{fake}:{repo}"}
    out = tmp_path / "out"
    run_script("--small", "--cases", "bias_add", "--trials", "0", "--repeat", "1", "--threads", "1",
               "--contestants", "intelligen,onnxruntime,torch_eager,torch_compile", "--out", str(out), env=env)
    report = json.loads((out / "results.json").read_text())
    assert report["versions"]["torch"] is None and report["settings"]["isolation"] == "process"
    contestants = report["rows"][0]["contestants"]
    assert list(contestants) == ["intelligen", "onnxruntime", "torch_eager", "torch_compile"]
    for name in ("torch_eager", "torch_compile"):
        assert "skipped" in contestants[name]["status"] and "not installed" in contestants[name]["status"]
        assert contestants[name]["time_us"] is None
    assert contestants["onnxruntime"]["numerics_ok"] and contestants["onnxruntime"]["time_us"] > 0
    assert report["rows"][0]["best_baseline"] == "onnxruntime"
