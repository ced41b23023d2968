"""Run emitted BANG C on the CPU: the kernel + a driver built with g++ against bang_emu.h.

The driver reads every kernel argument from a file, runs the tasks one at a time (taskId =
0..TASK_DIM-1), checks the NRAM pool against the preset's capacity and writes the outputs.
`emulated_packed_func` wraps that as the packed function a `call_dps_packed` of the region's
global symbol calls, so a partitioned model runs end to end: MLU regions emulated, the rest
on llvm.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tvm
import tvm_ffi
from tvm import relax

from intelligen_tvm.mlu import CODEGEN, emit_function
from intelligen_tvm.targets.bang.plan import Emitted, scratchpad
from intelligen_tvm.targets.bang.cexpr import c_type

HEADER = Path(__file__).with_name("bang_emu.h")


def require_gxx() -> str:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not on PATH")
    return gxx


def driver_source(e: Emitted, symbol: str, tasks: int | None = None) -> str:
    lines = ['#include "bang_emu.h"', e.source, "#include <fstream>", "#include <string>", "",
             "template <typename T> static void io(std::vector<T>& v, const std::string& path, bool out) {",
             "  if (out) { std::ofstream(path, std::ios::binary).write((const char*)v.data(), v.size() * sizeof(T)); return; }",
             "  std::ifstream f(path, std::ios::binary); f.read((char*)v.data(), v.size() * sizeof(T));",
             "  if (!f) emu_fail(\"driver\", path.c_str());",
             "}", "",
             "int main(int argc, char** argv) {",
             "  const std::string dir = argc > 1 ? argv[1] : \".\";"]
    n_in = len(e.params) - e.n_outputs
    for i, (_, dtype, shape) in enumerate(e.params):
        size = int(np.prod(shape)) if shape else 1
        lines.append(f"  std::vector<{c_type(dtype)}> a{i}({size});")
        if i < n_in:
            lines.append(f"  io(a{i}, dir + \"/arg{i}.bin\", false);")
    args = ", ".join(f"a{i}.data()" for i in range(len(e.params)))
    lines += [f"  taskDim = {tasks or symbol.upper() + '_TASK_DIM'};",
              f"  for (taskId = 0; taskId < taskDim; ++taskId) {symbol}({args});",
              "  __sync();",
              f"  if (emu_nram_bytes() > {scratchpad().local_bytes}) emu_fail(\"nram\", \"pool exceeds the NRAM size\");"]
    for i in range(n_in, len(e.params)):
        lines.append(f"  io(a{i}, dir + \"/arg{i}.bin\", true);")
    lines += ["  return 0;", "}"]
    return "\n".join(lines) + "\n"


def build(e: Emitted, symbol: str, workdir: Path, tasks: int | None = None) -> Path:
    """Compile the kernel and its driver; returns the executable.  `tasks` overrides the
    launch's task count (fewer tasks: each runs several tiles, prefetching the next)."""
    gxx = require_gxx()
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / f"{symbol}_driver.cpp"
    src.write_text(driver_source(e, symbol, tasks))
    exe = workdir / symbol
    proc = subprocess.run([gxx, "-std=c++17", "-O0", "-Wall", "-Werror", "-Wno-unused-variable",
                           "-Wno-unused-function", f"-I{HEADER.parent}", str(src), "-o", str(exe)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return exe


def run(exe: Path, e: Emitted, inputs: list[np.ndarray], workdir: Path) -> list[np.ndarray]:
    n_in = len(e.params) - e.n_outputs
    assert len(inputs) == n_in
    for i, (arr, (_, dtype, shape)) in enumerate(zip(inputs, e.params)):
        np.ascontiguousarray(arr, dtype=dtype).reshape(shape).tofile(workdir / f"arg{i}.bin")
    proc = subprocess.run([str(exe), str(workdir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [np.fromfile(workdir / f"arg{i}.bin", dtype=dtype).reshape(shape)
            for i, (_, dtype, shape) in enumerate(e.params) if i >= n_in]


def codegen_functions(mod: tvm.IRModule) -> dict[str, relax.Function]:
    return {str(f.attrs["global_symbol"]): f for _, f in mod.functions.items()
            if isinstance(f, relax.Function) and f.attrs is not None and f.attrs.get("Codegen") == CODEGEN}


def emulate_module(partitioned: tvm.IRModule, workdir: Path) -> tuple[tvm.IRModule, dict[str, Emitted]]:
    """RunCodegen, then register every region's emulated kernel under its global symbol;
    returns the module (without the BANG source modules) for an llvm build."""
    emitted = {}
    for symbol, func in codegen_functions(partitioned).items():
        e = emit_function(func)
        exe = build(e, symbol, workdir / symbol)
        emitted[symbol] = e
        tvm_ffi.register_global_func(symbol, _packed(exe, e, workdir / symbol), override=True)
    mod = relax.transform.RunCodegen()(partitioned)
    return mod.without_attr("external_mods"), emitted


def _packed(exe: Path, e: Emitted, workdir: Path):
    n_in = len(e.params) - e.n_outputs

    def call(*args) -> None:
        outs = run(exe, e, [a.numpy() for a in args[:n_in]], workdir)
        for dst, value in zip(args[n_in:], outs):
            dst.copyfrom(value.reshape(dst.shape))

    return call
