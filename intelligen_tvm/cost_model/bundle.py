"""Cross-host measurement: compile here, time on another machine that has the device.

``export_bundle`` writes one shared library per candidate, a ``manifest.json`` and a copy of
``bundle_runner.py``. Copy the directory to the device host (it needs only the TVM runtime and
numpy), run ``python bundle_runner.py DIR``, copy ``results.json`` back and ``ingest_bundle``.

The libraries hold host code for the compile machine's target host (generic x86-64 for a bare
``llvm``/``cuda`` target): give the target a ``host`` that matches the device machine if its
CPU differs. For GPUs the bundle's arguments should exceed the L2 or keep ``flush_l2`` on.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import bundle_runner
from .measure import (
    MeasureInput,
    MeasureResult,
    MeasureSettings,
    as_target,
    device_kind,
    export,
    export_many,
    symbol_name,
)

FORMAT_VERSION = bundle_runner.FORMAT_VERSION
MANIFEST_NAME = bundle_runner.MANIFEST_NAME
RESULTS_NAME = bundle_runner.RESULTS_NAME
RUNNER_NAME = "bundle_runner.py"
PACKED_NAME = "candidates.so"


def _file_name(index: int, name: str) -> str:
    """Unique, filesystem-safe library name for a candidate."""
    return f"{index:04d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:80]}.so"


def _try_pack(inputs: list[MeasureInput], target: Any, path: Path, on_built: Callable[[Any], None]) -> bool:
    try:
        on_built(export_many(inputs, target, path))
        return True
    except Exception:  # pylint: disable=broad-except  # built one by one instead, errors kept
        return False


def export_bundle(
    inputs: list[MeasureInput],
    target: Any,
    directory: str | Path,
    settings: MeasureSettings | None = None,
    pack: bool = False,
    on_built: Callable[[Any], None] | None = None,
) -> Path:
    """Build every candidate into ``directory`` and describe them in its manifest.

    A candidate that fails to build is kept in the manifest with ``build_error`` (the runner
    reports it as that candidate's error), so results line up with inputs one to one.
    ``pack``: one library for all candidates (much faster to build and smaller than one each);
    if that build fails, every candidate is built alone so that only the bad ones are lost.
    ``on_built`` sees every built module before it is dropped (e.g. to read its device source).
    """
    on_built = on_built or (lambda built: None)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    settings = settings or MeasureSettings()
    target = as_target(target)
    device = device_kind(target)   # fails early for a target no runtime device runs
    candidates = []
    packed = PACKED_NAME if pack and inputs and _try_pack(inputs, target, directory / PACKED_NAME, on_built) else None
    for index, inp in enumerate(inputs):
        entry: dict[str, Any] = {
            "name": inp.name,
            "file": packed or _file_name(index, inp.name),
            "symbol": symbol_name(inp.name),
            "args": [{"shape": list(shape), "dtype": dtype} for shape, dtype in inp.arg_specs],
            "build_error": None,
        }
        if packed is None:
            try:
                on_built(export(inp, target, directory / entry["file"]))
            except Exception as err:  # pylint: disable=broad-except
                entry["build_error"] = bundle_runner.error_text("build", err)
        candidates.append(entry)
    manifest = {
        "format_version": FORMAT_VERSION,
        "target": json.loads(str(target)),
        "device_kind": device,
        "settings": settings.to_dict(),
        "runner": RUNNER_NAME,
        "candidates": candidates,
    }
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
    shutil.copyfile(bundle_runner.__file__, directory / RUNNER_NAME)
    return directory


def ingest_bundle(directory: str | Path) -> list[MeasureResult]:
    """Results in manifest order; a candidate the runner did not reach gets an error."""
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST_NAME).read_text())
    results_path = directory / RESULTS_NAME
    if not results_path.exists():
        raise FileNotFoundError(
            f"{results_path} not found: run `python {RUNNER_NAME} {directory}` on the device host"
        )
    report = json.loads(results_path.read_text())
    if report.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported results format {report.get('format_version')!r}")
    device = str(report.get("device", "unknown"))
    by_key = {(r.get("file"), r.get("name")): r for r in report.get("results", [])}
    results = []
    for candidate in manifest["candidates"]:
        raw = by_key.get((candidate["file"], candidate["name"]))
        if raw is None:
            results.append(MeasureResult(candidate["name"], [], "not measured by the runner", device))
        else:
            times = [float(t) for t in raw.get("times_us", [])]
            results.append(MeasureResult(candidate["name"], times, raw.get("error"), device))
    return results
