"""The CPU plan family: tasks of rows across cores, SIMD vectors as lanes, the row kept in
L1/L2 across all its reductions.

A CPU has few, wide cores and hardware caches instead of thousands of threads and a
software-managed shared memory, so the same dataflow graph maps differently than on a GPU:

- *row*: a task owns `rows_per_group` consecutive rows and walks them one after the other;
  a row is swept once per reduction level in SIMD vectors, `accumulators` independent vector
  accumulators per reduction (instruction-level parallelism), folded across lanes at the end
  of the sweep.  Values that later sweeps need are either *held* (kept in a per-task buffer
  that stays in L1/L2; input loads re-read from cache or copied, the `reload` knob) or the
  row *streams* (every sweep recomputes from DRAM);
- *column*: the reduction walks a strided axis; a task owns a block of `rows_per_group`
  adjacent outer elements (contiguous in memory) and keeps one accumulator per element, the
  vector running along the block;
- *flat*: elementwise: `rows_per_group` rows of the innermost axis per task (coordinates of
  the outer axes once per row), the row in vectors with a scalar tail; with a single axis,
  `rows_per_group` consecutive elements per task;
- *tile*: transposes through a `tile` x `tile` square in L1, loaded along one axis and stored
  along the other.

Hardware is a `CpuModel` (cores, vector bytes, cache sizes) that targets/presets.py fills
from the llvm target (mcpu/mattr, num-cores) or the host.  The strategy keeps the fields of
`ParallelStrategy` with their CPU reading (a group is a task, a unit and a lane one core
thread): `serial == 1` means the row stays on chip, which keeps DRAM accounting and the
verifier common with the GPU families.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import product

from ..gir.errors import Unsupported
from ..gir.expr import Var, free_vars
from ..gir.hardware import HardwareModel
from ..gir.program import Identity, Instr, Kernel, Load, Reduce, Scope, Store, StreamPass, Sweeps, dtype_bytes, numel
from ..gir.strategy import ParallelStrategy, PlanFamily
from ..gir.symbolic import is_symbolic
from .families import family_of
from .transpose_tile import stage_through_sram, transposed_axis


@dataclass(frozen=True)
class CpuModel(HardwareModel):
    """A multicore CPU with SIMD units and a cache hierarchy (per-core L1/L2, shared L3)."""

    cores: int = 1
    l1_bytes: int = 32 * 1024
    l2_bytes: int = 1024 * 1024
    l3_bytes: int = 32 * 1024 * 1024
    isa: str = ""          # the widest vector extension found (avx512f, avx2, neon, sse2): for reports

    @property
    def held_budget(self) -> int:
        """Bytes a task keeps across sweeps: half of its L2 (the rest serves the streams)."""
        return self.l2_bytes // 2

    @classmethod
    def make(cls, cores: int, vector_bytes: int, l1_bytes: int, l2_bytes: int, l3_bytes: int,
             dram_gbps: float, isa: str) -> CpuModel:
        """The model with the fields a GPU plan would read filled with their CPU meaning:
        one lane per unit, one unit per group; a task's "registers" are the caches (a row the
        verifier sees held may span L3: what is really kept across sweeps is `held_budget`)."""
        return cls(lanes_per_unit=1, max_threads_per_group=1, sram_bytes_per_group=l1_bytes,
                   reg_elems_per_lane=l3_bytes // 4, vector_bytes=vector_bytes, processors=cores,
                   max_threads_per_processor=1, dram_gbps=dram_gbps, default_threads_per_group=1,
                   cores=cores, l1_bytes=l1_bytes, l2_bytes=l2_bytes, l3_bytes=l3_bytes, isa=isa)


@dataclass(frozen=True)
class CpuStrategy(ParallelStrategy):
    """A CPU plan (see the module docstring for the meaning of each field on a CPU)."""

    accumulators: int = 1   # row/flat: vectors per unrolled step (independent accumulators)
    reload: bool = True     # held rows: later sweeps re-read inputs from cache (else from the held copy)
    tile: int = 0           # tile: edge of the square staged in L1
    row_axes: int = 1       # flat: innermost axes one row spans (contiguous in every access)

    @property
    def held(self) -> bool:
        return self.serial == 1

    def __str__(self) -> str:
        extra = {"row": f"rows_per_task={self.rows_per_group}, " + (
                     ("held" + (", reload" if self.reload else "")) if self.held else "streamed"),
                 "column": f"columns_per_task={self.rows_per_group}, " + ("held" if self.held else "streamed"),
                 "flat": (f"rows_per_task={self.rows_per_group}, row={self.row_size}" if self.row_size > 1
                          else f"elems_per_task={self.rows_per_group}"),
                 "tile": f"tile={self.tile}"}[self.kind]
        return (f"cpu.{self.kind}(tasks={self.groups}, {extra}, vector={self.vector}, "
                f"accumulators={self.accumulators})")

    def describe(self) -> dict:
        return super().describe() | {"backend": "cpu", "tasks": self.groups, "accumulators": self.accumulators,
                                     "held": self.held, "reload": self.reload, "tile": self.tile,
                                     "row_axes": self.row_axes}


def is_cpu(hw: HardwareModel) -> bool:
    return isinstance(hw, CpuModel)


# ---- sweeps ---------------------------------------------------------------------------------

def _levels(kernel: Kernel, instrs: list[Instr]) -> dict[str, int]:
    level: dict[str, int] = {}
    for ins in instrs:
        for w in ins.writes:
            level[w] = reduce_level(ins, level)
    return level


def reduce_level(ins: Instr, level: dict[str, int]) -> int:
    """How many nested reductions an instruction's result depends on."""
    if isinstance(ins, Reduce):
        return level[ins.src] + 1
    return max((level[r] for r in ins.reads), default=0)


