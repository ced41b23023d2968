"""Single-pass statistics: fewer sweeps over a row that streams instead of staying on chip.

Softmax needs max(x) before it can sum exp(x - max), and a norm needs mean(x) before it can
sum (x - mean)^2: two reduction levels, so a streamed row is swept twice before the output
sweep.  Two rewrites bring both statistics into one sweep:

- online softmax keeps a running max and rescales the running sum whenever the max grows:
  sum exp(x - m) -> reduce.sum(exp(x - online m))  (Reduce.shift = m);
- shifted data: with K = x at the row's first element (a per-row value),
  sum (x - mean)^2 = sum (x - K)^2 - (sum (x - K))^2 / n, exact in real arithmetic and, K
  being a sample of the row, free of the cancellation of the textbook sum(x^2) - n mean^2.

The rewrites are pure; they only pay off when the row streams (an on-chip row is read
once either way), which is why they are a plan knob, not monotonic rewrites.
"""

from __future__ import annotations

from dataclasses import replace

from ..gir import expr as E
from ..gir.errors import Unsupported
from ..gir.program import Compute, Instr, Kernel, Load, Reduce, Slice, Value, numel
from .rewrites import eliminate_dead_values


def _producers(kernel: Kernel) -> dict[str, object]:
    return {w: ins for ins in kernel.instrs for w in ins.writes}


def _shifted_exp(value: str, producers: dict, maxes: dict[str, Reduce]) -> tuple[str, str] | None:
    """(x, m) when `value` = exp(x - m) and m is the max reduction of x."""
    exp = producers.get(value)
    if not (isinstance(exp, Compute) and exp.op == "exp" and isinstance(exp.args[0], str)):
        return None
    sub = producers.get(exp.args[0])
    if not (isinstance(sub, Compute) and sub.op == "sub" and all(isinstance(a, str) for a in sub.args)):
        return None
    x, m = sub.args
    return (x, m) if m in maxes and maxes[m].src == x else None


def single_pass_statistics(kernel: Kernel) -> Kernel:
    """Every statistic that one of the rewrites can compute in the same sweep as the one it
    depends on; Unsupported when neither applies."""
    rewritten, found = kernel, False
    for rewrite in (online_softmax, shifted_variance):
        try:
            rewritten, found = rewrite(rewritten), True
        except Unsupported:
            pass
    if not found:
        raise Unsupported("no statistic to compute in a single pass (online softmax or shifted variance)")
    return rewritten


def online_softmax(kernel: Kernel) -> Kernel:
    """Turn every sum of exp(x - max(x)) into an online sum; Unsupported when there is none."""
    producers = _producers(kernel)
    maxes = {i.dst: i for i in kernel.instrs if isinstance(i, Reduce) and i.op == "max" and i.shift is None}
    instrs, found = [], False
    for ins in kernel.instrs:
        pair = _shifted_exp(ins.src, producers, maxes) if isinstance(ins, Reduce) and ins.op == "sum" else None
        if pair is not None:
            ins = replace(ins, src=pair[0], shift=pair[1])
            found = True
        instrs.append(ins)
    if not found:
        raise Unsupported("no sum of exp(x - max(x)) to compute online")
    return eliminate_dead_values(replace(kernel, instrs=instrs))


def _squared_deviation(value: str, producers: dict) -> tuple[str, str] | None:
    """(x, mean) when `value` = (x - mean)^2, written pow(d, 2) or d * d' with d, d' = x - mean."""
    ins = producers.get(value)
    if isinstance(ins, Compute) and ins.op == "pow" and isinstance(ins.args[0], str) \
            and isinstance(ins.args[1], E.Const) and ins.args[1].value == 2:
        factors = [ins.args[0]]
    elif isinstance(ins, Compute) and ins.op == "mul" and all(isinstance(a, str) for a in ins.args):
        factors = list(ins.args)
    else:
        return None
    subs = [producers.get(f) for f in factors]
    if not all(isinstance(d, Compute) and d.op == "sub" and all(isinstance(a, str) for a in d.args) for d in subs):
        return None
    pairs = {tuple(d.args) for d in subs}
    return next(iter(pairs)) if len(pairs) == 1 else None


def _is_mean(mean: str, x: str, n: int, producers: dict) -> bool:
    """`mean` = sum(x) / n or sum(x) * (1 / n)."""
    ins = producers.get(mean)
    if not (isinstance(ins, Compute) and isinstance(ins.args[0], str) and isinstance(ins.args[1], E.Const)):
        return False
    scale = {"div": 1.0 / n, "mul": float(n)}.get(ins.op)
    total = producers.get(ins.args[0])
    return (scale is not None and abs(float(ins.args[1].value) * scale - 1.0) < 1e-6
            and isinstance(total, Reduce) and total.op == "sum" and total.src == x and total.shift is None)


