"""Where TVM 0.27 finds the tools a rocm build needs, and pointing it at ours.

TVM links each AMDGPU object with the first `ld.lld-22` / `ld.lld` on PATH and reads the
device libraries from `$ROCM_PATH/amdgcn/bitcode`.  `scripts/setup_rocm_toolchain.sh` lays
both out under `.toolchains/rocm` (no ROCm install needed); `activate()` points TVM there.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = PROJECT_ROOT / ".toolchains" / "rocm"
SETUP_SCRIPT = PROJECT_ROOT / "scripts" / "setup_rocm_toolchain.sh"


class ToolchainMissing(RuntimeError):
    pass


def problems(root: Path) -> list[str]:
    """What keeps `root` from serving as ROCM_PATH for building (empty when it is usable)."""
    found = []
    if not (root / "amdgcn" / "bitcode" / "ocml.bc").is_file():
        found.append(f"no device libraries at {root / 'amdgcn' / 'bitcode'}")
    lld = root / "llvm" / "bin" / "ld.lld"
    try:
        version = subprocess.run([str(lld), "--version"], capture_output=True, text=True, check=False).stdout
    except OSError as err:
        version = ""
        found.append(f"{lld} does not run ({err})")
    else:
        if "LLD" not in version:
            found.append(f"{lld} does not run")
    return found


def locate() -> Path:
    """ROCM_PATH when it holds a usable layout, else the project-local one."""
    env = os.environ.get("ROCM_PATH")
    if env and not problems(Path(env)):
        return Path(env)
    return DEFAULT_ROOT


def activate(root: Path | None = None) -> Path:
    """Make `root` (default: `locate()`) the toolchain of this process's rocm builds."""
    root = Path(root) if root is not None else locate()
    missing = problems(root)
    if missing:
        raise ToolchainMissing(f"ROCm build toolchain unusable: {'; '.join(missing)} "
                               f"(create it with {SETUP_SCRIPT.relative_to(PROJECT_ROOT)})")
    os.environ["ROCM_PATH"] = str(root)
    bin_dir = str(root / "llvm" / "bin")
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + path
    return root
