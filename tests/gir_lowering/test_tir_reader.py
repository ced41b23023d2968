"""The TIR reader: legalized PrimFuncs -> stages (structure, and the numbers they compute)."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax

from intelligen_tvm.gir import expr as E
from intelligen_tvm.gir.errors import Unsupported
from intelligen_tvm.gir_lowering.tir_reader import StageProgram, concat_programs, read_prim_func
from tests.helpers import (
    eval_stage_program, read_single, relax_module, run_prim_func, single_prim_func,
)

RNG = np.random.default_rng(0)


def _check_numerics(func: tvm.tirx.PrimFunc, sp: StageProgram, inputs: dict[str, np.ndarray]) -> None:
    """The stages, interpreted with numpy, compute what TVM's build of the PrimFunc computes."""
    expected = run_prim_func(func, [inputs[n] for n in sp.inputs])
    got = eval_stage_program(sp, inputs)
    for name, exp in zip(sp.outputs, expected):
        np.testing.assert_allclose(got[name], exp, rtol=1e-5, atol=1e-5, err_msg=name)


def test_softmax_is_four_stages_with_max_and_sum_reducers() -> None:
    func = single_prim_func(lambda x: relax.op.nn.softmax(x, axis=-1), [(8, 16)])
    sp = read_prim_func(func, ["x", "out"], "c0_")
    assert sp.inputs == ["x"] and sp.outputs == ["out"]
    assert [s.reducer for s in sp.stages] == ["max", None, "sum", None]
    mx, ex, total, norm = sp.stages
    # every stage iterates the 8 rows; the reductions run over the 16 columns
    for st in sp.stages:
        assert [n for _, n in st.spatial][:1] == [8]
    assert [n for _, n in mx.reduce] == [16] and [n for _, n in total.reduce] == [16]
    assert ex.reduce == () and norm.reduce == ()
    assert isinstance(mx.value, E.Load) and mx.value.buffer == "x"
    assert float(mx.init.value) < -1e38          # max starts at the lowest float32
    assert float(total.init.value) == 0.0
    assert norm.out == "out"
    # intermediates are renamed with the prefix and typed by their shapes
    for st in (mx, ex, total):
        assert st.out.startswith("c0_") and st.out in sp.buffers
    assert sp.buffers[mx.out].shape == (8,) and sp.buffers[ex.out].shape == (8, 16)
    assert "exp" in {c.op for c in E.walk(ex.value) if isinstance(c, E.Call)}
    _check_numerics(func, sp, {"x": RNG.standard_normal((8, 16)).astype("float32")})


def test_layer_norm_stages() -> None:
    func = single_prim_func(lambda x, g, b: relax.op.nn.layer_norm(x, g, b, axes=[-1], epsilon=1e-5),
                            [(8, 16), (16,), (16,)])
    sp = read_prim_func(func, ["x", "gamma", "beta", "out"], "c0_")
    assert sp.inputs == ["x", "gamma", "beta"] and sp.outputs == ["out"]
    assert [s.reducer for s in sp.stages] == ["sum", None, "sum", None]
    last = sp.stages[-1]
    assert last.out == "out" and [n for _, n in last.spatial] == [8, 16]
    ops = {c.op for c in E.walk(last.value) if isinstance(c, E.Call)}
    assert "rsqrt" in ops
    # gamma and beta are indexed by the column only (a broadcast over rows)
    (col_name, _), = last.spatial[1:]
    for ld in E.loads(last.value):
        if ld.buffer in ("gamma", "beta"):
            assert ld.indices == (E.Var("int32", col_name),)
    inputs = {"x": RNG.standard_normal((8, 16)).astype("float32"),
              "gamma": RNG.standard_normal(16).astype("float32"),
              "beta": RNG.standard_normal(16).astype("float32")}
    _check_numerics(func, sp, inputs)


@pytest.mark.parametrize("ids_dtype, ids_shape", [("int64", (4,)), ("int32", (2, 3))])
def test_take_loads_inside_the_index(ids_dtype: str, ids_shape: tuple[int, ...]) -> None:
    func = single_prim_func(lambda t, i: relax.op.take(t, i, axis=0), [(10, 16), ids_shape],
                            ["float32", ids_dtype])
    sp = read_prim_func(func, ["table", "ids", "out"], "c0_")
    (st,) = sp.stages
    assert st.reducer is None and sp.inputs == ["table", "ids"]
    assert isinstance(st.value, E.Load) and st.value.buffer == "table"
    row_index, col_index = st.value.indices
    gathers = E.loads(row_index)
    assert [g.buffer for g in gathers] == ["ids"]
    assert gathers[0].dtype == ids_dtype
    assert len(gathers[0].indices) == len(ids_shape)
    assert isinstance(col_index, E.Var)
    ids = RNG.integers(0, 10, size=ids_shape).astype(ids_dtype)
    _check_numerics(func, sp, {"table": RNG.standard_normal((10, 16)).astype("float32"), "ids": ids})


def test_extent_one_axes_index_zero() -> None:
    """keepdims reductions and size-1 broadcast dims carry no axis: they index 0."""
    sp = read_single(lambda x: relax.op.sum(x, axis=[1], keepdims=True), [(8, 16)], ["x", "out"])
    (st,) = sp.stages
    assert st.reducer == "sum" and [n for _, n in st.spatial] == [8]
    assert sp.buffers["out"].shape == (8, 1)
    sp = read_single(lambda x, b: relax.op.add(x, b), [(8, 16), (1, 16)], ["x", "b", "out"])
    (st,) = sp.stages
    b_load = next(ld for ld in E.loads(st.value) if ld.buffer == "b")
    assert b_load.indices[0] == E.Const("int32", 0)


