"""The CPU backend: a planned dataflow graph (a `CpuStrategy`, see dataflow_graph/cpu_plan.py)
as TVMScript TIR that TVM's LLVM codegen turns into a parallel loop of SIMD code.

Shape of every kernel: `for t in T.parallel(tasks)` (TVM's thread pool, one contiguous block
of tasks per core), per-task buffers allocated once, then per kind

- row: `for r in T.serial(rows_per_task)`: one sweep per reduction level over the row in
  steps of `accumulators` vectors (`T.unroll` x `T.vectorized`, a vector loop covering two of
  them where it can), then the tail's whole vectors, then a scalar loop over fewer elements
  than a vector; each reduction keeps `accumulators x vector` partial results folded into one
  after the sweep; values later sweeps need are kept in per-task row buffers (L1/L2) or
  recomputed;
- column: `for n in T.serial(row)`: the block's outer elements in vectors, one accumulator
  per element;
- flat: the task's elements in unrolled vector steps (rows of the innermost axes swept like a
  row's);
- tile: the transposed operand loaded along its contiguous axis into an L1 square, then read
  back along the output's contiguous axis.

Register values live in small per-task buffers indexed by the vector lane (LLVM keeps them in
registers): TVM 0.27's vectorizer gets scalar `let` bindings inside a vectorized loop wrong.
Transcendentals are expanded into vectorizable arithmetic (cpu_math.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..dataflow_graph.cpu_plan import CpuStrategy
from ..gir import expr as E
from ..gir.program import Compute, Identity, Instr, Kernel, Load, Program, Reduce, Store, Sweeps, Sync, dtype_bytes, numel
from ..gir.symbolic import is_symbolic
from . import cpu_math
from .geometry import coords
from .render import ExprPrinter, combine_text, const_text, prim_func_header, slice_text

call_text = ExprPrinter.call   # (op, dtype, argument texts) -> TIR text
CACHE_LINE_BYTES = 64          # x86-64 and the common Arm cores


@dataclass
class Ctx:
    """Where the values of one loop body live: register, held-row and per-row indices, the
    axes' coordinates, and the row values the body itself computes."""

    reg: str
    held: str
    prow: str
    axes: dict[str, str]
    local: set[str] = field(default_factory=set)


def _indent(lines: list[str], n: int = 1) -> list[str]:
    return ["    " * n + line for line in lines]


def _loop(header: str, body: list[str]) -> list[str]:
    return [header] + _indent(body) if body else []


def _guard(cond: str | None, body: list[str]) -> list[str]:
    return body if not cond or not body else [f"if {cond}:"] + _indent(body)


