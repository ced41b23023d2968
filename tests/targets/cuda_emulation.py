"""Run the CUDA source that `tvm.compile` emits on the CPU: the kernels + a driver built with
g++ against cuda_emu.h (every CUDA thread a fiber, strict warp shuffles and barriers, checked
shared memory, guarded global buffers; see the header).

The launches are read off the compiled module itself: a pass instrument keeps the module after
TVM's SplitHostDevice, whose host functions call each kernel (`T.call_ffi_kernel`) with its
argument buffers and launch extents, in launch order (a split row's phases included).

Symbolic kernels: buffer extents, scalar kernel arguments (the symbols, or expressions of them) and
launch extents are kept as TIR expressions and evaluated for the symbol values of each run (bound
from the input arrays' shapes); the driver, built once, reads those values from the run folder.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, numpy_helper

HEADER = Path(__file__).with_name("cuda_emu.h")
CUDA = {"kind": "cuda", "arch": "sm_90"}

_C_TYPES = {"float32": "float", "float16": "half", "float64": "double", "int32": "int", "int64": "int64_t",
            "int8": "int8_t", "uint8": "uint8_t", "bool": "bool"}
_KERNEL = re.compile(r'extern "C" __global__ void __launch_bounds__\((\d+)\) (\w+)\(([^)]*)\) \{')
_SHARED = re.compile(r"__shared__ alignas\(\d+\) (\w+) (\w+)\[(\d+)\];")
# (the cuda/std ones sit behind __CUDACC_RTC__, which g++ does not define)
_ALLOWED_INCLUDES = {"<cstdint>", "<type_traits>", "<cuda.h>", "<cuda_fp16.h>", "<cuda/std/cstdint>",
                     "<cuda/std/type_traits>"}


def evaluate(expr: str, symbols: dict[str, int]) -> int:
    """A TIR integer expression as TVMScript prints it (`T.int64(0) - (T.int64(0) - n) // T.int64(4)`)
    at the given symbol values; `//` and `%` are TIR's floordiv / floormod, as in Python."""
    t = SimpleNamespace(int64=int, int32=int, Cast=lambda _dtype, v: v, max=max, min=min,
                        floordiv=lambda a, b: a // b, floormod=lambda a, b: a % b)
    return int(eval(expr, {"__builtins__": {}, "T": t}, dict(symbols)))


@dataclass(frozen=True)
class Buffer:
    name: str
    shape: tuple[str, ...]         # extents as TIR expressions (digits when static)
    dtype: str

    def shape_at(self, symbols: dict[str, int]) -> tuple[int, ...]:
        return tuple(evaluate(d, symbols) for d in self.shape)

    def numel_at(self, symbols: dict[str, int]) -> int:
        return int(np.prod(self.shape_at(symbols), dtype=np.int64))


@dataclass(frozen=True)
class Launch:
    kernel: str
    args: tuple[str, ...]          # buffer names (parameters or workspaces) or scalar TIR expressions
    grid: tuple[str, str, str]     # launch extents as TIR expressions
    block: tuple[str, str, str]

    def geometry_at(self, symbols: dict[str, int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(grid, block) at the given symbol values."""
        return tuple(evaluate(e, symbols) for e in self.grid), tuple(evaluate(e, symbols) for e in self.block)

    def threads_at(self, symbols: dict[str, int]) -> int:
        return int(np.prod([np.prod(x) for x in self.geometry_at(symbols)], dtype=np.int64))


@dataclass(frozen=True)
class HostFunc:
    """What one host function does on the device: its parameters, the workspaces it allocates
    and the kernels it launches, in order."""

    name: str
    params: tuple[Buffer, ...]
    workspaces: tuple[Buffer, ...]
    launches: tuple[Launch, ...]


@dataclass(frozen=True)
class CudaBuild:
    source: str
    hosts: dict[str, HostFunc]


# ---- reading the compiled module ---------------------------------------------------------------

def _split_top(text: str) -> list[str]:
    """`text` split at the commas outside parentheses and brackets, items stripped."""
    items, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += 1 if c in "([" else -1 if c in ")]" else 0
        if c == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return [i for i in items if i]


def _call_args(text: str, start: int) -> str:
    """The text between the parenthesis at `start` and its match."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i]
    raise ValueError(f"unbalanced parentheses in {text[start:start + 200]!r}")


def _buffers(text: str, pattern: str) -> tuple[Buffer, ...]:
    """Every `<name><pattern>((shape), "dtype", ...)` declaration in `text`."""
    out = []
    for m in re.finditer(r"(\w+)" + pattern, text):
        items = _split_top(_call_args(text, m.end() - 1))
        shape = tuple(_split_top(items[0][1:-1]))
        dtype = items[1].strip('"') if len(items) > 1 and items[1].startswith('"') else "float32"
        out.append(Buffer(m.group(1), shape, dtype))
    return tuple(out)


def parse_host(script: str) -> list[HostFunc]:
    """Host functions (after SplitHostDevice) that launch kernels, from their TVMScript."""
    out = []
    for chunk in re.split(r"\n(?=    @T\.prim_func|@T\.prim_func)", script):
        if "T.call_ffi_kernel(" not in chunk:
            continue
        head = re.search(r"def (\w+)\((.*)\):", chunk)
        params = _buffers(head.group(2), r": T\.Buffer\(")
        workspaces = _buffers(chunk, r" = T\.alloc_buffer\(")
        lets = dict(re.findall(r"(\w+): T\.let\[T\.\w+\] = (.+)", chunk))
        alias = {n: src for n, src in re.findall(r"(\w+) = (\w+)\.view\(", chunk)}
        alias |= {n: src for n, src in re.findall(r"(\w+) = T\.decl_buffer\(.*data=(\w+)\.data", chunk)}
        launches = []
        for m in re.finditer(r'T\.call_ffi_kernel\("(\w+)", (.*), launch_params=\[([^\]]*)\]', chunk):
            items = [_inline(a, lets) for a in _split_top(m.group(2))]
            tags = [t.strip().strip('"') for t in m.group(3).split(",") if t.strip()]
            extents = dict(zip(tags, items[len(items) - len(tags):]))
            args = []
            for a in items[:len(items) - len(tags)]:
                name = a[:-len(".data")] if a.endswith(".data") else a   # else a scalar: a symbol or expression
                args.append(alias.get(name, name))
            grid = tuple(extents.pop(f"blockIdx.{d}", "1") for d in "xyz")
            block = tuple(extents.pop(f"threadIdx.{d}", "1") for d in "xyz")
            assert not extents, f"unknown launch parameters {extents}"
            launches.append(Launch(m.group(1), tuple(args), grid, block))
        out.append(HostFunc(head.group(1), params, workspaces, tuple(launches)))
    return out


def _inline(expr: str, lets: dict[str, str]) -> str:
    """`expr` with the host function's `T.let` names replaced by their (parenthesized) values."""
    return re.sub(r"\b\w+\b", lambda m: f"({_inline(lets[m.group(0)], lets)})" if m.group(0) in lets
                  else m.group(0), expr)


def compile_cuda(mod: tvm.IRModule, relax_pipeline: str | None = "intelligen") -> CudaBuild:
    """`tvm.compile` for sm_90; the CUDA source and every host function's launches."""
    from intelligen_tvm.testing import device_sources

    kept: list[tvm.IRModule] = []

    @tvm.instrument.pass_instrument
    class KeepHost:
        def run_after_pass(self, m, info):
            if info.name == "tirx.SplitHostDevice":
                kept.append(m)

    target = tvm.target.Target(CUDA)
    with tvm.transform.PassContext(instruments=[KeepHost()]):
        if relax_pipeline is None:
            executable = tvm.compile(mod, target=target)
        else:
            executable = tvm.compile(mod, target=target, relax_pipeline=relax_pipeline)
    (source,) = device_sources(executable, "cuda")
    hosts = {h.name: h for m in kept for h in parse_host(m.script())}
    return CudaBuild(source, hosts)


# ---- the emulated program ----------------------------------------------------------------------

def prepare_source(source: str) -> str:
    """The kernel source as g++ sees it: CUDA headers come from cuda_emu.h, `__shared__` arrays
    become checked arrays.  Anything else unusual fails here or in the compiler."""
    for inc in re.findall(r"#include (\S+)", source):
        assert inc in _ALLOWED_INCLUDES, f"unexpected include {inc}"
    out = re.sub(r"#include <cuda(_fp16)?\.h>", "", source)
    return _SHARED.sub(lambda m: f"CUDA_EMU_SHARED({m.group(1)}, {m.group(2)}, {m.group(3)});", out)


def only_kernels(source: str, names: set[str]) -> str:
    """`source` without the kernels (declarations and definitions) not in `names`: a module's
    other kernels (TVM's own matmuls) need not build under the emulation header."""
    out, pos = [], 0
    for m in re.finditer(r'extern "C" __global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\(', source):
        if m.start() < pos or m.group(1) in names:
            continue
        end = source.index(")", m.end()) + 1
        while source[end] == " ":
            end += 1
        if source[end] == "{":
            depth = 0
            for end in range(end, len(source)):
                depth += {"{": 1, "}": -1}.get(source[end], 0)
                if depth == 0:
                    break
        out.append(source[pos:m.start()])
        pos = end + 1
    return "".join(out) + source[pos:]


def kernel_signatures(source: str) -> dict[str, tuple[int, list[str]]]:
    """Kernel name -> (launch bound, type of every parameter: `float*`, or a scalar's `int64_t`)."""
    out = {}
    for bound, name, params in _KERNEL.findall(source):
        types = [re.sub(r"\s*__restrict__\s*", "", re.match(r"\s*(.+?\*|\S+)", p).group(1)).strip()
                 for p in params.split(",")]
        out[name] = (int(bound), types)
    return out


def run_time_values(host: HostFunc) -> list[str]:
    """The expressions the driver reads from `dims.bin` at run time, in order: every buffer's
    element count, then every scalar argument and launch extent of every launch."""
    buffers = {b.name for b in (*host.params, *host.workspaces)}
    out = [" * ".join(f"({d})" for d in b.shape) or "1" for b in (*host.params, *host.workspaces)]
    for ln in host.launches:
        out += [a for a in ln.args if a not in buffers] + [*ln.grid, *ln.block]
    return out


def driver_source(source: str, host: HostFunc, n_outputs: int) -> str:
    sigs = kernel_signatures(source)
    n_in = len(host.params) - n_outputs
    values = iter(range(len(run_time_values(host))))
    buffers = {b.name for b in (*host.params, *host.workspaces)}
    source = only_kernels(source, {ln.kernel for ln in host.launches})
    lines = ['#include "cuda_emu.h"', prepare_source(source), "#include <fstream>", "#include <string>", "",
             "static void io(void* p, long bytes, const std::string& path, bool out) {",
             "  if (out) { std::ofstream(path, std::ios::binary).write((const char*)p, bytes); return; }",
             "  std::ifstream f(path, std::ios::binary); f.read((char*)p, bytes);",
             '  if (!f) cuda_emu::fail("driver", "cannot read %s", path.c_str());',
             "}", "",
             "int main(int argc, char** argv) {",
             '  const std::string dir = argc > 1 ? argv[1] : ".";',
             f"  int64_t v[{len(run_time_values(host)) + 1}];",
             f'  io(v, sizeof(v) - sizeof(int64_t), dir + "/dims.bin", false);']
    numel = {}
    for i, b in enumerate((*host.params, *host.workspaces)):
        c_type = _C_TYPES[b.dtype]
        numel[b.name] = f"v[{next(values)}]"
        bytes_ = f"{numel[b.name]} * {np.dtype(b.dtype).itemsize}"
        lines.append(f'  auto* {b.name} = static_cast<{c_type}*>(cuda_emu::alloc({bytes_}, "{b.name}"));')
        if i < n_in:
            lines.append(f'  io({b.name}, {bytes_}, dir + "/in{i}.bin", false);')
        else:
            lines.append(f"  cuda_emu::poison({b.name}, {numel[b.name]});")
    for ln in host.launches:
        bound, types = sigs[ln.kernel]
        assert len(types) == len(ln.args), (ln, types)
        args = ", ".join(f"({t}){a}" if a in buffers else f"({t})v[{next(values)}]" for t, a in zip(types, ln.args))
        grid, block = ([f"(unsigned)v[{next(values)}]" for _ in range(3)] for _ in range(2))
        lines.append(f'  cuda_emu::launch("{ln.kernel}", {{{", ".join(grid)}}}, '
                     f'{{{", ".join(block)}}}, {bound}, [&] {{ {ln.kernel}({args}); }});')
    lines.append("  cuda_emu::check_guards();")
    for k, b in enumerate(host.params[n_in:]):
        lines.append(f'  io({b.name}, {numel[b.name]} * {np.dtype(b.dtype).itemsize}, dir + "/out{k}.bin", true);')
    lines += ["  return 0;", "}"]
    return "\n".join(lines) + "\n"


@functools.cache
def _workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="cuda_emu_"))
    atexit.register(shutil.rmtree, path, True)
    return path


class CompileError(AssertionError):
    """g++ rejected the emulated program (an unknown type or intrinsic, a bad conversion...)."""


class EmulationError(AssertionError):
    """The emulation stopped on a check (race, divergent shuffle, out-of-bounds access...)."""


@functools.cache
def build_driver(text: str) -> Path:
    """g++ build of a driver, cached by its text for the session."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not on PATH")
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    src = _workdir() / f"{digest}.cpp"
    src.write_text(text)
    exe = src.with_suffix("")
    proc = subprocess.run([gxx, "-std=c++17", "-O1", "-w", "-fsanitize=alignment", "-fno-sanitize-recover=all",
                           f"-I{HEADER.parent}", str(src), "-o", str(exe)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise CompileError(proc.stderr[-4000:])
    return exe


@dataclass(frozen=True)
class Emulated:
    exe: Path
    host: HostFunc
    n_outputs: int

    def symbols(self, inputs: list[np.ndarray]) -> dict[str, int]:
        """The symbol values that the inputs' shapes give (a symbol is an extent of its own somewhere)."""
        out: dict[str, int] = {}
        for arr, b in zip(inputs, self.host.params):
            for d, n in zip(b.shape, np.shape(arr)) if len(b.shape) == np.ndim(arr) else ():
                if d.isidentifier():
                    assert out.setdefault(d, n) == n, (d, out[d], n)
        return out

    def run(self, inputs: list[np.ndarray], symbols: dict[str, int] | None = None) -> list[np.ndarray]:
        """The outputs for `inputs`; symbol values bound from the input shapes unless given."""
        n_in = len(self.host.params) - self.n_outputs
        assert len(inputs) == n_in, (len(inputs), n_in)
        symbols = self.symbols(inputs) if symbols is None else symbols
        run_dir = Path(tempfile.mkdtemp(dir=_workdir()))
        dims = [evaluate(e, symbols) for e in run_time_values(self.host)]
        np.array(dims, dtype=np.int64).tofile(run_dir / "dims.bin")
        for i, (arr, b) in enumerate(zip(inputs, self.host.params)):
            a = np.ascontiguousarray(arr, dtype=b.dtype)
            assert a.size == b.numel_at(symbols), (b, a.shape, symbols)
            a.tofile(run_dir / f"in{i}.bin")
        proc = subprocess.run([str(self.exe), str(run_dir)], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise EmulationError(f"exit {proc.returncode}: {proc.stderr[-4000:]}")
        outs = [np.fromfile(run_dir / f"out{k}.bin", dtype=b.dtype).reshape(b.shape_at(symbols))
                for k, b in enumerate(self.host.params[n_in:])]
        shutil.rmtree(run_dir)
        return outs


def emulate(build: CudaBuild, func: str, n_outputs: int = 1, source: str | None = None) -> Emulated:
    """The host function `func` of a build, ready to run (`source` replaces the build's CUDA
    source, e.g. a mutated copy)."""
    host = build.hosts[func]
    return Emulated(build_driver(driver_source(source or build.source, host, n_outputs)), host, n_outputs)


def check_outputs(got: list[np.ndarray], want: list[np.ndarray], rtol: float, atol: float, what: str = "") -> None:
    """Outputs match; an element left NaN where the reference is finite was never written."""
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        g = np.asarray(g).reshape(np.shape(w))
        unwritten = np.isnan(g.astype(np.float64)) & ~np.isnan(np.asarray(w, np.float64))
        assert not unwritten.any(), f"{what}: output {k}: {int(unwritten.sum())} elements never written (still NaN)"
        np.testing.assert_allclose(g.astype(np.float64), np.asarray(w, np.float64), rtol=rtol, atol=atol,
                                   err_msg=f"{what}: output {k}")


# ---- models and data ---------------------------------------------------------------------------

def with_float_type(model: onnx.ModelProto, dtype: str) -> onnx.ModelProto:
    """The model with every float tensor (graph inputs, outputs, initializers) in `dtype`
    ("float16" or "float32"); shapes re-inferred."""
    elem = {"float16": TensorProto.FLOAT16, "float32": TensorProto.FLOAT}[dtype]
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    for vi in (*g.input, *g.output):
        if vi.type.tensor_type.elem_type in floats:
            vi.type.tensor_type.elem_type = elem
    for o in g.output:
        o.type.tensor_type.ClearField("shape")
    del g.value_info[:]
    for t in g.initializer:
        if t.data_type in floats:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(dtype), t.name))
    return onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)


