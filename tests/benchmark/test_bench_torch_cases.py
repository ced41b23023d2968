"""Every torch version of a suite case (and of the BERT encoder layer) computes what the ONNX
model computes. torch is optional: skipped where it is not installed (CI)."""

from __future__ import annotations

import numpy as np
import pytest

from intelligen_tvm import suite
from intelligen_tvm.benchmark import timing
from intelligen_tvm.benchmark.torch_cases import torch_function
from intelligen_tvm.testing import reference_outputs, tolerances

torch = pytest.importorskip("torch")


def _agrees(name: str, model, inputs: list[np.ndarray], dims: dict) -> None:
    fn, weights = torch_function(torch, name, model, dims)
    with torch.no_grad():
        out = fn(*[torch.from_numpy(np.ascontiguousarray(a)) for a in inputs], *weights)
    ok, err = timing.check([out.numpy()], reference_outputs(model, inputs), *tolerances(model))
    assert ok, (name, err)


@pytest.mark.parametrize("case", suite.SUITE, ids=lambda c: c.name)
def test_suite_case_matches_onnx(case: suite.SuiteCase) -> None:
    inputs = suite.make_inputs(case, np.random.default_rng(0), small=True)
    _agrees(case.name, case.build(small=True), inputs, dict(case.dims_for(True)))


def test_bert_encoder_layer_matches_onnx() -> None:
    dims = suite.bert_encoder_dims(small=True)
    inputs = suite.make_inputs_from_specs(suite.bert_encoder_input_specs(), dims, np.random.default_rng(0))
    _agrees("bert_encoder_layer", suite.bert_encoder_layer(small=True), inputs, dict(dims))


def test_unknown_case_has_no_torch_version() -> None:
    assert torch_function(torch, "no_such_case", suite.get_case("softmax").build(small=True), {}) is None
