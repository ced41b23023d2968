"""Ideal bytes, the numerics check and the copy-bandwidth yardstick, on llvm."""

from __future__ import annotations

import numpy as np
import tvm
from onnx import numpy_helper

from intelligen_tvm import suite
from intelligen_tvm.benchmark import timing
from intelligen_tvm.testing import reference_outputs


def test_ideal_bytes_counts_only_gathered_rows() -> None:
    case = suite.get_case("bert_embedding")
    model = case.build(small=True)
    inputs = suite.make_inputs(case, np.random.default_rng(0), small=True)
    outputs = reference_outputs(model, inputs)
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    table = weights.pop("word_embeddings")
    ids = inputs[0]
    others = sum(w.nbytes for w in weights.values() if w.dtype.kind == "f" and w.size > 1)
    expected = ids.nbytes + outputs[0].nbytes + ids.size * table[0].nbytes + others
    assert timing.ideal_bytes(model, inputs, outputs) == expected
    assert expected < table.nbytes  # the whole table would have dominated


def test_check_rejects_shape_and_value_mismatch() -> None:
    a = np.ones((2, 3), np.float32)
    assert timing.check([a], [a.copy()], 1e-5, 1e-6) == (True, 0.0)
    assert timing.check([a], [a.T], 1e-5, 1e-6)[0] is False
    ok, err = timing.check([a + 1e-2], [a], 1e-5, 1e-6)
    assert not ok and np.isclose(err, 1e-2)


def test_copy_bandwidth_on_cpu() -> None:
    copy = timing.copy_bandwidth(tvm.target.Target({"kind": "llvm"}), tvm.cpu(0), 1 << 16, repeat=2)
    assert copy["copy_ok"] and copy["bytes_moved"] == 1 << 16
    assert copy["kernel_copy_us"] is not None and copy["kernel_copy_error"] is None
    assert copy["copy_gbps"] > 0
