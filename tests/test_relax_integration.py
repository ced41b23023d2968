"""Region selection and the "intelligen" Relax pipeline, end to end on the suite (llvm):
numerics against onnx.reference, the explain() report, and fallbacks that never crash."""

from __future__ import annotations

import time
import warnings

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper
from tvm import relax

import intelligen_tvm
from intelligen_tvm import relax_integration, suite
from intelligen_tvm.relax_integration import IntelliGenInternalError, apply_regions, prepare
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


# ---- internal errors: a bug of ours falls back, is reported and warned, and fails tests --------

def _relu_exp() -> onnx.ModelProto:
    return _onnx([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Exp", ["r"], ["out"])],
                 [("x", [8, 16])], ["out"])


def _failing(monkeypatch, step: str, when=lambda stages: True) -> None:
    """`rewrite_region` or `render_region` raises ZeroDivisionError (a stand-in for a bug of ours)."""
    real = getattr(relax_integration, step)

    def failing(first, *args, **kwargs):
        if step == "render_region" or when(first):
            raise ZeroDivisionError("injected bug")
        return real(first, *args, **kwargs)

    monkeypatch.setattr(relax_integration, step, failing)


def test_internal_error_falls_back_with_a_report_and_a_warning(monkeypatch) -> None:
    _failing(monkeypatch, "render_region")   # every final lowering fails
    model = _relu_exp()
    with pytest.warns(IntelliGenInternalError, match=r"relu\+tir_exp.*ZeroDivisionError: injected bug"):
        (region,) = intelligen_tvm.explain(intelligen_tvm.from_onnx(model), LLVM)["regions"]
    assert region["handled_by"] == "fallback" and region["fallback"] == "internal_error"
    (error,) = region["internal_errors"]
    assert error["type"] == "ZeroDivisionError" and error["message"] == "injected bug"
    assert error["ops"] == ["relu", "tir_exp"] and error["during"] == "rendering"
    assert error["where"].startswith("intelligen_tvm/relax_integration.py:")
    # the user's build still works (TVM's kernels), and warns
    x = np.random.default_rng(0).standard_normal((8, 16)).astype("float32")
    with pytest.warns(IntelliGenInternalError):
        _compile_and_check(model, True, inputs=[x])


def test_strict_mode_raises_internal_errors(monkeypatch) -> None:
    _failing(monkeypatch, "render_region")
    monkeypatch.setenv(relax_integration.STRICT_ENV, "1")
    with pytest.raises(IntelliGenInternalError, match="injected bug") as info:
        intelligen_tvm.explain(intelligen_tvm.from_onnx(_relu_exp()), LLVM)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    # TVM's pass infrastructure re-raises what a Python pass raised as a RuntimeError
    with pytest.raises(RuntimeError, match="intelligen internal error .*injected bug"):
        tvm.compile(intelligen_tvm.from_onnx(_relu_exp()), target=tvm.target.Target(LLVM),
                    relax_pipeline="intelligen")


def test_failed_trial_merge_is_recorded_on_the_region(monkeypatch) -> None:
    """A merge that fails with an internal error leaves smaller regions, and says so."""
    _failing(monkeypatch, "rewrite_region", lambda stages: len(stages.stages) > 1)
    with pytest.warns(IntelliGenInternalError, match="taken smaller than it should be"):
        regions = intelligen_tvm.explain(intelligen_tvm.from_onnx(_relu_exp()), LLVM)["regions"]
    assert [r["ops"] for r in regions] == [["relu"], ["tir_exp"]]
    assert all(r["handled_by"] == "intelligen" and r["fallback"] is None for r in regions)
    assert regions[0]["internal_errors"] == []
    (error,) = regions[1]["internal_errors"]
    assert error["during"] == "trial merge" and error["ops"] == ["relu", "tir_exp"]


def test_a_bug_outside_any_region_leaves_the_whole_module_to_tvm(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise KeyError("injected")

    monkeypatch.setattr(relax_integration, "_rewrite_block", broken)
    x = np.random.default_rng(0).standard_normal((8, 16)).astype("float32")
    with pytest.warns(IntelliGenInternalError, match="KeyError"):
        _compile_and_check(_relu_exp(), True, inputs=[x])


def test_unsupported_is_no_internal_error() -> None:
    # pytest.ini turns IntelliGenInternalError into an error: this also checks none is warned
    report = intelligen_tvm.explain(intelligen_tvm.from_onnx(_model_with("argmax")), LLVM)
    (region,) = [r for r in report["regions"] if r["ops"] == ["argmax"]]
    assert region["fallback"] == "unsupported" and region["internal_errors"] == []
    assert all(r["internal_errors"] == [] for r in report["regions"])


def test_the_test_suite_turns_internal_errors_into_failures() -> None:
    with pytest.raises(IntelliGenInternalError):
        warnings.warn("a bug of ours", IntelliGenInternalError)


# ---- internal errors once found on real models, each a whole region lost ---------------------

def _i64(name: str, values: list[int]) -> onnx.TensorProto:
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)


def _rotate_half() -> onnx.ModelProto:
    """Llama's rotary embedding: x * cos + rotate_half(x) * sin, rotate_half = concat(-x2, x1)."""
    return _onnx([helper.make_node("Slice", ["x", "s0", "e0", "ax"], ["x1"]),
                  helper.make_node("Slice", ["x", "s1", "e1", "ax"], ["x2"]),
                  helper.make_node("Neg", ["x2"], ["nx2"]),
                  helper.make_node("Concat", ["nx2", "x1"], ["rh"], axis=-1),
                  helper.make_node("Mul", ["x", "cos"], ["a"]),
                  helper.make_node("Mul", ["rh", "sin"], ["b"]),
                  helper.make_node("Add", ["a", "b"], ["out"])],
                 [("x", [2, 4, 8, 16]), ("cos", [8, 16]), ("sin", [8, 16])], ["out"],
                 [_i64("s0", [0]), _i64("e0", [8]), _i64("s1", [8]), _i64("e1", [16]), _i64("ax", [-1])])


REGRESSIONS = {
    # concat's bound `8 <= ax1` was read as int64 against int32 axes
    "concat": (_onnx([helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
                      helper.make_node("Exp", ["c"], ["out"])],
                     [("a", [4, 8]), ("b", [4, 16])], ["out"]), ["concatenate"]),
    # ONNX Min/Max stack their inputs, loaded under a guard on the stacked axis
    "max": (_onnx([helper.make_node("Max", ["a", "b"], ["out"])], [("a", [4, 8]), ("b", [4, 8])], ["out"]),
            ["stack", "max"]),
    "min3_broadcast": (_onnx([helper.make_node("Min", ["a", "b", "c"], ["out"])],
                             [("a", [4, 8]), ("b", [4, 8]), ("c", [1, 8])], ["out"]),
                       ["stack", "min"]),
    # the guard of a branch load referred to the forwarded (then dropped) condition buffer
    "where_computed_condition": (_onnx([helper.make_node("Greater", ["a", "b"], ["cond"]),
                                        helper.make_node("Where", ["cond", "a", "c"], ["out"])],
                                       [("a", [4, 8]), ("b", [4, 8]), ("c", [1, 8])], ["out"]),
                                 ["greater", "where"]),
    # a slice from 0 was unified with the whole dim it reads a prefix of
    "rotate_half": (_rotate_half(), ["strided_slice1", "concatenate", "multiply", "multiply", "add"]),
}


@pytest.mark.parametrize("name", REGRESSIONS)
def test_regression_region_is_taken_and_matches(name: str) -> None:
    model, ops = REGRESSIONS[name]
    regions = intelligen_tvm.explain(intelligen_tvm.from_onnx(model), LLVM)["regions"]
    assert all(r["handled_by"] == "intelligen" for r in regions), regions
    # the ops that used to fall back are together in one region
    assert any(r["ops"][i:i + len(ops)] == ops for r in regions for i in range(len(r["ops"]))), \
        [r["ops"] for r in regions]
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim]).astype("float32")
              for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    _compile_and_check(model, True, inputs=inputs)


