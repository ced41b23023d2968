"""Timing and the physical limit: every contestant is timed the same way (median of repeats of
calls batched to about 10 ms), and the copy bandwidth of the same device is measured in the
same run as the yardstick for effective bandwidth."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import tvm
from onnx import numpy_helper
from tvm import relax

from ..cost_model.bundle_runner import REPEAT_SECONDS, median_seconds, pick_number
from ..testing import to_numpy

__all__ = ["REPEAT_SECONDS", "check", "copy_bandwidth", "copy_kernel_module", "ideal_bytes",
           "median_seconds", "pick_number", "run_vm", "time_vm"]


def ideal_bytes(model: onnx.ModelProto, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> int:
    """Graph inputs read once + outputs written once + float weights read once.

    A Gather table counts only the rows it gathers (indices size x row bytes)."""
    total = sum(a.nbytes for a in inputs) + sum(o.nbytes for o in outputs)
    feeds = dict(zip([i.name for i in model.graph.input], inputs))
    gathered = {n.input[0]: n.input[1] for n in model.graph.node if n.op_type == "Gather"}
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype.kind != "f" or array.size <= 1:
            continue  # shape constants and scalars are not traffic
        if init.name in gathered and gathered[init.name] in feeds:
            total += feeds[gathered[init.name]].size * array[0].nbytes
        else:
            total += array.nbytes
    return int(total)


def time_vm(executable: Any, dev: Any, args: list, repeat: int) -> float:
    """Median seconds of one call of ``main`` with the VM's time evaluator."""
    vm = relax.VirtualMachine(executable, dev)
    once = float(np.median(vm.time_evaluator("main", dev, number=1, repeat=1)(*args).results))
    result = vm.time_evaluator("main", dev, number=pick_number(once), repeat=repeat)(*args)
    return float(np.median(result.results))


def run_vm(executable: Any, dev: Any, args: list) -> list[np.ndarray]:
    return to_numpy(relax.VirtualMachine(executable, dev)["main"](*args))


def check(actual: list[np.ndarray], expected: list[np.ndarray], rtol: float, atol: float) -> tuple[bool, float]:
    """(all close, largest absolute error); a shape or count mismatch is not close."""
    if len(actual) != len(expected) or any(a.shape != e.shape for a, e in zip(actual, expected)):
        return False, float("inf")
    err, ok = 0.0, True
    for a, e in zip(actual, expected):
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        err = max(err, float(np.max(np.abs(a64 - e64), initial=0.0)))
        ok = ok and bool(np.allclose(a64, e64, rtol=rtol, atol=atol))
    return ok, err


COPY_CHUNK = 256  # elements per vectorized step of the CPU copy kernel


def copy_kernel_module(n: int, cpu: bool = False) -> tvm.IRModule:
    """A Relax module whose ``main`` copies ``n`` fp32 values with one TIR kernel.  On a CPU the
    kernel is split over the thread pool in SIMD vectors (``n`` a multiple of COPY_CHUNK): TVM's
    default pipeline leaves a plain loop on llvm, one core at scalar speed, which is no limit for
    contestants that use every core."""
    from tvm import te  # pylint: disable=import-outside-toplevel

    src = te.placeholder((n,), "float32", name="src")
    dst = te.compute((n,), lambda i: src[i], name="dst")
    func = te.create_prim_func([src, dst])
    if cpu:
        sch = tvm.s_tir.Schedule(func)
        (axis,) = sch.get_loops(sch.get_sblock("dst"))
        tasks, lanes = sch.split(axis, [None, COPY_CHUNK])
        sch.parallel(tasks)
        sch.vectorize(lanes)
        func = sch.mod["main"]
    bb = relax.BlockBuilder()
    gv = bb.add_func(func.with_attr("global_symbol", "copy"), "copy")
    x = relax.Var("x", relax.TensorType((n,), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.call_tir(gv, [x], relax.TensorType((n,), "float32")))
        bb.emit_func_output(out)
    return bb.get()


def copy_bandwidth(target: Any, dev: Any, traffic_bytes: int, repeat: int) -> dict:
    """Bandwidth (bytes moved / s) of a device copy moving ``traffic_bytes`` in total: the faster
    of the runtime's copy (memcpy / cudaMemcpy D2D) and a copy kernel TVM builds (DLight on GPUs;
    on a CPU over every thread of the pool, in SIMD vectors)."""
    cpu = dev.dlpack_device_type() == tvm.cpu(0).dlpack_device_type()
    n = max(1, traffic_bytes // 8)  # fp32 values: n*4 read + n*4 written = traffic
    if cpu:
        n = -(-n // COPY_CHUNK) * COPY_CHUNK
    src = tvm.runtime.tensor(np.random.default_rng(1).standard_normal(n).astype(np.float32), dev)
    dst = tvm.runtime.empty((n,), "float32", dev)
    runtime_s = median_seconds(lambda: src.copyto(dst), dev.sync, repeat)
    ok = bool(np.array_equal(dst.numpy(), src.numpy()))
    kernel_s, kernel_error = None, None
    try:
        ex = tvm.compile(copy_kernel_module(n, cpu), target=target, relax_pipeline="default")
        if not np.array_equal(run_vm(ex, dev, [src])[0], src.numpy()):
            raise ValueError("copy kernel output differs from its input")
        kernel_s = time_vm(ex, dev, [src], repeat)
    except Exception as err:  # pylint: disable=broad-except  # the runtime copy still gives the limit
        kernel_error = f"{type(err).__name__}: {err}"
    best = min(s for s in (runtime_s, kernel_s) if s is not None)
    return {"bytes_moved": 8 * n, "runtime_copy_us": runtime_s * 1e6,
            "kernel_copy_us": None if kernel_s is None else kernel_s * 1e6,
            "kernel_copy_error": kernel_error, "copy_gbps": 8 * n / best / 1e9, "copy_ok": ok}
