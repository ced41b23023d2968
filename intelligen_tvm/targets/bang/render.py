"""BANG C of a planned GIR kernel for a Cambricon MLU.

The kernel is `__mlu_global__`; tile t of `tile_rows` rows goes to task `t % taskDim`.  A
tile's data lives in one `__nram__` pool: every row value is a [tile_rows, npad] block (npad
= the row length rounded up to the 128-byte vector), row statistics are [tile_rows] arrays,
per-column values ([npad], gamma, bias) and scalars are loaded once per task.  DRAM moves are
`__memcpy` (GDRAM2NRAM / NRAM2GDRAM; the strided form moves a whole tile in one call when
rows are evenly spaced in DRAM).  Elementwise math on rows is whole-vector `__bang_*` over the
tile; per-row math is scalar C.  Reductions pad each row's tail with the reduction's neutral
value and then reduce on the vector unit (`__bang_reduce_sum` sums each 128-byte chunk, so
its partial results are gathered and reduced again until one is left).

With `buffers=2` every DRAM-loaded row value has two NRAM copies: the loads of the next tile
are issued with `__memcpy_async` before this tile is computed, and `__sync()` waits for them.

Semantics assumed for every intrinsic are documented in `INTRINSICS`; the emulation header of
the tests implements exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...gir import expr as E
from ...gir.errors import Unsupported
from ...gir.program import Compute, Identity, Kernel, Load, Program, Reduce, Store, dtype_bytes
from .cexpr import CPrinter, c_type, float_literal, literal
from .layout import Shape, TileLayout, align_up, row_major, slice_offset

INTRINSICS = {
    "__memcpy(dst, src, bytes, dir)": "copy `bytes` bytes; dir is GDRAM2NRAM, NRAM2GDRAM or NRAM2NRAM",
    "__memcpy(dst, src, bytes, dir, dst_stride, src_stride, segnum)":
        "copy segnum + 1 segments of `bytes` bytes; segment i starts at dst + i*dst_stride / src + i*src_stride "
        "(strides in bytes)",
    "__memcpy_async(...)": "as __memcpy, but the data is only guaranteed in place after the next __sync()",
    "__sync()": "wait for this core's outstanding asynchronous copies",
    "__bang_write_value(dst, n, value)": "dst[0:n] = value",
    "__bang_add/sub/mul/div/maxequal/minequal(dst, a, b, n)": "dst[i] = a[i] op b[i], i < n",
    "__bang_add_scalar/sub_scalar/mul_scalar/maxeq_scalar/mineq_scalar(dst, a, s, n)": "dst[i] = a[i] op s",
    "__bang_cycle_add/sub/mul(dst, a, b, n, m)": "dst[i] = a[i] op b[i % m]; m divides n",
    "__bang_active_exp/sqrt/rsqrt/recip/sigmoid/log(dst, a, n)": "dst[i] = f(a[i])",
    "__bang_reduce_sum(dst, src, n)":
        "for every 128-byte chunk c of src[0:n]: dst[c*k] = sum of the chunk (k = 128 / sizeof(T)); "
        "the other elements of dst[0:n] are unspecified",
    "__bang_max(dst, src, n)": "dst[0] = max(src[0:n]); dst[1] = its index (unspecified type)",
    "all __bang_* vector instructions": "n * sizeof(T) is a multiple of 128; dst may equal a source",
}

ALIGN_BYTES = 128
_VEC_BINARY = {"add": "__bang_add", "sub": "__bang_sub", "mul": "__bang_mul", "div": "__bang_div",
               "max": "__bang_maxequal", "min": "__bang_minequal"}
_VEC_SCALAR = {"add": "__bang_add_scalar", "sub": "__bang_sub_scalar", "mul": "__bang_mul_scalar",
               "max": "__bang_maxeq_scalar", "min": "__bang_mineq_scalar"}
_VEC_CYCLE = {"add": "__bang_cycle_add", "sub": "__bang_cycle_sub", "mul": "__bang_cycle_mul"}
_VEC_UNARY = {"exp": "__bang_active_exp", "sqrt": "__bang_active_sqrt", "rsqrt": "__bang_active_rsqrt",
              "sigmoid": "__bang_active_sigmoid", "log": "__bang_active_log"}
_COMMUTATIVE = frozenset({"add", "mul", "max", "min"})
_REDUCERS = frozenset({"sum", "max"})


@dataclass
class NramPool:
    """One `__nram__` byte pool; row values share slots by live range."""

    offsets: dict[str, int] = field(default_factory=dict)
    size: int = 0

    def take(self, name: str, nbytes: int) -> int:
        self.offsets[name] = self.size
        self.size += align_up(nbytes, ALIGN_BYTES)
        return self.offsets[name]


@dataclass(frozen=True)
class Operand:
    shape: Shape | None        # None: a constant
    text: str                  # pointer (vectors), element expression (stat/scalar) or literal


def nram_bytes_of(source: str) -> int:
    """The NRAM pool size recorded in an emitted kernel's header comment."""
    for line in source.splitlines():
        if line.startswith("// nram bytes: "):
            return int(line.split(": ")[1])
    raise ValueError("not an intelligen BANG kernel")


