"""Differential fuzzing: seeded random memory-intensive ONNX graphs, compiled with the
"intelligen" pipeline and compared with `onnx.reference`.

Why: the suite and the op tests cover shapes and op mixes we thought of; random DAGs (ranks
1-5, extents like 1, 3, 7, 33, 127, 1000, shared intermediates, several outputs, int and
float16 paths) find the combinations we did not.  Every graph is deterministic in
(seed, index), so a failure is reproduced from two integers.

Each graph gets one class:
- ``pass``: matches the reference;
- ``wrong``: our build runs but disagrees with the reference while TVM's own pipeline agrees;
- ``crash``: our build raises, or the process dies (a signal, e.g. SIGFPE) or hangs;
- ``internal_error``: a region fell back to TVM because of a bug of ours (the result is TVM's);
- ``tvm_also_wrong``: TVM's default pipeline fails or disagrees too (importer or TVM bug):
  recorded apart, not counted against us;
- ``invalid``: the generator built a graph the reference rejects (a bug of the generator).

Graphs run in worker processes (``python -m intelligen_tvm.fuzz --worker``), many per process;
a worker that dies fails the graph it was running and a fresh one takes the rest.

CLI: ``python -m intelligen_tvm.fuzz --count 2000 --seed 0 [--workers 2] [--out results.jsonl]``.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import relax_integration
from .frontend import from_onnx
from .relax_integration import explain
from .testing import build_and_run, reference_outputs

OPSET = 17
SIZES = (1, 1, 3, 7, 33, 127, 1000)
MAX_ELEMS = 1 << 13          # per tensor: keeps a graph's compile and run well under a second
FLOAT_BOUND = 1e5            # no op may grow a float tensor's magnitude bound past this
INT_BOUND = 1 << 20          # ... nor an integer one's (no wrap-around, which LLVM may treat as UB)
HALF_BOUND = 500.0

CLASSES = ("pass", "wrong", "crash", "internal_error", "tvm_also_wrong", "invalid")
COUNTED = ("wrong", "crash", "internal_error", "invalid")   # our bugs; tvm_also_wrong is recorded apart

_ONNX_TYPE = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "int32": TensorProto.INT32,
              "int64": TensorProto.INT64, "bool": TensorProto.BOOL}
# Relative tolerance; the absolute one is this times the output's largest magnitude (at least 1).
_TOL = {"float32": 2e-3, "float16": 2e-2}


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    bound: float            # |values| <= bound (approximately: a guard against overflow)
    exact: bool             # both sides compute it bit-identically (no rounding-order freedom)


@dataclass
class FuzzGraph:
    seed: int
    index: int
    model: onnx.ModelProto
    inputs: list[np.ndarray]

    @property
    def tag(self) -> str:
        return f"seed={self.seed} index={self.index}"


class _Excluded(Exception):
    """An op generator tried an op type the campaign leaves out (`without`)."""


@dataclass
class _Builder:
    rng: np.random.Generator
    without: frozenset[str] = frozenset()
    nodes: list = field(default_factory=list)
    inits: list = field(default_factory=list)
    inputs: list[tuple[Tensor, np.ndarray]] = field(default_factory=list)
    pool: list[Tensor] = field(default_factory=list)    # values ops may consume
    count: int = 0

    # ---- naming and constants ----------------------------------------------------------
    def name(self, stem: str = "t") -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def const(self, value, dtype: str) -> str:
        arr = np.asarray(value, dtype=dtype)
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def node(self, op: str, ins: list[str], shape, dtype: str, bound: float, exact: bool, **attrs) -> Tensor:
        if op in self.without:
            raise _Excluded(op)
        out = Tensor(self.name(), tuple(int(s) for s in shape), dtype, float(bound), exact)
        self.nodes.append(helper.make_node(op, ins, [out.name], **attrs))
        return out

    def pick(self, pred=lambda t: True) -> Tensor | None:
        """A pool value, recent ones likelier (chains), older ones sometimes (shared intermediates)."""
        cands = [t for t in self.pool if pred(t)]
        if not cands:
            return None
        w = np.arange(1, len(cands) + 1, dtype=float) ** 2
        return cands[self.rng.choice(len(cands), p=w / w.sum())]

    # ---- graph inputs --------------------------------------------------------------------
    def new_input(self, shape, dtype: str) -> Tensor:
        rng = self.rng
        if dtype in ("int32", "int64"):
            lo, hi = [(-20, 21), (0, 8), (-3, 4)][rng.integers(3)]
            data = rng.integers(lo, hi, size=shape).astype(dtype)
        else:
            scale = float(rng.choice([0.5, 1.0, 3.0]))
            offset = float(rng.choice([0.0, 0.0, 1.5, -2.0]))
            data = (rng.uniform(-1, 1, size=shape) * scale + offset)
            if rng.random() < 0.3:   # multiples of 1/8: sums are exact in any order
                data = np.round(data * 8) / 8
            data = data.astype(dtype)
        t = Tensor(self.name("x"), tuple(int(s) for s in shape), dtype,
                   float(np.max(np.abs(data), initial=0.0)) + 1.0, True)
        self.inputs.append((t, data))
        return t

    def random_shape(self, rank: int | None = None) -> tuple[int, ...]:
        rank = rank or int(self.rng.choice([1, 2, 2, 3, 3, 4, 5]))
        for _ in range(50):
            shape = tuple(int(self.rng.choice(SIZES)) for _ in range(rank))
            if _numel(shape) <= MAX_ELEMS:
                return shape
        return (3,) * rank

    def broadcast_partner(self, shape: tuple[int, ...], dtype: str) -> Tensor:
        """An existing value, a new input or a constant that broadcasts against `shape`."""
        rng = self.rng
        same = self.pick(lambda t: t.dtype == dtype and _broadcastable(t.shape, shape)
                         and _broadcast(t.shape, shape) == shape)
        if same is not None and rng.random() < 0.5:
            return same
        drop = int(rng.integers(0, len(shape) + 1)) if rng.random() < 0.4 else 0
        sub = [1 if rng.random() < 0.35 else d for d in shape[drop:]]
        if rng.random() < 0.4:
            data = rng.uniform(-2, 2, size=sub)
            if dtype.startswith("int"):
                data = np.round(data * 5)
            arr = data.astype(dtype)
            name = self.const(arr, dtype)
            return Tensor(name, tuple(sub), dtype, float(np.max(np.abs(arr), initial=0.0)) + 1.0, True)
        return self.new_input(tuple(sub), dtype)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _broadcastable(a, b) -> bool:
    return all(x == y or x == 1 or y == 1 for x, y in zip(reversed(a), reversed(b)))


def _broadcast(a, b) -> tuple[int, ...]:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    return tuple(max(x, y) for x, y in zip(a, b))


def _is_float(t: Tensor) -> bool:
    return t.dtype in ("float32", "float16")


def _cap(t: Tensor) -> float:
    return HALF_BOUND if t.dtype == "float16" else FLOAT_BOUND if _is_float(t) else INT_BOUND


# ---- op generators: each returns the new value or None when it does not apply ----------------

_UNARY = ("Relu", "Tanh", "Sigmoid", "Erf", "Abs", "Neg", "Exp", "Sqrt", "Log", "Reciprocal", "Floor", "Ceil")


def _unary(b: _Builder) -> Tensor | None:
    x = b.pick(_is_float)
    if x is None:
        return None
    op = str(b.rng.choice(_UNARY))
    if op in ("Floor", "Ceil") and not x.exact:
        op = "Abs"   # rounding an inexact value may flip at an integer
    bound = x.bound
    src = x.name
    if op == "Exp":   # in its domain: exp of clipped values
        src = b.node("Clip", [x.name, b.const(-6, x.dtype), b.const(4 if x.dtype == "float16" else 6, x.dtype)],
                     x.shape, x.dtype, 6, x.exact).name
        bound = float(np.exp(6))
    elif op in ("Sqrt", "Log", "Reciprocal"):   # of |x| (+ a margin away from 0 for log/reciprocal)
        src = b.node("Abs", [x.name], x.shape, x.dtype, x.bound, x.exact).name
        if op != "Sqrt":
            src = b.node("Add", [src, b.const(0.5, x.dtype)], x.shape, x.dtype, x.bound + 0.5, False).name
        bound = {"Sqrt": np.sqrt(x.bound), "Log": np.log(x.bound + 1) + 1, "Reciprocal": 2.0}[op]
    elif op in ("Tanh", "Sigmoid", "Erf"):
        bound = 1.0
    elif op in ("Floor", "Ceil"):
        bound = x.bound + 1
    exact = x.exact and op in ("Relu", "Abs", "Neg", "Floor", "Ceil")
    return b.node(op, [src], x.shape, x.dtype, bound, exact)


def _binary(b: _Builder) -> Tensor | None:
    x = b.pick(lambda t: t.dtype != "bool")
    if x is None:
        return None
    is_int = not _is_float(x)
    ops = ["Add", "Sub", "Mul", "Div", "Max", "Min"] + (["Mod"] if is_int else ["Pow"])
    op = str(b.rng.choice(ops))
    y = b.broadcast_partner(x.shape, x.dtype)
    shape = _broadcast(x.shape, y.shape)
    if _numel(shape) > MAX_ELEMS:
        return None
    yname, ybound = y.name, y.bound
    if op in ("Div", "Mod", "Pow"):   # a divisor away from zero; a positive base
        yname = b.node("Abs", [y.name], y.shape, y.dtype, y.bound, y.exact).name
        yname = b.node("Add", [yname, b.const(1 if is_int else 0.5, y.dtype)], y.shape, y.dtype,
                       y.bound + 1, y.exact and is_int).name
    if op == "Pow":
        base = b.node("Abs", [x.name], x.shape, x.dtype, x.bound, x.exact)
        base = b.node("Add", [base.name, b.const(0.5, x.dtype)], x.shape, x.dtype, x.bound + 0.5, False)
        expo = b.const(float(b.rng.choice([2.0, 0.5, 3.0, -1.0, 1.5])), x.dtype)
        bound = max(base.bound ** 3, 2 ** 3)
        if bound > _cap(x):
            return None
        return b.node("Pow", [base.name, expo], shape, x.dtype, bound, False)
    bound = {"Add": x.bound + ybound, "Sub": x.bound + ybound, "Mul": x.bound * ybound,
             "Div": x.bound * 2, "Max": max(x.bound, ybound), "Min": max(x.bound, ybound),
             "Mod": ybound + 1}[op]
    if bound > _cap(x):
        return None
    exact = x.exact and y.exact and (op in ("Max", "Min") or is_int or op != "Div")
    ins = [x.name, yname]
    if is_int and op == "Div":   # numpy's and TVM's integer division agree for a positive divisor only on x >= 0
        ins[0] = b.node("Abs", [x.name], x.shape, x.dtype, x.bound, True).name
    attrs = {"fmod": 0} if op == "Mod" else {}
    return b.node(op, ins, shape, x.dtype, bound, exact, **attrs)


def _variadic(b: _Builder) -> Tensor | None:
    x = b.pick(lambda t: t.dtype != "bool")
    if x is None:
        return None
    others = [b.broadcast_partner(x.shape, x.dtype) for _ in range(int(b.rng.integers(1, 3)))]
    shape = x.shape
    for o in others:
        shape = _broadcast(shape, o.shape)
    if _numel(shape) > MAX_ELEMS:
        return None
    op = str(b.rng.choice(["Max", "Min", "Sum"] if _is_float(x) else ["Max", "Min"]))
    bound = sum(t.bound for t in [x, *others]) if op == "Sum" else max(t.bound for t in [x, *others])
    if bound > _cap(x):
        return None
    exact = op != "Sum" and all(t.exact for t in [x, *others])
    return b.node(op, [x.name] + [o.name for o in others], shape, x.dtype, bound, exact)


def _where(b: _Builder) -> Tensor | None:
    """Where(x > y, a, c) with broadcasting between all four (comparisons of exact values only)."""
    x = b.pick(lambda t: t.exact and t.dtype != "bool")
    if x is None:
        return None
    y = b.broadcast_partner(x.shape, x.dtype)
    cmp = str(b.rng.choice(["Greater", "Less", "Equal", "GreaterOrEqual"]))
    cshape = _broadcast(x.shape, y.shape)
    cond = b.node(cmp, [x.name, y.name], cshape, "bool", 1, True)
    if b.rng.random() < 0.3:
        cond = b.node("Not", [cond.name], cshape, "bool", 1, True)
    a = b.pick(lambda t: t.dtype != "bool" and _broadcastable(t.shape, cshape)) or x
    c = b.broadcast_partner(a.shape if b.rng.random() < 0.5 else cshape, a.dtype)
    shape = _broadcast(_broadcast(cshape, a.shape), c.shape)
    if _numel(shape) > MAX_ELEMS:
        return None
    return b.node("Where", [cond.name, a.name, c.name], shape, a.dtype, max(a.bound, c.bound), a.exact and c.exact)


def _cast(b: _Builder) -> Tensor | None:
    x = b.pick()
    if x is None:
        return None
    if x.dtype == "float32":
        choices = ["float16"] + (["int32", "int64", "bool"] if x.exact else [])
        if x.bound > HALF_BOUND:
            choices.remove("float16")
        if not choices:
            return None
    elif x.dtype == "float16":
        choices = ["float32"] + (["int32"] if x.exact else [])
    elif x.dtype == "bool":
        choices = ["float32", "int32", "float16"]
    else:
        choices = ["float32", "int64" if x.dtype == "int32" else "int32", "bool"]
        if x.bound <= HALF_BOUND:
            choices.append("float16")
    to = str(b.rng.choice(choices))
    exact = x.exact and not (to == "float16" and x.dtype == "float32")
    bound = 1 if to == "bool" else x.bound + 1
    return b.node("Cast", [x.name], x.shape, to, bound, exact, to=_ONNX_TYPE[to])


_REDUCE = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL2")


def _reduce(b: _Builder) -> Tensor | None:
    x = b.pick(lambda t: t.dtype != "bool" and t.dtype != "float16" and len(t.shape) >= 1)
    if x is None:
        return None
    ops = _REDUCE if _is_float(x) else ("ReduceSum", "ReduceMax", "ReduceMin")
    op = str(b.rng.choice(ops))
    rank = len(x.shape)
    k = int(b.rng.integers(1, rank + 1))
    axes = sorted(int(a) for a in b.rng.choice(rank, size=k, replace=False))
    n = _numel([x.shape[a] for a in axes])
    keep = int(b.rng.integers(0, 2))
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape)) if keep else \
        tuple(d for i, d in enumerate(x.shape) if i not in axes)
    src = x
    if op == "ReduceProd":   # factors near 1: the product neither overflows nor vanishes
        clipped = b.node("Clip", [x.name, b.const(0.9, x.dtype), b.const(1.1, x.dtype)], x.shape, x.dtype, 1.1, x.exact)
        src, bound = clipped, 1.1 ** n
        if bound > FLOAT_BOUND:
            return None
    else:
        bound = {"ReduceSum": n * x.bound, "ReduceMean": x.bound, "ReduceMax": x.bound, "ReduceMin": x.bound,
                 "ReduceSumSquare": n * x.bound ** 2, "ReduceL2": np.sqrt(n) * x.bound}[op]
    if bound > _cap(x):
        return None
    neg = [a - rank if b.rng.random() < 0.3 else a for a in axes]
    if op == "ReduceSum":
        return b.node(op, [src.name, b.const(neg, "int64")], shape, x.dtype, bound, False, keepdims=keep)
    exact = op in ("ReduceMax", "ReduceMin") and x.exact
    return b.node(op, [src.name], shape, x.dtype, bound, exact, axes=neg, keepdims=keep)


def _softmax(b: _Builder) -> Tensor | None:
    x = b.pick(lambda t: t.dtype == "float32" and len(t.shape) >= 1)
    if x is None:
        return None
    rank = len(x.shape)
    axis = int(b.rng.integers(-rank, rank))
    op = str(b.rng.choice(["Softmax", "LogSoftmax"]))
    bound = 1.0 if op == "Softmax" else 2 * x.bound + np.log(_numel(x.shape)) + 1
    return b.node(op, [x.name], x.shape, x.dtype, bound, False, axis=axis)


def _layer_norm(b: _Builder) -> Tensor | None:
    x = b.pick(lambda t: t.dtype == "float32" and len(t.shape) >= 1)
    if x is None:
        return None
    rank = len(x.shape)
    axis = int(b.rng.integers(0, rank))
    norm_shape = x.shape[axis:]
    scale = b.rng.uniform(0.5, 1.5, size=norm_shape).astype("float32")
    ins = [x.name, b.const(scale, "float32")]
    if b.rng.random() < 0.7:
        ins.append(b.const(b.rng.uniform(-1, 1, size=norm_shape).astype("float32"), "float32"))
    axis_attr = axis - rank if b.rng.random() < 0.5 else axis
    bound = 1.5 * np.sqrt(_numel(norm_shape)) + 1
    return b.node("LayerNormalization", ins, x.shape, "float32", bound, False, axis=axis_attr,
                  epsilon=float(b.rng.choice([1e-5, 1e-12, 1e-3])))


def _transpose(b: _Builder) -> Tensor | None:
    x = b.pick(lambda t: len(t.shape) >= 2)
    if x is None:
        return None
    perm = [int(p) for p in b.rng.permutation(len(x.shape))]
    return b.node("Transpose", [x.name], [x.shape[p] for p in perm], x.dtype, x.bound, x.exact, perm=perm)


def _reshape(b: _Builder) -> Tensor | None:
    x = b.pick()
    if x is None:
        return None
    kind = str(b.rng.choice(["Reshape", "Squeeze", "Unsqueeze", "Flatten"]))
    rank = len(x.shape)
    if kind == "Reshape":
        shape = _refactor(b.rng, x.shape)
        spec = list(shape)
        if b.rng.random() < 0.3 and spec:
            spec[int(b.rng.integers(len(spec)))] = -1
        return b.node("Reshape", [x.name, b.const(spec, "int64")], shape, x.dtype, x.bound, x.exact)
    if kind == "Squeeze":
        ones = [i for i, d in enumerate(x.shape) if d == 1]
        if not ones or rank == 1:
            return None
        axes = ones[:int(b.rng.integers(1, len(ones) + 1))]
        if len(axes) == rank:
            axes = axes[:-1]
        shape = [d for i, d in enumerate(x.shape) if i not in axes]
        return b.node("Squeeze", [x.name, b.const(axes, "int64")], shape, x.dtype, x.bound, x.exact)
    if kind == "Unsqueeze":
        if rank >= 5:
            return None
        ax = int(b.rng.integers(0, rank + 1))
        shape = list(x.shape[:ax]) + [1] + list(x.shape[ax:])
        return b.node("Unsqueeze", [x.name, b.const([ax], "int64")], shape, x.dtype, x.bound, x.exact)
    axis = int(b.rng.integers(0, rank + 1))
    shape = [_numel(x.shape[:axis]), _numel(x.shape[axis:])]
    return b.node("Flatten", [x.name], shape, x.dtype, x.bound, x.exact, axis=axis)


def _refactor(rng: np.random.Generator, shape) -> tuple[int, ...]:
    """Another shape of the same size: the prime factors of the element count regrouped."""
    n = _numel(shape)
    factors, m, p = [], n, 2
    while m > 1 and p * p <= m:
        while m % p == 0:
            factors.append(p)
            m //= p
        p += 1
    if m > 1:
        factors.append(m)
    rank = int(rng.integers(1, 5))
    dims = [1] * rank
    for f in rng.permutation(factors) if factors else []:
        dims[int(rng.integers(rank))] *= int(f)
    return tuple(dims)


def _slice(b: _Builder) -> Tensor | None:
    x = b.pick(lambda t: len(t.shape) >= 1 and max(t.shape) > 1)
    if x is None:
        return None
    rank = len(x.shape)
    axes = sorted(int(a) for a in b.rng.choice(rank, size=int(b.rng.integers(1, rank + 1)), replace=False))
    starts, ends, steps = [], [], []
    for a in axes:
        d = x.shape[a]
        step = int(b.rng.choice([1, 1, 2, 3, -1, -2]))
        if step > 0:
            starts.append(int(b.rng.integers(-d, d)))
            ends.append(int(b.rng.choice([d, d + 5, int(b.rng.integers(-d, d + 1))])))
        else:
            starts.append(int(b.rng.choice([d - 1, -1, d + 3, int(b.rng.integers(-d, d))])))
            ends.append(int(b.rng.choice([-d - 1, -d - 5, int(b.rng.integers(-d, d))])))
        steps.append(step)
    shape = np.empty(x.shape, dtype=bool)[tuple(_py_slice(x.shape, axes, starts, ends, steps))].shape
    if 0 in shape:
        return None
    ins = [x.name, b.const(starts, "int64"), b.const(ends, "int64"), b.const(axes, "int64"), b.const(steps, "int64")]
    return b.node("Slice", ins, shape, x.dtype, x.bound, x.exact)


def _py_slice(shape, axes, starts, ends, steps) -> list:
    """ONNX Slice semantics as numpy slices (ends past either end clamp)."""
    sl = [slice(None)] * len(shape)
    for a, s, e, st in zip(axes, starts, ends, steps):
        d = shape[a]
        s = s + d if s < 0 else s
        e = e + d if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), d), min(max(e, 0), d)
            sl[a] = slice(s, e, st)
        else:
            s, e = min(max(s, -1), d - 1), min(max(e, -1), d - 1)
            sl[a] = slice(s, e if e >= 0 else None, st)
    return sl


def _concat(b: _Builder) -> Tensor | None:
    x = b.pick(lambda t: len(t.shape) >= 1)
    if x is None:
        return None
    axis = int(b.rng.integers(0, len(x.shape)))
    parts = [x]
    for _ in range(int(b.rng.integers(1, 3))):
        other = b.pick(lambda t: t is not x and t.dtype == x.dtype and len(t.shape) == len(x.shape)
                       and all(p == q for i, (p, q) in enumerate(zip(t.shape, x.shape)) if i != axis))
        if other is None or b.rng.random() < 0.3:
            shape = list(x.shape)
            shape[axis] = int(b.rng.choice([1, 3, 7]))
            other = b.new_input(tuple(shape), x.dtype)
        parts.append(other)
    shape = list(x.shape)
    shape[axis] = sum(p.shape[axis] for p in parts)
    if _numel(shape) > MAX_ELEMS:
        return None
    ax = axis - len(shape) if b.rng.random() < 0.3 else axis
    return b.node("Concat", [p.name for p in parts], shape, x.dtype, max(p.bound for p in parts),
                  all(p.exact for p in parts), axis=ax)


def _gather(b: _Builder) -> Tensor | None:
    x = b.pick(lambda t: len(t.shape) >= 1)
    if x is None:
        return None
    axis = int(b.rng.integers(0, len(x.shape)))
    d = x.shape[axis]
    ishape = tuple(int(b.rng.choice([1, 3, 7])) for _ in range(int(b.rng.integers(0, 3))))
    idx = b.rng.integers(-d, d, size=ishape).astype("int64")
    shape = x.shape[:axis] + ishape + x.shape[axis + 1:]
    if _numel(shape) > MAX_ELEMS or len(shape) > 5:
        return None
    if b.rng.random() < 0.3:   # indices as a graph input
        name = b.name("x")
        t = Tensor(name, ishape, "int64", d, True)
        b.inputs.append((t, idx))
    else:
        name = b.const(idx, "int64")
    return b.node("Gather", [x.name, name], shape, x.dtype, x.bound, x.exact, axis=axis - len(x.shape) if b.rng.random() < 0.3 else axis)


def _expand(b: _Builder) -> Tensor | None:
    x = b.pick(lambda t: 1 in t.shape or len(t.shape) < 4)
    if x is None:
        return None
    lead = [int(b.rng.choice([1, 3, 7])) for _ in range(int(b.rng.integers(0, 5 - len(x.shape) + 1 if len(x.shape) < 5 else 1)))]
    tail = [int(b.rng.choice([3, 7, 33])) if d == 1 and b.rng.random() < 0.7 else d for d in x.shape]
    spec = lead + [1 if (d == t and b.rng.random() < 0.3) else t for d, t in zip(x.shape, tail)]
    shape = _broadcast(x.shape, spec)
    if _numel(shape) > MAX_ELEMS or len(shape) > 5:
        return None
    return b.node("Expand", [x.name, b.const(spec, "int64")], shape, x.dtype, x.bound, x.exact)


_OPS = [(_unary, 5), (_binary, 6), (_variadic, 1), (_where, 2), (_cast, 2), (_reduce, 4), (_softmax, 2),
        (_layer_norm, 2), (_transpose, 2), (_reshape, 2), (_slice, 2), (_concat, 1), (_gather, 1), (_expand, 1)]


def generate(seed: int, index: int, without: frozenset[str] = frozenset()) -> FuzzGraph:
    """The graph number `index` of campaign `seed` (deterministic in both); `without` leaves
    ONNX op types out (a campaign around known failures of some ops)."""
    rng = np.random.default_rng([seed, index])
    b = _Builder(rng, frozenset(without))
    roll = rng.random()
    dtype = "float32" if roll < 0.75 else "int32" if roll < 0.85 else "int64" if roll < 0.92 else "float16"
    for _ in range(int(rng.integers(1, 3))):
        b.pool.append(b.new_input(b.random_shape(), dtype))
    fns, weights = zip(*_OPS)
    p = np.asarray(weights, dtype=float) / sum(weights)
    target = int(rng.integers(2, 9))
    made: list[Tensor] = []
    for _ in range(40):
        if len(made) >= target:
            break
        mark = (len(b.nodes), len(b.inits), len(b.inputs))
        try:
            out = fns[rng.choice(len(fns), p=p)](b)
        except _Excluded:
            del b.nodes[mark[0]:], b.inits[mark[1]:], b.inputs[mark[2]:]
            out = None
        if out is not None:
            made.append(out)
            b.pool.append(out)
    if not made:
        made.append(b.node("Neg" if _is_float(b.pool[0]) else "Abs", [b.pool[0].name], b.pool[0].shape,
                           b.pool[0].dtype, b.pool[0].bound, b.pool[0].exact))
    outputs = [made[-1]] + [t for t in made[:-1] if rng.random() < 0.2][:2]
    graph = helper.make_graph(
        b.nodes, f"fuzz_{seed}_{index}",
        [helper.make_tensor_value_info(t.name, _ONNX_TYPE[t.dtype], t.shape) for t, _ in b.inputs],
        [helper.make_tensor_value_info(t.name, _ONNX_TYPE[t.dtype], t.shape) for t in outputs],
        initializer=b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="intelligen_fuzz")
    model.ir_version = 8
    return FuzzGraph(seed, index, model, [data for _, data in b.inputs])


# ---- checking -----------------------------------------------------------------------------------

def reference(graph: FuzzGraph) -> list[np.ndarray]:
    return reference_outputs(graph.model, graph.inputs)


def close(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> tuple[bool, str]:
    """Shapes and dtypes equal; integers and bools exact; floats within the dtype's tolerance,
    the absolute part scaled by the output's magnitude; NaN where the reference has NaN."""
    if len(actual) != len(expected):
        return False, f"{len(actual)} outputs, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        a, e = np.asarray(a), np.asarray(e)
        if a.shape != e.shape or a.dtype != e.dtype:
            return False, f"output {i}: {a.dtype}{list(a.shape)}, expected {e.dtype}{list(e.shape)}"
        if e.dtype.kind not in "f":
            if not np.array_equal(a, e):
                return False, f"output {i}: {int(np.sum(a != e))} of {e.size} elements differ"
            continue
        tol = _TOL[str(e.dtype)]
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        finite = np.isfinite(e64)
        scale = max(1.0, float(np.max(np.abs(e64[finite]), initial=0.0)))
        ok = np.isclose(a64, e64, rtol=tol, atol=tol * scale, equal_nan=True)
        if not ok.all():
            err = np.abs(a64 - e64)
            return False, (f"output {i}: {int(np.sum(~ok))} of {e.size} elements off, max abs err "
                           f"{float(np.nanmax(np.where(ok, 0, err))):.3g} (scale {scale:.3g})")
    return True, ""


