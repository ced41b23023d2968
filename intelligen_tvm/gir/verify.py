"""The GIR verifier: SSA, bounds, levels, scopes and on-chip capacity."""

from __future__ import annotations

from .errors import VerifyError
from .expr import Call, Const, Expr, Var, free_vars, loads
from .hardware import HardwareModel
from .program import Kernel, Level, Load, Program, Reduce, Scope, Slice, Store, Sync, dtype_bytes
from .strategy import PlanFamily


def index_bounds(ix: Expr, axes: dict[str, int]) -> tuple[int, int] | None:
    """Interval of an integer index over the axes' ranges, or None when not affine-like."""
    if isinstance(ix, Const):
        return int(ix.value), int(ix.value)
    if isinstance(ix, Var):
        return 0, axes[ix.name] - 1
    if not isinstance(ix, Call) or len(ix.args) != 2:
        return None
    a, b = (index_bounds(x, axes) for x in ix.args)
    if a is None or b is None:
        return None
    if ix.op == "add":
        return a[0] + b[0], a[1] + b[1]
    if ix.op == "sub":
        return a[0] - b[1], a[1] - b[0]
    if ix.op == "mul":
        products = [x * y for x in a for y in b]
        return min(products), max(products)
    if ix.op == "floordiv" and b[0] == b[1] and b[0] > 0:
        return a[0] // b[0], a[1] // b[0]
    if ix.op == "floormod" and b[0] == b[1] and b[0] > 0:
        return (a[0], a[1]) if 0 <= a[0] and a[1] < b[0] else (0, b[0] - 1)
    return None


def _check_sync(kernel: Kernel) -> None:
    """Lanes read SRAM that other lanes wrote only after a barrier."""
    written: set[str] = set()
    for n, ins in enumerate(kernel.instrs):
        if isinstance(ins, Sync):
            written.clear()
        elif isinstance(ins, Store) and ins.level is Level.SRAM:
            written.add(ins.dst.buffer)
        elif isinstance(ins, Load) and ins.level is Level.SRAM and ins.src.buffer in written:
            raise VerifyError(f"{kernel.name}#{n}: {ins.src.buffer} read before a sync after its write")


def _check_slice(sl: Slice, kernel: Kernel, program: Program, where: str) -> None:
    buf = program.buffers.get(sl.buffer) or kernel.local_buffers.get(sl.buffer)
    if buf is None:
        raise VerifyError(f"{where}: unknown buffer {sl.buffer}")
    if len(sl.index) != len(buf.shape):
        raise VerifyError(f"{where}: {sl.buffer} has rank {len(buf.shape)}, indexed with {len(sl.index)}")
    axes = kernel.axes
    for dim, (ix, size) in enumerate(zip(sl.index, buf.shape)):
        unknown = free_vars(ix) - set(axes)
        if unknown:
            raise VerifyError(f"{where}: {sl.buffer} dim {dim} uses unknown axes {sorted(unknown)}")
        if isinstance(ix, Var) and axes[ix.name] > size and sl.predicate is None:
            raise VerifyError(f"{where}: {sl.buffer} dim {dim} of size {size} indexed by {ix.name}<{axes[ix.name]}>")
        bounds = index_bounds(ix, axes)
        if bounds is not None and sl.predicate is None and not (0 <= bounds[0] and bounds[1] < size):
            raise VerifyError(f"{where}: {sl.buffer} dim {dim} index in [{bounds[0]}, {bounds[1]}] out of bounds of {size}")
        for ld in loads(ix):
            _check_slice(Slice(ld.buffer, ld.indices), kernel, program, where)


