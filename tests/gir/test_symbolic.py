"""SymInt: planned as its hint, rendered as its expression, never 'equal' to a number."""

from __future__ import annotations

import json
import pickle

from intelligen_tvm.gir.program import numel
from intelligen_tvm.gir.symbolic import SymInt, ceil_div, symbols_of


def test_arithmetic_keeps_the_expression_and_evaluates_the_hint():
    n = SymInt("n", 128)
    rows = numel([n, 12])
    assert str(rows) == "(n * 12)" and int(rows) == 1536
    assert str(ceil_div(rows, 4)) == "(((n * 12) + 3) // 4)" and int(ceil_div(rows, 4)) == 384
    assert f"{n + 1}" == "(n + 1)" and json.dumps(n * 4) == "512"
    assert pickle.loads(pickle.dumps(rows)) == rows


def test_equality_and_truth_are_conservative():
    n = SymInt("n", 128)
    assert n != 128 and n % 4 != 0 and bool(n % 128)   # a remainder might be non-zero at run time
    assert n == SymInt("n", 128) and len({n, SymInt("n", 128)}) == 1
    assert (ceil_div(n, 4) * 4 == n) is False          # so a bounds guard is always kept
    assert n > 100                                     # order is a planning decision: the hint


def test_symbols_of_collects_hints():
    b, s = SymInt("batch", 2), SymInt("seq", 64)
    assert symbols_of([b * s, 768, s]) == {"batch": 2, "seq": 64}
