"""Differential fuzzing (intelligen_tvm/fuzz.py): the generator, the classifier, the campaign
runner, and the default corpus itself — random memory-intensive ONNX graphs through
`tvm.compile(..., relax_pipeline="intelligen")` on llvm against `onnx.reference`.

INTELLIGEN_FUZZ_COUNT sets the default corpus size (250 graphs, seed 0; a few minutes on two
cores); INTELLIGEN_FUZZ_LARGE=N also runs an N-graph campaign (seed 1)."""

from __future__ import annotations

import functools
import os
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import tvm

from intelligen_tvm import fuzz
from intelligen_tvm.testing import device_sources
from tests.helpers import check_nvcc_compiles

DEFAULT_COUNT = int(os.environ.get("INTELLIGEN_FUZZ_COUNT", "250"))
LARGE_COUNT = int(os.environ.get("INTELLIGEN_FUZZ_LARGE", "0"))

# What the brief asks the corpus to exercise (checked over the first 150 graphs).
REQUIRED_OPS = {
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Tanh", "Erf", "Sigmoid", "Relu", "Where", "Cast",
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL2",
    "Softmax", "LogSoftmax", "LayerNormalization", "Transpose", "Reshape", "Squeeze", "Unsqueeze",
    "Flatten", "Slice", "Concat", "Gather", "Expand", "Min", "Max",
}


@functools.cache
def _graphs(n: int) -> list[fuzz.FuzzGraph]:
    return [fuzz.generate(0, i) for i in range(n)]


def _shape(vi) -> tuple[int, ...]:
    return tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)


def test_generation_is_deterministic_in_seed_and_index() -> None:
    a, b = fuzz.generate(3, 17), fuzz.generate(3, 17)
    assert a.model.SerializeToString() == b.model.SerializeToString()
    assert all(np.array_equal(x, y) for x, y in zip(a.inputs, b.inputs))
    assert fuzz.generate(3, 18).model.SerializeToString() != a.model.SerializeToString()


def test_graphs_are_valid_and_the_reference_runs_them() -> None:
    """Every graph passes the ONNX checker, and the reference gives the declared shapes and
    dtypes: a generator bug would otherwise pass for a compiler bug."""
    for g in _graphs(150):
        onnx.checker.check_model(g.model, full_check=True)
        outs = fuzz.reference(g)
        for out, vi in zip(outs, g.model.graph.output):
            assert out.shape == _shape(vi), g.tag
            assert onnx.helper.np_dtype_to_tensor_dtype(out.dtype) == vi.type.tensor_type.elem_type, g.tag


def test_corpus_covers_the_ops_ranks_dtypes_and_edge_shapes() -> None:
    ops, dtypes, ranks, extents = Counter(), set(), set(), set()
    keepdims, slice_steps, several_outputs, shared = set(), set(), 0, 0
    for g in _graphs(150):
        init = {t.name: onnx.numpy_helper.to_array(t) for t in g.model.graph.initializer}
        uses = Counter(i for n in g.model.graph.node for i in n.input)
        shared += any(uses[n.output[0]] > 1 for n in g.model.graph.node)
        several_outputs += len(g.model.graph.output) > 1
        for x in g.inputs:
            dtypes.add(str(x.dtype))
            ranks.add(x.ndim)
            extents |= set(x.shape)
        for n in g.model.graph.node:
            ops[n.op_type] += 1
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            if n.op_type.startswith("Reduce"):
                keepdims.add(attrs.get("keepdims", 1))
            if n.op_type == "Slice":
                slice_steps |= set(init[n.input[4]].tolist())
            if n.op_type == "Cast":
                dtypes.add(onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]).name)
    assert REQUIRED_OPS <= set(ops), REQUIRED_OPS - set(ops)
    assert {"float32", "float16", "int32", "int64", "bool"} <= dtypes
    assert {1, 2, 3, 4, 5} <= ranks and {1, 3, 7, 33, 127, 1000} <= extents
    assert keepdims == {0, 1} and min(slice_steps) < 0 and max(slice_steps) > 1
    assert several_outputs >= 10 and shared >= 30


def test_inputs_are_in_the_ops_domain_and_not_standard_normal() -> None:
    """Domain guards are part of the graph (Sqrt of |x|, Exp of a clip, Div by |y| + 0.5), so
    the reference never produces NaN or inf from in-range data."""
    for g in _graphs(150):
        for out in fuzz.reference(g):
            if out.dtype.kind == "f":
                assert np.isfinite(out).all(), g.tag
        for n in g.model.graph.node:
            if n.op_type in ("Sqrt", "Log", "Reciprocal"):
                producer = {m.output[0]: m.op_type for m in g.model.graph.node}
                assert producer.get(n.input[0]) in ("Abs", "Add"), g.tag


def test_close_checks_shapes_dtypes_nan_and_scaled_tolerance() -> None:
    ref = [np.array([1000.0, 1.0, np.nan], "float32"), np.array([1, 2], "int32")]
    assert fuzz.close([ref[0] + np.float32(0.5), ref[1]], ref)[0]           # within 2e-3 * 1000
    assert not fuzz.close([ref[0] + np.array([0, 3, 0], "float32"), ref[1]], ref)[0]
    assert not fuzz.close([np.array([1000.0, 1.0, 0.0], "float32"), ref[1]], ref)[0]   # NaN lost
    assert not fuzz.close([ref[0], ref[1] + 1], ref)[0]                     # integers exact
    assert not fuzz.close([ref[0].astype("float16"), ref[1]], ref)[0]       # dtype
    assert not fuzz.close([ref[0][:2], ref[1]], ref)[0]                     # shape
    assert not fuzz.close(ref[:1], ref)[0]                                  # output count