class CpuKernelRenderer:
    def __init__(self, program: Program, kernel: Kernel):
        self.program, self.kernel = program, kernel
        self.s: CpuStrategy = kernel.strategy
        self.row_axes = {a.name for a in kernel.row}
        self.allocs: dict[str, str] = {}
        self.n = numel(a.extent for a in kernel.row)
        self.held: frozenset[str] = frozenset()
        self.output_homes: dict[str, Store] = {}

    # ---- lanes -----------------------------------------------------------------------
    def _lanes(self, instrs) -> str:
        """How a loop over SIMD lanes runs the body of `instrs`: TVM 0.27's LLVM vectorizer
        gets bool lanes wrong (bool buffers are bytes in memory; fuzz seed 0 index 106), so a
        body that touches a bool value or buffer computes lane by lane (`T.unroll`: LLVM may
        still vectorize it); every other body is `T.vectorized`."""
        return "T.unroll" if any(self._touches_bool(ins) for ins in instrs) else "T.vectorized"

    def _touches_bool(self, ins: Instr) -> bool:
        slices = [ins.src] if isinstance(ins, Load) else [ins.dst] if isinstance(ins, Store) else []
        exprs = [a for a in getattr(ins, "args", ()) if not isinstance(a, str)] + [e for sl in slices for e in sl.exprs]
        names = set(ins.reads) | set(ins.writes) | E.walk_value_refs(tuple(exprs))
        if any(getattr(x, "dtype", None) == "bool" for e in exprs for x in E.walk(e)):
            return True
        buffers = self.program.buffers | self.kernel.local_buffers
        return (any(self.kernel.values[n].dtype == "bool" for n in names if n in self.kernel.values)
                or any(buffers[sl.buffer].dtype == "bool" for sl in slices if sl.buffer in buffers))

    # ---- storage ---------------------------------------------------------------------
    def _alloc(self, name: str, size: int, dtype: str) -> str:
        self.allocs.setdefault(name, f'{name} = T.alloc_buffer(({size},), "{dtype}")')
        return name

    def _is_row(self, name: str) -> bool:
        return self.s.kind in ("flat", "tile") or bool(self.kernel.values[name].axes & self.row_axes)

    def _reg_size(self) -> int:
        s = self.s
        return {"row": s.vector * s.accumulators, "flat": s.vector * s.accumulators,
                "column": s.vector, "tile": s.tile}[s.kind]

    def _prow_size(self) -> int:
        return self.s.rows_per_group if self.s.kind == "column" else 1

    def _home(self, name: str, ctx: Ctx) -> str:
        """Where an instruction writes value `name`."""
        dtype = self.kernel.values[name].dtype
        if self._is_row(name):
            return f"{self._alloc('r_' + name, self._reg_size(), dtype)}[{ctx.reg}]"
        return f"{self._alloc('p_' + name, self._prow_size(), dtype)}[{ctx.prow}]"

    def _tmp(self, name: str, ctx: Ctx):
        dtype = self.kernel.values[name].dtype
        size, index = (self._reg_size(), ctx.reg) if self._is_row(name) else (self._prow_size(), ctx.prow)
        return lambda part: f"{self._alloc(f't_{name}_{part}', size, dtype)}[{index}]"

    def _held_ref(self, name: str, ctx: Ctx) -> str:
        home = self.output_homes.get(name)
        if home is not None:
            return self._slice_text(home.dst, self._printer(ctx))
        size = self.n * (self.s.rows_per_group if self.s.kind == "column" else 1)
        return f"{self._alloc('h_' + name, size, self.kernel.values[name].dtype)}[{ctx.held}]"

    def _producers(self) -> dict[str, Instr]:
        return {w: i for i in self.kernel.instrs for w in i.writes}

    def _text(self, name: str, ctx: Ctx) -> str:
        """How a body reads value `name`: bool values inline their expression; row values come
        from registers (computed in this body) or the held buffer; others from per-row storage."""
        producer = self._producers().get(name)
        if self.kernel.values[name].dtype == "bool" and isinstance(producer, Compute):
            p = self._printer(ctx)
            return call_text(producer.op, "bool", [self._text(a, ctx) if isinstance(a, str) else p(a)
                                                   for a in producer.args])
        if self._is_row(name):
            if name in ctx.local or self.s.kind in ("flat", "tile"):
                return f"r_{name}[{ctx.reg}]"
            return self._held_ref(name, ctx)
        return f"p_{name}[{ctx.prow}]"

    def _printer(self, ctx: Ctx) -> ExprPrinter:
        return _LazyPrinter(ctx.axes, self, ctx)

    # ---- instructions ----------------------------------------------------------------
    def instr(self, ins: Instr, ctx: Ctx) -> list[str]:
        if isinstance(ins, (Identity, Sync)):
            return []
        p = self._printer(ctx)
        if isinstance(ins, Load):
            dtype = self.kernel.values[ins.dst].dtype
            src = self._slice_text(ins.src, p)
            if ins.src.predicate is not None:
                src = f'T.if_then_else({p(ins.src.predicate)}, {src}, T.Cast("{dtype}", 0))'
            return self._define(ins.dst, ctx, [f"{self._home(ins.dst, ctx)} = {src}"])
        if isinstance(ins, Store):
            return [f"{self._slice_text(ins.dst, p)} = {self._text(ins.src, ctx)}"]
        if isinstance(ins, Compute):
            dtype = self.kernel.values[ins.dst].dtype
            if dtype == "bool":
                return []   # inlined where it is read
            args = [self._text(a, ctx) if isinstance(a, str) else p(a) for a in ins.args]
            dst = self._home(ins.dst, ctx)
            if self._per_row_divisor(ins):   # one division per row, hoisted out of the sweep
                return self._define(ins.dst, ctx, [f"{dst} = {args[0]} * (T.{dtype}(1) / {args[1]})"])
            lines = cpu_math.expand(ins.op, dtype, args, dst, self._tmp(ins.dst, ctx))
            return self._define(ins.dst, ctx, lines or [f"{dst} = {call_text(ins.op, dtype, args)}"])
        if isinstance(ins, Reduce):
            if self.s.kind in ("flat", "tile"):   # no row axes left (a reduction over extent 1)
                src = self._text(ins.src, ctx)
                return [f"{self._home(ins.dst, ctx)} = {combine_text(ins.op, const_text(ins.init), src)}"]
            acc = self._accumulator(ins, ctx)
            return [f"{acc} = {combine_text(ins.op, acc, self._text(ins.src, ctx))}"]
        raise TypeError(ins)

    def _per_row_divisor(self, ins: Compute) -> bool:
        """A row divided by a per-row value (softmax, norms): a vector division costs several
        multiplications, the reciprocal is computed once per row (within 1 ulp)."""
        divisor = ins.args[1] if ins.op == "div" else None
        return (self.s.kind == "row" and isinstance(divisor, str) and not self._is_row(divisor)
                and self.kernel.values[ins.dst].dtype.startswith("float"))

    def _define(self, name: str, ctx: Ctx, lines: list[str]) -> list[str]:
        if self._is_row(name) and self.s.kind in ("row", "column"):
            ctx.local.add(name)
            if name in self.held:
                lines = lines + [f"{self._held_ref(name, ctx)} = r_{name}[{ctx.reg}]"]
        return lines

    def _accumulator(self, red: Reduce, ctx: Ctx) -> str:
        dtype = self.kernel.values[red.dst].dtype
        if self.s.kind == "column":
            return f"{self._alloc('p_' + red.dst, self._prow_size(), dtype)}[{ctx.prow}]"
        return f"{self._alloc('a_' + red.dst, self._reg_size(), dtype)}[{ctx.reg}]"

    def _slice_text(self, sl, p: ExprPrinter) -> str:
        return slice_text(self.kernel, sl, p)

    def _block(self, instrs, ctx: Ctx) -> list[str]:
        return [line for ins in instrs for line in self.instr(ins, ctx)]

    # ---- kinds -----------------------------------------------------------------------
    def body(self) -> list[str]:
        s = self.s
        inner = {"row": self._row, "column": self._column, "flat": self._flat, "tile": self._tile}[s.kind]()
        for buf in self.kernel.local_buffers.values():
            self._alloc(buf.name, numel(buf.shape), buf.dtype)
        return [f"for t in T.parallel({s.groups}):"] + _indent(list(self.allocs.values()) + inner)

    def _row(self) -> list[str]:
        s = self.s
        sweeps = self.kernel.sweeps
        self.held = sweeps.held
        self.output_homes = self._output_homes(sweeps)
        row = f"(t * {s.rows_per_group} + r)"
        outer = coords(self.kernel.outer, row)
        per_row = Ctx("0", "0", "0", outer)
        lines = self._block(sweeps.before, per_row)
        for sweep in sweeps.passes:
            for red in sweep.reduces:
                lines += _loop(f"for j in {self._lanes([red])}({s.vector * s.accumulators}):",
                               [f"{self._accumulator(red, Ctx('j', '', '', {}))} = {const_text(red.init)}"])
            at = lambda base, lane, reg: Ctx(reg, f"{base} + {lane}" if lane else base, "0",  # noqa: E731
                                             outer | coords(self.kernel.row, base, lane))
            last = sweep is sweeps.passes[-1]
            lines += self._sweep(sweep.sweep, self.kernel.row, at,
                                 lambda step, width: self._prefetch_next_row(sweeps, row, step, width) if last else [])
            for red in sweep.reduces:
                lines += self._fold(red)
            lines += self._block(sweep.after, per_row)
        guard = None if s.groups * s.rows_per_group == s.outer_size else f"{row} < {s.outer_size}"
        return _loop(f"for r in T.serial({s.rows_per_group}):", _guard(guard, lines))

    def _sweep(self, instrs, axes, at: Callable[[str, str, str], Ctx],
               ahead: Callable[[str, int], list[str]] = lambda step, width: []) -> list[str]:
        """One sweep over a row (row_size elements of `axes`): steps of `accumulators` vectors,
        then the tail's whole vectors (a shorter step), then scalars past the last whole
        vector.  `at(base, lane, reg)` is the body's context at row position `base` (+ `lane`),
        register `reg`; `ahead(step, width)` goes before each whole step (loop variable `step`,
        `width` elements).  LLVM vectorizes a longer scalar tail itself, at a cost: the bias
        add's rows of 784 (6 steps of 8 x 16, then 16 scalars) took 1.6x the LLVM codegen time
        of the same kernel with a vector tail (min of 15 builds: 0.068 s vs 0.043 s)."""
        s = self.s
        v, k, n = s.vector, s.accumulators, s.row_size
        full, whole, rem = n // (v * k), n % (v * k) // v, n % v
        lines = _loop(f"for st in T.serial({full}):", ahead("st", k * v) + self._step(instrs, axes, at, "st", k)) \
            if full else []
        if whole:
            lines += self._step(instrs, axes, at, str(full), whole)
        if rem:
            pos = f"({full * v * k + whole * v} + e)"
            lines += _loop(f"for e in T.serial({rem}):", self._block(instrs, at(pos, "", "e")))
        return lines

    def _step(self, instrs, axes, at: Callable[[str, str, str], Ctx], st: str, count) -> list[str]:
        """`count` vectors at step `st` (of `accumulators` vectors) of a sweep over `axes`."""
        v, k = self.s.vector, self.s.accumulators
        lanes = self._lanes(instrs)
        pair = self._vectors_per_loop(axes, count)
        w = pair * v
        if count == pair:
            return _loop(f"for vv in {lanes}({w}):", self._block(instrs, at(f"({st} * {k * v})", "vv", "vv")))
        base = f"(({st} * {k} + kk) * {v})" if pair == 1 else f"({st} * {k * v} + kk * {w})"
        body = self._block(instrs, at(base, "vv", f"kk * {w} + vv"))
        unroll = "T.serial" if is_symbolic(count) else "T.unroll"
        return _loop(f"for kk in {unroll}({count // pair}):", _loop(f"for vv in {lanes}({w}):", body))

    def _vectors_per_loop(self, axes, count) -> int:
        """How many of a step's `count` vectors one vector loop covers: two where the count is
        even, one vector loop of twice the lanes, the same operations on the same registers
        (LLVM splits it into the ISA's registers as it splits the plan's vectors) in less code
        to build: the swiglu kernel, 4 x 32 lanes, builds in 42 ms instead of 47 (min of 8).
        Not more: one loop of all 4 x 32 builds in 37 ms but runs 8% slower (its values
        spill).  One where the count is symbolic or odd, or where the wider vector could cross
        the innermost axis of several (a vector never does)."""
        if is_symbolic(count) or count % 2:
            return 1
        inner = axes[-1].extent if axes else 1
        return 2 if len(axes) <= 1 or (not is_symbolic(inner) and inner % (2 * self.s.vector) == 0) else 1

    def _prefetch_next_row(self, sweeps: Sweeps, row: str, st: str, width: int) -> list[str]:
        """With several sweeps, the last one prefetches what the next row's first sweep loads
        from DRAM, one cache line at a time: that sweep otherwise waits on memory with little
        to compute (softmax's max), and the hardware prefetcher does not run ahead across the
        sweeps of a row held in L1 (softmax 4096 x 1024, one core: 1848 -> 1394 us).  Loads
        whose index depends on values (gathers) or a guard, and symbolic row counts, are left."""
        s = self.s
        if len(sweeps.passes) < 2 or is_symbolic(s.outer_size):
            return []
        row_axes = {a.name for a in self.kernel.row}
        loads = [i for i in sweeps.passes[0].sweep if isinstance(i, Load) and i.src.predicate is None
                 and not i.src.value_refs() and i.src.axes() & row_axes
                 and i.src.buffer in self.program.buffers]
        lines = []
        for ld in loads:
            elem = dtype_bytes(self.program.buffers[ld.src.buffer].dtype)
            per_line = max(1, CACHE_LINE_BYTES // elem)
            nxt = f"T.min({row} + 1, {s.outer_size - 1})"
            for lane in range(0, width, per_line):
                axes = coords(self.kernel.outer, nxt) | coords(self.kernel.row, f"({st} * {width} + {lane})")
                address = self._slice_text(ld.src, ExprPrinter(axes, {}))
                lines.append(f'T.evaluate(T.call_llvm_intrin("void", "llvm.prefetch.p0", T.address_of({address}), 0, 3, 1))')
        return lines

    def _output_homes(self, sweeps: Sweeps) -> dict[str, Store]:
        """Held row values kept in the output row that their last sweep overwrites, instead of
        a per-task buffer: softmax's exp goes to the output in its sweep and is scaled in place
        in the next.  The output's cache lines are then fetched while the sweep computes
        (stores miss in the cache; a last sweep that only scales and stores waits on them).
        Safe where the output has one store, in the held value's last reading sweep after its
        last read, one element per point of the kernel (its index is the kernel's axes)."""
        axes = {a.name for a in (*self.kernel.outer, *self.kernel.row)}
        stores = [i for i in self.kernel.instrs if isinstance(i, Store)]
        homes: dict[str, Store] = {}
        for name in sorted(sweeps.held):
            readers = [p.sweep for p in sweeps.passes if any(name in i.reads for i in p.sweep)]
            if not readers:
                continue
            last = readers[-1]
            last_read = max(j for j, i in enumerate(last) if name in i.reads)
            for ins in last[last_read + 1:]:
                index = ins.dst.index if isinstance(ins, Store) else ()
                if (isinstance(ins, Store) and ins.dst.buffer in self.program.outputs
                        and sum(st.dst.buffer == ins.dst.buffer for st in stores) == 1
                        and ins not in homes.values() and ins.dst.predicate is None
                        and self.program.buffers[ins.dst.buffer].dtype == self.kernel.values[name].dtype
                        and all(isinstance(e, E.Var) for e in index) and {e.name for e in index} == axes
                        and len(index) == len(axes)):
                    homes[name] = ins
                    break
        return homes

    def _fold(self, red: Reduce) -> list[str]:
        """The accumulator vectors into one, then its lanes into the per-row value."""
        s = self.s
        v, k = s.vector, s.accumulators
        acc = f"a_{red.dst}"
        out = self._home(red.dst, Ctx("", "", "0", {}))
        lines = []
        if k > 1:
            lines += _loop(f"for kk in T.serial(1, {k}):", _loop(f"for vv in {self._lanes([red])}({v}):", [
                f"{acc}[vv] = {combine_text(red.op, f'{acc}[vv]', f'{acc}[kk * {v} + vv]')}"]))
        lines.append(f"{out} = {acc}[0]")
        if v > 1:
            lines += _loop(f"for vv in T.serial(1, {v}):", [f"{out} = {combine_text(red.op, out, f'{acc}[vv]')}"])
        return lines

    def _column(self) -> list[str]:
        s = self.s
        v, block = s.vector, s.rows_per_group
        sweeps = self.kernel.sweeps
        self.held = sweeps.held
        base = f"(t * {block} + j * {v})"
        outer = coords(self.kernel.outer, base, "vv")
        guard = None if s.groups * block == s.outer_size else f"{base} < {s.outer_size}"

        def over_block(instrs, ctx: Ctx) -> list[str]:
            body = self._block(instrs, ctx)
            return _loop(f"for j in T.serial({block // v}):", _guard(guard, _loop(f"for vv in {self._lanes(instrs)}({v}):", body)))

        per = lambda: Ctx("vv", "", f"j * {v} + vv", outer)  # noqa: E731
        lines = over_block(sweeps.before, per())
        for sweep in sweeps.passes:
            for red in sweep.reduces:
                lines += _loop(f"for j in {self._lanes([red])}({block}):",
                               [f"{self._accumulator(red, Ctx('', '', 'j', {}))} = {const_text(red.init)}"])
            ctx = Ctx("vv", f"nn * {block} + j * {v} + vv", f"j * {v} + vv", outer | coords(self.kernel.row, "nn"))
            lines += _loop(f"for nn in T.serial({self.n}):", over_block(sweep.sweep, ctx))
            lines += over_block(sweep.after, per())
        return lines

    def _flat(self) -> list[str]:
        s = self.s
        if s.row_size > 1:
            return self._flat_rows()
        v, k = s.vector, s.accumulators
        steps = s.rows_per_group // (v * k)
        # a vector may cross the boundaries of fused axes: coordinates of each lane's element
        # (TVM's simplifier folds them back into one contiguous index)
        at = lambda base, lane, reg: Ctx(reg, "", "", coords(self.kernel.outer, f"({base} + {lane})"))  # noqa: E731
        if s.groups * s.rows_per_group == s.outer_size:
            return _loop(f"for st in T.serial({steps}):", self._step(self.kernel.instrs, self.kernel.outer, at,
                                                                     f"(t * {steps} + st)", k))
        base = f"(((t * {steps} + st) * {k} + kk) * {v})"   # the last task's vectors past the end are skipped
        body = self._block(self.kernel.instrs, at(base, "vv", f"kk * {v} + vv"))
        return _loop(f"for st in T.serial({steps}):", _loop(f"for kk in T.unroll({k}):", _guard(
            f"{base} < {s.outer_size}", _loop(f"for vv in {self._lanes(self.kernel.instrs)}({v}):", body))))

    def _flat_rows(self) -> list[str]:
        """Rows of the innermost axes (`row_axes` of them, one contiguous run in every access):
        outer coordinates once per row, the row in vectors."""
        s = self.s
        row = f"(t * {s.rows_per_group} + r)"
        outer = coords(self.kernel.outer[:-s.row_axes], row)
        inner = self.kernel.outer[-s.row_axes:]
        # a vector may cross the boundaries of the row's axes: coordinates of each lane's element
        at = lambda base, lane, reg: Ctx(reg, "", "", outer | coords(inner, f"({base} + {lane})" if lane else base))  # noqa: E731
        lines = self._sweep(self.kernel.instrs, inner, at)
        guard = None if s.groups * s.rows_per_group == s.outer_size else f"{row} < {s.outer_size}"
        return _loop(f"for r in T.serial({s.rows_per_group}):", _guard(guard, lines))

    def _tile(self) -> list[str]:
        """Load along `a` (contiguous in the input) into the square, store along `b`."""
        s = self.s
        a, b = s.tile_axes
        axes, tile = self.kernel.axes, s.tile
        na, nb = -(-axes[a] // tile), -(-axes[b] // tile)
        rest = tuple(ax for ax in self.kernel.outer if ax.name not in (a, b))
        ta, tb = f"(t // {nb} % {na} * {tile})", f"(t % {nb} * {tile})"
        common = coords(rest, f"(t // {na * nb})")
        cut = next(i for i, ins in enumerate(self.kernel.instrs) if isinstance(ins, Sync))
        phases = [(self.kernel.instrs[:cut], {a: f"({ta} + vv)", b: f"({tb} + i)"}),
                  (self.kernel.instrs[cut + 1:], {a: f"({ta} + i)", b: f"({tb} + vv)"})]
        ragged = axes[a] % tile or axes[b] % tile
        full = f"{ta} + {tile} <= {axes[a]} and {tb} + {tile} <= {axes[b]}"
        lines = []
        for instrs, placed in phases:
            ctx = Ctx("vv", "", "", common | placed)
            body = self._block(instrs, ctx)
            fast = _loop(f"for i in T.serial({tile}):", _loop(f"for vv in {self._lanes(instrs)}({tile}):", body))
            if not ragged:
                lines += fast
                continue
            inside = f"{placed[a]} < {axes[a]} and {placed[b]} < {axes[b]}"
            edge = _loop(f"for i in T.serial({tile}):", _loop(f"for vv in T.serial({tile}):", _guard(inside, body)))
            lines += [f"if {full}:"] + _indent(fast) + ["else:"] + _indent(edge)
        return lines


class _LazyPrinter(ExprPrinter):
    """An ExprPrinter that asks the renderer for a value's text when it meets it."""

    def __init__(self, axes: dict[str, str], renderer: CpuKernelRenderer, ctx: Ctx):
        super().__init__(axes, {})
        self.renderer, self.ctx = renderer, ctx

    def value(self, e: E.ValueRef) -> str:
        return self.renderer._text(e.value, self.ctx)


def render_cpu_program(program: Program, func_name: str) -> str:
    """One PrimFunc: the region's inputs and outputs are its parameters, its kernels run in order."""
    lines = prim_func_header(program, func_name)
    for kernel in program.kernels:
        assert isinstance(kernel.strategy, CpuStrategy), "the CPU backend renders CPU plans only"
        lines += _indent(CpuKernelRenderer(program, kernel).body(), 2)
    return "\n".join(lines) + "\n"
