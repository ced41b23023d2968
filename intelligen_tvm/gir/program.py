"""GIR programs: computation, data movement and parallel strategy, all explicit.

A program is a list of kernels.  Each kernel iterates a *region space* — named axes split
into outer axes O (the parallel "rows") and row axes R (reduced or spanned within a row) —
and holds a straight-line list of instructions over SSA register values.  Every access to
memory is a `Move` of a `Slice`: a buffer at a memory level indexed by a function of the
region axes.  The parallel strategy (`strategy.py`) maps region axes to
(group, unit, lane, serial loop), which makes every slice's offset a function of
(parallel id, loop id, lane) as the design brief asks.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType

from .expr import Expr, ValueRef, free_vars, loads, to_text, walk_value_refs
from .strategy import ParallelStrategy


class Level(str, Enum):
    DRAM = "dram"
    SRAM = "sram"
    REG = "reg"


class Scope(str, Enum):
    """Where a reduction's partial results meet."""

    LANE = "lane"     # serially inside one lane
    UNIT = "unit"     # across the lanes of a unit (warp shuffles)
    GROUP = "group"   # across units of a group (shared memory + sync)


@dataclass(frozen=True)
class Axis:
    name: str
    extent: int


@dataclass(frozen=True)
class Buffer:
    name: str
    shape: tuple[int, ...]
    dtype: str
    level: Level = Level.DRAM

    @property
    def nbytes(self) -> int:
        return numel(self.shape) * dtype_bytes(self.dtype)


@dataclass(frozen=True)
class Slice:
    """A view of a buffer: element `index(axes)` for every point of the region space."""

    buffer: str
    index: tuple[Expr, ...]
    predicate: Expr | None = None   # loads under a select branch (concat) are guarded

    @property
    def exprs(self) -> tuple[Expr, ...]:
        """The index and the guard: what the slice's elements depend on."""
        return self.index if self.predicate is None else (*self.index, self.predicate)

    def axes(self) -> set[str]:
        names: set[str] = set()
        for e in self.exprs:
            names |= free_vars(e)
        return names

    def value_refs(self) -> set[str]:
        """Register values the slice reads: gathered indices and the guard's condition."""
        return walk_value_refs(self.exprs)

    def text(self) -> str:
        body = f"{self.buffer}[{', '.join(to_text(e) for e in self.index)}]"
        return body if self.predicate is None else f"{body} if {to_text(self.predicate)}"


@dataclass(frozen=True)
class Value:
    """An SSA register value; `axes` are the region axes it varies over."""

    name: str
    dtype: str
    axes: frozenset[str]


@dataclass(frozen=True)
class Instr:
    @property
    def reads(self) -> tuple[str, ...]:
        return ()

    @property
    def writes(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class Load(Instr):
    """move DRAM/SRAM slice -> register value."""

    dst: str
    src: Slice
    level: Level = Level.DRAM

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.dst,)

    @property
    def reads(self) -> tuple[str, ...]:
        return tuple(e.value for i in self.src.exprs for e in _value_refs(i))


@dataclass(frozen=True)
class Store(Instr):
    """move register value -> DRAM/SRAM slice."""

    dst: Slice
    src: str
    level: Level = Level.DRAM

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.src,)


@dataclass(frozen=True)
class Compute(Instr):
    """unary / binary / select / cast on register values (elementwise within a lane)."""

    dst: str
    op: str
    args: tuple[str | Expr, ...]   # value names or constants

    @property
    def kind(self) -> str:
        if self.op in ("select", "cast"):
            return self.op
        return "unary" if len(self.args) == 1 else "binary"

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.dst,)

    @property
    def reads(self) -> tuple[str, ...]:
        return tuple(a for a in self.args if isinstance(a, str))


@dataclass(frozen=True)
class Reduce(Instr):
    """Reduce a row value over all row axes into a per-row value, meeting at `scope`."""

    dst: str
    src: str
    op: str            # sum | max | min | prod
    init: Expr
    scope: Scope = Scope.LANE
    shift: str | None = None   # sum only: sum of exp(src - shift), `shift` being the max reduction
                               # of the same src, accumulated in the same sweep (online softmax)

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.dst,)

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.src,) if self.shift is None else (self.src, self.shift)


