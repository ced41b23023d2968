"""Measurement records: every timed candidate, appended to a JSONL database.

Format (UTF-8, one JSON object per line, ``\\n``-terminated; unknown keys are ignored on load
so that the format can grow):

    region      str    fingerprint of the region (same region => same string, across runs and
                       models): gir/fingerprint.py's digest of the rewritten kernel and its
                       input/output buffers, tensor names replaced by roles; printers do not
                       enter it
    target      str    TVM target string, e.g. "cuda -arch=sm_90" or "llvm"
    device      str    device name as reported by the runtime, e.g. "NVIDIA H100 80GB HBM3"
    candidate   object the strategy that was measured (JSON-able description, free form)
    features    object feature name -> number; null means missing (loaded as NaN)
    times_us    array  kernel time of each repeat, in microseconds (finite, > 0, at least one)
    version     str    intelligen_tvm version that produced the record
    timestamp   float  seconds since the Unix epoch when the record was made

Several processes may append to one file at once (e.g. parallel tuning jobs): each append
holds an exclusive ``flock`` on the file, so lines never interleave.  A writer killed
mid-line leaves a truncated last line; loading skips (and counts) such lines instead of
failing, and the next append starts on a fresh line so that it is not glued to the debris.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import statistics
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any


def package_version() -> str:
    try:
        return metadata.version("intelligen_tvm")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


@dataclass
class Record:
    """One measured candidate of one region on one target/device."""

    region: str
    target: str
    device: str
    candidate: dict[str, Any]
    features: dict[str, float]
    times_us: list[float]
    version: str = field(default_factory=package_version)
    timestamp: float = field(default_factory=time.time)

    @property
    def median_us(self) -> float:
        return statistics.median(self.times_us)

    def to_json(self) -> str:
        """One line (no newline); NaN features become null, since JSON has no NaN.

        Numbers are coerced to float so that numpy scalars serialize; inf raises ValueError.
        """
        d = asdict(self)
        d["features"] = {k: (None if math.isnan(float(v)) else float(v)) for k, v in self.features.items()}
        d["times_us"] = [float(t) for t in self.times_us]
        return json.dumps(d, allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Record:
        """Parse and validate one line; raises ValueError (or a subclass) if it is not a record."""
        d = json.loads(line)
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        for key, typ in (("region", str), ("target", str), ("device", str), ("candidate", dict),
                         ("features", dict), ("times_us", list), ("version", str)):
            if not isinstance(d.get(key), typ):
                raise ValueError(f"field {key!r} missing or not {typ.__name__}")
        features = {str(k): _number(v, k) for k, v in d["features"].items()}
        times = [_number(t, "times_us") for t in d["times_us"]]
        if not times or not all(math.isfinite(t) and t > 0 for t in times):
            raise ValueError("times_us must be a non-empty list of positive finite numbers")
        return cls(region=d["region"], target=d["target"], device=d["device"], candidate=d["candidate"],
                   features=features, times_us=times, version=d["version"],
                   timestamp=_number(d.get("timestamp"), "timestamp"))


def _number(v: Any, name: str) -> float:
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name}: {v!r} is not a number")
    return float(v)


class RecordDB:
    """A JSONL file of records; safe to append to from several processes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.skipped = 0  # corrupt or truncated lines seen by the last load()

    def append(self, records: Iterable[Record], fsync: bool = False) -> None:
        lines = [(r.to_json() + "\n").encode() for r in records]  # serialize before taking the lock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                _write_all(fd, b"\n")  # a crashed writer's partial line: do not extend it
            for line in lines:
                _write_all(fd, line)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)  # releases the lock

    def load(self) -> list[Record]:
        """All valid records, in file order; ``self.skipped`` counts the lines that were not."""
        self.skipped = 0
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_SH)  # no half-written line from a concurrent append
            data = f.read()
        records = []
        for raw in data.split(b"\n"):
            if not raw.strip():
                continue
            try:
                records.append(Record.from_json(raw.decode()))
            except (ValueError, TypeError, UnicodeDecodeError):
                self.skipped += 1
        return records

    def for_region(self, region: str, target: str | None = None) -> list[Record]:
        return [r for r in self.load() if r.region == region and (target is None or r.target == target)]

    def best(self, region: str, target: str) -> Record | None:
        """The record with the lowest median time, or None if the region was never measured."""
        return min(self.for_region(region, target), key=lambda r: r.median_us, default=None)


def load_records(path: str | os.PathLike[str]) -> list[Record]:
    """The records a compilation reads, never silently: a missing file is an error naming it;
    skipped corrupt lines give one warning with their count; a file with no valid record
    (empty, or only garbage) gives a warning, since the compilation then uses no records."""
    db = RecordDB(path)
    if not db.path.is_file():
        raise FileNotFoundError(f"records file not found: {db.path}")
    records = db.load()
    if db.skipped:
        warnings.warn(f"{db.path}: skipped {db.skipped} corrupt or truncated line(s)", stacklevel=2)
    if not records:
        what = "is empty" if not db.skipped else "holds no valid record"
        warnings.warn(f"records file {db.path} {what}: compiling without measurements", stacklevel=2)
    return records


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
