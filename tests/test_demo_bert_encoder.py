"""The README's main job (scripts/demo_bert_encoder.py) on tiny shapes, and its report table."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest
import tvm

import intelligen_tvm

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "demo_bert_encoder.py"
REGION_KEYS = {"name", "ops", "handled_by", "dram_bytes_ideal", "dram_bytes_naive",
               "dram_bytes_planned", "kernels", "strategy"}  # fmt: skip


def _load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_bert_encoder", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = _load_demo()


def _has_pipeline(name: str) -> bool:
    try:
        tvm.relax.get_pipeline(name)
    except ValueError:
        return False
    return True


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["--small", "--onnx", str(tmp_path / "bert.onnx"), "--out", str(tmp_path / "r.json"),
            *extra]  # fmt: skip


def test_format_report_shows_every_region_and_totals() -> None:
    report = {
        "target": "llvm",
        "regions": [
            {"name": "fused_softmax", "ops": ["add", "softmax"], "handled_by": "intelligen",
             "dram_bytes_ideal": 4096, "dram_bytes_naive": 12288, "dram_bytes_planned": 4096,
             "kernels": 1, "strategy": "row per warp, vec 4"},
            {"name": "matmul", "ops": ["matmul"], "handled_by": "fallback",
             "reason": "compute-intensive", "dram_bytes_ideal": 8, "dram_bytes_naive": 8,
             "dram_bytes_planned": None, "kernels": 1, "strategy": None},
        ],
    }  # fmt: skip
    table = demo.format_report(report)
    assert "fused_softmax" in table and "add,softmax" in table
    assert "fallback: compute-intensive" in table
    assert "4.0 KiB" in table and "12.0 KiB" in table
    assert "1/2 regions taken by intelligen" in table


def test_demo_default_pipeline_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(_args(tmp_path, "--pipeline", "default")) == 0
    out = capsys.readouterr().out
    assert "max abs error vs onnx.reference" in out
    assert (tmp_path / "bert.onnx").exists()


def test_demo_cuda_build_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(_args(tmp_path, "--pipeline", "default", "--target", "cuda")) == 0
    out = capsys.readouterr().out
    assert "built for {'kind': 'cuda', 'arch': 'sm_90'}" in out
    assert (tmp_path / "bert_cuda.cu").read_text().count("__global__") > 0
    if shutil.which("nvcc"):
        assert "-cubin: OK" in out


def test_unknown_pipeline_fails_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not registered"):
        demo.main(_args(tmp_path, "--pipeline", "no_such_pipeline"))


@pytest.mark.skipif(
    not _has_pipeline("intelligen") or not hasattr(intelligen_tvm, "explain"),
    reason="compiler core (intelligen pipeline + explain) not landed yet",
)
def test_demo_intelligen_pipeline_small(tmp_path: Path) -> None:
    assert demo.main(_args(tmp_path)) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["regions"]
    for region in report["regions"]:
        assert REGION_KEYS <= set(region)
        assert region["handled_by"] in ("intelligen", "fallback")
        if region["handled_by"] == "fallback":
            assert region.get("reason")


def test_demo_fails_on_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = demo.reference_outputs
    monkeypatch.setattr(demo, "reference_outputs", lambda m, x: [o + 1.0 for o in real(m, x)])
    assert demo.main(_args(tmp_path, "--pipeline", "default")) == 1


def test_demo_dynamic_batch_and_seq(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Batch and seq as dim_params: compiled once, matches onnx.reference at 1x1, 2x7 and 1x16;
    every region other than a matmul or a lone reshape (a view) is taken by intelligen."""
    assert demo.main(_args(tmp_path, "--dynamic")) == 0
    out = capsys.readouterr().out
    assert out.count("max abs error vs onnx.reference at batch") == 3
    regions = json.loads((tmp_path / "r.json").read_text())["regions"]
    for region in regions:
        if region["handled_by"] == "fallback":
            assert region["ops"][0].startswith(("matmul", "reshape")), region
        else:
            assert region["symbols"] == {"batch": 1, "seq": 16}
    ops = {op for r in regions if r["handled_by"] == "intelligen" for op in r["ops"]}
    assert {"softmax", "layer_norm", "erf"} <= ops


def test_demo_dynamic_cuda_build_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(_args(tmp_path, "--dynamic", "--target", "cuda")) == 0
    out = capsys.readouterr().out
    assert "int64_t batch" in (tmp_path / "bert_cuda.cu").read_text()
    if shutil.which("nvcc"):
        assert "-cubin: OK" in out