def cpu_sweeps(kernel: Kernel, recompute: Callable[[Instr], bool]) -> Sweeps:
    """Place every row instruction in the last sweep that still allows all its consumers (a
    reduction of level k is swept in sweep k, a value of level k is first available in sweep
    k+1); a sweep that needs a value placed in an earlier sweep recomputes it when
    `recompute(producer)` (with its own such producers), else reads it from the held buffer."""
    row_axes = {a.name for a in kernel.row}
    instrs = [i for i in kernel.instrs if not isinstance(i, Identity)]
    level = _levels(kernel, instrs)
    producer = {w: ins for ins in instrs for w in ins.writes}

    def on_row(ins: Instr) -> bool:
        if isinstance(ins, Store):
            return bool(ins.dst.axes() & row_axes or kernel.values[ins.src].axes & row_axes)
        return not isinstance(ins, Reduce) and any(kernel.values[w].axes & row_axes for w in ins.writes)

    row = [i for i in instrs if on_row(i) or isinstance(i, Reduce)]
    sweep: dict[int, int] = {}
    for ins in reversed(row):
        if isinstance(ins, Reduce):
            sweep[id(ins)] = reduce_level(ins, level)
        elif isinstance(ins, Store):
            sweep[id(ins)] = level[ins.src] + 1
        else:
            users = [sweep[id(u)] for u in row if id(u) in sweep and set(ins.writes) & set(u.reads)]
            sweep[id(ins)] = min(users, default=reduce_level(ins, level) + 1)
    count = max(sweep.values(), default=0)
    scalar = [i for i in instrs if not on_row(i) and not isinstance(i, Reduce)]
    held: set[str] = set()
    passes = []
    for k in range(1, count + 1):
        mine = [i for i in row if sweep[id(i)] == k]
        chosen = {id(i) for i in mine}
        todo = [r for i in mine for r in i.reads]
        while todo:
            ins = producer.get(todo.pop())
            if ins is None or id(ins) in chosen or not on_row(ins):
                continue
            if recompute(ins):
                chosen.add(id(ins))
                todo.extend(ins.reads)
            else:
                held |= set(ins.writes)
        body = tuple(i for i in row if id(i) in chosen)
        passes.append(StreamPass(body, tuple(i for i in body if isinstance(i, Reduce)),
                                 tuple(i for i in scalar if level_of_all(i, level) == k)))
    before = tuple(i for i in scalar if level_of_all(i, level) == 0)
    return Sweeps(before, tuple(passes), frozenset(held))