def test_classify_tells_our_wrong_results_from_tvms(monkeypatch) -> None:
    graph = next(g for g in _graphs(40) if all(x.dtype == np.float32 for x in g.inputs))
    assert fuzz.classify(graph)["cls"] in ("pass", "internal_error")
    expected = fuzz.reference(graph)
    monkeypatch.setattr(fuzz, "_run_ours", lambda mod, target, inputs: ([e + 1 for e in expected], []))
    assert fuzz.classify(graph)["cls"] == "wrong"
    monkeypatch.setattr(fuzz, "build_and_run", lambda *a, **k: [e + 1 for e in expected])
    assert fuzz.classify(graph)["cls"] == "tvm_also_wrong"

    def boom(*_):
        raise RuntimeError("build broke")

    monkeypatch.setattr(fuzz, "_run_ours", boom)
    assert fuzz.classify(graph)["cls"] == "tvm_also_wrong"   # TVM's build is "wrong" too here
    monkeypatch.undo()
    monkeypatch.setattr(fuzz, "_run_ours", boom)
    result = fuzz.classify(graph)
    assert result["cls"] == "crash" and "build broke" in result["detail"]


FAKE_WORKER = textwrap.dedent("""
    import json, os, signal, sys, time
    for line in sys.stdin:
        seed, index = map(int, line.split())
        if index == 1:
            os.kill(os.getpid(), signal.SIGFPE)
        if index == 2:
            time.sleep(60)
        print(json.dumps({"seed": seed, "index": index, "cls": "pass", "detail": ""}), flush=True)
""")


def test_campaign_fails_the_graph_a_worker_died_on_and_goes_on(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(FAKE_WORKER)
    jobs = [(5, i) for i in range(6)]
    results = fuzz.run_campaign(jobs, workers=2, timeout_s=3, cmd=[sys.executable, str(script)])
    assert [(r["index"], r["cls"]) for r in results] == \
        [(0, "pass"), (1, "crash"), (2, "crash"), (3, "pass"), (4, "pass"), (5, "pass")]
    assert "SIGFPE" in results[1]["detail"] and "within 3 s" in results[2]["detail"]
    assert fuzz.summary(results) == {"pass": 4, "wrong": 0, "crash": 2, "internal_error": 0,
                                     "tvm_also_wrong": 0, "invalid": 0}


def test_reproducer_is_the_graph_as_text_with_its_seed() -> None:
    text = fuzz.reproducer(0, 3)
    assert text.startswith("# python -m intelligen_tvm.fuzz --seed 0 --index 3")
    g = fuzz.generate(0, 3)
    for node in g.model.graph.node:
        assert f"= {node.op_type} " in text or f"= {node.op_type}<" in text or f"= {node.op_type} <" in text


@functools.cache
def _campaign(seed: int, count: int) -> tuple[list[dict], dict[str, int]]:
    results = fuzz.run_campaign([(seed, i) for i in range(count)], workers=2)
    counts = fuzz.summary(results)
    print(f"fuzz seed {seed}, {count} graphs: {counts}")
    return results, counts


@pytest.mark.slow
def test_default_corpus_has_no_wrong_results_or_crashes() -> None:
    results, counts = _campaign(0, DEFAULT_COUNT)
    assert len(results) == DEFAULT_COUNT
    assert counts["wrong"] == counts["crash"] == counts["invalid"] == 0, \
        f"{counts}\n{fuzz.failure_report(results, ('wrong', 'crash', 'invalid'))}"
    assert counts["pass"] >= DEFAULT_COUNT // 4, counts


@pytest.mark.slow
def test_default_corpus_has_no_internal_errors() -> None:
    results, counts = _campaign(0, DEFAULT_COUNT)
    assert counts["internal_error"] == 0, f"{counts}\n{fuzz.failure_report(results, ('internal_error',), limit=5)}"


@pytest.mark.slow
@pytest.mark.skipif(not LARGE_COUNT, reason="set INTELLIGEN_FUZZ_LARGE=N for an N-graph campaign")
def test_large_campaign() -> None:
    results, counts = _campaign(1, LARGE_COUNT)
    assert all(counts[c] == 0 for c in fuzz.COUNTED), f"{counts}\n{fuzz.failure_report(results)}"


@pytest.mark.slow
def test_cuda_of_a_sample_compiles(tmp_path: Path) -> None:
    """Fuzz graphs whose regions we take whole for CUDA build, and the source compiles."""
    target = tvm.target.Target({"kind": "cuda", "arch": "sm_90"})
    for k, (model, _inputs, _expected) in enumerate(fuzz.cuda_sample(4, seed=0)):
        executable = tvm.compile(fuzz.from_onnx(model), target=target, relax_pipeline="intelligen")
        (source,) = device_sources(executable, "cuda")
        check_nvcc_compiles(source, tmp_path / f"fuzz{k}.cu")


@pytest.mark.slow
def test_cuda_of_a_sample_matches_the_reference_in_emulation() -> None:
    """The generated CUDA itself, run under the CPU emulation of threads, warps and shared
    memory (tests/targets/cuda_emu.h), for fuzz graphs of one region."""
    from tests.targets.cuda_emulation import emulate_model

    for model, inputs, expected in fuzz.cuda_sample(4, seed=0, single_region=True):
        got, _ = emulate_model(model).run(inputs)
        ok, why = fuzz.close([np.asarray(got).reshape(expected[0].shape)], expected)
        assert ok, f"{why}\n{onnx.printer.to_text(model)}"
