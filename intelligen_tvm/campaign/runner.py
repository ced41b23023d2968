"""The GPU campaign's runner: everything the device machine does, in one command that watches
its own clock.

    python DIR/campaign_runner.py DIR [--device cuda|cpu] [--budget-s 480]

It runs where only Python, numpy (and optionally torch) exist: the bundle's ``runtime/`` holds a
runtime-only TVM (``libtvm_runtime*.so`` + ``tvm_ffi``, no compiler library) that this file puts
first on ``sys.path``. Nothing here imports this package or TVM's compiler; the build imports
this file for ``make_array`` and ``sample_indices``, so both sides draw the same numbers.

Phases, most valuable first, each written to ``DIR/results.json`` as soon as it is done (a
crash or a kill keeps what was measured): device and driver facts; per case, the numerics of
every executable (intelligen's default plan, the prior's pick, TVM's default pipeline) and of
torch eager against the reference samples, and their median times; the copy bandwidth; the
measured candidates in tiers (the prior's best 8 of every region first), each checked against
its region's first candidate and written as a tuning bundle's ``results.json`` (what
``ingest_tuning_bundle`` reads); torch.compile (default mode; compile time apart); the rest of
the candidates. A phase does not start what it cannot finish before the deadline.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import hashlib
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

try:  # inside the package (the build); on the device this file sits next to bundle_runner.py
    from ..cost_model import bundle_runner as br
except ImportError:
    import bundle_runner as br  # type: ignore[no-redef]

FORMAT_VERSION = 1
MANIFEST_NAME = "campaign.json"
RESULTS_NAME = "results.json"
RUNTIME_DIR = "runtime"
BINARIES = "binaries.tar.gz"  # every shared library and fatbin of the bundle (~4-8x smaller)
UNPACKED = ".unpacked"
CUDA_DIR = "cuda"  # precompiled fatbins, by hash of the CUDA source they were compiled from
CUDART_DIR = "cudart"
TIER = 8  # candidates per region per tier
CHECK_SAMPLES = 4096
CHECK_TOL = 1e-3  # candidates of one region vs its first one: different summation orders
_GOLDEN = 0x9E3779B97F4A7C15
_MIX = 0xBF58476D1CE4E5B9

# ---------------------------------------------------------------------------------------------
# Arrays both sides draw: integer hashing, the same bits on every machine and numpy version


def _uniform(n: int, seed: int) -> np.ndarray:
    """n values in [0, 1) from a counter hash (splitmix64's finalizer) of (seed, index)."""
    with np.errstate(over="ignore"):
        x = np.arange(n, dtype=np.uint64) + np.uint64((seed * _GOLDEN) % (1 << 64))
        x = (x ^ (x >> np.uint64(30))) * np.uint64(_MIX)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def make_array(spec: dict[str, Any], seed: int) -> np.ndarray:
    """One graph input or weight from its spec: ``kind`` normal (mean + std * a unit-variance
    uniform), mask (0 or ``mask_value``, a quarter masked) or index (int64 in [0, high))."""
    shape = tuple(int(d) for d in spec["shape"])
    n = int(np.prod(shape, dtype=np.int64))
    u = _uniform(n, seed)
    kind = spec.get("kind", "normal")
    if kind == "index":
        return np.minimum((u * spec["high"]).astype(np.int64), spec["high"] - 1).reshape(shape)
    if kind == "mask":
        return np.where(u < 0.75, 0.0, spec["mask_value"]).astype(np.float32).reshape(shape)
    unit = (u - np.float32(0.5)) * np.float32(np.sqrt(12.0))
    return (np.float32(spec.get("mean", 0.0)) + np.float32(spec.get("std", 1.0)) * unit).reshape(shape)


def case_arrays(case: dict[str, Any]) -> list[np.ndarray]:
    """The arrays ``main`` takes: graph inputs, then the weights made inputs, in that order."""
    return [make_array(spec, seed) for seed, spec in enumerate(case["inputs"] + case["weights"], start=1)]


def sample_indices(n: int, k: int = CHECK_SAMPLES) -> np.ndarray:
    """k flat positions spread over an array of n elements (all of them when n <= k)."""
    if n <= k:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, k).astype(np.int64) ^ (np.arange(k) % 7)).clip(0, n - 1)