def level_of_all(ins: Instr, level: dict[str, int]) -> int:
    return max((level[w] for w in ins.writes), default=reduce_level(ins, level))


_RECOMPUTE: dict[str, Callable[[Instr], bool]] = {
    "streamed": lambda ins: True, "reload": lambda ins: isinstance(ins, Load), "held": lambda ins: False}


def _placed_sweeps(kernel: Kernel) -> Sweeps:
    """The sweeps a CPU kernel planned with its strategy runs: streamed rows recompute
    everything, held rows recompute only (with `reload`) their input loads."""
    s: CpuStrategy = kernel.strategy
    return cpu_sweeps(kernel, _RECOMPUTE["streamed" if not s.held else "reload" if s.reload else "held"])


def held_bytes(kernel: Kernel) -> int:
    """Bytes a held plan keeps in cache across sweeps: its held buffers and the inputs later
    sweeps re-read (they must still be in cache, or the re-read goes to DRAM)."""
    s: CpuStrategy = kernel.strategy
    if s.kind not in ("row", "column") or not s.held:
        return 0
    sweeps = kernel.sweeps
    reread = {i.dst for i in kernel.instrs if isinstance(i, Load)
              and sum(i in p.sweep for p in sweeps.passes) > 1}
    width = s.rows_per_group if s.kind == "column" else 1
    return sum(dtype_bytes(kernel.values[v].dtype) * s.row_size * width for v in sweeps.held | reread)


# ---- strategies -----------------------------------------------------------------------------