@dataclass(frozen=True)
class Sync(Instr):
    """Barrier at a memory level: needed only where one unit reads what another wrote."""

    level: Level = Level.SRAM


@dataclass(frozen=True)
class Identity(Instr):
    """`dst` is a view of `src` (reshape/transpose/slice/gather): no data moves.

    The slice is written in the view's own coordinates; loads of `dst` have already been
    rewritten to `src` through the composed index, so this records the fold for readers."""

    dst: str
    src: Slice


@dataclass(frozen=True)
class StreamPass:
    """One sweep over a streamed row: the row instructions recomputed inside the serial loop
    (loads, computes, the sweep's reductions accumulated, stores), then the per-row
    instructions that become computable once those reductions are combined."""

    sweep: tuple[Instr, ...]
    reduces: tuple[Reduce, ...]
    after: tuple[Instr, ...]


@dataclass(frozen=True)
class Sweeps:
    """A row kernel's instructions before its first sweep, then its sweeps in order; `held`
    are the row values one sweep keeps in a per-task buffer for a later one to read (a CPU
    plan that holds its row; a streamed row recomputes everything)."""

    before: tuple[Instr, ...]
    passes: tuple[StreamPass, ...]
    held: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Kernel:
    """One launch over a region space.  Immutable: rewrites build a new kernel
    (`dataclasses.replace`); sequences are stored as tuples and maps as read-only views."""

    name: str
    outer: tuple[Axis, ...]
    row: tuple[Axis, ...]
    instrs: tuple[Instr, ...]
    values: Mapping[str, Value]
    strategy: ParallelStrategy | None = None   # set once planned
    local_buffers: Mapping[str, Buffer] = field(default_factory=dict)   # on-chip (SRAM) tiles
    sweeps: Sweeps | None = None     # recorded by the planner: a streamed or split row, every CPU row plan

    def __post_init__(self) -> None:
        _freeze(self, outer=tuple, row=tuple, instrs=tuple, values=_frozen_map, local_buffers=_frozen_map)

    @property
    def axes(self) -> dict[str, int]:
        return {a.name: a.extent for a in (*self.outer, *self.row)}

    def renamed(self, old: str, new: str) -> Kernel:
        """The kernel of program `old` as a kernel of program `new` (phase suffixes kept)."""
        return replace(self, name=new + self.name[len(old):]) if self.name.startswith(old) else self


@dataclass(frozen=True)
class Program:
    """One region: buffers (inputs, outputs, intermediates) and kernels in order.  Immutable
    like `Kernel`."""

    name: str
    buffers: Mapping[str, Buffer]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    kernels: tuple[Kernel, ...] = ()

    def __post_init__(self) -> None:
        _freeze(self, buffers=_frozen_map, inputs=tuple, outputs=tuple, kernels=tuple)

    def renamed(self, name: str) -> Program:
        """The same program under another name: kernel names follow it."""
        return replace(self, name=name, kernels=tuple(k.renamed(self.name, name) for k in self.kernels))

    def text(self) -> str:
        lines = [f"gir.program {self.name}"]
        for b in self.buffers.values():
            role = "in" if b.name in self.inputs else "out" if b.name in self.outputs else "tmp"
            lines.append(f"  buffer {b.name}: {b.dtype}{list(b.shape)} @{b.level.value} ({role})")
        for k in self.kernels:
            outer = ", ".join(f"{a.name}<{a.extent}>" for a in k.outer)
            row = ", ".join(f"{a.name}<{a.extent}>" for a in k.row)
            lines.append(f"  kernel {k.name} outer({outer}) row({row})")
            if k.strategy is not None:
                lines.append(f"    strategy {k.strategy}")
            for b in k.local_buffers.values():
                lines.append(f"    buffer {b.name}: {b.dtype}{list(b.shape)} @{b.level.value}")
            for ins in k.instrs:
                lines.append("    " + instr_text(ins, k.values))
        return "\n".join(lines)


def _frozen_map(items: Mapping) -> Mapping:
    return items if isinstance(items, MappingProxyType) else MappingProxyType(dict(items))


