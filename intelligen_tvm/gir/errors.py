"""The errors every stage raises: one home, so no module imports a stage just for its exception."""

from __future__ import annotations


class Unsupported(Exception):
    """Raised with a human-readable reason when a region cannot be lowered to GIR (or
    planned, or rendered): the region falls back to TVM, reported, not as an internal error."""


class VerifyError(Exception):
    """A GIR program breaks an invariant of the IR (SSA, bounds, levels, scopes, capacity)."""


class RewriteMismatch(Exception):
    """A rewrite stage changed what a region computes (found by interpreting the program
    before and after it): always a bug of ours, reported as an internal error."""
