"""Region selection and the "intelligen" Relax pipeline, end to end on the suite (llvm):
numerics against onnx.reference, the explain() report, and fallbacks that never crash."""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper
from tvm import relax

import intelligen_tvm
from intelligen_tvm import suite
from intelligen_tvm.relax_integration import apply_regions, prepare
from intelligen_tvm.testing import (
    assert_close, build, reference_outputs, run, tolerances,
)
from tests.helpers import suite_model

LLVM = {"kind": "llvm"}
NAMES = [c.name for c in suite.SUITE]
REGION_KEYS = {"name", "ops", "handled_by", "dram_bytes_ideal", "dram_bytes_naive",
               "dram_bytes_planned", "kernels", "strategy"}
ONE_KERNEL = ["softmax", "attention_softmax", "long_softmax", "layer_norm", "add_layer_norm",
              "decomposed_layer_norm", "rms_norm", "bert_embedding"]


def _call_tirs(mod: tvm.IRModule) -> list[str]:
    call_tir = tvm.ir.Op.get("relax.call_tir")
    names = []
    for block in mod["main"].body.blocks:
        for b in block.bindings:
            if isinstance(b.value, relax.Call) and b.value.op.same_as(call_tir):
                names.append(b.value.args[0].name_hint)
    return names


def _compile_and_check(model: onnx.ModelProto, small: bool, case: suite.SuiteCase | None = None,
                       inputs: list[np.ndarray] | None = None):
    mod = intelligen_tvm.from_onnx(model)
    if inputs is None:
        inputs = suite.make_inputs(case, np.random.default_rng(0), small=small)
    executable = build(mod, LLVM, relax_pipeline="intelligen")
    actual = run(executable, tvm.target.Target(LLVM), inputs)
    assert_close(actual, reference_outputs(model, inputs), *tolerances(model), what=model.graph.name)
    return executable


def _implemented(executable, name: str) -> bool:
    stack = [executable.mod]
    while stack:
        module = stack.pop()
        if module.kind == "llvm" and module.implements_function(name):
            return True
        stack.extend(module.imports)
    return False


@pytest.mark.parametrize("name", NAMES)
def test_suite_case_matches_onnx_reference(name: str) -> None:
    model = suite_model(name, small=True)
    executable = _compile_and_check(model, True, suite.get_case(name))
    # the numbers came from our kernels: every region explain() reports as ours is in the build
    for region in intelligen_tvm.explain(intelligen_tvm.from_onnx(model), LLVM)["regions"]:
        assert _implemented(executable, region["name"]) == (region["handled_by"] == "intelligen")


@pytest.mark.parametrize("name", NAMES)
def test_explain_reports_one_ideal_region(name: str) -> None:
    report = intelligen_tvm.explain(intelligen_tvm.from_onnx(suite_model(name)), LLVM)
    assert report["target"] == "llvm"
    (region,) = report["regions"]
    assert REGION_KEYS <= set(region)
    assert region["handled_by"] == "intelligen" and "reason" not in region
    assert region["kernels"] == 1
    assert region["dram_bytes_planned"] == region["dram_bytes_ideal"]
    assert region["dram_bytes_naive"] >= region["dram_bytes_planned"] > 0
    assert region["strategy"]["kind"] in {"flat", "row", "column", "tile"}


@pytest.mark.parametrize("name", ONE_KERNEL)
def test_softmax_and_norm_cases_are_one_kernel(name: str) -> None:
    mod = intelligen_tvm.from_onnx(suite_model(name))
    prepared = prepare(mod)
    ops_before = _call_tirs(prepared)
    rewritten, (region,) = apply_regions(prepared, "llvm")
    assert _call_tirs(rewritten) == [region["name"]]
    assert region["ops"] == ops_before     # every op of the model is inside the one region


def test_decomposed_layer_norm_takes_all_nine_ops() -> None:
    (region,) = intelligen_tvm.explain(intelligen_tvm.from_onnx(suite_model("decomposed_layer_norm")),
                                       LLVM)["regions"]
    assert len(region["ops"]) == 9
    assert sum(op.startswith("mean") for op in region["ops"]) == 2
    # ~5.5x less DRAM traffic than one kernel per op
    assert region["dram_bytes_naive"] > 5 * region["dram_bytes_planned"]