def close(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> tuple[bool, float]:
    """(allclose, largest absolute difference) in float64."""
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    err = float(np.max(np.abs(a - e), initial=0.0)) if a.size else 0.0
    return bool(a.shape == e.shape and np.allclose(a, e, rtol=rtol, atol=atol)), err


# ---------------------------------------------------------------------------------------------
# The clock


class Clock:
    """Seconds left until the deadline; every phase asks before it starts something."""

    def __init__(self, budget_s: float) -> None:
        self.start = time.monotonic()
        self.budget_s = budget_s

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.budget_s - self.elapsed()


# ---------------------------------------------------------------------------------------------
# The runtime-only TVM of the bundle


def unpack(directory: Path) -> float:
    """Extract the bundle's binaries in place (once); returns the seconds it took."""
    start = time.perf_counter()
    if (directory / BINARIES).exists() and not (directory / UNPACKED).exists():
        with tarfile.open(directory / BINARIES, "r:gz") as tar:
            tar.extractall(directory, filter="data")
        (directory / UNPACKED).write_text("")
    return time.perf_counter() - start


def result_files(directory: Path) -> list[Path]:
    """What a run writes: the campaign's results and every tuning bundle's results."""
    found = [directory / RESULTS_NAME] + [Path(p) for p in sorted(glob.glob(str(directory / "cases" / "*" / "*" / RESULTS_NAME)))]
    return [p for p in found if p.exists()]


def copy_results(directory: Path, out: Path) -> None:
    """Mirror the result files under ``out`` (the only thing that has to come back)."""
    for path in result_files(directory):
        dest = out / path.relative_to(directory)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)


def use_bundled_runtime(directory: Path) -> None:
    """Put the bundle's runtime first on sys.path, so its ``tvm`` and ``tvm_ffi`` are imported
    rather than any installed ones, and keep tvm_ffi from JIT-building its optional torch
    extension (minutes of nvcc on first import when torch is installed)."""
    os.environ.setdefault("TVM_FFI_DISABLE_TORCH_C_DLPACK", "1")
    for path in (str(directory), str(directory / RUNTIME_DIR)):
        if path not in sys.path:
            sys.path.insert(0, path)


def preload_cudart(directory: Path) -> str:
    """libtvm_runtime_cuda.so needs libcudart.so.13: use the machine's, else the bundle's copy
    (loaded globally first, so the dynamic linker finds it by its soname)."""
    try:
        ctypes.CDLL("libcudart.so.13", mode=ctypes.RTLD_GLOBAL)
        return "system libcudart.so.13"
    except OSError:
        pass
    shipped = directory / RUNTIME_DIR / CUDART_DIR / "libcudart.so.13"
    if not shipped.exists():
        raise OSError("libcudart.so.13 is neither installed nor in the bundle")
    ctypes.CDLL(str(shipped), mode=ctypes.RTLD_GLOBAL)
    return f"bundled {shipped.name}"


class CudaCompiler:
    """``tvm_callback_cuda_compile`` for the runtime-only TVM: TVM keeps CUDA kernels as source
    and compiles them when a module is loaded. The build precompiled every source with nvcc
    (sm_90 SASS + compute_90 PTX, by source hash); a source that is not there is compiled with
    this machine's nvcc for this GPU."""

    def __init__(self, directory: Path, arch: str) -> None:
        self.directory, self.arch = directory / CUDA_DIR, arch
        self.stats: dict[str, Any] = {"precompiled": 0, "compiled_here": 0, "compile_s": 0.0, "errors": []}

    def __call__(self, source: str) -> bytes:
        shipped = self.directory / f"{source_key(source)}.fatbin"
        if shipped.exists():
            self.stats["precompiled"] += 1
            return shipped.read_bytes()
        start = time.perf_counter()
        try:
            data = nvcc_fatbin(source, self.arch)
        except Exception as err:
            self.stats["errors"].append(br.error_text("nvcc", err))
            raise
        self.stats["compiled_here"] += 1
        self.stats["compile_s"] += time.perf_counter() - start
        return data


def source_key(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:24]