def _explained_internal_errors(mod, target) -> list[str]:
    """Regions that fell back to TVM because lowering raised (a bug of ours, not a refusal),
    read off `explain()`: for a build without the internal-error warning."""
    report = explain(mod, target)
    return [f"{r['name']} ({'+'.join(r['ops'])}): {r['reason']}" for r in report["regions"]
            if r.get("fallback") == "internal_error" or r.get("internal_errors")
            or str(r.get("reason") or "").startswith("lowering failed (")]


def _run_ours(mod, target: dict, inputs) -> tuple[list[np.ndarray], list[str]]:
    """Build with the "intelligen" pipeline and run; also the internal errors it met, from the
    warnings the build gives (or from `explain()` where it gives none)."""
    warned = hasattr(relax_integration, "IntelliGenInternalError")
    internal = [] if warned else _explained_internal_errors(mod, target)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        actual = build_and_run(mod, target, inputs, relax_pipeline="intelligen")
    internal += [str(w.message) for w in caught if w.category.__name__ == "IntelliGenInternalError"]
    return actual, internal


def classify(graph: FuzzGraph, target: dict | None = None) -> dict:
    """Run one graph through our pipeline (and TVM's when ours disagrees); see the module doc."""
    target = target or {"kind": "llvm"}
    result = {"seed": graph.seed, "index": graph.index, "ops": sorted({n.op_type for n in graph.model.graph.node})}
    try:
        onnx.checker.check_model(graph.model, full_check=True)
        expected = reference(graph)
    except Exception as err:
        return result | {"cls": "invalid", "detail": f"{type(err).__name__}: {err}"[:400]}

    def tvm_default() -> tuple[bool, str]:
        try:
            mod = from_onnx(graph.model)
            return close(build_and_run(mod, target, graph.inputs, relax_pipeline="default"), expected)
        except Exception as err:
            return False, f"TVM default raised {type(err).__name__}: {str(err)[:300]}"

    try:
        mod = from_onnx(graph.model)
    except Exception as err:
        return result | {"cls": "tvm_also_wrong", "detail": f"import: {type(err).__name__}: {str(err)[:300]}"}
    try:
        actual, internal = _run_ours(mod, target, graph.inputs)
    except Exception as err:
        ok, why = tvm_default()
        cls = "crash" if ok else "tvm_also_wrong"
        return result | {"cls": cls, "detail": f"{type(err).__name__}: {str(err)[-600:]}" + ("" if ok else f"; {why}")}
    ok, why = close(actual, expected)
    if not ok:
        default_ok, default_why = tvm_default()
        return result | {"cls": "wrong" if default_ok else "tvm_also_wrong",
                         "detail": why + ("" if default_ok else f"; TVM default: {default_why}")}
    if internal:
        return result | {"cls": "internal_error", "detail": "; ".join(internal)[:600]}
    return result | {"cls": "pass", "detail": ""}


