"""GIR programs: buffers, instructions, the text form and slice footprints."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace

import pytest

from intelligen_tvm.gir import expr as E
from intelligen_tvm.gir.program import (
    Axis, Buffer, Compute, Identity, Kernel, Level, Load, Program, Reduce, Scope, Slice, Store,
    Sync, Value, dtype_bytes, instr_text, slice_footprint,
)

I32, F32 = "int32", "float32"


def v(name: str) -> E.Var:
    return E.Var(I32, name)


def zero() -> E.Const:
    return E.Const(I32, 0)


@pytest.mark.parametrize(
    "dtype, nbytes",
    [("float32", 4), ("float16", 2), ("bfloat16", 2), ("float64", 8), ("int64", 8), ("int32", 4),
     ("int8", 1), ("uint8", 1), ("bool", 1), ("int1", 1)],
)
def test_dtype_bytes(dtype: str, nbytes: int) -> None:
    assert dtype_bytes(dtype) == nbytes


def test_buffer_nbytes_and_default_level() -> None:
    b = Buffer("x", (8, 64), "float16")
    assert b.nbytes == 8 * 64 * 2
    assert b.level is Level.DRAM
    assert Buffer("s", (), "float32").nbytes == 4   # a scalar buffer


def _softmax_like() -> Program:
    """out[o0, r0] = exp(x - max) / sum(exp(x - max)), written by hand with every instruction kind."""
    values = {
        "x": Value("x", F32, frozenset({"o0", "r0"})),
        "m": Value("m", F32, frozenset({"o0"})),
        "d": Value("d", F32, frozenset({"o0", "r0"})),
        "e": Value("e", F32, frozenset({"o0", "r0"})),
        "s": Value("s", F32, frozenset({"o0"})),
        "p": Value("p", F32, frozenset({"o0", "r0"})),
        "big": Value("big", "bool", frozenset({"o0", "r0"})),
        "q": Value("q", F32, frozenset({"o0", "r0"})),
        "h": Value("h", "float16", frozenset({"o0", "r0"})),
    }
    instrs = [
        Identity("xv", Slice("x", (v("o0"), v("r0")))),
        Load("x", Slice("x", (v("o0"), v("r0")))),
        Reduce("m", "x", "max", E.Const(F32, -3.4e38), Scope.UNIT),
        Compute("d", "sub", ("x", "m")),
        Compute("e", "exp", ("d",)),
        Reduce("s", "e", "sum", E.Const(F32, 0.0), Scope.GROUP),
        Sync(Level.SRAM),
        Compute("p", "div", ("e", "s")),
        Compute("big", "gt", ("p", E.Const(F32, 0.5))),
        Compute("q", "select", ("big", "p", E.Const(F32, 0.0))),
        Compute("h", "cast", ("q",)),
        Store(Slice("out", (v("o0"), v("r0"))), "q"),
    ]
    k = Kernel("k0", (Axis("o0", 8),), (Axis("r0", 64),), instrs, values)
    buffers = {"x": Buffer("x", (8, 64), F32), "out": Buffer("out", (8, 64), F32)}
    return Program("region0", buffers, ["x"], ["out"], [k])


def test_text_form_names_every_instruction_kind() -> None:
    text = _softmax_like().text()
    lines = text.splitlines()
    assert lines[0] == "gir.program region0"
    assert "  buffer x: float32[8, 64] @dram (in)" in lines
    assert "  buffer out: float32[8, 64] @dram (out)" in lines
    assert "  kernel k0 outer(o0<8>) row(r0<64>)" in lines
    body = "\n".join(lines)
    for needle in [
        "identity xv = view x[o0, r0]",
        "%x:float32<o0,r0> = move.dram->reg x[o0, r0]",
        "%m:float32<o0> = reduce.max.unit(%x, init=-3.4e+38)",
        "%d:float32<o0,r0> = binary.sub(%x, %m)",
        "%e:float32<o0,r0> = unary.exp(%d)",
        "%s:float32<o0> = reduce.sum.group(%e, init=0.0)",
        "sync.sram",
        "%big:bool<o0,r0> = binary.gt(%p, 0.5)",
        "%q:float32<o0,r0> = select.select(%big, %p, 0.0)",
        "%h:float16<o0,r0> = cast.cast(%q)",
        "move.reg->dram out[o0, r0] = %q",
    ]:
        assert needle in body, needle


def test_text_shows_the_strategy_once_planned() -> None:
    plain = _softmax_like()
    prog = replace(plain, kernels=(replace(plain.kernels[0], strategy="row(threads_per_row=32)"),))
    assert "    strategy row(threads_per_row=32)" in prog.text().splitlines()


def test_programs_and_kernels_are_immutable_and_own_their_fields() -> None:
    instrs = [Load("x", Slice("x", (v("o0"), v("r0")))), Store(Slice("out", (v("o0"), v("r0"))), "x")]
    values = {"x": Value("x", F32, frozenset({"o0", "r0"}))}
    k = Kernel("k0", (Axis("o0", 8),), (Axis("r0", 64),), instrs, values)
    buffers = {"x": Buffer("x", (8, 64), F32), "out": Buffer("out", (8, 64), F32)}
    prog = Program("p", buffers, ["x"], ["out"], [k])
    instrs.append(Sync(Level.SRAM))     # what the caller passed in is copied, not shared
    values["y"] = values["x"]
    buffers.clear()
    assert len(k.instrs) == 2 and set(k.values) == {"x"} and set(prog.buffers) == {"x", "out"}
    assert isinstance(prog.kernels, tuple) and isinstance(prog.inputs, tuple)
    with pytest.raises(FrozenInstanceError):
        k.strategy = None
    with pytest.raises(FrozenInstanceError):
        prog.kernels = ()
    with pytest.raises(TypeError):
        k.values["y"] = values["x"]
    with pytest.raises(TypeError):
        prog.buffers["y"] = prog.buffers["x"]
    assert replace(k, instrs=instrs).instrs == (*k.instrs, Sync(Level.SRAM))


def test_instruction_reads_and_writes() -> None:
    gather = Load("row", Slice("table", (E.ValueRef(I32, "id"), v("r0"))))
    assert gather.writes == ("row",) and gather.reads == ("id",)
    assert Store(Slice("out", (v("o0"),)), "s").reads == ("s",)
    assert Store(Slice("out", (v("o0"),)), "s").writes == ()
    comp = Compute("y", "add", ("a", E.Const(F32, 1.0)))
    assert comp.reads == ("a",) and comp.kind == "binary"
    assert Compute("y", "exp", ("a",)).kind == "unary"
    assert Reduce("m", "x", "max", E.Const(F32, 0.0)).scope is Scope.LANE   # default scope
    assert Sync().reads == () and Sync().writes == () and Sync().level is Level.SRAM


def test_instr_text_unknown_value_is_marked() -> None:
    assert instr_text(Compute("y", "neg", ("a",)), {}) == "%y:?<?> = unary.neg(%a)"


def test_slice_axes_and_predicated_text() -> None:
    sl = Slice("x", (v("o0"), E.Call(I32, "add", (v("r0"), E.Const(I32, 1)))),
               E.Call("bool", "lt", (v("r0"), E.Const(I32, 4))))
    assert sl.axes() == {"o0", "r0"}
    assert sl.text() == "x[o0, (r0 + 1)] if (r0 < 4)"


# ---- slice_footprint: distinct bytes over the whole launch --------------------------------

AXES = {"o0": 32, "o1": 16, "r0": 64}
BUFFERS = {
    "x": Buffer("x", (32, 16, 64), F32),
    "bias": Buffer("bias", (64,), F32),
    "scale": Buffer("scale", (1, 16, 1), F32),
    "ids": Buffer("ids", (32,), "int64"),
    "table": Buffer("table", (1000, 64), F32),
    "small_table": Buffer("small_table", (10, 64), F32),
    "h": Buffer("h", (32, 16, 64), "float16"),
    "s": Buffer("s", (), F32),
}


def test_footprint_full_access() -> None:
    sl = Slice("x", (v("o0"), v("o1"), v("r0")))
    assert slice_footprint(sl, AXES, BUFFERS) == 32 * 16 * 64 * 4
    assert slice_footprint(Slice("h", sl.index), AXES, BUFFERS) == 32 * 16 * 64 * 2


def test_footprint_broadcast_counts_each_element_once() -> None:
    # bias[r0] is re-read by every (o0, o1): those re-reads come from L2, not DRAM
    assert slice_footprint(Slice("bias", (v("r0"),)), AXES, BUFFERS) == 64 * 4
    assert slice_footprint(Slice("scale", (zero(), v("o1"), zero())), AXES, BUFFERS) == 16 * 4
    assert slice_footprint(Slice("s", ()), AXES, BUFFERS) == 4


def test_footprint_of_transposed_and_reshaped_views_is_the_used_axes() -> None:
    flat = E.Call(I32, "add", (E.Call(I32, "mul", (v("o1"), E.Const(I32, 64))), v("r0")))
    sl = Slice("x", (v("o0"), E.Call(I32, "floordiv", (flat, E.Const(I32, 64))),
                     E.Call(I32, "floormod", (flat, E.Const(I32, 64)))))
    assert slice_footprint(sl, AXES, BUFFERS) == 32 * 16 * 64 * 4


def test_footprint_of_a_gather_through_a_load_in_the_index() -> None:
    row = E.Call(I32, "cast", (E.Load("int64", "ids", (v("o0"),)),))
    # one gathered table row per o0: 32 rows of 64 floats, not the whole 1000-row table
    assert slice_footprint(Slice("table", (row, v("r0"))), AXES, BUFFERS) == 32 * 64 * 4
    # ... capped by the table itself when more rows are gathered than it has
    assert slice_footprint(Slice("small_table", (row, v("r0"))), AXES, BUFFERS) == 10 * 64 * 4


def test_footprint_of_a_gather_through_a_register_value() -> None:
    values = {"id": Value("id", I32, frozenset({"o0", "o1"}))}
    sl = Slice("table", (E.ValueRef(I32, "id"), v("r0")))
    assert slice_footprint(sl, AXES, BUFFERS, values) == 32 * 16 * 64 * 4
    capped = Slice("small_table", (E.ValueRef(I32, "id"), v("r0")))
    assert slice_footprint(capped, AXES, BUFFERS, values) == 10 * 64 * 4