def test_mean_and_variance_read_and_compute() -> None:
    fn = lambda x: relax.op.variance(x, axis=[1], keepdims=False)  # noqa: E731
    func = single_prim_func(fn, [(8, 16)])
    sp = read_prim_func(func, ["x", "out"], "c0_")
    assert [s.reducer for s in sp.stages].count("sum") == 2
    _check_numerics(func, sp, {"x": RNG.standard_normal((8, 16)).astype("float32")})


@pytest.mark.parametrize(
    "name, fn",
    [
        ("pad", lambda x: relax.op.nn.pad(x, [0, 0, 1, 2], pad_value=0.5)),
        ("concat", lambda x: relax.op.concat([x, relax.op.exp(x)], axis=1)),
        ("strided_slice", lambda x: relax.op.strided_slice(x, [1], [1], [16], [3])),
        ("flip", lambda x: relax.op.flip(x, 1)),
        ("tril", lambda x: relax.op.tril(x)),
        ("transpose", lambda x: relax.op.permute_dims(x, [1, 0])),
        ("reshape", lambda x: relax.op.reshape(x, (4, 32))),
        ("where", lambda x: relax.op.where(relax.op.less(x, relax.const(0.0)), x, relax.op.sqrt(x))),
    ],
)
def test_injective_ops_read_and_compute(name: str, fn) -> None:
    """Injective ops with predicates/selects/index arithmetic: stage semantics == TVM's build."""
    mod = relax.transform.LegalizeOps()(relax_module(fn, [(8, 16)]))
    x = RNG.standard_normal((8, 16)).astype("float32")
    env = {"x0": x}
    # run the legalized chain op by op through our reader's semantics and through TVM
    main = mod["main"]
    for binding in main.body.blocks[0].bindings:
        call = binding.value
        func = mod[call.args[0]]
        args = []
        for k, a in enumerate(call.args[1].fields):
            if isinstance(a, tvm.ir.GenericConst):
                env[f"const{k}"] = a.value.numpy()
                args.append(f"const{k}")
            else:
                args.append(a.name)
        out = binding.var.name
        sp = read_prim_func(func, [*args, out], "c0_")
        ins = {a: env[a] for a in args}
        env[out] = eval_stage_program(sp, ins)[out]
        expected = run_prim_func(func, [ins[a] for a in args])[0]
        np.testing.assert_allclose(env[out], expected, rtol=1e-6, atol=1e-6, err_msg=name)


# ---- what the reader refuses, and why -------------------------------------------------------

@pytest.mark.parametrize(
    "fn, shapes, dtypes, reason",
    [
        (lambda x: relax.op.argmax(x, axis=1), [(8, 16)], None, "is not a single store"),
        (lambda x: relax.op.argmin(x, axis=1), [(8, 16)], None, "is not a single store"),
        (lambda x, i, u: relax.op.scatter_elements(x, i, u), [(8, 16)] * 3,
         ["float32", "int64", "float32"], "is not a single store"),
    ],
    ids=["argmax", "argmin", "scatter_elements"],
)
def test_unsupported_ops_raise_with_a_reason(fn, shapes, dtypes, reason: str) -> None:
    func = single_prim_func(fn, shapes, dtypes)
    names = [f"a{i}" for i in range(len(func.params))]
    with pytest.raises(Unsupported, match=reason):
        read_prim_func(func, names, "c0_")


def test_cumsum_after_dispatch_is_unsupported() -> None:
    """cumsum/sort/topk are not legalized by LegalizeOps: DispatchSortScan (under a target)
    turns cumsum into an opaque scan loop, which the reader refuses."""
    mod = relax_module(lambda x: relax.op.cumsum(x, axis=1), [(8, 16)])
    assert not any(isinstance(f, tvm.tirx.PrimFunc) for f in relax.transform.LegalizeOps()(mod).functions.values())
    with tvm.target.Target({"kind": "llvm"}):
        mod = tvm.transform.Sequential([relax.backend.DispatchSortScan(), relax.transform.LegalizeOps()])(mod)
    (func,) = [f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]
    with pytest.raises(Unsupported) as err:
        read_prim_func(func, ["x", "out"], "c0_")
    assert str(err.value)


def test_wrong_parameter_count_is_unsupported() -> None:
    func = single_prim_func(lambda x: relax.op.exp(x), [(8, 16)])
    with pytest.raises(Unsupported, match="non-buffer parameters"):
        read_prim_func(func, ["x"], "c0_")


def test_concat_programs_merges_buffers_and_sets_the_interface() -> None:
    a = read_single(lambda x: relax.op.exp(x), [(8, 16)], ["x", "t"])
    b = read_single(lambda x: relax.op.nn.softmax(x), [(8, 16)], ["t", "out"], prefix="c1_")
    sp = concat_programs([a, b], ["x"], ["out"])
    assert sp.inputs == ["x"] and sp.outputs == ["out"]
    assert len(sp.stages) == 1 + 4
    assert {"x", "t", "out"} <= set(sp.buffers)
    assert all(not n.startswith("c0_") for n in b.buffers)   # prefixes keep parts apart
    x = RNG.standard_normal((8, 16)).astype("float32")
    out = eval_stage_program(sp, {"x": x})["out"]
    e = np.exp(x)
    ref = np.exp(e - e.max(1, keepdims=True))
    np.testing.assert_allclose(out, ref / ref.sum(1, keepdims=True), rtol=1e-5)
