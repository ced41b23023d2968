"""Bundle round trip on llvm: export here, run the standalone runner in another process,
ingest. The runner must measure with TVM's runtime alone: the compiler's Python packages,
intelligen_tvm, xgboost and onnx are made unimportable in its process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tvm

from intelligen_tvm.cost_model.bundle import (
    MANIFEST_NAME,
    RESULTS_NAME,
    RUNNER_NAME,
    export_bundle,
    ingest_bundle,
)
from intelligen_tvm.cost_model.measure import MeasureInput, MeasureSettings
from tests.cost_model.kernels import copy, vector_add

N = 1 << 14
LLVM = {"kind": "llvm"}
BLOCKED = ("tvm.relax", "tvm.tirx", "tvm.s_tir", "tvm.te", "tvm.topi", "tvm.script", "tvm.target",
           "tvm.driver", "intelligen_tvm", "xgboost", "onnx")

# Runs the runner as __main__ after installing an import blocker for BLOCKED.
BLOCKING_WRAPPER = """
import runpy, sys
BLOCKED = {blocked!r}
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError("blocked in the runner test: " + name)
        return None
sys.meta_path.insert(0, Blocker())
for name in list(sys.modules):
    if any(name == b or name.startswith(b + ".") for b in BLOCKED):
        del sys.modules[name]
sys.argv = [{runner!r}] + {argv!r}
runpy.run_path({runner!r}, run_name="__main__")
"""




def inputs() -> list[MeasureInput]:
    return [
        MeasureInput.from_prim_func("vector add", vector_add(N)),
        MeasureInput.from_prim_func("copy", copy(N)),
        MeasureInput("broken", "not a prim func", [((4,), "float32")]),
    ]


def run_runner(bundle: Path, *argv: str, blocked: tuple[str, ...] = BLOCKED) -> subprocess.CompletedProcess:
    """Run the bundle's own runner copy in a fresh interpreter, from a directory that does not
    hold the project, with `blocked` unimportable."""
    runner = str(bundle / RUNNER_NAME)
    code = BLOCKING_WRAPPER.format(blocked=blocked, runner=runner, argv=[str(bundle), *argv])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=bundle, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("bundle")
    return export_bundle(inputs(), LLVM, directory, MeasureSettings(repeat=5, warmup=1))


def test_export_writes_libraries_manifest_and_runner(bundle: Path):
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    assert manifest["format_version"] == 1 and manifest["device_kind"] == "cpu"
    assert manifest["target"]["kind"] == "llvm"
    assert manifest["settings"]["repeat"] == 5 and manifest["settings"]["number"] == 1
    names = [c["name"] for c in manifest["candidates"]]
    assert names == ["vector add", "copy", "broken"]
    add, cp, broken = manifest["candidates"]
    assert (bundle / add["file"]).is_file() and (bundle / cp["file"]).is_file()
    assert add["args"] == [{"shape": [N], "dtype": "float32"}] * 3
    assert broken["build_error"].startswith("build:") and not (bundle / broken["file"]).exists()
    assert (bundle / RUNNER_NAME).read_text().startswith('"""Measure a bundle')


def test_round_trip_with_compiler_unimportable(bundle: Path):
    proc = run_runner(bundle, "--device", "cpu", "--repeat", "4")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((bundle / RESULTS_NAME).read_text())
    # The runner's process ran TVM in runtime-only mode: no compiler library was loaded.
    assert report["tvm_runtime_only"] is True
    assert "tvm_compiler" not in report["tvm_loaded_libs"]
    results = ingest_bundle(bundle)
    assert [r.name for r in results] == ["vector add", "copy", "broken"]
    for r in results[:2]:
        assert r.error is None, r.error
        assert len(r.times_us) == 4 and all(t > 0 for t in r.times_us)
        assert r.device == report["device"] and r.device not in ("", "unknown")
    assert results[2].error.startswith("build:") and results[2].times_us == []


def test_blocker_really_blocks(bundle: Path, tmp_path: Path):
    """The blocking wrapper is effective: a script that imports the compiler fails under it."""
    script = tmp_path / RUNNER_NAME
    script.write_text("import tvm\n")  # tvm/__init__.py imports tvm.script, tvm.tirx, ...
    code = BLOCKING_WRAPPER.format(blocked=BLOCKED, runner=str(script), argv=[])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "blocked in the runner test: tvm." in proc.stderr


def test_missing_device_gives_errors_not_a_crash(bundle: Path, tmp_path: Path):
    if tvm.runtime.cuda(0).exist:
        pytest.skip("this host has a GPU")
    out = tmp_path / "cuda_results.json"
    proc = run_runner(bundle, "--device", "cuda", "--output", str(out))
    assert proc.returncode == 1
    report = json.loads(out.read_text())
    assert len(report["results"]) == 3
    assert all(r["error"].startswith("device:") and r["times_us"] == [] for r in report["results"])


def test_ingest_without_results_explains(tmp_path: Path):
    export_bundle([MeasureInput.from_prim_func("copy", copy(64))], LLVM, tmp_path)
    with pytest.raises(FileNotFoundError, match="bundle_runner.py"):
        ingest_bundle(tmp_path)
