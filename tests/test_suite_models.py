"""The suite is public data: its models must be valid ONNX, import into Relax, and (small shapes)
compile with TVM's default pipeline and match the ONNX reference."""

from __future__ import annotations

import functools

import numpy as np
import onnx
import pytest
from onnx import helper

from intelligen_tvm import suite
from intelligen_tvm.frontend import from_onnx
from intelligen_tvm.testing import assert_close, build_and_run, reference_outputs, tolerances

LLVM = {"kind": "llvm"}
CASES = [pytest.param(c, id=c.name) for c in suite.SUITE]

# The full-size contract: input shapes -> output shape, exactly as published.
FULL_SHAPES = {
    "softmax": ({"x": (4096, 1024)}, (4096, 1024)),
    "attention_softmax": ({"x": (32, 12, 128, 128), "mask": (32, 1, 1, 128)}, (32, 12, 128, 128)),
    "layer_norm": ({"x": (4096, 768)}, (4096, 768)),
    "add_layer_norm": ({"x": (4096, 768), "residual": (4096, 768)}, (4096, 768)),
    "decomposed_layer_norm": ({"x": (4096, 768)}, (4096, 768)),
    "rms_norm": ({"x": (4096, 4096)}, (4096, 4096)),
    "bias_gelu_erf": ({"x": (4096, 3072)}, (4096, 3072)),
    "swiglu": ({"a": (4096, 11008), "b": (4096, 11008)}, (4096, 11008)),
    "relu_add": ({"x": (1, 64, 512, 512), "y": (1, 64, 512, 512)}, (1, 64, 512, 512)),
    "bias_add": ({"x": (32, 116, 28, 28)}, (32, 116, 28, 28)),
    "channel_shuffle": ({"x": (32, 232, 28, 28)}, (32, 232, 28, 28)),
    "transpose_relu": ({"x": (32, 31, 33, 32)}, (33, 32, 32, 31)),
    "attention_transpose": ({"x": (32, 128, 12, 64)}, (32, 12, 128, 64)),
    "mean_last": ({"x": (1, 128, 512)}, (1, 128)),
    "sum_axis0": ({"x": (4096, 1024)}, (1, 1024)),
    "bert_embedding": ({"ids": (32, 128)}, (32, 128, 768)),
    "long_softmax": ({"x": (256, 32768)}, (256, 32768)),
}


@functools.cache
def _build(name: str, small: bool = False) -> onnx.ModelProto:
    """Build once per session (the full bert_embedding table is 94 MB); tests must not mutate."""
    return suite.get_case(name).build(small=small)


def _shape(value_info: onnx.ValueInfoProto) -> tuple[int, ...]:
    return tuple(d.dim_value for d in value_info.type.tensor_type.shape.dim)


def _structure(model: onnx.ModelProto) -> list[tuple[str, tuple[str, ...], int]]:
    """Op types, non-shape attributes and input count of every node: what `small` must keep."""
    out = []
    for node in model.graph.node:
        attrs = tuple(sorted(str(helper.get_attribute_value(a)) for a in node.attribute))
        out.append((node.op_type, attrs, len(node.input)))
    return out


def test_suite_names_are_unique_and_complete() -> None:
    names = [c.name for c in suite.SUITE]
    assert len(names) == len(set(names))
    assert set(names) == set(FULL_SHAPES)
    assert suite.get_case("softmax").name == "softmax"
    with pytest.raises(KeyError):
        suite.get_case("nope")


@pytest.mark.parametrize("case", CASES)
def test_full_model_is_valid_onnx_with_published_shapes(case: suite.SuiteCase) -> None:
    model = _build(case.name)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == suite.OPSET
    inputs, output = FULL_SHAPES[case.name]
    assert {i.name: _shape(i) for i in model.graph.input} == inputs
    assert case.input_shapes() == inputs
    assert [_shape(o) for o in model.graph.output] == [output]
    dtypes = {i.type.tensor_type.elem_type for i in model.graph.input}
    int_inputs = case.name == "bert_embedding"
    assert dtypes == {onnx.TensorProto.INT64 if int_inputs else onnx.TensorProto.FLOAT}


