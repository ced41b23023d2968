"""Measure compiled candidate kernels on a local device.

Each candidate is one PrimFunc, built alone for the target and timed with TVM's time evaluator
on random arguments. Failures (build or run) come back as a ``MeasureResult`` with ``error``
set, so a search never stops on one bad candidate.

Cache state: with ``flush_l2`` each repeat starts cold. On CPUs TVM evicts every argument but
the first (``cache_flush_cpu_non_first_arg``); on GPUs TVM copies a buffer twice the L2 size
(``cache_flush_bytes``) before each repeat. Both act once per repeat, so ``number=1`` (the
default) times cold calls only. Inputs larger than the L2 are cold whatever the flush does;
a kernel that crashes the process (e.g. a segfault) cannot be caught here: measure such
candidates through ``bundle`` or ``rpc``, which run them in another process.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import tvm

from . import bundle_runner as _rt
from .target_kinds import as_target, device_kind

ArgSpec = tuple[tuple[int, ...], str]

@dataclass
class MeasureInput:
    """One candidate: a PrimFunc and its parameters in order (inputs, then outputs)."""

    name: str
    prim_func: Any
    arg_specs: list[ArgSpec]

    @classmethod
    def from_prim_func(cls, name: str, prim_func: Any) -> MeasureInput:
        """Read the argument specs from the PrimFunc's buffer parameters (static shapes only)."""
        specs = []
        for param in prim_func.params:
            ty = getattr(param, "ty", None)
            if ty is None or not hasattr(ty, "shape"):
                raise ValueError(f"{name}: parameter {param} is not a buffer")
            specs.append((tuple(int(d) for d in ty.shape), str(ty.dtype)))
        return cls(name, prim_func, specs)


@dataclass
class MeasureResult:
    """Per-call times in microseconds, one per repeat; ``error`` is set instead when the
    candidate could not be built or run."""

    name: str
    times_us: list[float]
    error: str | None
    device: str

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.times_us)

    @property
    def median_us(self) -> float | None:
        return median(self.times_us) if self.ok else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(kw_only=True)
class MeasureSettings:
    """How each candidate is timed; the local and RPC measurers are settings plus a place to
    run, and a bundle carries them in its manifest."""

    repeat: int = 20
    number: int = 1
    warmup: int = 2
    min_repeat_ms: int = 0
    flush_l2: bool = True
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def time(self, module: Any, symbol: str, dev: Any, args: list) -> list[float]:
        """Per-call microseconds of `symbol`, one entry per repeat."""
        return _rt.time_kernel(module, symbol, dev, args, repeat=self.repeat, number=self.number,
                               warmup=self.warmup, min_repeat_ms=self.min_repeat_ms, flush_l2=self.flush_l2)


def symbol_name(name: str) -> str:
    """The C symbol a candidate's kernel is exported under (candidate names are free text)."""
    return "ig_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def build(inp: MeasureInput, target: Any) -> Any:
    """Compile one candidate alone; its function is exported as ``symbol_name(inp.name)``."""
    symbol = symbol_name(inp.name)
    func = inp.prim_func.with_attr("global_symbol", symbol)
    return tvm.compile(tvm.IRModule({symbol: func}), target=as_target(target))


def export(inp: MeasureInput, target: Any, path: Path) -> Any:
    """Build one candidate and write it as a shared library loadable by the runtime alone;
    returns the built module."""
    built = build(inp, target)
    built.export_library(str(path))
    return built


def export_many(inputs: list[MeasureInput], target: Any, path: Path) -> Any:
    """Build several candidates into one shared library, each under ``symbol_name(name)``:
    one compile and one link (and, for GPUs, one device module) instead of one per candidate;
    returns the built module."""
    funcs = {}
    for inp in inputs:
        symbol = symbol_name(inp.name)
        if symbol in funcs:
            raise ValueError(f"two candidates export the symbol {symbol!r}")
        funcs[symbol] = inp.prim_func.with_attr("global_symbol", symbol)
    built = tvm.compile(tvm.IRModule(funcs), target=as_target(target))
    built.export_library(str(path))
    return built


@dataclass
class LocalMeasurer(MeasureSettings):
    """Builds and times candidates on this machine's device for ``target``."""

    target: Any
    device_id: int = 0
    _dev: Any = field(default=None, init=False, repr=False)

    def device(self) -> Any:
        """The runtime device (raises if the target has no device kind we know)."""
        if self._dev is None:
            self._dev = tvm.runtime.device(device_kind(self.target), self.device_id)
        return self._dev

    def device_name(self) -> str:
        try:
            dev = self.device()
            return _rt.device_name(dev) if dev.exist else f"{dev} (absent)"
        except Exception as err:  # pylint: disable=broad-except
            return f"unknown ({err})"

    def measure(self, inputs: list[MeasureInput]) -> list[MeasureResult]:
        """One result per input, in order."""
        name = self.device_name()
        return [self._measure_one(inp, name) for inp in inputs]

    def _measure_one(self, inp: MeasureInput, dev_name: str) -> MeasureResult:
        try:
            module = build(inp, self.target).jit()
        except Exception as err:  # pylint: disable=broad-except
            return MeasureResult(inp.name, [], _rt.error_text("build", err), dev_name)
        try:
            dev = self.device()
            if not dev.exist:
                raise RuntimeError(f"no device {dev} on this host")
            args = _rt.make_args(tvm.runtime, inp.arg_specs, dev, seed=self.seed)
            times = self.time(module, symbol_name(inp.name), dev, args)
        except Exception as err:  # pylint: disable=broad-except
            return MeasureResult(inp.name, [], _rt.error_text("run", err), dev_name)
        return MeasureResult(inp.name, times, None, dev_name)
