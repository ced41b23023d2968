"""What a target argument names, in one place for every layer above: a TVM Target, or the kind
of an external codegen (BANG C, emitted by a Relax hook, not a TVM target), and the runtime
device that runs the kernels built for it."""

from __future__ import annotations

from typing import Any

import tvm

# Kinds whose kernels an external codegen hook emits later (not TVM targets): kept as names.
EXTERNAL_KINDS = frozenset({"bang"})

# TVM target kind -> runtime device type name.
DEVICE_OF_KIND = {
    "llvm": "cpu",
    "c": "cpu",
    "cuda": "cuda",
    "rocm": "rocm",
    "vulkan": "vulkan",
    "opencl": "opencl",
    "metal": "metal",
}


def as_target(target: Any) -> tvm.target.Target | str:
    """A tvm Target from a Target, a kind name ("llvm"), a target string or a dict
    ({"kind": "rocm", ...}); an external codegen's kind stays its name."""
    if isinstance(target, str) and target in EXTERNAL_KINDS:
        return target
    return target if isinstance(target, tvm.target.Target) else tvm.target.Target(target)


def target_kind(target: Any) -> str:
    target = as_target(target)
    return target if isinstance(target, str) else target.kind.name


def device_kind(target: Any) -> str:
    """Runtime device type ('cpu', 'cuda', ...) that runs kernels built for ``target``."""
    kind = target_kind(target)
    if kind not in DEVICE_OF_KIND:
        raise ValueError(f"no runtime device for target kind {kind!r}")
    return DEVICE_OF_KIND[kind]
