"""The JSONL records database: round trip, damaged lines, concurrent appends from processes."""

from __future__ import annotations

import json
import math
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from intelligen_tvm.cost_model.records import Record, RecordDB, load_records


def _record(region: str = "r0", i: int = 0, times: tuple[float, ...] = (3.0, 1.0, 2.0)) -> Record:
    return Record(region=region, target="cuda -arch=sm_90", device="dev", candidate={"kind": "row", "i": i},
                  features={"vector": 4.0, "occupancy": 0.5, "missing": math.nan}, times_us=list(times),
                  version="0.1.0", timestamp=1700000000.0 + i)


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    db = RecordDB(tmp_path / "sub" / "records.jsonl")
    recs = [_record("r0", 0), _record("r1", 1, (5.0, 7.0))]
    recs[1].features["occupancy"] = np.float32(0.25)  # numpy scalars serialize as plain numbers
    db.append(recs)
    loaded = db.load()
    assert db.skipped == 0
    assert [r.candidate for r in loaded] == [r.candidate for r in recs]
    assert loaded[1].times_us == [5.0, 7.0] and loaded[1].median_us == 6.0
    assert loaded[1].features["occupancy"] == 0.25
    assert loaded[0].median_us == 2.0 and loaded[0].timestamp == 1700000000.0
    assert math.isnan(loaded[0].features.pop("missing"))
    assert loaded[0].features == {"vector": 4.0, "occupancy": 0.5}
    # NaN is written as null: every line is strict JSON.
    for line in (tmp_path / "sub" / "records.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


def test_damaged_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    db = RecordDB(path)
    db.append([_record(i=0), _record(i=1)])
    good = _record(i=2).to_json()
    with open(path, "a") as f:
        f.write("{not json at all\n")
        f.write(json.dumps({"region": "r0", "times_us": []}) + "\n")  # valid JSON, not a record
        f.write(good + "\n")
        f.write(good[: len(good) // 2])  # a writer killed mid-line
    assert [r.candidate["i"] for r in db.load()] == [0, 1, 2]
    assert db.skipped == 3
    # The next append starts a fresh line instead of completing the truncated one.
    db.append([_record(i=3)])
    assert [r.candidate["i"] for r in db.load()] == [0, 1, 2, 3]
    assert db.skipped == 3


def test_best_and_for_region(tmp_path: Path) -> None:
    db = RecordDB(tmp_path / "records.jsonl")
    assert db.load() == [] and db.best("r0", "llvm") is None
    db.append([_record("r0", 0, (9.0,)), _record("r0", 1, (4.0, 4.5, 100.0)), _record("r1", 2, (1.0,)),
               Record("r0", "llvm", "cpu", {"i": 3}, {}, [0.5])])
    assert db.best("r0", "cuda -arch=sm_90").candidate["i"] == 1  # lowest median, not lowest mean
    assert db.best("r0", "llvm").candidate["i"] == 3
    assert db.best("r2", "llvm") is None
    assert len(db.for_region("r0")) == 3 and len(db.for_region("r0", "llvm")) == 1


def _append_many(path: str, worker: int, n: int) -> None:
    db = RecordDB(path)
    for i in range(0, n, 5):  # batches of 5, with lines longer than a pipe buffer page
        db.append([Record(f"w{worker}", "llvm", "cpu", {"worker": worker, "i": j, "pad": "x" * 5000},
                          {f"f{k}": float(j * k) for k in range(20)}, [float(j + 1)])
                   for j in range(i, i + 5)])


def test_concurrent_appends_from_processes_land_intact(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    workers, n = 4, 100
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w, n)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    db = RecordDB(path)
    records = db.load()
    assert db.skipped == 0
    assert len(records) == workers * n
    for w in range(workers):
        mine = [r for r in records if r.region == f"w{w}"]
        assert [r.candidate["i"] for r in mine] == list(range(n))  # each writer's order is kept
        assert all(r.features["f3"] == 3.0 * r.candidate["i"] for r in mine)


def test_load_records_is_never_silent(tmp_path: Path) -> None:
    """What a compilation reads: missing is an error, damage and emptiness are warnings."""
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(FileNotFoundError, match=f"records file not found: {missing}"):
        load_records(missing)

    path = tmp_path / "r.jsonl"
    RecordDB(path).append([_record(i=0), _record(i=1)])
    with open(path, "a") as f:
        f.write("garbage\n{\"region\": 3}\n{\"trunc")
    with pytest.warns(UserWarning, match=r"skipped 3 corrupt or truncated line\(s\)") as caught:
        assert len(load_records(path)) == 2
    assert len(caught) == 1

    path.write_text("garbage\n")
    with pytest.warns(UserWarning) as caught:
        assert load_records(path) == []
    assert [str(w.message) for w in caught] == [
        f"{path}: skipped 1 corrupt or truncated line(s)",
        f"records file {path} holds no valid record: compiling without measurements"]

    path.write_text("")
    with pytest.warns(UserWarning, match="is empty: compiling without measurements"):
        assert load_records(path) == []