def nvcc_fatbin(source: str, arch: str, nvcc: str | None = None) -> bytes:
    """A fatbin of ``source`` with SASS for ``arch`` (e.g. sm_90) and its PTX (for the driver's
    JIT on a newer GPU)."""
    nvcc = nvcc or shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    compute = arch.replace("sm_", "compute_")
    with tempfile.TemporaryDirectory(prefix="campaign_nvcc_") as tmp:
        src, out = Path(tmp) / "k.cu", Path(tmp) / "k.fatbin"
        src.write_text(source)
        cmd = [nvcc, "--fatbin", "-O3", "-w", f"-gencode=arch={compute},code=[{arch},{compute}]",
               "-o", str(out), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"nvcc failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
        return out.read_bytes()


def import_runtime(directory: Path, device_kind: str) -> tuple[Any, dict[str, Any]]:
    """The bundle's ``tvm.runtime`` (runtime-only) and what was loaded, from where."""
    facts: dict[str, Any] = {}
    if device_kind == "cuda":
        facts["cudart"] = preload_cudart(directory)
    runtime = br.import_tvm_runtime()
    br.load_device_runtime(device_kind)
    tvm = sys.modules["tvm"]
    base = importlib.import_module("tvm.base")
    tvm_ffi = importlib.import_module("tvm_ffi")
    maps = Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else ""
    facts.update(
        tvm_path=list(tvm.__path__), tvm_ffi_file=tvm_ffi.__file__,
        runtime_only=bool(base._RUNTIME_ONLY),  # pylint: disable=protected-access
        loaded_libs=sorted(base._LOADED_LIBS),  # pylint: disable=protected-access
        compiler_library_mapped="libtvm_compiler" in maps or "libtvm.so" in maps,
        from_bundle=all(str(directory.resolve()) in str(Path(p).resolve())
                        for p in [*tvm.__path__, tvm_ffi.__file__]),
    )
    return runtime, facts


class VM:
    """A Relax executable on the runtime alone (``tvm.runtime.vm`` imports TVM's RPC server and
    more): the VM functions ``vm_load_executable``/``vm_initialization``/``set_input``/
    ``invoke_stateful`` that ``relax.VirtualMachine`` calls."""

    def __init__(self, runtime: Any, path: Path, dev: Any) -> None:
        self.dev = dev
        self.mod = runtime.load_module(str(path))["vm_load_executable"]()
        pooled = 2
        init = [dev.dlpack_device_type(), dev.index, pooled]
        if not br.is_cpu(dev):
            init += [1, 0, pooled]  # the host CPU runs shape functions
        self.mod["vm_initialization"](*init)

    def run(self, args: list[Any]) -> list[np.ndarray]:
        out = self.mod["main"](*args)
        return [out.numpy()] if hasattr(out, "numpy") else [o.numpy() for o in out]

    def time_us(self, args: list[Any], repeat: int) -> list[float]:
        """Per-call microseconds, one per repeat of calls batched to ~10 ms (as compare.py)."""
        self.mod["set_input"]("main", *args)
        once = self.mod.time_evaluator("invoke_stateful", self.dev, number=1, repeat=1)("main").results
        number = br.pick_number(float(np.median(once)))
        res = self.mod.time_evaluator("invoke_stateful", self.dev, number=number, repeat=repeat)("main")
        return [t * 1e6 for t in res.results]


# ---------------------------------------------------------------------------------------------
# Facts


def _command(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
        return (proc.stdout + proc.stderr).strip()[-2000:]
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"unavailable: {err}"


def cuda_driver_version() -> int | None:
    """The driver's CUDA version (e.g. 13000), read from libcuda without any runtime."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        version = ctypes.c_int(0)
        return version.value if lib.cuDriverGetVersion(ctypes.byref(version)) == 0 else None
    except OSError:
        return None


def host_facts(device_kind: str) -> dict[str, Any]:
    facts: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                             "numpy": np.__version__, "cpu": br.cpu_model(), "cpus": os.cpu_count()}
    if device_kind == "cuda":
        facts["cuda_driver_version"] = cuda_driver_version()
        facts["nvidia_smi"] = _command(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,"
                                        "clocks.max.sm,clocks.max.memory,power.limit", "--format=csv"])
        facts["nvcc"] = _command([shutil.which("nvcc") or "nvcc", "--version"])
    return facts


def device_facts(dev: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": br.device_name(dev)}
    for attr in ("compute_version", "multi_processor_count", "max_threads_per_block", "warp_size",
                 "max_shared_memory_per_block", "l2_cache_size_bytes", "total_global_memory",
                 "driver_version", "api_version"):
        try:
            out[attr] = getattr(dev, attr)
        except Exception as err:  # pylint: disable=broad-except  # absent on this device kind
            out[attr] = f"unavailable: {type(err).__name__}"
    return out


# ---------------------------------------------------------------------------------------------
# The phases


class Campaign:
    """One run over a bundle; ``self.results`` is rewritten to disk after every unit of work."""

    def __init__(self, directory: Path, device_kind: str, clock: Clock, repeat: int) -> None:
        self.directory, self.device_kind, self.clock, self.repeat = directory, device_kind, clock, repeat
        self.manifest = json.loads((directory / MANIFEST_NAME).read_text())
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise SystemExit(f"unsupported campaign format {self.manifest.get('format_version')!r}")
        self.results: dict[str, Any] = {"format_version": FORMAT_VERSION, "device_kind": device_kind,
                                        "budget_s": clock.budget_s, "phases": {}, "cases": {},
                                        "candidates": {}, "errors": [], "cut": []}
        self.runtime: Any = None
        self.dev: Any = None
        self.torch: Any = None
        self.compiler: CudaCompiler | None = None
        self._case_data: dict[str, tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]] = {}
        self._tuning: dict[str, dict[str, Any]] = {}

    # -- bookkeeping
    def save(self) -> None:
        self.results["elapsed_s"] = self.clock.elapsed()
        br.write_json(self.directory / RESULTS_NAME, self.results)

    def phase(self, name: str, fn: Callable[[], None]) -> None:
        start = time.perf_counter()
        try:
            fn()
            status = "done"
        except Exception as err:  # pylint: disable=broad-except  # later phases still run
            status = br.error_text(name, err)
            self.results["errors"].append(status)
        self.results["phases"][name] = {"status": status, "seconds": time.perf_counter() - start,
                                        "left_s": self.clock.left()}
        self.save()

    # -- phase: facts and runtime
    def setup(self) -> None:
        self.results["host"] = host_facts(self.device_kind)
        self.save()
        runtime, facts = import_runtime(self.directory, self.device_kind)
        self.results["tvm_runtime"] = facts
        self.runtime = runtime
        self.dev = runtime.device(self.device_kind, 0)
        if not self.dev.exist:
            raise RuntimeError(f"no {self.device_kind} device on this host")
        self.results["device"] = device_facts(self.dev)
        if self.device_kind == "cuda":
            major, minor = str(self.dev.compute_version).split(".")
            self.compiler = CudaCompiler(self.directory, f"sm_{major}{minor}")
            importlib.import_module("tvm_ffi").register_global_func(
                "tvm_callback_cuda_compile", self.compiler, override=True)
        self.torch = self._import_torch()

    def _import_torch(self) -> Any:
        try:
            import torch  # pylint: disable=import-outside-toplevel
        except Exception as err:  # pylint: disable=broad-except  # torch is optional
            self.results["torch"] = {"available": False, "reason": br.error_text("import", err)}
            return None
        info: dict[str, Any] = {"available": True, "version": torch.__version__,
                                "cuda": getattr(torch.version, "cuda", None)}
        if self.device_kind == "cuda":
            info["cuda_available"] = bool(torch.cuda.is_available())
            if not info["cuda_available"]:
                self.results["torch"] = info
                return None
            info["device"] = torch.cuda.get_device_name(0)
        self.results["torch"] = info
        return torch

    # -- phase: cases (numerics, then times)
    def case_dir(self, case: dict) -> Path:
        return self.directory / case["dir"]

    def case_data(self, case: dict) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
        """The case's arrays (drawn once: torch.compile comes back to them) and reference samples."""
        cache = self._case_data
        if case["name"] not in cache:
            ref = np.load(self.case_dir(case) / case["reference"])
            cache[case["name"]] = (case_arrays(case), [(ref[f"idx{i}"], ref[f"val{i}"])
                                                       for i in range(len(case["outputs"]))])
        return cache[case["name"]]

    def run_case(self, case: dict) -> None:
        out: dict[str, Any] = {"contestants": {}}
        self.results["cases"][case["name"]] = out
        arrays, refs = self.case_data(case)
        args = [self.runtime.tensor(np.ascontiguousarray(a), self.dev) for a in arrays]
        for name, file in case["executables"].items():
            out["contestants"][name] = self._contest(
                case, refs, lambda file=file: VM(self.runtime, self.case_dir(case) / file, self.dev),
                lambda vm: vm.run(args), lambda vm: vm.time_us(args, self.repeat))
            self.save()
        if self.torch is not None and case.get("torch"):
            fn, targs = self._torch_case(case, arrays)
            out["contestants"]["torch_eager"] = self._contest(
                case, refs, lambda: fn, lambda f: self._torch_run(f, targs), lambda f: self._torch_time(f, targs))
        del args

    def _contest(self, case: dict, refs: list, load: Callable[[], Any], run: Callable[[Any], list],
                 timer: Callable[[Any], list[float]]) -> dict[str, Any]:
        row: dict[str, Any] = {"numerics_ok": False, "time_us": None}
        stage = "load"
        try:
            start = time.perf_counter()
            handle = load()
            row["load_s"] = time.perf_counter() - start
            stage = "run"
            outputs = run(handle)
            row.update(self._check(case, refs, outputs))
            if not row["numerics_ok"]:
                row["status"] = "MISMATCH: not timed"
                return row
            stage = "time"
            times = timer(handle)
            row.update(times_us=times, time_us=statistics.median(times))
        except Exception as err:  # pylint: disable=broad-except  # a status, never a number
            row["status"] = br.error_text(stage, err)
        return row

    @staticmethod
    def _check(case: dict, refs: list, outputs: list[np.ndarray]) -> dict[str, Any]:
        if len(outputs) != len(refs):
            return {"numerics_ok": False, "max_abs_error": None,
                    "status": f"{len(outputs)} outputs, expected {len(refs)}"}
        ok, err = True, 0.0
        for out, spec, (idx, val) in zip(outputs, case["outputs"], refs):
            if list(out.shape) != list(spec["shape"]):
                return {"numerics_ok": False, "max_abs_error": None,
                        "status": f"shape {list(out.shape)}, expected {spec['shape']}"}
            good, e = close(out.reshape(-1)[idx], val, case["rtol"], case["atol"])
            ok, err = ok and good, max(err, e)
        return {"numerics_ok": ok, "max_abs_error": err}

    # -- torch
    def _torch_case(self, case: dict, arrays: list[np.ndarray]) -> tuple[Callable, list[Any]]:
        try:
            from ..benchmark import torch_fns  # pylint: disable=import-outside-toplevel
        except ImportError:
            import torch_fns  # type: ignore[no-redef]  # pylint: disable=import-outside-toplevel
        made = torch_fns.torch_fn(self.torch, case["torch"], case["dims"], *self.manifest["eps"])
        if made is None:
            raise ValueError(f"no torch version of {case['torch']}")
        fn, weight_names = made
        n_in = len(case["inputs"])
        weights = {spec["name"]: a for spec, a in zip(case["weights"], arrays[n_in:])}
        device = "cuda" if self.device_kind == "cuda" else "cpu"
        tensors = [self.torch.from_numpy(np.ascontiguousarray(a)).to(device)
                   for a in arrays[:n_in] + [weights[n] for n in weight_names]]
        return fn, tensors

    def _torch_sync(self) -> None:
        if self.device_kind == "cuda":
            self.torch.cuda.synchronize()

    def _torch_run(self, fn: Callable, targs: list) -> list[np.ndarray]:
        with self.torch.no_grad():
            out = fn(*targs)
        return [o.detach().cpu().numpy() for o in (out if isinstance(out, (tuple, list)) else [out])]

    def _torch_time(self, fn: Callable, targs: list) -> list[float]:
        with self.torch.no_grad():
            return [1e6 * br.median_seconds(lambda: fn(*targs), self._torch_sync, self.repeat)]

    def torch_compile_case(self, case: dict) -> None:
        torch = self.torch
        arrays, refs = self.case_data(case)
        fn, targs = self._torch_case(case, arrays)
        compiled: dict[str, float] = {}

        def load():
            torch._dynamo.reset()  # pylint: disable=protected-access  # no cache hits across cases
            f = torch.compile(fn)  # default mode: what most users run
            start = time.perf_counter()
            self._torch_run(f, targs)  # compiles on the first call
            compiled["compile_s"] = time.perf_counter() - start
            return f

        row = self._contest(case, refs, load, lambda f: self._torch_run(f, targs),
                            lambda f: self._torch_time(f, targs))
        row.update(compiled)
        self.results["cases"][case["name"]]["contestants"]["torch_compile"] = row

    # -- phase: copy bandwidth
    def copy(self) -> None:
        spec = self.manifest["copy"]
        n = int(spec["elements"])
        src = self.runtime.tensor(make_array({"shape": [n]}, 0), self.dev)
        dst = self.runtime.empty((n,), "float32", self.dev)
        runtime_s = br.median_seconds(lambda: src.copyto(dst), self.dev.sync, self.repeat)
        out: dict[str, Any] = {"bytes_moved": 8 * n, "runtime_copy_us": runtime_s * 1e6,
                               "runtime_copy_ok": bool(np.array_equal(dst.numpy(), src.numpy()))}
        try:
            vm = VM(self.runtime, self.directory / spec["file"], self.dev)
            ok = bool(np.array_equal(vm.run([src])[0], src.numpy()))
            kernel_us = statistics.median(vm.time_us([src], self.repeat))
            out.update(kernel_copy_us=kernel_us, kernel_copy_ok=ok)
        except Exception as err:  # pylint: disable=broad-except  # the runtime copy still counts
            out.update(kernel_copy_us=None, kernel_copy_error=br.error_text("copy kernel", err))
        best = min(t for t in (runtime_s * 1e6, out.get("kernel_copy_us")) if t)
        out["copy_gbps"] = 8 * n / (best * 1e-6) / 1e9
        self.results["copy"] = out

    # -- phase: candidates
    def candidate_queue(self) -> list[tuple[dict, int, int]]:
        """(case, candidate index, tier) in tiers: the first TIER of every region (the prior's
        best), then the next TIER of every region, ..."""
        per_region: list[tuple[dict, list[int]]] = []
        for case in self.manifest["cases"]:
            if not case.get("tuning"):
                continue
            described = json.loads((self.case_dir(case) / case["tuning"] / "tuning.json").read_text())
            by_region: dict[str, list[int]] = {}
            for i, d in enumerate(described["candidates"]):
                by_region.setdefault(d["region"], []).append(i)
            per_region += [(case, idx) for idx in by_region.values()]
        queue = []
        for tier in range(max((len(idx) for _, idx in per_region), default=0) // TIER + 1):
            for case, idx in per_region:
                queue += [(case, i, tier) for i in idx[tier * TIER:(tier + 1) * TIER]]
        return queue

    def candidates(self, queue: list[tuple[dict, int, int]], stop_at_left_s: float) -> list[tuple[dict, int, int]]:
        """Measure from the front of ``queue`` until the clock says stop; returns the rest."""
        while queue and self.clock.left() > stop_at_left_s:
            case, index, _ = queue.pop(0)
            state = self._tuning_state(case)
            candidate = state["manifest"]["candidates"][index]
            region = state["regions"][index]
            result = br.measure_candidate(state["cache"], candidate, state["settings"],
                                          check=lambda f, a, r=region, s=state: self._agree(s, r, f, a))
            state["report"]["results"].append(result)
            br.write_json(state["path"], state["report"])
            summary = self.results["candidates"].setdefault(case["name"], {"measured": 0, "failed": 0,
                                                                           "disagree": 0})
            summary["measured"] += 1
            summary["failed"] += result["error"] is not None
            summary["disagree"] += result.get("agrees") is False
        self.save()
        return queue

    def _tuning_state(self, case: dict) -> dict[str, Any]:
        states = self._tuning
        if case["name"] not in states:
            tdir = self.case_dir(case) / case["tuning"]
            manifest = json.loads((tdir / br.MANIFEST_NAME).read_text())
            described = json.loads((tdir / "tuning.json").read_text())["candidates"]
            settings = dict(manifest["settings"])
            states[case["name"]] = {
                "manifest": manifest, "settings": settings, "regions": [d["region"] for d in described],
                "cache": br.BundleCache(self.runtime, self.dev, tdir, int(settings.get("seed", 0))),
                "path": tdir / br.RESULTS_NAME, "first": {},
                "report": {"format_version": br.FORMAT_VERSION, "device_kind": self.device_kind,
                           "device": br.device_name(self.dev), "settings": settings, "results": []},
            }
        return states[case["name"]]

    def _agree(self, state: dict, region: str, func: Any, args: list[Any]) -> dict[str, Any]:
        """Run once on fresh contents (outputs start as noise, so a kernel that writes nothing
        fails) and compare every float argument at sampled positions with the region's first
        candidate (the prior's pick), whose whole-model build was checked against the reference."""
        seed = int(state["settings"].get("seed", 0))
        rng = np.random.default_rng(seed + 1)
        for arg in args:
            arg.copyfrom(br.host_array(tuple(arg.shape), str(arg.dtype), rng))
        func(*args)
        self.dev.sync()
        samples = []
        for arg in args:
            flat = arg.numpy().reshape(-1)
            samples.append(flat[sample_indices(flat.size)] if flat.dtype.kind == "f" else None)
        first = state["first"].get(region)
        if first is None:
            state["first"][region] = samples
            return {"agrees": True, "reference_of_region": True}
        diff = 0.0
        agrees = True
        for mine, theirs in zip(samples, first):
            if mine is not None:
                good, err = close(mine, theirs, CHECK_TOL, CHECK_TOL)
                agrees, diff = agrees and good, max(diff, err)
        return {"agrees": agrees, "max_abs_diff": diff}


# ---------------------------------------------------------------------------------------------
# Driver


def run(directory: Path, device_kind: str | None = None, budget_s: float = 480.0, repeat: int = 10,
        torch_compile: bool = True, results_out: Path | None = None) -> int:
    """Run the whole campaign; 0 when the device could be used (failures are in the results)."""
    clock = Clock(budget_s)
    directory = directory.resolve()
    unpack_s = unpack(directory)
    use_bundled_runtime(directory)
    campaign = Campaign(directory, device_kind or "cuda", clock, repeat)
    campaign.results["unpack_s"] = unpack_s
    try:
        return _run(campaign, clock, budget_s, torch_compile)
    finally:
        if results_out is not None:
            copy_results(directory, results_out)


def _run(campaign: Campaign, clock: Clock, budget_s: float, torch_compile: bool) -> int:
    plan = campaign.manifest["plan"]
    campaign.phase("setup", campaign.setup)
    if campaign.runtime is None or campaign.dev is None or not campaign.dev.exist:
        return 1
    for case in campaign.manifest["cases"]:
        if clock.left() < plan["case_s"]:
            campaign.results["cut"].append(f"out of time before case {case['name']}")
            break
        campaign.phase(f"case:{case['name']}", lambda c=case: campaign.run_case(c))
    campaign.phase("copy", campaign.copy)
    queue = campaign.candidate_queue()
    campaign.results["candidates_total"] = len(queue)
    compile_cases = [c for c in campaign.manifest["cases"] if c.get("torch")] if (
        torch_compile and campaign.torch is not None) else []
    reserve = min(len(compile_cases) * plan["torch_compile_s"], 0.4 * budget_s)
    first_tiers = [q for q in queue if q[2] == 0]
    rest = [q for q in queue if q[2] > 0]
    campaign.phase("candidates:first_tier", lambda: campaign.candidates(first_tiers, reserve + plan["margin_s"]))
    for case in compile_cases:
        if clock.left() < plan["torch_compile_s"] + plan["margin_s"]:
            campaign.results["cut"].append(f"torch.compile: out of time before case {case['name']}")
            break
        campaign.phase(f"torch_compile:{case['name']}", lambda c=case: campaign.torch_compile_case(c))
    left: list[tuple[dict, int, int]] = []
    campaign.phase("candidates:rest", lambda: left.extend(campaign.candidates(first_tiers + rest, plan["margin_s"])))
    if left:
        campaign.results["cut"].append(f"{len(left)} candidates not measured (out of time)")
    if campaign.compiler is not None:
        campaign.results["cuda_compile"] = campaign.compiler.stats
    campaign.results["finished"] = True
    campaign.save()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--device", choices=["cuda", "cpu"], default=None,
                        help="default: the bundle's device kind")
    parser.add_argument("--budget-s", type=float, default=480.0, help="wall-clock budget (default 8 min)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-torch-compile", action="store_true")
    parser.add_argument("--results-out", type=Path, default=None,
                        help="also copy the result files here (e.g. $OUT: all that must come back)")
    ns = parser.parse_args(argv)
    kind = ns.device or json.loads((ns.directory / MANIFEST_NAME).read_text())["device_kind"]
    return run(ns.directory, kind, ns.budget_s, ns.repeat, not ns.no_torch_compile, ns.results_out)


if __name__ == "__main__":
    sys.exit(main())