def _row_cone(kernel: Kernel, value: str, producers: dict, row_axes: set[str]) -> list[Instr]:
    """The row instructions `value` is computed by, in program order (loads and computes)."""
    needed: set[int] = set()
    todo = [value]
    while todo:
        ins = producers.get(todo.pop())
        if ins is None or id(ins) in needed or not kernel.values[ins.dst].axes & row_axes:
            continue
        if not isinstance(ins, (Load, Compute)):
            raise Unsupported("the centred row depends on a reduction")
        needed.add(id(ins))
        todo.extend(ins.reads)
    return [i for i in kernel.instrs if id(i) in needed]


def _at_row_start(cone: list[Instr], kernel: Kernel, row_axes: set[str]) -> tuple[list[Instr], dict[str, Value]]:
    """The cone evaluated at the first element of the row: per-row values."""
    renamed = {i.dst: f"{i.dst}_at_row_start" for i in cone}

    def at0(e: E.Expr) -> E.Expr:
        def fix(x: E.Expr) -> E.Expr | None:
            if isinstance(x, E.Var) and x.name in row_axes:
                return E.Const(x.dtype, 0)
            if isinstance(x, E.ValueRef) and x.value in renamed:
                return E.ValueRef(x.dtype, renamed[x.value])
            return None
        return E.transform(e, fix)

    clones: list[Instr] = []
    for ins in cone:
        if isinstance(ins, Load):
            src = Slice(ins.src.buffer, tuple(at0(i) for i in ins.src.index),
                        None if ins.src.predicate is None else at0(ins.src.predicate))
            clones.append(replace(ins, dst=renamed[ins.dst], src=src))
        else:
            args = tuple(renamed.get(a, a) if isinstance(a, str) else at0(a) for a in ins.args)
            clones.append(replace(ins, dst=renamed[ins.dst], args=args))
    values = {new: Value(new, kernel.values[old].dtype, kernel.values[old].axes - row_axes)
              for old, new in renamed.items()}
    return clones, values


def shifted_variance(kernel: Kernel) -> Kernel:
    """Turn every sum of (x - mean(x))^2 into shifted-data sums on the mean's own level."""
    producers = _producers(kernel)
    row_axes = {a.name for a in kernel.row}
    n = numel(a.extent for a in kernel.row)
    instrs, values, found = list(kernel.instrs), dict(kernel.values), False
    for ins in kernel.instrs:
        if not (isinstance(ins, Reduce) and ins.op == "sum" and ins.shift is None):
            continue
        pair = _squared_deviation(ins.src, producers)
        if pair is None or not _is_mean(pair[1], pair[0], n, producers):
            continue
        x, dtype = pair[0], kernel.values[ins.dst].dtype
        cone = _row_cone(kernel, x, producers, row_axes)
        clones, clone_values = _at_row_start(cone, kernel, row_axes)
        start = clones[-1].dst
        per_row = kernel.values[ins.dst].axes
        names = {k: f"{ins.dst}_{k}" for k in ("dev", "dev2", "sum_dev2", "sum_dev", "sq_sum_dev", "corr")}
        values |= clone_values | {names["dev"]: Value(names["dev"], dtype, kernel.values[x].axes),
                                  names["dev2"]: Value(names["dev2"], dtype, kernel.values[x].axes)}
        values |= {names[k]: Value(names[k], dtype, per_row) for k in ("sum_dev2", "sum_dev", "sq_sum_dev", "corr")}
        at = instrs.index(cone[-1]) + 1
        instrs[at:at] = clones
        instrs[instrs.index(ins):instrs.index(ins) + 1] = [
            Compute(names["dev"], "sub", (x, start)),
            Compute(names["dev2"], "mul", (names["dev"], names["dev"])),
            Reduce(names["sum_dev2"], names["dev2"], "sum", ins.init, ins.scope),
            Reduce(names["sum_dev"], names["dev"], "sum", ins.init, ins.scope),
            Compute(names["sq_sum_dev"], "mul", (names["sum_dev"], names["sum_dev"])),
            Compute(names["corr"], "div", (names["sq_sum_dev"], E.Const(dtype, float(n)))),
            Compute(ins.dst, "sub", (names["sum_dev2"], names["corr"])),
        ]
        found = True
    if not found:
        raise Unsupported("no sum of (x - mean(x))^2 to compute from shifted data")
    return eliminate_dead_values(replace(kernel, instrs=instrs, values=values))