def verify_kernel(kernel: Kernel, program: Program, hw: HardwareModel) -> None:
    _check_sync(kernel)
    defined: set[str] = set()
    row_axes = {a.name for a in kernel.row}
    s = kernel.strategy
    group_reductions = 0
    for n, ins in enumerate(kernel.instrs):
        where = f"{kernel.name}#{n}"
        for r in ins.reads:
            if r not in defined:
                raise VerifyError(f"{where}: %{r} used before definition")
        if isinstance(ins, Load):
            _check_slice(ins.src, kernel, program, where)
            if (ins.level is Level.SRAM) != (ins.src.buffer in kernel.local_buffers):
                raise VerifyError(f"{where}: {ins.src.buffer} is not at level {ins.level.value}")
            if ins.level is Level.DRAM and ins.src.buffer in program.outputs:
                raise VerifyError(f"{where}: region output {ins.src.buffer} read back from DRAM")
        if isinstance(ins, Store):
            _check_slice(ins.dst, kernel, program, where)
            if ins.level is Level.DRAM and ins.dst.buffer in program.inputs:
                raise VerifyError(f"{where}: store into region input {ins.dst.buffer}")
        if isinstance(ins, Reduce):
            if kernel.values[ins.dst].axes & row_axes:
                raise VerifyError(f"{where}: reduction result still varies over row axes")
            if s is not None and ins.scope is Scope.UNIT and s.threads_per_row > hw.lanes_per_unit:
                raise VerifyError(f"{where}: unit-scope reduction over {s.threads_per_row} threads")
            if s is not None and ins.scope is Scope.LANE and s.threads_per_row > 1:
                raise VerifyError(f"{where}: lane-scope reduction but the row is split over lanes")
            if ins.shift is not None:
                _check_online_sum(ins, kernel, where)
            group_reductions += ins.scope is Scope.GROUP
        defined |= set(ins.writes)
    if s is None:
        return
    if s.kind is PlanFamily.SPLIT_ROW:
        raise VerifyError(f"{kernel.name}: a split row is verified as its phase kernels (split_row.py)")
    for v in kernel.values.values():
        if v.axes & row_axes and s.per_lane > hw.reg_elems_per_lane:
            raise VerifyError(f"{kernel.name}: %{v.name} needs {s.per_lane} registers per lane")
    sram = group_reductions * s.units * s.lanes * max((dtype_bytes(v.dtype) for v in kernel.values.values()), default=4)
    sram += sum(b.nbytes for b in kernel.local_buffers.values())
    if sram > hw.sram_bytes_per_group:
        raise VerifyError(f"{kernel.name}: {sram} bytes of shared memory exceed {hw.sram_bytes_per_group}")
    if s.units * s.lanes > hw.max_threads_per_group:
        raise VerifyError(f"{kernel.name}: {s.units * s.lanes} threads per group")


def _check_online_sum(ins: Reduce, kernel: Kernel, where: str) -> None:
    """An online sum rescales by a running max: that of the same row, at the same scope."""
    shift = next((j for j in kernel.instrs if isinstance(j, Reduce) and j.dst == ins.shift), None)
    if ins.op != "sum" or shift is None or shift.op != "max" or shift.src != ins.src or shift.scope is not ins.scope:
        raise VerifyError(f"{where}: an online sum must be shifted by the max of the same row")


def _check_launch_order(program: Program) -> None:
    """A DRAM buffer that is neither input nor output (a workspace) is read only by a later
    kernel than one that wrote it: groups of one launch cannot wait for each other."""
    workspaces = set(program.buffers) - set(program.inputs) - set(program.outputs)
    stored: set[str] = set()
    for k in program.kernels:
        mine = set()
        for n, ins in enumerate(k.instrs):
            if isinstance(ins, Store) and ins.level is Level.DRAM:
                mine.add(ins.dst.buffer)
            elif isinstance(ins, Load) and ins.src.buffer in workspaces and ins.src.buffer not in stored:
                raise VerifyError(f"{k.name}#{n}: {ins.src.buffer} read before an earlier kernel wrote it")
        stored |= mine


def verify(program: Program, hw: HardwareModel) -> None:
    """Raise VerifyError on the first violation."""
    _check_launch_order(program)
    for k in program.kernels:
        verify_kernel(k, program, hw)
