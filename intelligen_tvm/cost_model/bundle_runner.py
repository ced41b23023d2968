"""Measure a bundle of compiled candidate kernels on the machine that has the device.

Run as a plain file on a host with only the TVM runtime and numpy installed::

    python bundle_runner.py BUNDLE_DIR [--device cuda|cpu] [--repeat N] [--number N]

It reads ``BUNDLE_DIR/manifest.json`` (written by ``intelligen_tvm.cost_model.bundle``), times
every candidate library and writes ``BUNDLE_DIR/results.json``. Nothing here may import
``intelligen_tvm`` or TVM's compiler (``tvm.relax``, ``tvm.tirx``, ...): ``import tvm`` would
import the compiler's Python packages even in TVM's runtime-only mode, so this file imports
``tvm.runtime`` under a bare ``tvm`` package instead (see ``import_tvm_runtime``).

The same helpers (random arguments, timing, device names) serve the in-process and RPC
measurers, so a number means the same thing whichever way it was taken.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
RESULTS_NAME = "results.json"
# TVM encodes an RPC session into the device type: remote type = local type + k * this mask.
_RPC_SESS_MASK = 128
_KDL_CPU = 1
# Used when a GPU does not report its L2 size: larger than the L2 of current NVIDIA/AMD parts.
_DEFAULT_GPU_FLUSH_BYTES = 256 << 20
REPEAT_SECONDS = 0.01  # wall-clock timing: one repeat lasts about this long

ArgSpec = tuple[tuple[int, ...], str]


def import_tvm_runtime() -> types.ModuleType:
    """Return ``tvm.runtime``, importing only the runtime when TVM is not imported yet.

    ``tvm/__init__.py`` imports ``tvm.tirx``, ``tvm.te``, ``tvm.target``... even when the
    compiler library is absent, so a runtime-only host cannot rely on it. Instead, register a
    bare ``tvm`` package and import ``tvm.base`` (loads libtvm_runtime, runtime-only mode) and
    ``tvm.runtime``, which need nothing else.
    """
    if "tvm" in sys.modules:
        return importlib.import_module("tvm.runtime")
    spec = importlib.util.find_spec("tvm")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the TVM runtime (python package `tvm`) is not installed")
    package = types.ModuleType("tvm")
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    package.__package__ = "tvm"
    package.__spec__ = spec  # others look (find_spec, torch._dynamo); its __init__ never runs
    sys.modules["tvm"] = package
    previous = os.environ.get("TVM_USE_RUNTIME_LIB")
    os.environ["TVM_USE_RUNTIME_LIB"] = "1"
    try:
        importlib.import_module("tvm.base")
        return importlib.import_module("tvm.runtime")
    except BaseException:
        for name in [m for m in sys.modules if m == "tvm" or m.startswith("tvm.")]:
            del sys.modules[name]
        raise
    finally:
        if previous is None:
            os.environ.pop("TVM_USE_RUNTIME_LIB", None)
        else:
            os.environ["TVM_USE_RUNTIME_LIB"] = previous


def load_device_runtime(device_kind: str) -> None:
    """Load the device's runtime library (e.g. libtvm_runtime_cuda) if TVM has not.

    A full ``import tvm`` loads it; runtime-only mode skips every device backend.
    """
    if device_kind == "cpu":
        return
    from tvm_ffi.libinfo import load_lib_ctypes  # pylint: disable=import-outside-toplevel

    loaded = importlib.import_module("tvm.base")._LOADED_LIBS  # pylint: disable=protected-access
    name = f"tvm_runtime_{device_kind}"
    if name in loaded:
        return
    runtime_dir = Path(loaded["tvm_runtime"]._name).resolve().parent  # pylint: disable=protected-access
    loaded[name] = load_lib_ctypes(
        package="tvm", target_name=name, extra_lib_paths=[runtime_dir], mode="RTLD_LOCAL"
    )


def is_cpu(dev: Any) -> bool:
    """True for a local or RPC-remote CPU device."""
    return int(dev.dlpack_device_type()) % _RPC_SESS_MASK == _KDL_CPU


def cpu_model() -> str:
    """The local CPU's model name (Linux /proc/cpuinfo, else what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def device_name(dev: Any) -> str:
    """A readable name for the device the times were taken on (local CPU model for CPUs)."""
    if is_cpu(dev):
        return cpu_model()
    try:
        name = dev.device_name
    except Exception:  # pylint: disable=broad-except
        name = None
    return str(name) if name else str(dev)


