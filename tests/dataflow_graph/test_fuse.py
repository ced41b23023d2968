"""Composing a region's stages into one kernel: identity folding and axis unification."""

from __future__ import annotations

import numpy as np
import pytest
from tvm import relax

from intelligen_tvm.dataflow_graph.fuse import build_kernel, fold_identities, unify_axes
from intelligen_tvm.gir import expr as E
from intelligen_tvm.gir.errors import Unsupported
from intelligen_tvm.gir.interpret import interpret
from intelligen_tvm.gir.program import Identity, Load, Program, Reduce, Store
from intelligen_tvm.gir_lowering.tir_reader import StageProgram
from tests.helpers import chain_stages, eval_stage_program, suite_region

op = relax.op
RNG = np.random.default_rng(0)


def _kernel_numerics(sp: StageProgram, feed: dict[str, np.ndarray]) -> None:
    """The fused kernel (before any rewrite) computes what the stages compute."""
    kernel, _ = build_kernel(sp, "k")
    prog = Program("p", dict(sp.buffers), list(sp.inputs), list(sp.outputs), [kernel])
    got = interpret(prog, feed)
    want = eval_stage_program(sp, feed)
    for out in sp.outputs:
        np.testing.assert_allclose(got[out], want[out], rtol=1e-6, atol=1e-6)


def test_decomposed_layer_norm_is_one_outer_and_one_row_axis() -> None:
    sp, feed, _ = suite_region("decomposed_layer_norm")
    kernel, space = build_kernel(sp, "ln")
    assert [a.extent for a in space.outer] == [8] and [a.extent for a in space.row] == [64]
    assert kernel.outer == space.outer and kernel.row == space.row
    assert [a.name for a in space.outer] == ["o0"] and [a.name for a in space.row] == ["r0"]
    # every stage variable is renamed to one of the two region axes
    assert {v.name for v in space.rename.values()} == {"o0", "r0"}
    assert sum(isinstance(i, Reduce) for i in kernel.instrs) == 2
    assert {a for i in kernel.instrs if isinstance(i, (Load, Store))
            for a in (i.src if isinstance(i, Load) else i.dst).axes()} <= {"o0", "r0"}
    _kernel_numerics(sp, feed)


def test_softmax_region_space() -> None:
    sp, feed, _ = suite_region("attention_softmax")
    _, space = build_kernel(sp, "k")
    assert [a.extent for a in space.outer] == [2, 3, 16]   # batch, heads, queries
    assert [a.extent for a in space.row] == [16]           # keys
    _kernel_numerics(sp, feed)


def test_column_reduction_keeps_the_column_outer() -> None:
    sp, feed, _ = suite_region("sum_axis0")
    kernel, space = build_kernel(sp, "k")
    assert [a.extent for a in space.outer] == [64] and [a.extent for a in space.row] == [8]
    (load,) = [i for i in kernel.instrs if isinstance(i, Load)]
    assert load.src.index == (E.Var("int32", "r0"), E.Var("int32", "o0"))
    _kernel_numerics(sp, feed)


def test_transpose_axes_follow_the_output_innermost_last() -> None:
    sp, feed, _ = suite_region("transpose_relu")
    kernel, space = build_kernel(sp, "k")
    out_shape = sp.buffers[sp.outputs[0]].shape
    assert tuple(a.extent for a in space.outer) == out_shape == (9, 4, 8, 7)
    (store,) = [i for i in kernel.instrs if isinstance(i, Store)]
    assert store.dst.index == tuple(E.Var("int32", a.name) for a in space.outer)
    # the transpose is a view: folded, the relu loads the input directly
    assert [i.dst for i in kernel.instrs if isinstance(i, Identity)] != []
    loads = [i for i in kernel.instrs if isinstance(i, Load)]
    assert [ld.src.buffer for ld in loads] == sp.inputs
    _kernel_numerics(sp, feed)


