"""Optional check of every rewrite stage against the GIR interpreter (gir/interpret.py).

The interpreter is the executable definition of GIR, so a rewrite is correct exactly when the
interpreted region outputs do not change.  With ``INTELLIGEN_VERIFY_REWRITES=1`` the planner
(region.plan_region) interprets the region's program on random inputs before its first
rewrite and after each named stage, and raises `RewriteMismatch` naming the first stage that
changed an output.  Off by default: interpreting costs far more than rewriting.
"""

from __future__ import annotations

import os

import numpy as np

from ..gir.errors import RewriteMismatch
from ..gir.interpret import interpret
from ..gir.program import Program
from ..gir.symbolic import is_symbolic

VERIFY_ENV = "INTELLIGEN_VERIFY_REWRITES"


def verifying_rewrites() -> bool:
    return os.environ.get(VERIFY_ENV, "") not in ("", "0")


def random_inputs(program: Program, seed: int = 0) -> dict[str, np.ndarray]:
    """Random values for the region inputs: normal floats, small positive integers (valid
    gather indices of any table the interpreter clips to, never a zero divisor), random bools."""
    rng = np.random.default_rng(seed)
    feed = {}
    for name in program.inputs:
        b = program.buffers[name]
        if b.dtype == "bool":
            feed[name] = rng.random(b.shape) < 0.5
        elif b.dtype.startswith(("int", "uint")):
            feed[name] = rng.integers(1, 4, b.shape).astype(b.dtype)
        else:
            feed[name] = rng.standard_normal(b.shape).astype(b.dtype)
    return feed


class RewriteCheck:
    """The region outputs of the program before the next stage; `stage` checks a stage's
    result against them and carries the result on.  Mutable on purpose: it is the
    planner's running record of one region, not IR."""

    def __init__(self, program: Program, seed: int = 0):
        self.inputs = random_inputs(program, seed)
        self.outputs = tuple(program.outputs)
        self.before = "the naive program"
        self.expected = self._run(program)

    @staticmethod
    def applies(program: Program) -> bool:
        """Symbolic shapes are not interpreted (the interpreter needs concrete arrays)."""
        return not any(is_symbolic(d) for b in program.buffers.values() for d in b.shape)

    def _run(self, program: Program) -> dict[str, np.ndarray]:
        out = interpret(program, self.inputs)
        return {name: out[name] for name in self.outputs}

    def stage(self, name: str, program: Program) -> None:
        got = self._run(program)
        for out, want in self.expected.items():
            if not _close(got[out], want):
                worst = np.nanmax(np.abs(got[out].astype(np.float64) - want.astype(np.float64)))
                raise RewriteMismatch(f"rewrite stage {name!r} changed output {out} of {program.name} "
                                      f"(after {self.before}; max abs difference {worst:.3g})")
        self.before, self.expected = name, got


def _close(got: np.ndarray, want: np.ndarray) -> bool:
    if got.shape != want.shape:
        return False
    if want.dtype.kind in "biu":
        return bool(np.array_equal(got, want))
    # reassociated reductions (online statistics, split rows) round differently
    return bool(np.allclose(got, want, rtol=1e-3, atol=1e-4, equal_nan=True))
