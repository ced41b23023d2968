"""Numerics helpers shared by tests and scripts: ONNX reference, build-and-run, comparison.

The ground truth is ``onnx.reference.ReferenceEvaluator`` (numpy, independent of TVM), so a bug in
TVM's ONNX importer or in our own lowering cannot hide by being checked against itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import re
import shutil
import subprocess
from pathlib import Path
import numpy as np
import onnx
import tvm
from onnx.reference import ReferenceEvaluator

from .cost_model.target_kinds import device_kind

# fp32 tolerances. Plain elementwise/transpose/reduction chains land well inside 1e-4; chains
# through exp/erf/rsqrt (softmax, GELU, norms) and matmul accumulations get the looser pair.
RTOL = 1e-4
ATOL = 1e-4
RTOL_TRANSCENDENTAL = 1e-3
ATOL_TRANSCENDENTAL = 1e-3

# Ops whose results go through exp/erf/sqrt/division or long accumulations.
_LOOSE_OPS = frozenset(
    {"Softmax", "Erf", "Exp", "Sigmoid", "Tanh", "LayerNormalization", "Sqrt", "Reciprocal",
     "Div", "Pow", "ReduceMean", "MatMul", "Gemm"}
)

Inputs = Sequence[np.ndarray] | Mapping[str, np.ndarray]


def input_names(model: onnx.ModelProto) -> list[str]:
    """Graph inputs that are not initializers, in order (the VM's argument order)."""
    inits = {t.name for t in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


def tolerances(model: onnx.ModelProto) -> tuple[float, float]:
    """(rtol, atol) for comparing fp32 outputs of ``model`` against the ONNX reference."""
    if any(node.op_type in _LOOSE_OPS for node in model.graph.node):
        return RTOL_TRANSCENDENTAL, ATOL_TRANSCENDENTAL
    return RTOL, ATOL


def _as_feed(model: onnx.ModelProto, inputs: Inputs) -> dict[str, np.ndarray]:
    if isinstance(inputs, Mapping):
        return dict(inputs)
    names = input_names(model)
    if len(names) != len(inputs):
        raise ValueError(f"model takes {len(names)} inputs {names}, got {len(inputs)}")
    return dict(zip(names, inputs))


def reference_outputs(model: onnx.ModelProto, inputs: Inputs) -> list[np.ndarray]:
    """Run ``model`` with the ONNX reference evaluator; outputs in graph-output order."""
    outs = ReferenceEvaluator(model).run(None, _as_feed(model, inputs))
    return [np.asarray(o) for o in outs]


def to_numpy(value: Any) -> list[np.ndarray]:
    """Flatten a VM result (a tensor, or a possibly nested tuple of tensors) to numpy arrays."""
    if isinstance(value, tvm.runtime.Tensor):
        return [value.numpy()]
    if isinstance(value, np.ndarray):
        return [value]
    try:
        items = list(value)
    except TypeError as err:
        raise TypeError(f"unexpected VM output of type {type(value).__name__}") from err
    return [a for item in items for a in to_numpy(item)]


def device_for(target: tvm.target.Target) -> tvm.runtime.Device:
    """The runtime device a target's kernels run on (llvm -> cpu, cuda -> cuda, ...)."""
    return tvm.device(device_kind(target), 0)


def build(
    mod: tvm.IRModule,
    target_dict: Mapping[str, Any],
    relax_pipeline: str | tvm.transform.Pass | Callable | None = "default",
) -> tvm.runtime.Executable:
    """``tvm.compile`` a Relax module for a target given as a dict, e.g. ``{"kind": "llvm"}``."""
    target = tvm.target.Target(dict(target_dict))
    return tvm.compile(mod, target=target, relax_pipeline=relax_pipeline)


def run(
    executable: tvm.runtime.Executable,
    target: tvm.target.Target,
    inputs: Sequence[np.ndarray],
) -> list[np.ndarray]:
    """Run ``main`` of a built executable in the Relax VM on ``target``'s device."""
    device = device_for(target)
    vm = tvm.relax.VirtualMachine(executable, device)
    args = [tvm.runtime.tensor(np.array(a, copy=True, order="C"), device) for a in inputs]
    return to_numpy(vm["main"](*args))


def build_and_run(
    mod: tvm.IRModule,
    target_dict: Mapping[str, Any],
    inputs: Sequence[np.ndarray],
    relax_pipeline: str | tvm.transform.Pass | Callable | None = "default",
) -> list[np.ndarray]:
    """Compile ``mod``, run ``main`` on ``inputs`` in the Relax VM, return outputs as numpy."""
    executable = build(mod, target_dict, relax_pipeline)
    return run(executable, tvm.target.Target(dict(target_dict)), inputs)


def max_abs_error(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> float:
    """Largest absolute difference over all outputs (0.0 when there are none)."""
    errs = [
        float(np.max(np.abs(a.astype(np.float64) - e.astype(np.float64)), initial=0.0))
        for a, e in zip(actual, expected)
    ]
    return max(errs, default=0.0)


def assert_close(
    actual: Sequence[np.ndarray],
    expected: Sequence[np.ndarray],
    rtol: float = RTOL,
    atol: float = ATOL,
    what: str = "",
) -> None:
    """Check output count, shapes, dtypes and values; the message carries the max abs error."""
    prefix = f"{what}: " if what else ""
    assert len(actual) == len(expected), f"{prefix}{len(actual)} outputs, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape, f"{prefix}output {i}: shape {a.shape}, expected {e.shape}"
        assert a.dtype == e.dtype, f"{prefix}output {i}: dtype {a.dtype}, expected {e.dtype}"
        np.testing.assert_allclose(
            a, e, rtol=rtol, atol=atol, err_msg=f"{prefix}output {i} (max abs err "
            f"{max_abs_error([a], [e]):.3g})"
        )


def device_modules(executable: Any, kind: str) -> list:
    """Every ``kind`` runtime module (e.g. "cuda", "hip") inside an executable."""
    found, stack = [], [executable.mod]
    while stack:
        module = stack.pop()
        if module.kind == kind:
            found.append(module)
        stack.extend(module.imports)
    return found


def device_sources(executable: Any, kind: str) -> list[str]:
    """Generated source text of every ``kind`` module (e.g. "cuda") inside an executable."""
    return [module.inspect_source("") for module in device_modules(executable, kind)]


def rocm_code_object(executable: Any) -> bytes:
    """The HSACO (AMDGPU ELF) of a rocm executable, as serializing it packs it: the runtime
    cannot hand the bytes over otherwise without a ROCm device."""
    packed = tvm.get_global_func("runtime.ModulePackImportsToTensor")(executable.mod).numpy().tobytes()
    start = packed.find(b"\x7fELF")
    if start < 0:
        raise ValueError("no ELF code object in the executable")
    return packed[start:]


def amdgpu_kernel_metadata(asm: str) -> dict[str, dict[str, int]]:
    """Kernel name -> integer fields of its AMDHSA metadata (.wavefront_size,
    .max_flat_workgroup_size, .vgpr_count, .group_segment_fixed_size, ...) from the assembly."""
    out = {}
    for block in re.split(r"\n\s+- \.agpr_count:", asm)[1:]:
        name = re.search(r"\.symbol:\s+(\w+)\.kd", block).group(1)
        out[name] = {k: int(v) for k, v in re.findall(r"\.(\w+):\s+(\d+)\s*$", block, re.M)}
    return out


def nvcc_check(source_path: Path, arch: str) -> str:
    """Compile generated CUDA source to a cubin with nvcc, when there is one, to prove it builds.

    tvm.compile for cuda keeps the kernels as CUDA C source (the cubin is produced later, at
    load time), so a finished tvm.compile alone does not show that the source compiles.
    """
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return "nvcc not found: CUDA source not compiled"
    cubin = source_path.with_suffix(".cubin")
    cmd = [nvcc, f"-arch={arch}", "-cubin", "-w", "-o", str(cubin), str(source_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return f"nvcc FAILED ({proc.returncode}): {proc.stderr.strip()[-2000:]}"
    return f"nvcc -arch={arch} -cubin: OK ({cubin.stat().st_size} bytes)"