# ---- compute-bound ops stay with TVM, whatever their shapes ------------------------------------

def _conv(x_shape, w_shape, **attrs) -> onnx.NodeProto:
    return helper.make_node("Conv", ["x", "w"], ["out"], kernel_shape=list(w_shape[2:]), **attrs)


CONTRACTIONS = {
    # MobileNetV3 / EfficientNet: a stride-2 depthwise conv iterates ~2x per element
    "depthwise_stride2": ([_conv(None, [32, 1, 3, 3], group=32, strides=[2, 2], pads=[1, 1, 1, 1])],
                          [("x", [1, 32, 28, 28])], [_weights("w", [32, 1, 3, 3])]),
    "depthwise_5x5": ([_conv(None, [16, 1, 5, 5], group=16, pads=[2, 2, 2, 2])],
                      [("x", [1, 16, 14, 14])], [_weights("w", [16, 1, 5, 5])]),
    # squeeze-and-excite: 1x1 convs on a [1, C, 1, 1] tensor, the weight is the largest tensor
    "conv1x1_squeeze_excite": ([_conv(None, [8, 32, 1, 1])], [("x", [1, 32, 1, 1])], [_weights("w", [8, 32, 1, 1])]),
    "conv1x1": ([_conv(None, [24, 4, 1, 1])], [("x", [2, 4, 16, 16])], [_weights("w", [24, 4, 1, 1])]),
    "grouped": ([_conv(None, [16, 4, 3, 3], group=4, pads=[1, 1, 1, 1])],
                [("x", [1, 16, 8, 8])], [_weights("w", [16, 4, 3, 3])]),
    "conv_bias_relu": ([helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                        helper.make_node("Relu", ["c"], ["out"])],
                       [("x", [1, 4, 8, 8])], [_weights("w", [8, 4, 3, 3]), _weights("b", [8])]),
    "matmul_vector": ([helper.make_node("MatMul", ["x", "w"], ["out"])], [("x", [1, 64])], [_weights("w", [64, 4])]),
    "batch_matmul": ([helper.make_node("MatMul", ["x", "y"], ["out"])], [("x", [4, 16, 8]), ("y", [4, 8, 4])], []),
}