@pytest.mark.parametrize("case", CASES)
def test_small_model_keeps_structure(case: suite.SuiteCase) -> None:
    full, small = _build(case.name), _build(case.name, small=True)
    onnx.checker.check_model(small, full_check=True)
    assert _structure(small) == _structure(full)
    for kind in ("input", "output"):
        ranks = [[len(_shape(v)) for v in getattr(m.graph, kind)] for m in (small, full)]
        assert ranks[0] == ranks[1], kind
    # Small enough for CPU tests; long_softmax keeps a 256-wide row so it is still "long".
    limit = 256 if case.name == "long_softmax" else 64
    assert all(d <= limit for i in small.graph.input for d in _shape(i))


@pytest.mark.parametrize("case", CASES)
def test_full_model_imports_into_relax(case: suite.SuiteCase) -> None:
    mod = from_onnx(_build(case.name))
    params = mod["main"].params
    assert [p.name for p in params] == [s.name for s in case.inputs]
    assert [tuple(int(d) for d in p.ty.shape) for p in params] == list(
        case.input_shapes().values()
    )


@pytest.mark.parametrize("case", CASES)
def test_small_model_default_pipeline_matches_reference(case: suite.SuiteCase) -> None:
    model = _build(case.name, small=True)
    inputs = suite.make_inputs(case, np.random.default_rng(0), small=True)
    expected = reference_outputs(model, inputs)
    actual = build_and_run(from_onnx(model), LLVM, inputs, relax_pipeline="default")
    rtol, atol = tolerances(model)
    assert_close(actual, expected, rtol=rtol, atol=atol, what=case.name)


def test_make_inputs_respects_kinds() -> None:
    rng = np.random.default_rng(1)
    (ids,) = suite.make_inputs(suite.get_case("bert_embedding"), rng)
    assert ids.dtype == np.int64 and ids.shape == (32, 128)
    assert ids.min() >= 0 and ids.max() < 30522
    x, mask = suite.make_inputs(suite.get_case("attention_softmax"), rng, small=True)
    assert x.dtype == mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, suite.MASK_VALUE}


def test_builds_are_deterministic() -> None:
    case = suite.get_case("layer_norm")
    assert case.build(small=True).SerializeToString() == case.build(small=True).SerializeToString()


def test_bert_encoder_layer_small_matches_reference() -> None:
    model = suite.bert_encoder_layer(small=True)
    onnx.checker.check_model(model, full_check=True)
    dims = suite.bert_encoder_dims(small=True)
    inputs = suite.make_inputs_from_specs(
        suite.bert_encoder_input_specs(), dims, np.random.default_rng(0)
    )
    expected = reference_outputs(model, inputs)
    assert expected[0].shape == (1, 16, 64)
    actual = build_and_run(from_onnx(model), LLVM, inputs, relax_pipeline="default")
    assert_close(actual, expected, *tolerances(model), what="bert_encoder_layer")


def test_bert_encoder_layer_full_shapes_and_ops() -> None:
    model = suite.bert_encoder_layer()
    onnx.checker.check_model(model)
    assert [(i.name, _shape(i)) for i in model.graph.input] == [
        ("hidden_states", (1, 128, 768)),
        ("attention_mask", (1, 1, 1, 128)),
    ]
    assert [_shape(o) for o in model.graph.output] == [(1, 128, 768)]
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMul") == 8  # Q, K, V, QK^T, PV, out-proj, FFN up, FFN down
    assert ops.count("LayerNormalization") == 2 and ops.count("Softmax") == 1
    assert ops.count("Erf") == 1
    weights = {t.name: tuple(t.dims) for t in model.graph.initializer}
    assert weights["intermediate.weight"] == (768, 3072)
    assert weights["output.weight"] == (3072, 768)
    mod = from_onnx(model)
    assert [p.name for p in mod["main"].params] == ["hidden_states", "attention_mask"]