def test_reshape_then_transpose_folds_into_one_load() -> None:
    """The first two ops of the channel shuffle: both views fold into the output stage."""
    fn = lambda x: op.permute_dims(op.reshape(x, (2, 2, 6, 7, 7)), [0, 2, 1, 3, 4])  # noqa: E731
    sp, _ = chain_stages(fn, [(2, 12, 7, 7)])
    folded = fold_identities(sp)
    assert len(sp.stages) == 2 and len(folded.stages) == 1
    assert [v for v, _ in folded.views] == [sp.stages[0].out]
    (stage,) = folded.stages
    assert isinstance(stage.value, E.Load) and stage.value.buffer == "x0"
    x = RNG.standard_normal((2, 12, 7, 7)).astype("float32")
    _kernel_numerics(sp, {"x0": x})
    kernel, _ = build_kernel(sp, "k")
    prog = Program("p", dict(sp.buffers), list(sp.inputs), list(sp.outputs), [kernel])
    np.testing.assert_array_equal(interpret(prog, {"x0": x})[sp.outputs[0]],
                                  x.reshape(2, 2, 6, 7, 7).transpose(0, 2, 1, 3, 4))


def test_channel_shuffle_views_fold_to_a_single_stage() -> None:
    fn = lambda x: op.reshape(op.permute_dims(op.reshape(x, (2, 2, 6, 7, 7)), [0, 2, 1, 3, 4]),  # noqa: E731
                              (2, 12, 7, 7))
    sp, _ = chain_stages(fn, [(2, 12, 7, 7)])
    folded = fold_identities(sp)
    assert len(sp.stages) == 3 and len(folded.stages) == 1 and len(folded.views) == 2
    kernel, space = build_kernel(sp, "shuffle")
    assert tuple(a.extent for a in space.outer) == (2, 12, 7, 7) and space.row == ()
    x = RNG.standard_normal((2, 12, 7, 7)).astype("float32")
    prog = Program("p", dict(sp.buffers), list(sp.inputs), list(sp.outputs), [kernel])
    np.testing.assert_array_equal(interpret(prog, {"x0": x})[sp.outputs[0]],
                                  x.reshape(2, 2, 6, 7, 7).transpose(0, 2, 1, 3, 4).reshape(2, 12, 7, 7))


def test_views_that_are_region_outputs_are_not_folded() -> None:
    sp, _ = chain_stages(lambda x: op.permute_dims(x, [1, 0]), [(8, 16)])
    folded = fold_identities(sp)
    assert folded.views == [] and len(folded.stages) == 1


def test_gather_view_folds_through_the_index() -> None:
    sp, feed, _ = suite_region("bert_embedding")
    folded = fold_identities(sp)
    gathers = [src for _, src in folded.views if any(E.loads(i) for i in src.index)]
    assert gathers, folded.views
    _kernel_numerics(sp, feed)


@pytest.mark.parametrize(
    "fn, shapes, reason",
    [
        # reduce rows, then reduce the result over the other axis
        (lambda x: op.sum(op.subtract(x, op.sum(x, axis=[1], keepdims=True)), axis=[0]), [(8, 16)],
         "reductions over different axes"),
        (lambda x: op.add(x, op.expand_dims(op.sum(op.sum(x, axis=[1]), axis=[0], keepdims=True), 1)),
         [(8, 16)], "reductions over different axes"),
    ],
)
def test_regions_needing_two_kernels_are_refused(fn, shapes, reason: str) -> None:
    sp, _ = chain_stages(fn, shapes)
    with pytest.raises(Unsupported, match=reason):
        build_kernel(sp, "k")


def test_unify_axes_names_outer_then_row() -> None:
    sp, _ = chain_stages(lambda x, b: op.nn.softmax(op.add(x, b)), [(4, 8, 32), (32,)])
    space = unify_axes(fold_identities(sp), sp)
    assert [(a.name, a.extent) for a in space.outer] == [("o0", 4), ("o1", 8)]
    assert [(a.name, a.extent) for a in space.row] == [("r0", 32)]
