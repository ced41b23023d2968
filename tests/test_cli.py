"""The `intelligen-tvm` command as a user runs it: on a model the project has never seen, with
the bad inputs a user makes (missing files, garbage, targets we do not render, no Graphviz)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper

from intelligen_tvm import cli
from intelligen_tvm.cost_model.records import RecordDB
from intelligen_tvm.testing import reference_outputs
from tests.cost_model.synthetic import synthetic_records

ROOT = Path(__file__).resolve().parent.parent


def unseen_model(path: Path) -> Path:
    """MatMul + bias + SiLU + softmax, [16, 32] x [32, 48]: in no suite case."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((32, 48)).astype("float32"), "W"),
             numpy_helper.from_array(rng.standard_normal(48).astype("float32"), "b"),
             numpy_helper.from_array(np.array([-1], dtype=np.int64), "axes")]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("Sigmoid", ["a"], ["s"]), helper.make_node("Mul", ["a", "s"], ["silu"]),
             helper.make_node("ReduceMax", ["silu"], ["mx"], axes=[-1], keepdims=1),
             helper.make_node("Sub", ["silu", "mx"], ["d"]), helper.make_node("Exp", ["d"], ["e"]),
             helper.make_node("ReduceSum", ["e", "axes"], ["se"], keepdims=1),
             helper.make_node("Div", ["e", "se"], ["y"])]
    graph = helper.make_graph(nodes, "unseen", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, 48])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return unseen_model(tmp_path_factory.mktemp("model") / "unseen.onnx")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_every_command_and_the_exit_codes() -> None:
    """As installed: setup.py's console script is `intelligen_tvm.cli:main`, run here as a module."""
    assert re.search(r'"intelligen-tvm = intelligen_tvm\.cli:main"', (ROOT / "setup.py").read_text())
    proc = subprocess.run([sys.executable, "-m", "intelligen_tvm.cli", "--help"], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in ("compile", "inspect", "tune", "bench", "retrain"):
        assert re.search(rf"^\s+{command}\s", proc.stdout, re.M), proc.stdout
    assert "exit status" in proc.stdout and "3  an input is missing" in proc.stdout


def test_compile_writes_a_library_and_a_report_that_compute_the_model(model_path, tmp_path, capsys) -> None:
    lib, report = tmp_path / "unseen.so", tmp_path / "r.json"
    code, _, err = run_cli(capsys, "compile", str(model_path), "--target", "llvm", "--report", str(report),
                           "-o", str(lib))
    assert code == 0, err
    doc = json.loads(report.read_text())
    assert doc["target"]["kind"] == "llvm" and doc["output"] == str(lib)
    by = {r["handled_by"]: r for r in doc["regions"]}
    assert by["fallback"]["ops"] == ["matmul"] and "compute-bound" in by["fallback"]["reason"]
    assert by["intelligen"]["ops"][0] == "add" and by["intelligen"]["ops"][-1] == "divide"
    assert by["intelligen"]["dram_bytes_planned"] == by["intelligen"]["dram_bytes_ideal"]
    assert doc["summary"] == {"regions": 2, "intelligen": 1, "fallback": 1,
                              "dram_bytes_planned": by["intelligen"]["dram_bytes_planned"],
                              "dram_bytes_naive": by["intelligen"]["dram_bytes_naive"]}
    assert "1/1" in err  # the progress bar over the regions being lowered
    assert "warning" not in err   # nothing of ours failed and fell back

    x = np.random.default_rng(1).standard_normal((16, 32)).astype("float32")
    vm = tvm.relax.VirtualMachine(tvm.runtime.load_module(str(lib)), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(x)).numpy()
    (expected,) = reference_outputs(onnx.load(model_path), [x])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not on PATH (apt-get install graphviz)")
def test_inspect_prints_regions_gir_and_draws_pictures(model_path, tmp_path, capsys) -> None:
    pictures, doc = tmp_path / "pictures", tmp_path / "inspect.json"
    code, out, err = run_cli(capsys, "inspect", str(model_path), "--target", "llvm", "--region", "1",
                             "--picture", str(pictures), "--json", str(doc))
    assert code == 0, err
    assert "[0] intelligen_region0: matmul\n    fallback: a contraction (matmul/conv): compute-bound" in out
    assert re.search(r"DRAM bytes: ideal (\d+), naive \d+, planned \1 \(1\.00x ideal", out), out
    assert "plan cpu.row(" in out
    assert "gir.program intelligen_region1" in out and "reduce.max.lane" in out   # a CPU task reduces within its lane
    svg = (pictures / "intelligen_region1.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    text = html.unescape(svg)
    assert "strategy cpu.row(" in text and "reduce.sum.lane" in text and "move.dram->reg" in text
    assert not (pictures / "intelligen_region0.svg").exists()   # the matmul has no GIR
    assert json.loads(doc.read_text())["gir"]["intelligen_region1"].startswith("gir.program")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_inspect_on_cuda_reports_ptxas_resources(model_path, capsys) -> None:
    code, out, err = run_cli(capsys, "inspect", str(model_path), "--target", "cuda")
    assert code == 0, err
    found = re.search(r"ptxas intelligen_region1_kernel: (\d+) threads, (\d+) registers, spills 0/0 B "
                      r"\(store/load\), smem (\d+) B, occupancy (\d+)%", out)
    assert found, out
    assert int(found[1]) == 128 and 0 < int(found[2]) < 255   # the row plan's 4 warps per block


def test_picture_without_graphviz_says_so_and_keeps_the_dot_text(model_path, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    pictures = tmp_path / "pictures"
    code, _, err = run_cli(capsys, "inspect", str(model_path), "--target", "llvm", "--picture", str(pictures))
    assert code == cli.EXIT_MISSING_TOOL
    assert "dot` is not on PATH" in err and "apt-get install graphviz" in err
    assert (pictures / "intelligen_region1.dot").read_text().startswith("digraph gir {")


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "model not found"),
    (lambda p: p.write_bytes(b"\x00garbage\xff" * 10), "not a readable ONNX model"),
])
def test_bad_model_files_are_input_errors(make, message, tmp_path, capsys) -> None:
    path = tmp_path / "model.onnx"
    make(path)
    code, _, err = run_cli(capsys, "compile", str(path), "--target", "llvm")
    assert code == cli.EXIT_INPUT
    assert message in err and str(path) in err