def reproducer(seed: int, index: int, without: frozenset[str] = frozenset()) -> str:
    """The graph as ONNX text plus how to regenerate it."""
    graph = generate(seed, index, without)
    shapes = ", ".join(f"{x.dtype}{list(x.shape)}" for x in graph.inputs)
    text = "\n".join(line if len(line) <= 300 else line[:300] + " ...(elided)"
                     for line in onnx.printer.to_text(graph.model).splitlines())
    flag = f" --without {','.join(sorted(without))}" if without else ""
    return f"# python -m intelligen_tvm.fuzz --seed {seed} --index {index}{flag}\n# inputs: {shapes}\n{text}"


# ---- campaigns: worker processes ------------------------------------------------------------------

def _worker(target: dict, without: frozenset[str]) -> None:
    """Read "seed index" lines, answer one JSON line each (stdout is the protocol channel)."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())   # TVM's and numpy's chatter goes to stderr
    warnings.filterwarnings("ignore")
    for line in sys.stdin:
        seed, index = (int(v) for v in line.split())
        try:
            res = classify(generate(seed, index, without), target)
        except Exception:
            res = {"seed": seed, "index": index, "cls": "crash", "detail": traceback.format_exc()[-800:]}
        out.write(json.dumps(res) + "\n")


def worker_command(target: dict | None = None, without: frozenset[str] = frozenset()) -> list[str]:
    return [sys.executable, "-m", "intelligen_tvm.fuzz", "--worker", "--target", json.dumps(target or {"kind": "llvm"}),
            "--without", ",".join(sorted(without))]


class _Worker:
    def __init__(self, cmd: list[str], log) -> None:
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        self.job: tuple[int, int] | None = None
        self.started = 0.0

    def send(self, job: tuple[int, int]) -> None:
        self.job, self.started = job, time.monotonic()
        self.proc.stdin.write(f"{job[0]} {job[1]}\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def run_campaign(jobs: Sequence[tuple[int, int]], workers: int = 2, timeout_s: float = 300.0,
                 cmd: list[str] | None = None, progress=None) -> list[dict]:
    """Classify (seed, index) jobs in `workers` processes.  A worker that dies (signal, exit)
    or exceeds `timeout_s` on one graph fails that graph as a crash and is replaced."""
    cmd = cmd or worker_command()
    log = subprocess.DEVNULL if os.environ.get("INTELLIGEN_FUZZ_QUIET", "1") == "1" else None
    todo = list(jobs)[::-1]
    results: list[dict] = []
    sel = selectors.DefaultSelector()
    pool: list[_Worker] = []

    def start() -> None:
        if not todo:
            return
        w = _Worker(cmd, log)
        pool.append(w)
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
        w.send(todo.pop())

    def retire(w: _Worker, res: dict | None) -> None:
        sel.unregister(w.proc.stdout)
        pool.remove(w)
        w.stop()
        if res is not None:
            results.append(res)
            if progress:
                progress(res)
        start()

    for _ in range(min(workers, len(todo))):
        start()
    try:
        while pool:
            for key, _ in sel.select(timeout=1.0):
                w: _Worker = key.data
                line = w.proc.stdout.readline()
                if not line:
                    rc = w.proc.wait()
                    why = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"worker exited with {rc}"
                    retire(w, {"seed": w.job[0], "index": w.job[1], "cls": "crash", "detail": why})
                    continue
                res = json.loads(line)
                results.append(res)
                if progress:
                    progress(res)
                if todo:
                    w.send(todo.pop())
                else:
                    retire(w, None)
            for w in list(pool):
                if time.monotonic() - w.started > timeout_s:
                    retire(w, {"seed": w.job[0], "index": w.job[1], "cls": "crash",
                               "detail": f"no answer within {timeout_s:.0f} s"})
    finally:
        for w in pool:
            w.stop()
    return sorted(results, key=lambda r: (r["seed"], r["index"]))


def summary(results: Sequence[dict]) -> dict[str, int]:
    counts = Counter(r["cls"] for r in results)
    return {c: counts.get(c, 0) for c in CLASSES}


def failure_report(results: Sequence[dict], classes: Sequence[str] = COUNTED, limit: int = 10,
                   without: frozenset[str] = frozenset()) -> str:
    """Reproducers of failing graphs (smallest graphs first), for test output and the CLI."""
    bad = [r for r in results if r["cls"] in classes]
    bad.sort(key=lambda r: len(generate(r["seed"], r["index"], without).model.graph.node))
    parts = [f"--- {r['cls']}: seed={r['seed']} index={r['index']}: {r['detail']}\n"
             f"{reproducer(r['seed'], r['index'], without)}" for r in bad[:limit]]
    return "\n".join(parts)


# ---- a sample for the CUDA path ---------------------------------------------------------------------

def cuda_sample(count: int, seed: int = 0, without: frozenset[str] = frozenset(),
                single_region: bool = False) -> Iterator[tuple[onnx.ModelProto, list[np.ndarray], list[np.ndarray]]]:
    """(ONNX model, inputs, reference outputs) of fuzz graphs whose regions we take whole
    for CUDA: the sample to compile with nvcc and to run under the CUDA emulation
    (`single_region`: one output, one region, which the emulation drives on its own)."""
    index = 0
    found = 0
    while found < count:
        graph = generate(seed, index, without)
        index += 1
        if single_region and len(graph.model.graph.output) != 1:
            continue
        try:
            expected = reference(graph)
            report = explain(from_onnx(graph.model), {"kind": "cuda", "arch": "sm_90"})
        except Exception:
            continue
        regions = report["regions"]
        if regions and all(r["handled_by"] == "intelligen" for r in regions) and (len(regions) == 1 or not single_region):
            found += 1
            yield graph.model, graph.inputs, expected


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m intelligen_tvm.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="first graph index")
    ap.add_argument("--index", type=int, help="only print the reproducer of this graph and classify it in-process")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--target", default='{"kind": "llvm"}', help="target as JSON")
    ap.add_argument("--out", help="write one JSON line per graph here")
    ap.add_argument("--show", type=int, default=10, help="reproducers printed for failures")
    ap.add_argument("--without", default="", help="ONNX op types to leave out, comma-separated")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    target = json.loads(args.target)
    without = frozenset(filter(None, args.without.split(",")))
    if args.worker:
        _worker(target, without)
        return 0
    if args.index is not None:
        print(reproducer(args.seed, args.index, without))
        print(json.dumps(classify(generate(args.seed, args.index, without), target)))
        return 0
    t0 = time.monotonic()
    jobs = [(args.seed, i) for i in range(args.start, args.start + args.count)]
    done = Counter()

    def progress(res: dict) -> None:
        done[res["cls"]] += 1
        n = sum(done.values())
        if n % 50 == 0 or res["cls"] in COUNTED:
            print(f"[{n}/{len(jobs)} {time.monotonic() - t0:.0f}s] {dict(done)}"
                  + (f"  {res['cls']}: index {res['index']}" if res["cls"] in COUNTED else ""), flush=True)

    results = run_campaign(jobs, args.workers, cmd=worker_command(target, without), progress=progress)
    if args.out:
        with open(args.out, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    counts = summary(results)
    print(failure_report(results, limit=args.show, without=without))
    print(f"{len(results)} graphs, seed {args.seed}, {time.monotonic() - t0:.0f} s: {json.dumps(counts)}")
    tvm_wrong = [r for r in results if r["cls"] == "tvm_also_wrong"]
    if tvm_wrong:
        print("TVM also wrong (not counted): " + ", ".join(f"{r['index']}" for r in tvm_wrong[:30]))
    return 1 if any(counts[c] for c in ("wrong", "crash", "invalid")) else 0


if __name__ == "__main__":
    sys.exit(main())