def _lanes(hw: CpuModel, dtype: str) -> int:
    return max(1, hw.vector_bytes // dtype_bytes(dtype))


def _widest(kernel: Kernel) -> str:
    return max((v.dtype for v in kernel.values.values()), key=dtype_bytes, default="float32")


def _vectors(extent: int, lanes: int) -> list[int]:
    """Vector widths (elements) that divide `extent`: the ISA's width, wider (two registers)
    and narrower ones."""
    return [v for v in (2 * lanes, lanes, lanes // 2, lanes // 4) if v >= 1 and extent % v == 0] or [1]


def _row_vectors(kernel: Kernel, lanes: int) -> list[int]:
    """Vector widths along the row: a single row axis takes any width (a scalar loop does the
    tail); several row axes need one dividing the innermost (a vector never crosses it)."""
    if len(kernel.row) > 1:
        return _vectors(kernel.row[-1].extent, lanes)
    return [v for v in (2 * lanes, lanes, lanes // 2, lanes // 4) if 1 <= v <= kernel.row[0].extent] or [1]


def _isa_vector(extent: int, lanes: int) -> int:
    """The widest vector of at most one register that divides `extent`."""
    return next(v for v in _vectors(extent, lanes) if v <= lanes)


def cpu_row_strategy(kernel: Kernel, rows_per_task: int, vector: int, accumulators: int, held: bool,
                     reload: bool = True) -> CpuStrategy:
    rows = numel(a.extent for a in kernel.outer)
    n = numel(a.extent for a in kernel.row)
    step = vector * accumulators
    chunks, serial = (-(-n // vector), 1) if held else (accumulators, -(-n // step))
    return CpuStrategy(PlanFamily.ROW, -(-rows // rows_per_task), 1, 1, 1, rows_per_task, vector, chunks, serial, rows, n,
                       accumulators=accumulators, reload=reload)


def cpu_column_strategy(kernel: Kernel, columns_per_task: int, vector: int, held: bool) -> CpuStrategy:
    cols = numel(a.extent for a in kernel.outer)
    n = numel(a.extent for a in kernel.row)
    chunks, serial = (n, 1) if held else (1, n)
    return CpuStrategy(PlanFamily.COLUMN, -(-cols // columns_per_task), 1, 1, 1, columns_per_task, vector, chunks, serial,
                       cols, n, reload=False)


def flat_row_axes(kernel: Kernel) -> int:
    """How many innermost axes an elementwise kernel can walk as one contiguous row: every
    load and store indexes them as its own innermost dimensions, whole and in order, or not at
    all (a broadcast operand), and nothing else reads them.  A bias over NCHW channels then
    runs over H*W = 784 elements (49 vectors) instead of rows of W = 28 (a vector and a tail)."""
    outer = kernel.outer
    slices = [i.src if isinstance(i, Load) else i.dst for i in kernel.instrs if isinstance(i, (Load, Store))]
    others = [e for i in kernel.instrs if not isinstance(i, (Load, Store))
              for e in getattr(i, "args", ()) if not isinstance(e, str)]
    best = 1
    for k in range(2, len(outer) + 1):
        names = [a.name for a in outer[-k:]]
        if all(_contiguous_or_broadcast(sl, names) for sl in slices) and \
                not any(free_vars(e) & set(names) for e in others):
            best = k
        else:
            break
    return best


def _contiguous_or_broadcast(sl, names: list[str]) -> bool:
    used = sl.axes() & set(names)
    if not used:
        return True
    tail = sl.index[-len(names):]
    return (sl.predicate is None and len(sl.index) >= len(names)
            and all(isinstance(e, Var) and e.name == n for e, n in zip(tail, names))
            and not any(free_vars(e) & used for e in sl.index[:-len(names)]))


def _flat_shape(kernel: Kernel) -> tuple[int, int, int]:
    """(rows, row length, axes per row) of an elementwise kernel with several axes."""
    k = flat_row_axes(kernel)
    return (numel(a.extent for a in kernel.outer[:-k]), numel(a.extent for a in kernel.outer[-k:]), k)


def cpu_flat_strategy(kernel: Kernel, per_task: int, vector: int, accumulators: int) -> CpuStrategy:
    """`per_task` rows of the innermost axes (several outer axes), else `per_task` elements."""
    rows, inner, k = _flat_shape(kernel)
    if rows > 1 or k < len(kernel.outer):
        return CpuStrategy(PlanFamily.FLAT, -(-rows // per_task), 1, 1, 1, per_task, vector, 1, 1, rows,
                           inner, accumulators=accumulators, row_axes=k)
    total = numel(a.extent for a in kernel.outer)
    return CpuStrategy(PlanFamily.FLAT, -(-total // per_task), 1, 1, 1, per_task, vector, 1, 1, total, 1,
                       accumulators=accumulators)


def _flat_choices(kernel: Kernel, hw: CpuModel, lanes: int, per_core: int) -> list[tuple[int, int, int]]:
    """(per_task, vector, accumulators) of the flat strategies with `per_core` tasks per core."""
    if not kernel.outer:
        return [(1, 1, 1)]
    rows, inner, k = _flat_shape(kernel)
    if rows > 1 or k < len(kernel.outer):
        vecs = [v for v in (2 * lanes, lanes, lanes // 2, lanes // 4) if 1 <= v <= inner] or [1]
        return [(_rows_per_task(rows, hw, per_core), v, a) for v in vecs for a in ACCUMULATORS if v * a <= max(inner, v)]
    out = []
    for v, a in product(_vectors(inner, lanes), ACCUMULATORS):
        step = v * a
        out.append((-(-_rows_per_task(inner, hw, per_core) // step) * step, v, a))
    return out


def cpu_tile_strategy(kernel: Kernel, tile: int) -> CpuStrategy:
    a, b = transposed_axis(kernel), kernel.outer[-1].name
    axes = kernel.axes
    tiles = -(-axes[a] // tile) * -(-axes[b] // tile)
    rest = numel(ax.extent for ax in kernel.outer if ax.name not in (a, b))
    return CpuStrategy(PlanFamily.TILE, rest * tiles, 1, 1, 1, 1, tile, 1, 1, numel(axes.values()), 1,
                       tile_axes=(a, b), tile=tile)


TASKS_PER_CORE = (1, 4, 16)     # parallel tasks per core: fewer = less overhead, more = better balance
ACCUMULATORS = (1, 2, 4, 8)
TILES = (8, 16, 32, 64)


def _rows_per_task(outer: int, hw: CpuModel, per_core: int) -> int:
    return max(1, -(-outer // (hw.cores * per_core)))


def cpu_family(kernel: Kernel, buffers, hw: CpuModel) -> str:
    """row / column / flat as on any target; a transpose goes through an L1 tile when both of
    its edges span at least one vector (smaller ones copy directly)."""
    family = family_of(kernel, buffers, hw).kind
    if family == "tile":
        a, lanes = transposed_axis(kernel), _lanes(hw, _widest(kernel))
        if kernel.axes[a] < lanes or kernel.outer[-1].extent < lanes:
            return "flat"
    return family


def _row_modes(kernel: Kernel) -> list[tuple[bool, bool]]:
    """(held, reload) pairs that give different sweeps: with one reduction level and no row
    output nothing is carried between sweeps, and without inputs needed by later sweeps
    reloading them changes nothing.  A row of symbolic length only streams."""
    if is_symbolic(numel(a.extent for a in kernel.row)):
        return [(False, True)]

    def signature(recompute) -> tuple:
        sw = cpu_sweeps(kernel, recompute)
        return tuple(tuple(id(i) for i in p.sweep) for p in sw.passes), sw.held

    modes = {(True, True): signature(lambda ins: isinstance(ins, Load)),
             (True, False): signature(lambda ins: False),
             (False, True): signature(lambda ins: True)}
    seen: dict[tuple, tuple[bool, bool]] = {}
    for mode, sig in modes.items():
        seen.setdefault(sig, mode)
    return list(seen.values())


def cpu_strategies(kernel: Kernel, buffers, hw: CpuModel) -> list[CpuStrategy]:
    """The CPU choice space: rows (or columns, or elements) per task, vector width,
    accumulators, held (with or without reloading inputs) or streamed rows, tile edges."""
    family = cpu_family(kernel, buffers, hw)
    lanes = _lanes(hw, _widest(kernel))
    outer = numel(a.extent for a in kernel.outer)
    if family == "row":
        n = numel(a.extent for a in kernel.row)
        modes = _row_modes(kernel)
        found = []
        for per_core, vec, acc in product(TASKS_PER_CORE, _row_vectors(kernel, lanes), ACCUMULATORS):
            if vec * acc > max(n, vec):
                continue
            rpt = _rows_per_task(outer, hw, per_core)
            found += [cpu_row_strategy(kernel, rpt, vec, acc, held, reload) for held, reload in modes]
        return _unique(found)
    if family == "column":
        vecs = _vectors(kernel.outer[-1].extent, lanes)
        helds = list(dict.fromkeys(held for held, _ in _row_modes(kernel)))
        found = []
        for per_core, vec in product(TASKS_PER_CORE, vecs):
            block = -(-_rows_per_task(outer, hw, per_core) // vec) * vec
            found += [cpu_column_strategy(kernel, block, vec, held) for held in helds]
        return _unique(found)
    flat = [cpu_flat_strategy(kernel, *choice) for per_core in TASKS_PER_CORE
            for choice in _flat_choices(kernel, hw, lanes, per_core)]
    if family == "tile":
        return [cpu_tile_strategy(kernel, t) for t in TILES] + _unique(flat)
    return _unique(flat)


def _unique(found: list[CpuStrategy]) -> list[CpuStrategy]:
    return list(dict.fromkeys(found))


def with_cpu_strategy(kernel: Kernel, strategy: CpuStrategy, hw: CpuModel) -> Kernel:
    """Attach a CPU strategy: reductions run inside one task (lane scope); a tile stages its
    transposed loads through an L1 square; a held plan must fit its share of L2."""
    if strategy.held and is_symbolic(numel(a.extent for a in kernel.row)):
        raise Unsupported("a row of symbolic length is never held (it streams)")
    if strategy.kind == "tile":
        kernel = stage_through_sram(kernel, strategy.tile_axes[0], tile=strategy.tile)
    instrs = [replace(i, scope=Scope.LANE) if isinstance(i, Reduce) else i for i in kernel.instrs]
    if any(isinstance(i, Reduce) and i.shift is not None for i in instrs):
        raise Unsupported("online statistics are not rendered on the CPU")
    planned = replace(kernel, instrs=instrs, strategy=strategy, sweeps=None)
    if kernel.row:   # a streamed row's DRAM bytes count every sweep, as a GPU plan's do
        planned = replace(planned, sweeps=_placed_sweeps(planned))
    held = held_bytes(planned)
    if held > hw.held_budget:
        raise Unsupported(f"held row needs {held} bytes, more than half of L2")
    return planned


def _placement(strategy: CpuStrategy) -> tuple:
    """What of a strategy shapes the planned kernel beyond the strategy itself: the sweeps
    (held, reload), the staged tile, the block of columns a held plan keeps.  Tasks, vector
    width and accumulators change neither its instructions, its sweeps nor its DRAM traffic."""
    return (strategy.kind, strategy.held, strategy.reload, strategy.tile, strategy.tile_axes,
            strategy.rows_per_group if strategy.kind == "column" else None)


def cpu_placements(kernel: Kernel, strategies: list[CpuStrategy], hw: CpuModel) -> list[tuple[Kernel, Kernel]]:
    """`with_cpu_strategy` of every strategy the planner accepts, in order, each with the
    first kernel of its placement: kernels of one placement share their instructions and
    sweeps (placed, and refused, once), so their DRAM traffic too."""
    placed: dict[tuple, Kernel | None] = {}
    found = []
    for strategy in strategies:
        key = _placement(strategy)
        if key not in placed:
            try:
                placed[key] = with_cpu_strategy(kernel, strategy, hw)
            except Unsupported:
                placed[key] = None
            if placed[key] is not None:
                found.append((placed[key], placed[key]))
        elif placed[key] is not None:
            found.append((replace(placed[key], strategy=strategy), placed[key]))
    return found


def plan_cpu_kernel(kernel: Kernel, buffers, hw: CpuModel) -> Kernel:
    """The default CPU plan: 4 tasks per core; the widest vector of the ISA that divides the
    row; 4 accumulators (elementwise: at most 4, the most that leave no scalar tail); a row held (inputs re-read from cache) when it fits half of L2,
    else streamed; columns held likewise; 32 x 32 transpose tiles."""
    family = cpu_family(kernel, buffers, hw)
    lanes = _lanes(hw, _widest(kernel))
    outer = numel(a.extent for a in kernel.outer)
    per_core = 4
    if family == "tile":
        return with_cpu_strategy(kernel, cpu_tile_strategy(kernel, min(32, 4 * lanes)), hw)
    if family == "row":
        n = numel(a.extent for a in kernel.row)
        vec = next(v for v in _row_vectors(kernel, lanes) if v <= lanes)
        acc = max(1, min(4, n // max(1, vec)))
        rpt = _rows_per_task(outer, hw, per_core)
        for held in (True, False):
            try:
                return with_cpu_strategy(kernel, cpu_row_strategy(kernel, rpt, vec, acc, held), hw)
            except Unsupported:
                continue
    if family == "column":
        vec = _isa_vector(kernel.outer[-1].extent, lanes)
        block = -(-_rows_per_task(outer, hw, per_core) // vec) * vec
        for held in (True, False):
            try:
                return with_cpu_strategy(kernel, cpu_column_strategy(kernel, block, vec, held), hw)
            except Unsupported:
                continue
    choices = _flat_choices(kernel, hw, lanes, per_core)
    inner = _flat_shape(kernel)[1] if kernel.outer else 1
    # the widest single register dividing the row (no tail), 4 accumulators where the row has them
    fitting = [c for c in choices if c[1] <= lanes and inner % c[1] == 0] or choices
    vec = max(c[1] for c in fitting)
    accs = [c[2] for c in fitting if c[1] == vec and c[2] <= 4]
    acc = max([a for a in accs if inner % (vec * a) == 0] or accs)   # no scalar tail where one fits
    return with_cpu_strategy(kernel, cpu_flat_strategy(kernel, *next(c for c in fitting if c[1:] == (vec, acc))), hw)
