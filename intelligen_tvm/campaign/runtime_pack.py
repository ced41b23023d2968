"""A runtime-only TVM to ship to a machine where nothing can be installed.

The apache-tvm wheel is ~100 MB, almost all of it the compiler (``libtvm_compiler.so``). Running
built modules needs only ``libtvm_runtime.so`` (+ ``libtvm_runtime_cuda.so`` for CUDA), the
Python files of ``tvm.runtime`` and its few imports, and ``tvm_ffi``. Two pieces are specific to
the machine that runs them:

- ``tvm_ffi``'s Python extension (``core.cpython-3XY-...so``) exists per CPython version. The
  device machine has Python 3.12; we ``pip download`` the installed apache-tvm-ffi version's
  cp312 wheel and take its files (the apache-tvm wheel itself is ``py3-none``: version-free).
  Extensions of several versions can sit side by side; the local one is added so that the
  rehearsal can run the same bundle with this machine's Python.
- ``libtvm_runtime_cuda.so`` links ``libcudart.so.13`` (versioned symbols: no other major will
  do). We ship it from NVIDIA's ``nvidia-cuda-runtime`` wheel; it needs a driver for CUDA 13.

Downloads are cached under ``$INTELLIGEN_WHEEL_CACHE`` (default ``~/.cache/intelligen_tvm/wheels``).
What could not be fetched is written to ``RUNTIME.json`` instead of failing the build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import tvm
import tvm_ffi
import typing_extensions

from . import runner

DEVICE_PYTHON = "3.12"
CUDART_REQUIREMENT = "nvidia-cuda-runtime>=13.0,<14"
TVM_FILES = ("_version.py", "base.py", "libinfo.py", "error.py")
TVM_PACKAGES = ("runtime", "support")
TVM_LIBS = {"cpu": ("libtvm_runtime.so",), "cuda": ("libtvm_runtime.so", "libtvm_runtime_cuda.so")}
# tvm_ffi parts the runtime never uses: headers, C++ sources, Cython, stubs (core.*.so links
# lib/libtvm_ffi_testing.so: it stays)
FFI_SKIP = ("include", "src", "3rdparty", "cython", "share", "stub", "cmake", "CMakeLists.txt", "__pycache__")
TVM_INIT = '''"""Runtime-only TVM (the GPU campaign's bundle): no compiler library, no compiler packages.
Import it through ``bundle_runner.import_tvm_runtime()``, which loads ``tvm.base`` and
``tvm.runtime`` under a bare ``tvm`` package."""
raise ImportError("runtime-only TVM: use bundle_runner.import_tvm_runtime()")
'''


def wheel_cache() -> Path:
    return Path(os.environ.get("INTELLIGEN_WHEEL_CACHE", "~/.cache/intelligen_tvm/wheels")).expanduser()


def pip_download(requirement: str, extra: list[str]) -> Path:
    """One wheel into the cache (reused when already there); raises with pip's words."""
    cache = wheel_cache()
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", requirement, "--only-binary=:all:", "--no-deps",
           "-d", str(cache), "--quiet", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"pip download {requirement} failed: {proc.stderr.strip()[-800:]}")
    name = requirement.split("=")[0].split(">")[0].split("<")[0].replace("-", "_").lower()
    wheels = sorted((w for w in cache.glob("*.whl") if w.name.lower().startswith(name + "-")),
                    key=lambda w: w.stat().st_mtime)
    if not wheels:
        raise RuntimeError(f"pip download {requirement}: no wheel in {cache}")
    return wheels[-1]


def _cached(prefix: str, tag: str) -> Path | None:
    """A wheel already in the cache (so that a machine without the index can still build)."""
    for wheel in sorted(wheel_cache().glob(f"{prefix}*.whl")):
        if tag in wheel.name:
            return wheel
    return None


def ffi_wheel(python: str) -> Path:
    """The installed apache-tvm-ffi version's wheel for CPython ``python`` (e.g. "3.12")."""
    version = metadata.version("apache-tvm-ffi")
    tag = "cp" + python.replace(".", "")
    cached = _cached(f"apache_tvm_ffi-{version}-", f"-{tag}-")
    if cached:
        return cached
    return pip_download(f"apache-tvm-ffi=={version}", ["--python-version", python])


def cudart_wheel() -> Path:
    cached = _cached("nvidia_cuda_runtime-13", "")
    return cached or pip_download(CUDART_REQUIREMENT, [])


def _copy_tree(src: Path, dest: Path, skip: tuple[str, ...]) -> None:
    shutil.copytree(src, dest, ignore=lambda d, names: [n for n in names if n in skip or n.endswith(".pyc")],
                    dirs_exist_ok=True)


def stage_runtime(dest: Path, device_kind: str, python: str = DEVICE_PYTHON) -> dict[str, Any]:
    """Write ``dest/tvm``, ``dest/tvm_ffi`` (+ ``dest/cudart`` for CUDA) and ``dest/RUNTIME.json``;
    returns what RUNTIME.json says (``missing`` lists what the device machine must have itself)."""
    tvm_src, ffi_src = Path(tvm.__file__).parent, Path(tvm_ffi.__file__).parent
    info: dict[str, Any] = {"tvm": tvm.__version__, "tvm_ffi": metadata.version("apache-tvm-ffi"),
                            "device_kind": device_kind, "python_extensions": [], "missing": []}
    (dest / "tvm" / "lib").mkdir(parents=True, exist_ok=True)
    (dest / "tvm" / "__init__.py").write_text(TVM_INIT)
    for name in TVM_FILES:
        shutil.copy2(tvm_src / name, dest / "tvm" / name)
    for package in TVM_PACKAGES:
        _copy_tree(tvm_src / package, dest / "tvm" / package, ("__pycache__",))
    for lib in TVM_LIBS[device_kind]:
        shutil.copy2(tvm_src / "lib" / lib, dest / "tvm" / "lib" / lib)
    # tvm_ffi: the local package (version-free files, the local extension), then the device
    # Python's extension from its wheel next to it; and its one pure-Python dependency
    # (>= 4.13; an older one may come with the device's torch, and newer ones stay compatible)
    _copy_tree(ffi_src, dest / "tvm_ffi", FFI_SKIP)
    shutil.copy2(typing_extensions.__file__, dest / "typing_extensions.py")
    info["python_extensions"].append("core" + sysconfig.get_config_var("EXT_SUFFIX"))
    if sys.version_info[:2] != tuple(int(x) for x in python.split(".")):
        try:
            with zipfile.ZipFile(ffi_wheel(python)) as wheel:
                for member in wheel.namelist():
                    if member.startswith("tvm_ffi/core.") and member.endswith(".so"):
                        (dest / member).write_bytes(wheel.read(member))
                        info["python_extensions"].append(member.split("/", 1)[1])
        except Exception as err:  # pylint: disable=broad-except  # said in RUNTIME.json
            info["missing"].append(f"tvm_ffi extension for Python {python}: {err}")
    if device_kind == "cuda":
        try:
            with zipfile.ZipFile(cudart_wheel()) as wheel:
                member = next(m for m in wheel.namelist() if m.endswith("/libcudart.so.13"))
                (dest / runner.CUDART_DIR).mkdir(exist_ok=True)
                (dest / runner.CUDART_DIR / "libcudart.so.13").write_bytes(wheel.read(member))
                info["cudart"] = Path(wheel.filename or "").name
        except Exception as err:  # pylint: disable=broad-except
            info["missing"].append(f"libcudart.so.13 (the device must have it): {err}")
    info["bytes"] = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    (dest / "RUNTIME.json").write_text(json.dumps(info, indent=1))
    return info
