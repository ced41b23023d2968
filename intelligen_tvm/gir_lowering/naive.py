"""Naive GIR: every stage is load-from-DRAM, compute, store-to-DRAM.

The optimizer (dataflow_graph/) starts from this form; its DRAM traffic is the
`dram_bytes_naive` of the report.
"""

from __future__ import annotations

from itertools import count

from ..gir import expr as E
from ..gir.program import Axis, Compute, Instr, Kernel, Load, Program, Reduce, Slice, Store, Value
from .tir_reader import Stage, StageProgram


class StageEmitter:
    """Turns stage expressions into GIR instructions over SSA register values."""

    def __init__(self, row_axes: set[str]):
        self.row_axes = row_axes
        self.instrs: list[Instr] = []
        self.values: dict[str, Value] = {}
        self._ids = count()

    def _new(self, dtype: str, axes: set[str]) -> str:
        name = f"t{next(self._ids)}"
        self.values[name] = Value(name, dtype, frozenset(axes))
        return name

    def operand(self, e: E.Expr, predicate: E.Expr | None = None) -> str | E.Expr:
        if isinstance(e, E.Const) or (not E.loads(e) and E.free_vars(e)):
            return e   # a constant, or arithmetic on axes only (concat's bounds, iota)
        if isinstance(e, E.Load):
            index = tuple(self._hoist_gathers(i, predicate) for i in e.indices)
            sl = Slice(e.buffer, index, predicate)
            axes = sl.axes()
            for ref in sl.value_refs():
                axes |= self.values[ref].axes
            dst = self._new(e.dtype, axes)
            self.instrs.append(Load(dst, sl))
            return dst
        if isinstance(e, E.Call):
            if e.op == "select":
                c = self.operand(e.args[0], predicate)
                # Branch loads are guarded by the condition's register value (its loads are
                # forwarded like any other), or by the bound itself when it is axis arithmetic.
                cond = E.ValueRef(e.args[0].dtype, c) if isinstance(c, str) else c
                neg = E.Call("bool", "not", (cond,))
                a = self.operand(e.args[1], _and(predicate, cond))
                b = self.operand(e.args[2], _and(predicate, neg))
                args = (c, a, b)
            else:
                args = tuple(self.operand(a, predicate) for a in e.args)
            axes: set[str] = set()
            for a in args:
                axes |= self.values[a].axes if isinstance(a, str) else E.free_vars(a)
            dst = self._new(e.dtype, axes)
            self.instrs.append(Compute(dst, e.op, args))
            return dst
        raise TypeError(f"unexpected expression {e}")

    def _hoist_gathers(self, index: E.Expr, predicate: E.Expr | None) -> E.Expr:
        """A load inside an index (gather) becomes its own instruction; the slice then
        refers to the register value, so the index data is forwarded like any other."""

        def hoist(e: E.Expr) -> E.Expr | None:
            if isinstance(e, E.Load):
                name = self.operand(e, predicate)
                return E.ValueRef(e.dtype, name)
            return None

        return E.transform(index, hoist)

    def stage(self, stage: Stage, out_index: tuple[E.Expr, ...]) -> None:
        """Emit one stage: its loads, computes, optional reduction, and the store."""
        value = self.operand(stage.value)
        if not isinstance(value, str):   # constant fill
            dst = self._new(stage.value.dtype, set())
            self.instrs.append(Compute(dst, "cast", (value,)))
            value = dst
        if stage.reducer is not None:
            src_axes = self.values[value].axes
            dst = self._new(self.values[value].dtype, set(src_axes) - self.row_axes)
            self.instrs.append(Reduce(dst, value, stage.reducer, stage.init))
            value = dst
        self.instrs.append(Store(Slice(stage.out, out_index), value))


def _and(a: E.Expr | None, b: E.Expr) -> E.Expr:
    return b if a is None else E.Call("bool", "and", (a, b))


def stage_out_index(stage: Stage, prog: StageProgram) -> tuple[E.Expr, ...]:
    """The store index: the stage's spatial vars on the non-trivial output dims, 0 elsewhere."""
    shape = prog.buffers[stage.out].shape
    spatial = iter(stage.spatial)
    return tuple(E.Const("int32", 0) if s == 1 else E.Var("int32", next(spatial)[0]) for s in shape)


def lower_naive(prog: StageProgram, name: str) -> Program:
    """One kernel per stage, each with the stage's own iteration space."""
    kernels = []
    for stage in prog.stages:
        emitter = StageEmitter({n for n, _ in stage.reduce})
        emitter.stage(stage, stage_out_index(stage, prog))
        kernels.append(Kernel(
            stage.name,
            tuple(Axis(n, e) for n, e in stage.spatial),
            tuple(Axis(n, e) for n, e in stage.reduce),
            emitter.instrs,
            emitter.values,
        ))
    return Program(name, prog.buffers, prog.inputs, prog.outputs, kernels)