def _freeze(obj: object, **convert) -> None:
    """Store each named field of a frozen dataclass converted (lists to tuples, dicts to
    read-only copies), so that no caller's later mutation of what it passed in leaks in."""
    for name, fn in convert.items():
        object.__setattr__(obj, name, fn(getattr(obj, name)))


def instr_op(ins: Instr) -> str:
    """The instruction's operation name: one naming for the text form and the pictures."""
    if isinstance(ins, Load):
        return f"move.{ins.level.value}->reg"
    if isinstance(ins, Store):
        return f"move.reg->{ins.level.value}"
    if isinstance(ins, Compute):
        return f"{ins.kind}.{ins.op}"
    if isinstance(ins, Reduce):
        return f"reduce.{ins.op}.{ins.scope.value}"
    if isinstance(ins, Sync):
        return f"sync.{ins.level.value}"
    if isinstance(ins, Identity):
        return "identity"
    raise TypeError(ins)


def instr_text(ins: Instr, values: Mapping[str, Value]) -> str:
    def v(name: str) -> str:
        val = values.get(name)
        axes = ",".join(sorted(val.axes)) if val else "?"
        return f"%{name}:{val.dtype if val else '?'}<{axes}>"

    op = instr_op(ins)
    if isinstance(ins, Load):
        return f"{v(ins.dst)} = {op} {ins.src.text()}"
    if isinstance(ins, Store):
        return f"{op} {ins.dst.text()} = %{ins.src}"
    if isinstance(ins, Compute):
        args = ", ".join(f"%{a}" if isinstance(a, str) else to_text(a) for a in ins.args)
        return f"{v(ins.dst)} = {op}({args})"
    if isinstance(ins, Reduce):
        src = f"%{ins.src}" if ins.shift is None else f"exp(%{ins.src} - online %{ins.shift})"
        return f"{v(ins.dst)} = {op}({src}, init={to_text(ins.init)})"
    if isinstance(ins, Identity):
        return f"{op} {ins.dst} = view {ins.src.text()}"
    return op


def _value_refs(expr: Expr) -> list[ValueRef]:
    from .expr import walk

    return [e for e in walk(expr) if isinstance(e, ValueRef)]


def numel(shape: Iterable[int]) -> int:
    """Element count; a symbolic extent keeps it symbolic (see symbolic.py)."""
    n = 1
    for s in shape:
        n = n * s
    return n


@functools.cache   # a handful of dtype names, asked for every value of every candidate
def dtype_bytes(dtype: str) -> int:
    if dtype == "bool":
        return 1
    digits = "".join(ch for ch in dtype if ch.isdigit())
    return max(1, int(digits) // 8) if digits else 4


def slice_footprint(sl: Slice, axes: Mapping[str, int], buffers: Mapping[str, Buffer],
                    values: Mapping[str, Value] | None = None) -> int:
    """Distinct bytes a slice touches over the whole launch.

    Index maps of reshape/transpose/broadcast/strided slice are injective in the axes they
    use, so the footprint is the product of those axes' extents (gathers included: every
    gathered row counts), capped by the buffer size.  A broadcast operand re-read by many
    groups counts once: those re-reads are served by L2, not DRAM.
    """
    used: set[str] = set()
    for e in sl.index:
        used |= free_vars(e)
        for ld in loads(e):
            for i in ld.indices:
                used |= free_vars(i)
        for ref in walk_value_refs((e,)):
            used |= set(values[ref].axes) if values else set()
    buf = buffers[sl.buffer]
    count = 1
    for name in used:
        count *= axes.get(name, 1)
    return min(count * dtype_bytes(buf.dtype), buf.nbytes)


def kernel_dram_bytes(kernel: Kernel, buffers: Mapping[str, Buffer]) -> int:
    """Bytes moved between DRAM and the chip by the kernel's move instructions."""
    total = 0
    for ins in kernel.instrs:
        if isinstance(ins, (Load, Store)) and ins.level is Level.DRAM:
            sl = ins.src if isinstance(ins, Load) else ins.dst
            total += slice_footprint(sl, kernel.axes, buffers, kernel.values)
    return total