def test_explain_accepts_a_target_object_and_reports_other_kinds_as_fallback() -> None:
    mod = intelligen_tvm.from_onnx(suite_model("softmax"))
    assert intelligen_tvm.explain(mod, tvm.target.Target(LLVM))["target"] == "llvm"
    assert intelligen_tvm.explain(mod, {"kind": "cuda", "arch": "sm_90"})["target"] == "cuda"
    with pytest.warns(UserWarning, match="target kind 'vulkan' not supported"):
        report = intelligen_tvm.explain(mod, {"kind": "vulkan"})
    (region,) = report["regions"]
    assert region["handled_by"] == "fallback" and region["ops"] == ["softmax"]
    assert region["reason"] == "target not supported: vulkan (intelligen renders cuda, llvm, rocm)"


def test_a_target_we_do_not_render_goes_through_tvms_pipeline() -> None:
    """vulkan: TVM's GPU pipeline (DLight) schedules the softmax; nothing of ours is emitted."""
    mod = intelligen_tvm.from_onnx(suite_model("softmax"))
    target = tvm.target.Target({"kind": "vulkan"})
    with target, pytest.warns(UserWarning, match="goes through TVM's own pipeline"):
        ours = relax.get_pipeline("intelligen")(mod)
    with target:
        theirs = relax.get_default_pipeline(target)(mod)
    assert not any("intelligen" in gv.name_hint for gv in ours.functions)
    tvm.ir.assert_structural_equal(ours, theirs)


def test_pipeline_is_registered() -> None:
    assert "intelligen" in relax.pipeline.PIPELINE_MAP


# ---- an op we cannot lower: fallback, never a crash -----------------------------------------

