"""Single-pass statistics: the rewrites bring a second reduction level onto the first (one
sweep fewer for a streamed row) and keep the results: the GIR interpreter and the CPU
lowering agree with float64 numpy, also for rows whose mean dwarfs their spread."""

from __future__ import annotations

import numpy as np
import pytest
from tvm import relax

from intelligen_tvm.dataflow_graph.fuse import build_kernel
from intelligen_tvm.dataflow_graph.rewrites import monotonic_rewrites
from intelligen_tvm.dataflow_graph.single_pass import shifted_variance, single_pass_statistics
from intelligen_tvm.gir.errors import Unsupported
from intelligen_tvm.gir.interpret import interpret
from intelligen_tvm.gir.program import Load, Program, Reduce
from intelligen_tvm.gir.sweeps import stream_passes
from intelligen_tvm.gir.verify import verify
from intelligen_tvm.region import lower_region
from intelligen_tvm.targets import hardware_model
from tests.helpers import chain_stages, run_prim_func

op = relax.op
HW = hardware_model("cuda")


def _layer_norm(x, g, b):
    return op.nn.layer_norm(x, g, b, axes=[-1], epsilon=1e-5)


def _decomposed(x):
    """ONNX's decomposed LayerNorm: mean, x - mean, pow 2, mean, + eps, sqrt, divide."""
    mean = op.mean(x, axis=[-1], keepdims=True)
    d = op.subtract(x, mean)
    var = op.mean(op.power(d, relax.const(2.0)), axis=[-1], keepdims=True)
    return op.divide(d, op.sqrt(op.add(var, relax.const(1e-5))))


def _add_layer_norm(x, r, g, b):
    return op.nn.layer_norm(op.add(x, r), g, b, axes=[-1], epsilon=1e-5)


def _reference(name: str, feed: list[np.ndarray]) -> np.ndarray:
    x = feed[0].astype(np.float64) + (feed[1] if name == "add_layer_norm" else 0)
    z = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    return z if name == "decomposed" else z * feed[-2] + feed[-1]


# name -> (graph, input shapes for rows x n)
CASES = {
    "layer_norm": (_layer_norm, lambda rows, n: [(rows, n), (n,), (n,)]),
    "decomposed": (_decomposed, lambda rows, n: [(rows, n)]),
    "add_layer_norm": (_add_layer_norm, lambda rows, n: [(rows, n), (rows, n), (n,), (n,)]),
}


def _region(name: str, rows: int, n: int):
    fn, shapes = CASES[name]
    return chain_stages(fn, shapes(rows, n))


def _feed(sp, rows: int, n: int, mean: float) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = []
    for name in sp.inputs:
        shape = sp.buffers[name].shape
        arrays.append((mean + rng.standard_normal(shape)).astype("float32") if shape == (rows, n)
                      else rng.standard_normal(shape).astype("float32"))
    return arrays


@pytest.mark.parametrize("name", sorted(CASES))
def test_shifted_variance_puts_mean_and_variance_on_one_level(name: str) -> None:
    sp, _ = _region(name, 4, 96)
    k = monotonic_rewrites(build_kernel(sp, "k")[0], sp.inputs, sp.outputs)
    assert [[r.op for r in p.reduces] for p in stream_passes(k).passes] == [["sum"], ["sum"], []]
    shifted = shifted_variance(k)
    assert [len(p.reduces) for p in stream_passes(shifted).passes] == [3, 0]   # sum, sum (x-K)^2, sum (x-K)
    # the shift K is the row's first element: per-row loads at row index 0
    starts = [i for i in shifted.instrs if isinstance(i, Load) and not shifted.values[i.dst].axes & {"r0"}
              and "r0" not in i.src.axes() and i.dst.endswith("_at_row_start")]
    assert starts
    program = Program("p", dict(sp.buffers), list(sp.inputs), list(sp.outputs), [shifted])
    verify(program, HW)
    feed = _feed(sp, 4, 96, mean=1000.0)
    got = interpret(program, dict(zip(sp.inputs, feed)))[sp.outputs[0]]
    np.testing.assert_allclose(got, _reference(name, feed), rtol=2e-3, atol=2e-3)


def test_streamed_layer_norm_of_a_large_mean_row_stays_accurate() -> None:
    """x = 1000 + N(0, 1) over 66 000 columns: sum(x^2) - n mean^2 in float32 would lose the
    variance entirely; the shifted sums keep it."""
    sp, _ = _region("layer_norm", 2, 66000)
    lowered = lower_region(sp, "r", "llvm", hw=HW)
    s = lowered.kernel.strategy
    assert s.serial > 1 and s.single_pass and len(lowered.kernel.sweeps.passes) == 2
    feed = _feed(sp, 2, 66000, mean=1000.0)
    (got,) = run_prim_func(lowered.prim_func, feed)
    np.testing.assert_allclose(got, _reference("layer_norm", feed), rtol=5e-3, atol=5e-3)


def test_single_pass_statistics_needs_a_second_level_statistic() -> None:
    sp, _ = chain_stages(lambda x: op.sum(x, axis=[-1]), [(4, 64)])
    k = monotonic_rewrites(build_kernel(sp, "k")[0], sp.inputs, sp.outputs)
    with pytest.raises(Unsupported, match="single pass"):
        single_pass_statistics(k)
    assert not any(isinstance(i, Reduce) and i.shift for i in k.instrs)