# Input distributions: not N(0, 1), so that a kernel that drops a shift or a scale shows.
DISTRIBUTIONS = {"scaled": (3.0, 2.0), "large_mean": (1.0, 100.0)}


def shifted_inputs(case, rng: np.random.Generator, small: bool, dist: str, dims=None) -> list[np.ndarray]:
    """The suite's inputs for `case`, its normal ones drawn as std * N(0, 1) + mean."""
    from intelligen_tvm import suite

    std, mean = DISTRIBUTIONS[dist]
    dims = dims or case.dims_for(small)
    arrays = suite.make_inputs_from_specs(case.inputs, dims, rng)
    return [(std * a + mean).astype(a.dtype) if s.kind == "normal" else a for s, a in zip(case.inputs, arrays)]


def region_inputs(host: HostFunc, sp, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The region's input arrays in the order of the host function's parameters."""
    from intelligen_tvm.targets.render import safe_name

    by_param = {safe_name(n): n for n in (*sp.inputs, *sp.outputs)}
    assert sorted(by_param) == sorted(p.name for p in host.params), (by_param, host.params)
    n_in = len(host.params) - len(sp.outputs)
    symbols = {d: n for p in host.params[:n_in] for d, n in zip(p.shape, np.shape(feed[by_param[p.name]]))
               if d.isidentifier() and len(p.shape) == np.ndim(feed[by_param[p.name]])}
    return [feed[by_param[p.name]].reshape(p.shape_at(symbols)) for p in host.params[:n_in]]


@dataclass(frozen=True)
class EmulatedModel:
    """A one-region model compiled by the intelligen pipeline, with its emulated kernels."""

    build: CudaBuild
    emulated: Emulated
    model: onnx.ModelProto

    def run(self, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(emulated output, onnx.reference output) for graph inputs `inputs`."""
        from tests.helpers import model_region

        sp, feed, expected = model_region(self.model, inputs, "cuda")
        (got,) = self.emulated.run(region_inputs(self.emulated.host, sp, feed))
        return got, expected[sp.outputs[0]]


def emulate_model(model: onnx.ModelProto) -> EmulatedModel:
    import intelligen_tvm

    build = compile_cuda(intelligen_tvm.from_onnx(model))
    (name,) = build.hosts
    return EmulatedModel(build, emulate(build, name), model)
