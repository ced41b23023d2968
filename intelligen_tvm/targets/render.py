"""Render a planned GIR kernel as TVMScript TIR.

One renderer walks the instruction list once for every backend.  What differs between
backends is confined to a `Dialect`: how threads are opened, where a lane's registers
live, how a barrier is expressed and how a unit-wide reduction is done (warp shuffles on
a GPU; explicit loops over lanes in the CPU lowering, where the code between barriers
becomes a phase run for every (unit, lane)).  A program of several kernels (a row split
across groups: partial results, then their combination) is one PrimFunc whose kernels run
one after the other; its DRAM workspaces are global allocations of that PrimFunc.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Protocol

from ..gir import expr as E
from ..gir.program import Compute, Identity, Kernel, Level, Load, Program, Reduce, Store, Sync, numel
from ..gir.strategy import ParallelStrategy
from ..gir.symbolic import GENERATED_NAMES, symbols_of
from .geometry import geometry_of

SYNC = object()   # marker between phases


class Dialect(Protocol):
    def reg(self, name: str, index: str) -> str: ...
    def reg_alloc(self, name: str, size: int, dtype: str, s: ParallelStrategy) -> str: ...
    def sram_alloc(self, name: str, size: int, dtype: str) -> str: ...
    def unit_allreduce(self, acc: str, op: str, width: int, s: ParallelStrategy, dtype: str) -> list: ...
    def kernel_body(self, s: ParallelStrategy, allocs: list[str], segments: list) -> list[str]: ...


_COMBINE = {"sum": "({a} + {b})", "prod": "({a} * {b})", "max": "T.max({a}, {b})", "min": "T.min({a}, {b})"}
_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "floormod": "%",
          "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_FUNCTION_NAMES = {"abs": "T.fabs"}   # other unary ops are T.<op>

# Ops a T.vectorized loop may compute: TVM 0.27's CUDA codegen prints their vector form lane by
# lane inside a scope of its own.  Every other vector op (an extern call such as powf or expf, a
# cast, a select) it prints by binding each vector operand to an SSA temporary of the enclosing
# scope (`float4 v_ = t0_ptr[0];`) that stays live after the statement, so a later read of the
# same register text reuses the stale temporary once the register was updated in place (TVM's
# StorageRewrite reuses a dead register in place): those ops are computed lane by lane.  Bool
# values never live in vector registers either (a bool vector is read as ushortN/ucharN).
_VECTOR_OPS = frozenset({"add", "sub", "mul", "div", "max", "min", "neg"})


def vector_safe(op: str, dtypes: list[str]) -> bool:
    """Whether a T.vectorized loop may compute `op` on values of `dtypes` (result and args)."""
    return op in _VECTOR_OPS and "bool" not in dtypes


def slice_text(kernel: Kernel, sl, p: ExprPrinter) -> str:
    """DRAM slices index the parameter; on-chip tiles (SRAM, a CPU's L1 square) are flat so
    that no pass can undo their row padding (a 2-D tile could be compacted to its accessed width)."""
    index = [p.index(i) for i in sl.index]
    local = kernel.local_buffers.get(sl.buffer)
    if local is None:
        return index_text(sl.buffer, index)
    flat, stride = "0", 1
    for dim, text in zip(reversed(local.shape), reversed(index)):
        flat = f"{text} * {stride} + {flat}" if stride > 1 else f"{text} + {flat}"
        stride *= dim
    return f"{sl.buffer}[{flat}]"


def combine_text(op: str, a: str, b: str) -> str:
    return _COMBINE[op].format(a=a, b=b)


def const_text(c: E.Const) -> str:
    if c.dtype == "bool":
        return "T.bool(True)" if c.value else "T.bool(False)"
    if c.dtype == "float64":   # T.float64(x) range-checks x as a float32 (max/min inits overflow)
        return f'T.FloatImm("float64", {c.value!r})'
    if c.dtype == "uint64" and int(c.value) >= 2 ** 63:   # T.uint64 takes no int beyond int64
        high, low = divmod(int(c.value), 2 ** 32)
        return f"((T.uint64({high}) << T.uint64(32)) | T.uint64({low}))"
    return f"T.{c.dtype}({c.value!r})"


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + "".join(f"{d}, " for d in shape) + ")"


def index_text(buffer: str, indices: list[str]) -> str:
    return f"{safe_name(buffer)}[{', '.join(indices) if indices else '()'}]"


def safe_name(name: str) -> str:
    return "b_" + re.sub(r"\W", "_", name)


def _div(args: list[str], dtype: str) -> str:
    """TIR's `/` refuses integers: ONNX/TIR integer division truncates."""
    if dtype.startswith(("int", "uint")):
        return f"T.truncdiv({args[0]}, {args[1]})"
    return f"({args[0]} / {args[1]})"


def _neg(args: list[str], dtype: str) -> str:
    return f"(T.{dtype}(0) - {args[0]})" if dtype != "bool" else f"T.Not({args[0]})"


@dataclass
class ExprPrinter(E.Printer):
    """TIR text of scalar expressions: axes via `axis_text`, register values via `value_text`."""

    axis_text: dict[str, str]
    value_text: dict[str, str]

    code_for_op: ClassVar = {
        **{op: E.infix(sym) for op, sym in _INFIX.items()}, "div": _div,
        "and": E.template("T.And({0}, {1})"), "or": E.template("T.Or({0}, {1})"), "not": E.template("T.Not({0})"),
        "neg": _neg, "select": E.template("T.Select({0}, {1}, {2})"),
        "cast": lambda args, dtype: f'T.Cast("{dtype}", {args[0]})',
        **{op: E.template(f"T.{op}({{0}}, {{1}})") for op in ("max", "min", "pow")},
    }

    @classmethod
    def unknown_op(cls, op: str, dtype: str, args: list[str]) -> str:
        return f"{_FUNCTION_NAMES.get(op, f'T.{op}')}({', '.join(args)})"

    def var(self, e: E.Var) -> str:
        return self.axis_text[e.name]

    def const(self, e: E.Const) -> str:
        return const_text(e)

    def value(self, e: E.ValueRef) -> str:
        return self.value_text[e.value]

    def load(self, e: E.Load) -> str:
        return index_text(e.buffer, [self.index(i) for i in e.indices])

    def index(self, e: E.Expr) -> str:
        text = self(e)
        needs_cast = isinstance(e, (E.Load, E.ValueRef)) and e.dtype != "int32"
        return f'T.Cast("int32", {text})' if needs_cast else text


class KernelRenderer:
    def __init__(self, program: Program, kernel: Kernel, dialect: Dialect):
        self.program, self.kernel, self.d = program, kernel, dialect
        self.s: ParallelStrategy = kernel.strategy
        self.geo = geometry_of(kernel)
        self.row_axes = {a.name for a in kernel.row}
        self.allocs: list[str] = []
        self.segments: list = [[]]
        self._sram = 0
        self.load_side = True   # tile plan: before the first barrier lanes follow the load

    # ---- values ----------------------------------------------------------------------
    def _ref(self, name: str, elem: str) -> str:
        return self.d.reg(name, elem if self.geo.is_row(name) else "0")

    def _printer(self, elem: str) -> ExprPrinter:
        refs = {n: self._ref(n, elem) for n in self.kernel.values}
        return ExprPrinter(self.geo.axis_text(self.load_side), refs)

    def _emit(self, lines: list[str]) -> None:
        self.segments[-1].extend(lines)

    def _sync(self) -> None:
        self.segments.append(SYNC)
        self.segments.append([])

    def _guard(self, conds: list[str | None], body: list[str]) -> list[str]:
        conds = [c for c in conds if c]
        if not conds:
            return body
        cond = " and ".join(f"({c})" for c in conds)
        return [f"if {cond}:"] + ["    " + b for b in body]

    def _row_loop(self, body: list[str], vectorize: bool, conds: list[str | None] = ()) -> list[str]:
        """Loop over this lane's elements of a row value (or of its flat vector)."""
        s = self.s
        vkind = "T.vectorized" if vectorize and s.vector > 1 else "T.unroll"
        inner = [f"for v in {vkind}({s.vector}):"] + ["    " + b for b in self._guard(list(conds), body)]
        if not self.geo.chunked:
            return inner
        chunk_loop = "T.unroll" if s.unroll else "T.serial"
        return [f"for c in {chunk_loop}({s.chunks}):"] + ["    " + b for b in inner]

    # ---- instructions ----------------------------------------------------------------
    def render_instr(self, ins) -> None:
        if isinstance(ins, Identity):
            return
        if isinstance(ins, Sync):
            self._sync()
            self.load_side = False
        elif isinstance(ins, Load):
            self._load(ins)
        elif isinstance(ins, Store):
            self._store(ins)
        elif isinstance(ins, Compute):
            p = self._printer(self.geo.elem())
            val = self.kernel.values[ins.dst]
            args = [p.value_text[a] if isinstance(a, str) else p(a) for a in ins.args]
            line = f"{self._ref(ins.dst, self.geo.elem())} = {ExprPrinter.call(ins.op, val.dtype, args)}"
            dtypes = [val.dtype] + [self.kernel.values[a].dtype if isinstance(a, str) else a.dtype for a in ins.args]
            vec = vector_safe(ins.op, dtypes)
            # Lanes past the end hold no data: an integer division there may divide by zero (a trap on a CPU).
            traps = ins.op in ("div", "floordiv", "floormod") and not val.dtype.startswith("float")
            conds = [self.geo.row_valid(self.load_side), self.geo.n_valid("c") if self.geo.is_row(ins.dst) else None] if traps else []
            self._emit(self._row_loop([line], vec, conds) if self.geo.is_row(ins.dst) else self._guard(conds, [line]))
        elif isinstance(ins, Reduce):
            self._reduce(ins)
        else:
            raise TypeError(ins)

    def _load(self, ins: Load) -> None:
        p = self._printer(self.geo.elem())
        src = self._slice_text(ins.src, p)
        dtype = self.kernel.values[ins.dst].dtype
        if ins.src.predicate is not None:
            src = f"T.if_then_else({p(ins.src.predicate)}, {src}, T.Cast(\"{dtype}\", 0))"
        line = f"{self._ref(ins.dst, self.geo.elem())} = {src}"
        if self.geo.is_row(ins.dst):
            self._emit(self._row_loop([line], dtype != "bool", [self.geo.row_valid(self.load_side), self.geo.n_valid("c")]))
        else:
            self._emit(self._guard([self.geo.row_valid(self.load_side)], [line]))

    def _store(self, ins: Store) -> None:
        p = self._printer(self.geo.elem())
        dst = self._slice_text(ins.dst, p)
        line = f"{dst} = {self._ref(ins.src, self.geo.elem())}"
        if self.geo.is_row(ins.src) or ins.dst.axes() & self.row_axes:
            vec = self.kernel.values[ins.src].dtype != "bool"
            self._emit(self._row_loop([line], vec, [self.geo.row_valid(self.load_side), self.geo.n_valid("c")]))
        else:
            self._emit(self._guard([self.geo.row_valid(self.load_side), f"{self.geo.t()} == 0"], [line]))

    def _slice_text(self, sl, p: ExprPrinter) -> str:
        return slice_text(self.kernel, sl, p)

    def _reduce(self, ins: Reduce) -> None:
        self._emit([f"{self.d.reg(ins.dst, '0')} = {const_text(ins.init)}"])
        self._accumulate(ins)
        self._combine(ins)

    def _accumulate(self, ins: Reduce) -> None:
        """Fold this lane's elements of the row into its accumulator."""
        acc = self.d.reg(ins.dst, "0")
        src = self._ref(ins.src, self.geo.elem())
        if ins.shift is not None:   # online sum: relative to the max accumulated so far
            src = f"T.exp({src} - {self.d.reg(ins.shift, '0')})"
        self._emit(self._row_loop([f"{acc} = {combine_text(ins.op, acc, src)}"], False, [self.geo.n_valid("c")]))

    def _combine(self, ins: Reduce) -> None:
        """Combine the accumulators of the threads sharing a row: lanes of a unit, then units."""
        s = self.s
        if self.geo.units_split_rows:
            self._cross_units(ins, f"u * {s.lanes} + l", "l", f"w * {s.lanes} + l")
            return
        width = min(s.threads_per_row, s.lanes)
        dtype = self.kernel.values[ins.dst].dtype
        lane_steps = self.d.unit_allreduce(ins.dst, ins.op, width, s, dtype) if width > 1 else []
        for seg in lane_steps:
            if seg is SYNC:
                self._sync()
            else:
                self._emit(seg)
        if s.threads_per_row > s.lanes:
            self._cross_units(ins, "u", "0", "w", writer="l == 0")

    def _cross_units(self, ins: Reduce, slot: str, first: str, other: str, writer: str | None = None) -> None:
        """Partial results of the units of a group meet in shared memory."""
        s = self.s
        name = f"sred{self._sram}"
        self._sram += 1
        dtype = self.kernel.values[ins.dst].dtype
        self.allocs.append(self.d.sram_alloc(name, s.units * (s.lanes if writer is None else 1), dtype))
        acc = self.d.reg(ins.dst, "0")
        self._emit(self._guard([writer], [f"{name}[{slot}] = {acc}"]))
        self._sync()
        self._emit([f"{acc} = {name}[{first}]",
                    f"for w in T.unroll(1, {s.units}):",
                    f"    {acc} = {combine_text(ins.op, acc, f'{name}[{other}]')}"])

    # ---- whole kernel ----------------------------------------------------------------
    def body(self) -> list[str]:
        """The kernel's launch: thread nest, allocations and instructions."""
        s = self.s
        for name, val in self.kernel.values.items():
            self.allocs.append(self.d.reg_alloc(name, s.per_lane if self.geo.is_row(name) else 1, val.dtype, s))
        for red in self.kernel.instrs:
            if isinstance(red, Reduce) and red.shift is not None and s.streams:
                self.allocs.append(self.d.reg_alloc(f"{red.dst}_prev_max", 1, self.kernel.values[red.dst].dtype, s))
        for buf in self.kernel.local_buffers.values():
            self.allocs.append(self.d.sram_alloc(buf.name, numel(buf.shape), buf.dtype))
        if s.streams:
            self._render_streaming()
        else:
            for ins in self.kernel.instrs:
                self.render_instr(ins)
        return self.d.kernel_body(s, self.allocs, self.segments)

    def _render_streaming(self) -> None:
        """The row streams through `serial` steps, one sweep per reduction level (the planner
        recorded the sweeps); accumulators carry across steps and combine after each sweep."""
        before, passes = self.kernel.sweeps.before, self.kernel.sweeps.passes
        online = {r.shift: r for p in passes for r in p.reduces if r.shift is not None}
        for ins in before:
            self.render_instr(ins)
        for sweep in passes:
            for red in sweep.reduces:
                self._emit([f"{self.d.reg(red.dst, '0')} = {const_text(red.init)}"])
            start = len(self.segments[-1])
            for ins in sweep.sweep:
                if isinstance(ins, Reduce):
                    self._online_fold(ins, self._accumulate, online)
                else:
                    self.render_instr(ins)
            seg = self.segments[-1]
            seg[start:] = [f"for st in T.serial({self.s.serial}):"] + ["    " + b for b in seg[start:]]
            for red in sweep.reduces:
                self._online_fold(red, self._combine, online)
            for ins in sweep.after:
                self.render_instr(ins)

    def _online_fold(self, red: Reduce, fold, online: dict[str, Reduce]) -> None:
        """Fold `red` (accumulate a step, or combine across threads).  Around a max that an
        online sum is shifted by, the sum is rescaled by exp(max before - max after)."""
        if red.dst in online:
            self._emit([f"{self._prev_max(online[red.dst])} = {self.d.reg(red.dst, '0')}"])
        if red.shift is not None:
            acc = self.d.reg(red.dst, "0")
            self._emit([f"{acc} = {acc} * T.exp({self._prev_max(red)} - {self.d.reg(red.shift, '0')})"])
        fold(red)

    def _prev_max(self, online_sum: Reduce) -> str:
        return self.d.reg(f"{online_sum.dst}_prev_max", "0")


def prim_func_header(program: Program, func_name: str) -> list[str]:
    """The PrimFunc's signature, attributes and root block (every backend's): the region's
    inputs and outputs are its parameters, matched over their symbols when shapes are symbolic;
    other DRAM buffers (workspaces between kernels) are allocations of the root block."""
    params = [*program.inputs, *program.outputs]
    symbols = symbols_of(d for b in params for d in program.buffers[b].shape)
    assert not any(GENERATED_NAMES.fullmatch(s) for s in symbols), symbols   # symbolic.symbol() renames them
    if symbols:   # shapes bound at run time: handles matched to buffers over the symbols
        sig = ", ".join(f"h_{safe_name(b)}: T.handle" for b in params)
    else:
        sig = ", ".join(f'{safe_name(b)}: T.Buffer({shape_text(program.buffers[b].shape)}, "{program.buffers[b].dtype}")'
                        for b in params)
    lines = ["@T.prim_func(s_tir=True)", f"def {func_name}({sig}):",
             f'    T.func_attr({{"global_symbol": "{func_name}", "tirx.noalias": True, "tirx.is_scheduled": True}})']
    lines += [f"    {name} = T.int64()" for name in symbols]
    lines += [f'    {safe_name(b)} = T.match_buffer(h_{safe_name(b)}, {shape_text(program.buffers[b].shape)}, '
              f'"{program.buffers[b].dtype}")' for b in params if symbols]
    # A root block keeps Relax analyses that expect S-TIR (e.g. has_reshape_pattern) happy.
    lines.append('    with T.sblock("root"):')
    moved = {ins.dst.buffer if isinstance(ins, Store) else ins.src.buffer
             for k in program.kernels for ins in k.instrs if isinstance(ins, (Load, Store)) and ins.level is Level.DRAM}
    lines += [f'        {safe_name(b)} = T.alloc_buffer({shape_text(program.buffers[b].shape)}, "{program.buffers[b].dtype}")'
              for b in sorted(moved - set(params))]
    return lines


def render_program(program: Program, dialect: Dialect, func_name: str) -> str:
    """One PrimFunc: the region's inputs and outputs are its parameters, other DRAM buffers
    (workspaces between kernels) its global allocations, its kernels launched in order."""
    lines = prim_func_header(program, func_name)
    for kernel in program.kernels:
        lines += ["        " + b for b in KernelRenderer(program, kernel, dialect).body()]
    return "\n".join(lines) + "\n"