def host_array(shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    """Random contents for one argument: zeros for integers (they may be gather indices),
    standard normal for floats. bfloat16 comes back as its uint16 bit pattern, which
    ``Tensor.copyfrom`` accepts."""
    if dtype == "bfloat16":
        bits = rng.standard_normal(shape, dtype=np.float32).view(np.uint32) >> 16
        return bits.astype(np.uint16)
    np_dtype = np.dtype(dtype)
    if np_dtype.kind in "iub":
        return np.zeros(shape, dtype=np_dtype)
    if np_dtype.kind == "f":
        return rng.standard_normal(shape).astype(np_dtype)
    raise ValueError(f"no random data for dtype {dtype}")


def make_args(runtime: Any, specs: list[ArgSpec], dev: Any, seed: int = 0) -> list[Any]:
    """Allocate the kernel's arguments on ``dev`` (local or remote) with random contents."""
    rng = np.random.default_rng(seed)
    args = []
    for shape, dtype in specs:
        shape = tuple(int(d) for d in shape)
        args.append(runtime.empty(shape, dtype, dev).copyfrom(host_array(shape, dtype, rng)))
    return args


def flush_options(dev: Any, flush_l2: bool) -> dict[str, Any]:
    """Time-evaluator options that start each repeat with cold caches.

    CPU: TVM's ``cache_flush_cpu_non_first_arg`` evicts every argument but the first (TVM's
    convention: the first input was just produced by the previous op and is warm).
    GPU: ``cache_flush_bytes`` copies a device buffer that large before each repeat, which
    evicts the L2; we use twice the reported L2 size. Both act once per repeat, so only the
    first of ``number`` calls is cold: keep ``number=1`` to time cold calls only.
    """
    if not flush_l2:
        return {}
    if is_cpu(dev):
        return {"f_preproc": "cache_flush_cpu_non_first_arg"}
    try:
        l2_bytes = int(dev.l2_cache_size_bytes or 0)
    except Exception:  # pylint: disable=broad-except
        l2_bytes = 0
    return {"cache_flush_bytes": 2 * l2_bytes if l2_bytes > 0 else _DEFAULT_GPU_FLUSH_BYTES}


def time_kernel(
    module: Any,
    name: str,
    dev: Any,
    args: list[Any],
    *,
    repeat: int,
    number: int,
    warmup: int,
    min_repeat_ms: int = 0,
    flush_l2: bool = True,
) -> list[float]:
    """Microseconds per call, one entry per repeat (each the mean of ``number`` calls)."""
    func = module.get_function(name)
    for _ in range(warmup):
        func(*args)
    dev.sync()
    evaluator = module.time_evaluator(
        name,
        dev,
        number=number,
        repeat=repeat,
        min_repeat_ms=min_repeat_ms,
        **flush_options(dev, flush_l2),
    )
    return [t * 1e6 for t in evaluator(*args).results]


def pick_number(seconds_once: float) -> int:
    """Calls per repeat so that one repeat lasts about ``REPEAT_SECONDS`` (1 to 1000)."""
    return int(min(1000, max(1, REPEAT_SECONDS / max(seconds_once, 1e-7))))


def median_seconds(call: Callable[[], Any], sync: Callable[[], None], repeat: int) -> float:
    """Wall clock: median over ``repeat`` repeats of the mean time of one call (after a warm-up),
    for whatever the TVM time evaluator cannot time (e.g. torch)."""
    call()
    sync()
    start = time.perf_counter()
    call()
    sync()
    number = pick_number(time.perf_counter() - start)
    samples = []
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        for _ in range(number):
            call()
        sync()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def error_text(stage: str, err: BaseException) -> str:
    """One-line error for a result record: stage, exception type and message."""
    message = " ".join(str(err).split())
    return f"{stage}: {type(err).__name__}: {message}"[:1000]


def run_bundle(
    directory: Path,
    device_kind: str | None = None,
    repeat: int | None = None,
    number: int | None = None,
    output: Path | None = None,
) -> int:
    """Measure every candidate in the bundle and write the results file; returns an exit code
    (0 when the device could be used, even if some candidates failed)."""
    manifest = json.loads((directory / MANIFEST_NAME).read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise SystemExit(f"unsupported bundle format {manifest.get('format_version')!r}")
    settings = dict(manifest["settings"])
    settings["repeat"] = repeat or settings["repeat"]
    settings["number"] = number or settings["number"]
    device_kind = device_kind or manifest["device_kind"]
    output = output or directory / RESULTS_NAME
    report: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "device_kind": device_kind,
        "device": "unknown",
        "settings": settings,
        "results": [],
    }
    try:
        runtime = import_tvm_runtime()
        load_device_runtime(device_kind)
        dev = runtime.device(device_kind, 0)
        if not dev.exist:
            raise RuntimeError(f"no {device_kind} device on this host")
        base = importlib.import_module("tvm.base")
        report.update(
            device=device_name(dev),
            tvm_runtime_only=bool(base._RUNTIME_ONLY),  # pylint: disable=protected-access
            tvm_loaded_libs=sorted(base._LOADED_LIBS),  # pylint: disable=protected-access
        )
    except Exception as err:  # pylint: disable=broad-except
        message = error_text("device", err)
        report["results"] = [
            {"name": c["name"], "file": c["file"], "times_us": [], "error": message}
            for c in manifest["candidates"]
        ]
        write_json(output, report)
        print(message, file=sys.stderr)
        return 1
    cache = BundleCache(runtime, dev, directory, int(settings.get("seed", 0)))
    for candidate in manifest["candidates"]:
        report["results"].append(measure_candidate(cache, candidate, settings))
        write_json(output, report)  # after each candidate: a crash keeps what was measured
    write_json(output, report)
    return 0


class BundleCache:
    """Loaded libraries by file (a packed library holds many candidates) and device arguments by
    signature (candidates of one region share them: random data is made once, not per candidate;
    inputs are never written, so sharing them does not change what a candidate computes)."""

    def __init__(self, runtime: Any, dev: Any, directory: Path, seed: int) -> None:
        self.runtime, self.dev, self.directory, self.seed = runtime, dev, directory, seed
        self._modules: dict[str, Any] = {}
        self._args: dict[tuple, list[Any]] = {}

    def module(self, file: str) -> Any:
        if file not in self._modules:
            self._modules[file] = self.runtime.load_module(str(self.directory / file))
        return self._modules[file]

    def args(self, specs: list[ArgSpec]) -> list[Any]:
        key = tuple((tuple(shape), dtype) for shape, dtype in specs)
        if key not in self._args:
            self._args[key] = make_args(self.runtime, list(key), self.dev, seed=self.seed)
        return self._args[key]


def measure_candidate(
    cache: BundleCache,
    candidate: dict,
    settings: dict,
    check: Callable[[Any, list[Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One candidate's result record; errors are recorded, never raised. ``check(func, args)``,
    if given, runs before the timing and its dict joins the record (e.g. a numerics check)."""
    result: dict[str, Any] = {
        "name": candidate["name"],
        "file": candidate["file"],
        "times_us": [],
        "error": None,
    }
    if candidate.get("build_error"):
        result["error"] = candidate["build_error"]
        return result
    stage = "load"
    try:
        module = cache.module(candidate["file"])
        stage = "run"
        args = cache.args([(tuple(a["shape"]), a["dtype"]) for a in candidate["args"]])
        if check is not None:
            stage = "check"
            result.update(check(module.get_function(candidate["symbol"]), args))
            stage = "run"
        result["times_us"] = time_kernel(
            module,
            candidate["symbol"],
            cache.dev,
            args,
            repeat=int(settings["repeat"]),
            number=int(settings["number"]),
            warmup=int(settings["warmup"]),
            min_repeat_ms=int(settings.get("min_repeat_ms", 0)),
            flush_l2=bool(settings.get("flush_l2", True)),
        )
    except Exception as err:  # pylint: disable=broad-except
        result["error"] = error_text(stage, err)
    return result


def write_json(path: Path, data: dict) -> None:
    """Write atomically so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("bundle_dir", type=Path)
    parser.add_argument("--device", choices=["cuda", "cpu", "rocm"], default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--number", type=int, default=None)
    parser.add_argument("--output", type=Path, default=None, help="default: BUNDLE_DIR/results.json")
    ns = parser.parse_args(argv)
    return run_bundle(ns.bundle_dir, ns.device, ns.repeat, ns.number, ns.output)


if __name__ == "__main__":
    sys.exit(main())