@pytest.mark.parametrize("name", CONTRACTIONS)
def test_contractions_are_never_taken(name: str) -> None:
    nodes, inputs, inits = CONTRACTIONS[name]
    model = _onnx(nodes, inputs, ["out"], inits)
    regions = intelligen_tvm.explain(intelligen_tvm.from_onnx(model), LLVM)["regions"]
    contraction = [r for r in regions if {"conv2d", "matmul"} & set(r["ops"])]
    assert contraction, regions
    for region in contraction:
        assert region["ops"] in (["conv2d"], ["matmul"]), region["ops"]
        assert region["handled_by"] == "fallback" and region["fallback"] == "unsupported"
        assert "contraction" in region["reason"]
    rng = np.random.default_rng(0)
    _compile_and_check(model, True, inputs=[rng.standard_normal(s).astype("float32") for _, s in inputs])


def test_a_scaled_row_sum_and_a_sum_of_squares_are_no_contraction() -> None:
    """sum(x * s) with s constant along the row, and sum(x * x), stay memory-intensive."""
    model = _onnx([helper.make_node("Mul", ["x", "s"], ["xs"]),
                   helper.make_node("ReduceSum", ["xs", "axes"], ["a"], keepdims=1),
                   helper.make_node("Mul", ["x", "x"], ["xx"]),
                   helper.make_node("ReduceSum", ["xx", "axes"], ["b"], keepdims=1),
                   helper.make_node("Add", ["a", "b"], ["out"])],
                  [("x", [8, 64]), ("s", [8, 1])], ["out"], [_i64("axes", [1])])
    (region,) = intelligen_tvm.explain(intelligen_tvm.from_onnx(model), LLVM)["regions"]
    assert region["handled_by"] == "intelligen", region