def _model_with(kind: str, shape=(8, 16)) -> onnx.ModelProto:
    """relu -> <op we do not lower> -> exp, as ONNX."""
    nodes = [helper.make_node("Relu", ["x"], ["r"])]
    inits = []
    if kind == "argmax":
        nodes += [helper.make_node("ArgMax", ["r"], ["i"], axis=1, keepdims=1),
                  helper.make_node("Cast", ["i"], ["c"], to=TensorProto.FLOAT)]
    elif kind == "cumsum":
        inits.append(helper.make_tensor("axis", TensorProto.INT64, [], [1]))
        nodes.append(helper.make_node("CumSum", ["r", "axis"], ["c"]))
    elif kind == "topk":
        inits.append(helper.make_tensor("k", TensorProto.INT64, [1], [4]))
        nodes.append(helper.make_node("TopK", ["r", "k"], ["c", "idx"], axis=1))
    nodes.append(helper.make_node("Exp", ["c"], ["out"]))
    graph = helper.make_graph(nodes, f"relu_{kind}_exp",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


@pytest.mark.parametrize("kind", ["argmax", "cumsum", "topk"])
def test_unlowerable_op_compiles_and_matches(kind: str) -> None:
    x = np.random.default_rng(0).standard_normal((8, 16)).astype("float32")
    _compile_and_check(_model_with(kind), True, inputs=[x])


def test_unlowerable_op_is_reported_as_fallback_with_a_reason() -> None:
    report = intelligen_tvm.explain(intelligen_tvm.from_onnx(_model_with("argmax")), LLVM)
    by_op = {op: r for r in report["regions"] for op in r["ops"]}
    fallback = by_op["argmax"]
    assert fallback["handled_by"] == "fallback"
    assert fallback["reason"] and isinstance(fallback["reason"], str)
    assert fallback["ops"] == ["argmax"]
    # the elementwise ops around it are still ours
    assert by_op["relu"]["handled_by"] == "intelligen"
    assert by_op["tir_exp"]["handled_by"] == "intelligen"


def test_fallback_region_has_every_report_key() -> None:
    report = intelligen_tvm.explain(intelligen_tvm.from_onnx(_model_with("argmax")), LLVM)
    for region in report["regions"]:
        assert REGION_KEYS <= set(region), region


@pytest.mark.parametrize("kind", ["cumsum", "topk"])
def test_explain_lists_dispatched_ops_as_fallback(kind: str) -> None:
    report = intelligen_tvm.explain(intelligen_tvm.from_onnx(_model_with(kind)), LLVM)
    ops = [op for r in report["regions"] for op in r["ops"]]
    assert kind in ops, ops
    (region,) = [r for r in report["regions"] if kind in r["ops"]]
    assert region["handled_by"] == "fallback" and region["reason"]


# ---- full-size numerics on the CPU ----------------------------------------------------------

FULL = ["softmax", "layer_norm", "sum_axis0", "bert_embedding", "transpose_relu"]


@pytest.mark.parametrize("name", FULL)
def test_full_size_matches_onnx_reference(name: str, record_property) -> None:
    start = time.perf_counter()
    _compile_and_check(suite_model(name, small=False), False, suite.get_case(name))
    record_property("seconds", round(time.perf_counter() - start, 2))


# ---- shapes and graphs beyond the suite -----------------------------------------------------

def _onnx(nodes, inputs, outputs, inits=()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def _weights(name: str, shape) -> onnx.TensorProto:
    rng = np.random.default_rng(1)
    return helper.make_tensor(name, TensorProto.FLOAT, list(shape), rng.standard_normal(shape).astype("float32").ravel())


def test_region_with_two_outputs() -> None:
    """residual sum and its LayerNorm are both graph outputs: one kernel writes both."""
    model = _onnx([helper.make_node("Add", ["x", "r"], ["out0"]),
                   helper.make_node("LayerNormalization", ["out0", "g", "b"], ["out1"], axis=-1, epsilon=1e-5)],
                  [("x", [8, 64]), ("r", [8, 64])], ["out0", "out1"], [_weights("g", [64]), _weights("b", [64])])
    (region,) = intelligen_tvm.explain(intelligen_tvm.from_onnx(model), LLVM)["regions"]
    assert region["handled_by"] == "intelligen" and region["ops"] == ["add", "layer_norm"]
    assert region["dram_bytes_planned"] == region["dram_bytes_ideal"] == (4 * 8 * 64 + 2 * 64) * 4
    rng = np.random.default_rng(0)
    _compile_and_check(model, True, inputs=[rng.standard_normal((8, 64)).astype("float32") for _ in range(2)])


@pytest.mark.parametrize(
    "op, attrs, shape",
    [("ReduceSum", {"keepdims": 0}, [8, 64]),                      # every axis: a scalar result
     ("ReduceMax", {"keepdims": 1, "axes": [0, 1]}, [8, 64]),
     ("Softmax", {"axis": -1}, [7, 1]),                              # rows of one element
     ("Softmax", {"axis": -1}, [3, 5]),
     ("LayerNormalization", {"axis": 1, "epsilon": 1e-5}, [4, 16, 8])],   # normalize over two axes
    ids=["sum_all", "max_all_keepdims", "softmax_7x1", "softmax_3x5", "layer_norm_two_axes"],
)
def test_odd_reductions_are_taken_and_match(op: str, attrs: dict, shape: list[int]) -> None:
    inits, ins = [], ["x"]
    if op == "LayerNormalization":
        inits = [_weights("g", shape[1:]), _weights("b", shape[1:])]
        ins = ["x", "g", "b"]
    model = _onnx([helper.make_node(op, ins, ["out"], **attrs)], [("x", shape)], ["out"], inits)
    (region,) = intelligen_tvm.explain(intelligen_tvm.from_onnx(model), LLVM)["regions"]
    assert region["handled_by"] == "intelligen"
    assert region["dram_bytes_planned"] == region["dram_bytes_ideal"]
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    _compile_and_check(model, True, inputs=[x])


def test_softmax_over_a_middle_axis_holds_the_strided_row_on_chip() -> None:
    model = _onnx([helper.make_node("Softmax", ["x"], ["out"], axis=1)], [("x", [4, 64, 8])], ["out"])
    (region,) = intelligen_tvm.explain(intelligen_tvm.from_onnx(model), LLVM)["regions"]
    assert region["handled_by"] == "intelligen" and region["strategy"]["kind"] == "column"
    assert region["dram_bytes_planned"] == region["dram_bytes_ideal"]
    _compile_and_check(model, True, inputs=[np.random.default_rng(0).standard_normal((4, 64, 8)).astype("float32")])


def test_gather_with_negative_ids() -> None:
    """ONNX Gather wraps negative indices: the importer's fix-up chain is inside our region."""
    model = suite_model("bert_embedding")
    vocab = suite.get_case("bert_embedding").small_dims["vocab"]
    ids = np.random.default_rng(0).integers(-vocab, vocab, (2, 16)).astype("int64")
    assert (ids < 0).any()
    _compile_and_check(model, True, inputs=[ids])


def test_scalar_graph_input() -> None:
    model = _onnx([helper.make_node("Add", ["x", "x"], ["out"])], [("x", [])], ["out"])
    _compile_and_check(model, True, inputs=[np.array(1.5, dtype=np.float32)])
