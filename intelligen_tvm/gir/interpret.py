"""The executable definition of GIR: a numpy interpreter of programs.

Every register value is an array over its kernel's whole region space (outer + row axes),
a reduction folds the row axes, and all groups run at once, so the result is what any
correct lowering of the program must compute.  Tests check every rewrite and every plan
against it; it is a reference, not a backend (no speed, no parallel strategy).
"""

from __future__ import annotations

import math

import numpy as np

from . import expr as E
from .program import Compute, Identity, Load, Program, Reduce, Store, Sync


def _erf(x):
    """erf without scipy (not a project dependency): math.erf per element."""
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(np.asarray(x).dtype)


def apply_op(op: str, dtype: str, args: list) -> np.ndarray:
    """An operator of GIR on numpy arrays, in the dtype GIR gives its result."""
    a = args
    table = {
        "add": lambda: a[0] + a[1], "sub": lambda: a[0] - a[1], "mul": lambda: a[0] * a[1],
        "div": lambda: a[0] / a[1] if dtype.startswith("float") else np.trunc(a[0] / a[1]),
        "floordiv": lambda: np.floor_divide(a[0], a[1]), "floormod": lambda: np.mod(a[0], a[1]),
        "max": lambda: np.maximum(a[0], a[1]), "min": lambda: np.minimum(a[0], a[1]),
        "pow": lambda: np.power(a[0], a[1]),
        "lt": lambda: a[0] < a[1], "le": lambda: a[0] <= a[1], "gt": lambda: a[0] > a[1],
        "ge": lambda: a[0] >= a[1], "eq": lambda: a[0] == a[1], "ne": lambda: a[0] != a[1],
        "and": lambda: np.logical_and(a[0], a[1]), "or": lambda: np.logical_or(a[0], a[1]),
        "not": lambda: np.logical_not(a[0]), "neg": lambda: -a[0],
        "select": lambda: np.where(a[0], a[1], a[2]), "cast": lambda: a[0],
        "exp": lambda: np.exp(a[0]), "log": lambda: np.log(a[0]), "sqrt": lambda: np.sqrt(a[0]),
        "rsqrt": lambda: 1.0 / np.sqrt(a[0]), "erf": lambda: _erf(a[0]),
        "tanh": lambda: np.tanh(a[0]), "sigmoid": lambda: 1.0 / (1.0 + np.exp(-a[0])),
        "abs": lambda: np.abs(a[0]), "floor": lambda: np.floor(a[0]), "ceil": lambda: np.ceil(a[0]),
        "round": lambda: np.round(a[0]), "trunc": lambda: np.trunc(a[0]),
        "sin": lambda: np.sin(a[0]), "cos": lambda: np.cos(a[0]), "tan": lambda: np.tan(a[0]),
        "exp2": lambda: np.exp2(a[0]), "log2": lambda: np.log2(a[0]), "log1p": lambda: np.log1p(a[0]),
    }
    with np.errstate(all="ignore"):
        out = table[op]()
    return np.asarray(out).astype(np.dtype(dtype) if dtype != "bool" else bool)


def eval_expr(e, env: dict, buffers: dict):
    """Evaluate a GIR scalar expression over numpy index grids (`env`: var name -> grid)."""
    if isinstance(e, E.Var):
        return env[e.name]
    if isinstance(e, E.Const):
        return np.asarray(e.value, dtype=np.dtype(e.dtype) if e.dtype != "bool" else bool)
    if isinstance(e, E.Load):
        buf = buffers[e.buffer]
        # Loads under a select are evaluated eagerly here: clip the lanes the select discards.
        idx = tuple(np.clip(np.asarray(eval_expr(i, env, buffers)).astype(np.int64), 0, n - 1)
                    for i, n in zip(e.indices, buf.shape))
        return buf[idx] if idx else buf[()]
    if isinstance(e, E.Call):
        return apply_op(e.op, e.dtype, [eval_expr(a, env, buffers) for a in e.args])
    raise TypeError(e)


def interpret(program: Program, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run `program` on `inputs` (buffer name -> array); returns every buffer afterwards."""

    bufs = {name: (np.array(inputs[name]) if name in inputs else np.zeros(b.shape, b.dtype))
            for name, b in program.buffers.items()}
    for k in program.kernels:
        for name, b in k.local_buffers.items():
            bufs[name] = np.zeros(b.shape, b.dtype)
        axes = [*k.outer, *k.row]
        shape = tuple(a.extent for a in axes)
        grids = np.meshgrid(*[np.arange(a.extent) for a in axes], indexing="ij") if axes else []
        env: dict = {a.name: g for a, g in zip(axes, grids)}
        n_outer = len(k.outer)
        vals: dict[str, np.ndarray] = {}
        staged: dict[tuple, np.ndarray] = {}

        def ev(e):
            if isinstance(e, E.ValueRef):
                return vals[e.value]
            return eval_expr(e, env, bufs) if not E.walk_value_refs((e,)) else _ev_refs(e)

        def _ev_refs(e):
            sub = E.transform(e, lambda x: E.Var(x.dtype, "%" + x.value) if isinstance(x, E.ValueRef) else None)
            return eval_expr(sub, {**env, **{"%" + n: v for n, v in vals.items()}}, bufs)

        for ins in k.instrs:
            if isinstance(ins, (Identity, Sync)):
                continue
            if isinstance(ins, Load) and ins.src.buffer in k.local_buffers:
                vals[ins.dst] = staged[(ins.src.buffer, ins.src.index)]
            elif isinstance(ins, Load):
                dtype = k.values[ins.dst].dtype
                value = np.broadcast_to(ev(E.Load(dtype, ins.src.buffer, ins.src.index)), shape)
                if ins.src.predicate is not None:
                    value = np.where(ev(ins.src.predicate), value, np.zeros((), dtype))
                vals[ins.dst] = np.broadcast_to(value, shape)
            elif isinstance(ins, Compute):
                args = [vals[a] if isinstance(a, str) else ev(a) for a in ins.args]   # constants, axis arithmetic
                vals[ins.dst] = np.broadcast_to(apply_op(ins.op, k.values[ins.dst].dtype, args), shape)
            elif isinstance(ins, Reduce):
                fn, combine = {"sum": (np.sum, np.add), "max": (np.max, np.maximum),
                               "min": (np.min, np.minimum), "prod": (np.prod, np.multiply)}[ins.op]
                red = tuple(range(n_outer, len(axes)))
                src = vals[ins.src] if ins.shift is None else np.exp(vals[ins.src] - vals[ins.shift])
                r = combine(eval_expr(ins.init, {}, bufs), fn(src, axis=red, keepdims=True))
                vals[ins.dst] = np.broadcast_to(r.astype(k.values[ins.dst].dtype), shape)
            elif isinstance(ins, Store) and ins.dst.buffer in k.local_buffers:
                # An on-chip tile is per group: the interpreter, which runs all groups at once,
                # reads back what this kernel staged through the same slice.
                staged[(ins.dst.buffer, ins.dst.index)] = vals[ins.src]
            elif isinstance(ins, Store):
                idx = tuple(np.broadcast_to(np.asarray(ev(i)).astype(np.int64), shape) for i in ins.dst.index)
                # a 0-d buffer (a reduction over every axis) takes the value every point wrote
                value = vals[ins.src] if idx else vals[ins.src].reshape(-1)[-1]
                bufs[ins.dst.buffer][idx] = value
            else:
                raise TypeError(ins)
    return bufs
