"""scripts/gpu_campaign.py rehearse: build for llvm at small shapes, run the runner in a clean
subprocess on the bundle's runtime-only TVM with the CPU as the device, check and ingest what
comes back (the slow one also estimates the real sm_90 bundle's size and device time)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from intelligen_tvm.campaign import cli, rehearse, runner


@pytest.mark.slow
def test_rehearsal(tmp_path, capsys):
    assert cli.main(["rehearse", "--work", str(tmp_path), "--cases", "softmax,layer_norm", "--trials", "4",
                     "--no-estimate"]) == 0
    assert "rehearsal passed" in capsys.readouterr().out
    results = json.loads((tmp_path / "bundle" / runner.RESULTS_NAME).read_text())
    assert results["tvm_runtime"]["from_bundle"] and not results["tvm_runtime"]["compiler_library_mapped"]
    for case in ("softmax", "layer_norm"):
        for name in ("intelligen", "intelligen_prior", "tvm_default"):
            assert results["cases"][case]["contestants"][name]["numerics_ok"]
    assert results["candidates"]["softmax"] == {"measured": 4, "failed": 0, "disagree": 0}
    records = (tmp_path / "ingested" / "records.jsonl").read_text().splitlines()
    assert len(records) == 8 and (tmp_path / "ingested" / "cost_model.json").exists()
    assert "| softmax |" in (tmp_path / "README.md").read_text()


def test_estimate_counts_every_candidate():
    cases = [{"elements": 1 << 20, "candidate_dram_bytes": [8e6] * 10, "torch": True},
             {"elements": 1 << 10, "candidate_dram_bytes": [], "torch": False}]
    est = rehearse.estimate_device_seconds(cases)
    assert est["candidates"] == 10
    assert est["torch_compile_s"] == rehearse.ASSUMED["torch_compile_s"]
    parts = ("startup_s", "cases_s", "copy_s", "candidates_s", "torch_compile_s")
    assert abs(est["total_s"] - sum(est[k] for k in parts)) < 1e-9


@pytest.mark.slow
def test_rehearsal_with_the_real_bundle_estimate(tmp_path, capsys):
    """Minutes on 2 cores: full-shape candidate counts and a small sm_90 sample (nvcc)."""
    code = cli.main(["rehearse", "--work", str(tmp_path), "--cases", "softmax,bert_encoder_layer",
                     "--trials", "4", "--full-bundle", str(tmp_path / "no_full_bundle")])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 0, last
    assert last.startswith("bundle ") and "MiB (estimated)" in last and "estimated device run" in last


DEVICE_PYTHON = os.environ.get("INTELLIGEN_DEVICE_PYTHON") or shutil.which("python3.12")


def _has_numpy(python: str | None) -> bool:
    return bool(python) and subprocess.run([python, "-c", "import numpy"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _has_numpy(DEVICE_PYTHON), reason="no Python 3.12 with numpy (INTELLIGEN_DEVICE_PYTHON)")
def test_rehearsal_on_the_device_python(tmp_path):
    """The GPU machine runs Python 3.12: the bundle's tvm_ffi extension for it must load."""
    assert cli.main(["rehearse", "--work", str(tmp_path), "--cases", "softmax", "--trials", "2",
                     "--python", DEVICE_PYTHON, "--no-estimate"]) == 0
    results = json.loads((tmp_path / "bundle" / runner.RESULTS_NAME).read_text())
    assert results["host"]["python"].startswith("3.12")
