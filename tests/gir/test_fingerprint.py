"""Structural fingerprints: the same region under other names agrees, any change of meaning
does not, and no printer enters the digest."""

from __future__ import annotations

from dataclasses import replace

import pytest

from intelligen_tvm.gir import expr as E
from intelligen_tvm.gir import program as P
from intelligen_tvm.gir.fingerprint import region_fingerprint, structural_digest
from intelligen_tvm.gir.program import Axis, Buffer, Compute, Kernel, Load, Program, Reduce, Slice, Store, Value

F32 = "float32"


def _region(src: str = "x", dst: str = "y", value: str = "a", rows: int = 8, op: str = "exp") -> tuple[Kernel, Program]:
    """y[o, r] = op(x[o, r]) / sum_r op(x[o, r]), with the given tensor and value names."""
    o, r = E.Var("int32", "o0"), E.Var("int32", "r0")
    instrs = [Load(value, Slice(src, (o, r))), Compute("e", op, (value,)),
              Reduce("s", "e", "sum", E.Const(F32, 0.0)), Compute("q", "div", ("e", "s")),
              Store(Slice(dst, (o, r)), "q")]
    values = {n: Value(n, F32, frozenset(ax)) for n, ax in
              ((value, {"o0", "r0"}), ("e", {"o0", "r0"}), ("s", {"o0"}), ("q", {"o0", "r0"}))}
    kernel = Kernel("k", (Axis("o0", rows),), (Axis("r0", 64),), instrs, values)
    buffers = {src: Buffer(src, (rows, 64), F32), dst: Buffer(dst, (rows, 64), F32)}
    return kernel, Program("region", buffers, [src], [dst])


def test_tensor_and_kernel_names_do_not_enter() -> None:
    kernel, shell = _region()
    other_kernel, other_shell = _region(src="t7", dst="t9")
    assert region_fingerprint(kernel, shell) == region_fingerprint(replace(other_kernel, name="z"), other_shell)


def test_a_value_named_like_a_tensor_stays_a_value() -> None:
    """Roles replace buffer names only where a field names a buffer, so a value called like
    the input tensor neither collides with it nor makes the digest depend on tensor names."""
    assert region_fingerprint(*_region(src="t0", value="t0")) == region_fingerprint(*_region(src="t5", value="t0"))
    assert region_fingerprint(*_region(src="t0", value="t0")) == region_fingerprint(*_region(src="t0", value="t1"))


def test_value_names_do_not_enter_but_the_dataflow_does() -> None:
    """Copies of one region (an encoder's layers) name their values differently: renumbered
    by definition, they agree; the same names wired differently (div's operands swapped) do not."""
    assert region_fingerprint(*_region(value="t18")) == region_fingerprint(*_region(value="t24"))
    kernel, shell = _region()
    swapped = tuple(replace(i, args=("s", "e")) if isinstance(i, Compute) and i.op == "div" else i
                    for i in kernel.instrs)
    assert region_fingerprint(kernel, shell) != region_fingerprint(replace(kernel, instrs=swapped), shell)


@pytest.mark.parametrize("change", [dict(rows=16), dict(op="tanh")])
def test_a_change_of_meaning_changes_it(change: dict) -> None:
    assert region_fingerprint(*_region()) != region_fingerprint(*_region(**change))


def test_no_printer_enters(monkeypatch: pytest.MonkeyPatch) -> None:
    before = region_fingerprint(*_region())
    monkeypatch.setattr(P, "instr_text", lambda ins, values: "changed")
    monkeypatch.setattr(E, "to_text", lambda e: "changed")
    monkeypatch.setattr(Program, "text", lambda self: "changed")
    assert region_fingerprint(*_region()) == before


def test_digest_tells_containers_and_types_apart() -> None:
    assert structural_digest((1, 2)) != structural_digest([[1, 2]])
    assert structural_digest(1) != structural_digest(1.0) != structural_digest("1")
    assert structural_digest({"a": 1, "b": 2}) == structural_digest({"b": 2, "a": 1})
    with pytest.raises(TypeError):
        structural_digest(object())
