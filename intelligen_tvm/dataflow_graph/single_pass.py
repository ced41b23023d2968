"""Single-pass statistics: fewer sweeps over a row that streams instead of staying on chip.

Softmax needs max(x) before it can sum exp(x - max): two reduction levels, so a streamed
row is swept twice before the output sweep.  The online form keeps a running max and
rescales the running sum whenever the max grows, so both statistics come out of one sweep:

    sum exp(x - m)  ->  reduce.sum(exp(x - online m))   (Reduce.shift = m)

The rewrite is pure and changes no result; it only pays off when the row streams (an
on-chip row is read once either way), which is why it is a plan knob, not a monotonic
rewrite.
"""

from __future__ import annotations

from dataclasses import replace

from ..gir.program import Compute, Kernel, Reduce
from ..gir_lowering.tir_reader import Unsupported
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