class BangKernel:
    def __init__(self, program: Program, kernel: Kernel, layout: TileLayout, buffers: int, tasks: int):
        self.program, self.kernel, self.lay = program, kernel, layout
        self.buffers, self.tasks = buffers, tasks
        self.shapes = {n: layout.shape_of(v) for n, v in kernel.values.items()}
        self.pool = NramPool()
        self.ptr: dict[str, str] = {}          # value or scratch -> its NRAM pointer variable
        self.next_ptr: dict[str, str] = {}     # prefetched value -> its buffer for the next tile
        self.decls: list[str] = []             # pointers into the pool, before the tile loop
        self.tile_decls: list[str] = []        # pointers that alternate between tiles
        self.prologue: list[str] = []
        self.row_names = {a.name for a in layout.rows}
        self.col_names = {a.name for a in layout.cols}
        self.prefetched: set[str] = set()

    # ---- naming ----------------------------------------------------------------------
    @staticmethod
    def gdram(buffer: str) -> str:
        return "g_" + _ident(buffer)

    def dtype(self, value: str) -> str:
        return self.kernel.values[value].dtype

    def elem(self, value: str, r: str = "r") -> str:
        """The scalar element of a per-row or scalar value."""
        return f"{self.ptr[value]}[{r if self.shapes[value] is Shape.STAT else '0'}]"

    def _row_len(self) -> int:
        return self.lay.tile_rows * self.lay.npad

    def nbytes(self, value: str) -> int:
        size = dtype_bytes(self.dtype(value))
        return size * {Shape.ROW: self._row_len(), Shape.STAT: self.lay.stat_len,
                       Shape.VEC: self.lay.npad, Shape.SCALAR: 1}[self.shapes[value]]

    def _declare(self, value: str, offset: int, ctype: str = "float") -> None:
        self.ptr[value] = "v_" + _ident(value)
        self.decls.append(f"{ctype}* {self.ptr[value]} = ({ctype}*)(nram + {offset});")

    # ---- allocation ------------------------------------------------------------------
    def _prefetched(self, per_tile: list) -> set[str]:
        """Row values loaded at an index that needs no value of the tile: with double
        buffering these are fetched one tile ahead."""
        if self.buffers < 2:
            return set()
        return {i.dst for i in per_tile if isinstance(i, Load) and self.shapes[i.dst] is Shape.ROW
                and not E.walk_value_refs(i.src.index)}

    def _allocate(self, per_tile: list) -> None:
        """Per-row, per-column and scalar values own their slots; row values share slots by
        live range (an instruction may write into the slot of an operand it reads last);
        prefetched row values own two slots, used by alternate tiles of the task."""
        for name, shape in self.shapes.items():
            if shape is not Shape.ROW:
                self._declare(name, self.pool.take(name, self.nbytes(name)), c_type(self.dtype(name)))
        slot = self._row_len() * 4
        for name in sorted(self.prefetched):
            a, b = self.pool.take(name + "#0", slot), self.pool.take(name + "#1", slot)
            self.ptr[name] = "v_" + _ident(name)
            self.tile_decls.append(f"float* {self.ptr[name]} = (float*)(nram + ((tile / taskDim) % 2 ? {b} : {a}));")
            self.next_ptr[name] = f"((float*)(nram + ((tile / taskDim) % 2 ? {a} : {b})))"
        last_use = {r: i for i, ins in enumerate(per_tile) for r in ins.reads}
        live: dict[str, int] = {}
        free: list[int] = []
        for i, ins in enumerate(per_tile):
            dying = [r for r in dict.fromkeys(ins.reads) if last_use[r] == i and r in live]
            for w in ins.writes:
                if self.shapes[w] is not Shape.ROW or w in self.prefetched:
                    continue
                live[w] = live.pop(dying.pop()) if dying else free.pop() if free else self.pool.take(w, slot)
                self._declare(w, live[w])
            free += [live.pop(r) for r in dying]

    def _scratch(self, name: str, elems: int) -> str:
        if name not in self.ptr:
            self._declare(name, self.pool.take(name, elems * 4))
        return self.ptr[name]

    # ---- addressing --------------------------------------------------------------------
    def _coords(self, row: str) -> list[str]:
        """C declarations of the tile-row axes for the flat row index `row`."""
        lines, stride = [], 1
        axes = self.lay.rows
        for i, ax in enumerate(reversed(axes)):
            text = f"({row}) / {stride}" if stride > 1 else f"({row})"
            if i < len(axes) - 1:
                text = f"{text} % {ax.extent}"
            lines.append(f"const int64_t {ax.name} = {text};")
            stride *= ax.extent
        return lines

    def _printer(self) -> CPrinter:
        axes = {a: a for a in self.row_names}
        return CPrinter(axes, lambda v: self.elem(v))

    def _move(self, sl, value: str, to_dram: bool, nram: str | None = None, copy: str = "__memcpy") -> list[str]:
        """Move a row, per-row or per-column value between its NRAM block (`nram`, by default
        the value's own) and a DRAM slice."""
        shape = self.shapes[value]
        buf = self.program.buffers[sl.buffer]
        size = dtype_bytes(buf.dtype)
        g = self.gdram(sl.buffer)
        cols = self.lay.n if shape in (Shape.ROW, Shape.VEC) else 1
        pitch = self.lay.npad if shape is Shape.ROW else 1
        nbytes = cols * size
        direction = "NRAM2GDRAM" if to_dram else "GDRAM2NRAM"
        nram = self.ptr[value] if nram is None else nram
        if sl.predicate is not None:
            raise Unsupported(f"{sl.buffer} is read under a guard (concatenation)")
        if shape in (Shape.VEC, Shape.SCALAR):
            if to_dram:
                raise Unsupported(f"output {sl.buffer} does not vary over rows")
            off = slice_offset(sl, buf, self.col_names, self.kernel.axes)
            return [f"{copy}({nram}, {g} + {self._printer()(off.rest)}, {nbytes}, {direction});"]
        whole = slice_offset(sl, buf, self.row_names | self.col_names, self.kernel.axes)
        rows = self.lay.rows
        inner = whole.coeffs.get(rows[-1].name, 0) if whole is not None and rows else 0
        if (whole is not None and inner > 0 and not E.free_vars(whole.rest) and not E.walk_value_refs((whole.rest,))
                and {n: c for n, c in whole.coeffs.items() if n in self.row_names} == row_major(rows, inner)):
            base = f"{g} + {self._printer()(whole.rest)} + (int64_t)row0 * {inner}"
            dst, src = (base, nram) if to_dram else (nram, base)
            if inner == pitch == cols:
                return [f"{copy}({dst}, {src}, rows * {nbytes}, {direction});"]
            d_stride, s_stride = (inner * size, pitch * size) if to_dram else (pitch * size, inner * size)
            return [f"{copy}({dst}, {src}, {nbytes}, {direction}, {d_stride}, {s_stride}, rows - 1);"]
        off = slice_offset(sl, buf, self.col_names, self.kernel.axes)
        mem = f"{g} + {self._printer()(off.rest)}"
        here = f"{nram} + r * {pitch}"
        dst, src = (mem, here) if to_dram else (here, mem)
        return (["for (int r = 0; r < rows; ++r) {"]
                + ["  " + c for c in self._coords("row0 + r")]
                + [f"  {copy}({dst}, {src}, {nbytes}, {direction});", "}"])

    # ---- computation -------------------------------------------------------------------
    def _operand(self, arg) -> Operand:
        if isinstance(arg, E.Const):
            return Operand(None, literal(arg))
        shape = self.shapes[arg]
        if shape in (Shape.ROW, Shape.VEC):
            return Operand(shape, self.ptr[arg])
        return Operand(shape, self.elem(arg))

    def _vector_compute(self, ins: Compute) -> list[str]:
        dst_shape = self.shapes[ins.dst]
        if self.dtype(ins.dst) != "float32" or any(
                isinstance(a, str) and self.dtype(a) != "float32" for a in ins.args):
            raise Unsupported(f"{ins.op} on {self.dtype(ins.dst)} rows has no vector instruction here")
        n = self._row_len() if dst_shape is Shape.ROW else self.lay.npad
        d = self.ptr[ins.dst]
        ops = [self._operand(a) for a in ins.args]
        if len(ops) == 1:
            (a,) = ops
            if ins.op == "neg":
                return [f"__bang_mul_scalar({d}, {a.text}, -1.0f, {n});"]
            if ins.op not in _VEC_UNARY:
                raise Unsupported(f"{ins.op} has no whole-vector BANG instruction")
            return [f"{_VEC_UNARY[ins.op]}({d}, {a.text}, {n});"]
        if len(ops) != 2:
            raise Unsupported(f"{ins.op} ({ins.kind}) on rows has no whole-vector BANG instruction")
        return self._binary(ins.op, ins.args, dst_shape, d, n, *ops)

    def _binary(self, op: str, args, dst_shape: Shape, d: str, n: int, a: Operand, b: Operand) -> list[str]:
        vector = (Shape.ROW, Shape.VEC)
        if op == "pow" and isinstance(args[1], E.Const) and float(args[1].value) == 2.0 and a.shape in vector:
            return [f"__bang_mul({d}, {a.text}, {a.text}, {n});"]
        if a.shape not in vector and op in _COMMUTATIVE:
            a, b = b, a
        if a.shape in vector and b.shape == a.shape:
            if op not in _VEC_BINARY:
                raise Unsupported(f"{op} has no whole-vector BANG instruction")
            return [f"{_VEC_BINARY[op]}({d}, {a.text}, {b.text}, {n});"]
        if dst_shape is Shape.ROW and {a.shape, b.shape} == {Shape.ROW, Shape.VEC}:
            return self._cycle(op, d, n, a, b)
        if b.shape in (Shape.STAT, None, Shape.SCALAR) and a.shape in vector:
            return self._with_scalar(op, d, a, b, dst_shape)
        if a.shape in (Shape.STAT, None, Shape.SCALAR) and b.shape in vector and op in ("sub", "div"):
            return self._scalar_first(op, d, a, b, dst_shape)
        raise Unsupported(f"{op} of a {a.shape} and a {b.shape} value has no vector lowering here")

    def _cycle(self, op: str, d: str, n: int, a: Operand, b: Operand) -> list[str]:
        """A row value combined with a per-column vector repeated along every row."""
        npad = self.lay.npad
        if a.shape is Shape.ROW:
            if op == "div":
                tmp = self._scratch("recip_vec", npad)
                return [f"__bang_active_recip({tmp}, {b.text}, {npad});",
                        f"__bang_cycle_mul({d}, {a.text}, {tmp}, {n}, {npad});"]
            if op not in _VEC_CYCLE:
                raise Unsupported(f"{op} with a broadcast column vector has no cycle instruction")
            return [f"__bang_cycle_{op}({d}, {a.text}, {b.text}, {n}, {npad});"]
        if op == "sub":   # vec - row = -(row - vec)
            return [f"__bang_cycle_sub({d}, {b.text}, {a.text}, {n}, {npad});",
                    f"__bang_mul_scalar({d}, {d}, -1.0f, {n});"]
        raise Unsupported(f"{op} of a column vector by a row has no cycle instruction")

    def _per_row(self, dst_shape: Shape, d: str, a: Operand, s: Operand, body) -> list[str]:
        """Apply `body(dst, src, scalar, n)` to the whole value, or row by row when the scalar
        is a per-row statistic."""
        if s.shape is not Shape.STAT:
            n = self._row_len() if dst_shape is Shape.ROW else self.lay.npad
            return body(d, a.text, s.text, n)
        npad = self.lay.npad
        src = f"{a.text} + r * {npad}" if a.shape is Shape.ROW else a.text
        return (["for (int r = 0; r < rows; ++r) {"]
                + ["  " + line for line in body(f"{d} + r * {npad}", src, s.text, npad)] + ["}"])

    def _with_scalar(self, op: str, d: str, a: Operand, s: Operand, dst_shape: Shape) -> list[str]:
        def body(dst: str, src: str, scalar: str, n: int) -> list[str]:
            if op == "div":
                return [f"__bang_mul_scalar({dst}, {src}, 1.0f / ({scalar}), {n});"]
            if op not in _VEC_SCALAR:
                raise Unsupported(f"{op} with a scalar has no whole-vector BANG instruction")
            return [f"{_VEC_SCALAR[op]}({dst}, {src}, {scalar}, {n});"]

        return self._per_row(dst_shape, d, a, s, body)

    def _scalar_first(self, op: str, d: str, s: Operand, a: Operand, dst_shape: Shape) -> list[str]:
        def body(dst: str, src: str, scalar: str, n: int) -> list[str]:
            if op == "sub":
                return [f"__bang_mul_scalar({dst}, {src}, -1.0f, {n});",
                        f"__bang_add_scalar({dst}, {dst}, {scalar}, {n});"]
            return [f"__bang_active_recip({dst}, {src}, {n});",
                    f"__bang_mul_scalar({dst}, {dst}, {scalar}, {n});"]

        return self._per_row(dst_shape, d, a, s, body)

    def _scalar_compute(self, ins: Compute) -> str:
        args = [literal(a) if isinstance(a, E.Const) else self.elem(a) for a in ins.args]
        return f"{self.elem(ins.dst)} = {CPrinter.call(ins.op, self.dtype(ins.dst), args)};"

    def _reduce(self, ins: Reduce) -> list[str]:
        if self.shapes[ins.src] is not Shape.ROW or self.dtype(ins.src) != "float32":
            raise Unsupported("only fp32 row reductions run on the vector unit here")
        if ins.op not in _REDUCERS:
            raise Unsupported(f"reduce.{ins.op} has no BANG reduction used here")
        lay, k = self.lay, self.lay.align_elems
        npad, n = lay.npad, lay.n
        neutral = self._scratch(f"neutral_{ins.op}", k)
        fill = f"__bang_write_value({neutral}, {k}, {float_literal(float(ins.init.value))});"
        if fill not in self.prologue:
            self.prologue.append(fill)
        red = self._scratch("reduce_a", npad)
        x = f"{self.ptr[ins.src]} + r * {npad}"
        body = [f"__memcpy({x} + {n}, {neutral}, {(npad - n) * 4}, NRAM2NRAM);"] if npad > n else []
        if ins.op == "max":
            body.append(f"__bang_max({red}, {x}, {npad});")
        else:
            gathered = self._scratch("reduce_b", align_up(npad // k, k))
            body.append(f"__bang_reduce_sum({red}, {x}, {npad});")
            parts = npad // k
            while parts > 1:   # partial sums sit at every k-th element: gather, pad, reduce again
                padded = align_up(parts, k)
                body.append(f"__memcpy({gathered}, {red}, 4, NRAM2NRAM, 4, {k * 4}, {parts - 1});")
                if padded > parts:
                    body.append(f"__memcpy({gathered} + {parts}, {neutral}, {(padded - parts) * 4}, NRAM2NRAM);")
                body.append(f"__bang_reduce_sum({red}, {gathered}, {padded});")
                parts = padded // k
        body.append(f"{self.elem(ins.dst)} = {red}[0];")
        return ["for (int r = 0; r < rows; ++r) {"] + ["  " + b for b in body] + ["}"]

    # ---- whole kernel ------------------------------------------------------------------
    def _emit(self, ins) -> list[str]:
        if isinstance(ins, Load):
            return self._move(ins.src, ins.dst, to_dram=False)
        if isinstance(ins, Store):
            return self._move(ins.dst, ins.src, to_dram=True)
        if isinstance(ins, Reduce):
            return self._reduce(ins)
        if isinstance(ins, Compute):
            if self.shapes[ins.dst] in (Shape.ROW, Shape.VEC):
                return self._vector_compute(ins)
            line = self._scalar_compute(ins)
            if self.shapes[ins.dst] is Shape.SCALAR:
                return [line]
            return ["for (int r = 0; r < rows; ++r) {", "  " + line, "}"]
        raise Unsupported(f"instruction {type(ins).__name__} has no BANG lowering")

    def render(self, func_name: str) -> str:
        instrs = [i for i in self.kernel.instrs if not isinstance(i, Identity)]
        invariant = [i for i in instrs if i.writes and self.shapes[i.writes[0]] in (Shape.VEC, Shape.SCALAR)]
        per_tile = [i for i in instrs if i not in invariant]
        self.prefetched = self._prefetched(per_tile)
        self._allocate(per_tile)
        hoisted = [line for i in invariant for line in self._emit(i)]
        prefetch = [i for i in per_tile if isinstance(i, Load) and i.dst in self.prefetched]
        body = [line for i in per_tile if i not in prefetch for line in self._emit(i)]
        lay = self.lay
        loop = [f"for (int tile = taskId; tile < {lay.n_tiles}; tile += taskDim) {{"]
        if prefetch:   # double buffering: the first tile's loads, then each tile prefetches the next
            loop = ([f"if (taskId < {lay.n_tiles}) {{", "  const int tile = taskId;"] + ["  " + x for x in self.tile_decls]
                    + ["  " + x for x in self._fetch(prefetch, "tile", current=True)] + ["}"]
                    + loop + ["  " + x for x in self.tile_decls] + ["  __sync();"]
                    + [f"  if (tile + taskDim < {lay.n_tiles}) {{"]
                    + ["    " + x for x in self._fetch(prefetch, "tile + taskDim", current=False)] + ["  }"])
        loop += ["  " + x for x in self._tile_head("tile") + body] + ["}"]
        params = ", ".join(f"{c_type(self.program.buffers[b].dtype)}* {self.gdram(b)}"
                           for b in [*self.program.inputs, *self.program.outputs])
        header = [f"// {func_name}: BANG C emitted by intelligen_tvm from the planned dataflow graph",
                  f"// tile rows {[f'{a.name}<{a.extent}>' for a in lay.rows]} x columns "
                  f"{[f'{a.name}<{a.extent}>' for a in lay.cols]} (n={lay.n}, npad={lay.npad})",
                  f"// tile_rows={lay.tile_rows} tiles={lay.n_tiles} buffers={self.buffers}",
                  f"// nram bytes: {self.pool.size}",
                  f"#define {func_name.upper()}_TASK_DIM {self.tasks}", ""]
        lines = [f"__mlu_global__ void {func_name}({params}) {{",
                 f"  __nram__ char nram[{self.pool.size}];"]
        lines += ["  " + x for x in self.decls + self.prologue + hoisted + loop]
        return "\n".join(header + lines + ["}"]) + "\n"

    def _tile_head(self, tile: str) -> list[str]:
        lay = self.lay
        return [f"const int row0 = ({tile}) * {lay.tile_rows};",
                f"const int rows = {lay.n_rows} - row0 < {lay.tile_rows} ? {lay.n_rows} - row0 : {lay.tile_rows};"]

    def _fetch(self, loads: list[Load], tile: str, current: bool) -> list[str]:
        """Asynchronous loads of tile `tile` into the current buffers or the next ones."""
        lines = self._tile_head(tile)
        for ins in loads:
            nram = self.ptr[ins.dst] if current else self.next_ptr[ins.dst]
            lines += self._move(ins.src, ins.dst, to_dram=False, nram=nram, copy="__memcpy_async")
        return ["{"] + ["  " + x for x in lines] + ["}"]


def _ident(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def render_bang(program: Program, layout: TileLayout, func_name: str, buffers: int = 1, tasks: int = 1) -> tuple[str, int]:
    """(BANG C source, NRAM bytes) of the program's one kernel; raises Unsupported with the
    reason when some instruction has no BANG lowering."""
    assert len(program.kernels) == 1, "one fused kernel per region"
    k = BangKernel(program, program.kernels[0], layout, buffers, tasks)
    source = k.render(func_name)
    return source, k.pool.size