def test_bad_target_is_an_input_error(model_path, capsys) -> None:
    code, _, err = run_cli(capsys, "compile", str(model_path), "--target", '{"kind": "cuda", ')
    assert code == cli.EXIT_INPUT and "not valid JSON" in err
    code, _, err = run_cli(capsys, "compile", str(model_path), "--target", "no_such_kind")
    assert code == cli.EXIT_INPUT and "TVM does not accept 'no_such_kind'" in err


def test_missing_cost_model_is_an_input_error(model_path, tmp_path, capsys) -> None:
    missing = tmp_path / "model.json"
    code, _, err = run_cli(capsys, "inspect", str(model_path), "--target", "llvm", "--cost-model", str(missing))
    assert code == cli.EXIT_INPUT and f"cost model not found: {missing}" in err


def test_a_target_we_do_not_render_goes_to_tvm_with_a_warning(model_path, tmp_path, capsys) -> None:
    """`c` (TVM's C source backend) builds here; everything is reported as left to TVM."""
    report = tmp_path / "r.json"
    code, _, err = run_cli(capsys, "compile", str(model_path), "--target", "c", "--report", str(report),
                           "-o", str(tmp_path / "lib.so"))
    assert code == 0, err
    assert err.count("warning: intelligen: target kind 'c' not supported") == 1   # said once, not per pass
    regions = json.loads(report.read_text())["regions"]
    assert regions and all(r["handled_by"] == "fallback" and r["reason"].startswith("target not supported")
                           for r in regions)


def test_records_missing_corrupt_or_empty_are_never_silent(model_path, tmp_path, capsys) -> None:
    missing = tmp_path / "nope.jsonl"
    code, _, err = run_cli(capsys, "compile", str(model_path), "--target", "llvm", "--records", str(missing))
    assert code == cli.EXIT_INPUT and f"records file not found: {missing}" in err

    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\n{\"region\": 1}\n")
    code, _, err = run_cli(capsys, "compile", str(model_path), "--target", "llvm", "--records", str(garbage),
                           "-o", str(tmp_path / "a.so"), "--quiet")
    assert code == 0, err
    assert f"warning: {garbage}: skipped 2 corrupt or truncated line(s)" in err
    assert f"warning: records file {garbage} holds no valid record" in err

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, _, err = run_cli(capsys, "compile", str(model_path), "--target", "llvm", "--records", str(empty),
                           "-o", str(tmp_path / "b.so"), "--quiet")
    assert code == 0 and f"warning: records file {empty} is empty" in err


def test_tune_records_measurements_and_compile_uses_them(model_path, tmp_path, capsys) -> None:
    records = tmp_path / "records.jsonl"
    code, out, err = run_cli(capsys, "tune", str(model_path), "--target", "llvm", "--trials", "2",
                             "--records", str(records))
    assert code == 0, err
    assert "1 regions tuned" in out and "1/1" in err
    assert len(RecordDB(records).load()) == 2
    code, _, err = run_cli(capsys, "compile", str(model_path), "--target", "llvm", "--records", str(records),
                           "-o", str(tmp_path / "tuned.so"), "--quiet")
    assert code == 0 and "warning" not in err


def test_tune_without_the_device_points_to_bundles(model_path, tmp_path, capsys) -> None:
    code, _, err = run_cli(capsys, "tune", str(model_path), "--target", "cuda", "--records", str(tmp_path / "r"))
    if tvm.cuda(0).exist:
        pytest.skip("this machine has a CUDA device")
    assert code == cli.EXIT_MISSING_TOOL and "no cuda device" in err and "--bundle" in err
    code, out, err = run_cli(capsys, "tune", str(model_path), "--target", "cuda", "--trials", "2",
                             "--bundle", str(tmp_path / "bundle"))
    assert code == 0, err
    assert (tmp_path / "bundle" / "bundle_runner.py").is_file() and "--ingest" in out


def test_bench_runs_the_comparison_job(tmp_path, capsys) -> None:
    out_dir = tmp_path / "compare"
    code, _, err = run_cli(capsys, "bench", "--small", "--cases", "bias_add", "--trials", "0", "--repeat", "1",
                           "--threads", "1", "--contestants", "intelligen,tvm_default", "--out", str(out_dir))
    assert code == 0, err
    report = json.loads((out_dir / "results.json").read_text())
    assert report["command"].startswith("intelligen-tvm bench --small")
    (row,) = report["rows"]
    assert all(c["numerics_ok"] for c in row["contestants"].values())
    assert "1/1" in err


def test_retrain_trains_or_says_there_is_nothing(tmp_path, capsys) -> None:
    records, model = tmp_path / "r.jsonl", tmp_path / "model.json"
    records.write_text("garbage\n")
    code, _, err = run_cli(capsys, "retrain", "--records", str(records), "--out", str(model))
    assert code == cli.EXIT_FAILED and "no records" in err and not model.exists()
    RecordDB(records).append(synthetic_records(4))
    code, out, err = run_cli(capsys, "retrain", "--records", str(records), "--out", str(model))
    assert code == 0, err
    assert model.is_file() and "held-out" in out
