"""A one-line progress bar on stderr for long work (tuning, benchmarking, compiling), without a
dependency: on a terminal the line redraws in place; in a log every step is its own line."""

from __future__ import annotations

import sys


def progress(done: int, total: int, label: str) -> None:
    """Draw `done` of `total` steps, `label` naming the current one."""
    width = 30
    filled = width * done // max(1, total)
    line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label[:40]:40s}"
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line + ("\n" if done >= total else ""))
    else:
        sys.stderr.write(line.rstrip() + "\n")
    sys.stderr.flush()


def count(done: int, label: str) -> None:
    """A counter for work whose total is not known yet (regions found while selecting them)."""
    line = f"{label}: {done}"
    sys.stderr.write(("\r" + line) if sys.stderr.isatty() else line + "\n")
    sys.stderr.flush()
