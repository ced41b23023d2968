"""The phases of a `split_row` plan as GIR kernels, with their DRAM workspaces.

A split_row kernel (few long rows, one reduction level; see `families/split_row.py`) becomes:

- *partial*: outer (O, sp<G>), row (sn<L>): group (o, sp) reduces the row elements
  sp * L + sn (the last slice masked at the row end, where the masked elements take the
  reduction's neutral value) and stores one partial per reduction into a workspace [O, G];
- *finish*: outer O, row (sp<G>): loads the G partials, combines them (with the original
  init, applied once), computes the per-row values and stores the per-row outputs; the
  per-row values that row outputs need go to a second workspace [O];
- *apply* (only with row outputs): elementwise over (O, R): reloads the row and the finished
  per-row values and writes the row outputs (rms_norm's x * rsqrt(mean(x^2)) * w).

The workspaces are tmp DRAM buffers of the program and their moves are ordinary DRAM loads
and stores, so planned bytes count them.  The renderer emits the phases as sequential
launches of one PrimFunc.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..gir import expr as E
from ..gir.hardware import HardwareModel
from ..gir.program import Axis, Buffer, Compute, Instr, Kernel, Load, Program, Reduce, Slice, Store, Value
from ..gir.strategy import ParallelStrategy, PlanFamily
from .families.row import row_strategy
from .plan import plan_kernel, with_strategy

SPLIT, POS = "sp", "sn"   # the split a group owns, the position inside its slice
_NEUTRAL = {"sum": 0, "prod": 1}   # max/min: the original init is idempotent, reuse it


def _int(value: int) -> E.Const:
    return E.Const("int32", value)


def _var(name: str) -> E.Var:
    return E.Var("int32", name)


def _needed(pool: tuple[Instr, ...], users: list[Instr]) -> list[Instr]:
    """The instructions of `pool` whose values `users` read, directly or through each other."""
    wanted = {r for u in users for r in u.reads}
    picked: list[Instr] = []
    for ins in reversed(pool):
        if wanted & set(ins.writes):
            picked.append(ins)
            wanted |= set(ins.reads)
    return picked[::-1]


def _values(kernel: Kernel, instrs: list[Instr], new: dict[str, Value]) -> dict[str, Value]:
    """The values that `instrs` write: from `new` (new or re-shaped ones), else the kernel's."""
    return {w: new.get(w) or kernel.values[w] for ins in instrs for w in ins.writes}


def _reshaped(kernel: Kernel, name: str, axes) -> Value:
    return Value(name, kernel.values[name].dtype, frozenset(axes))


def _flat_position(length: int) -> E.Expr:
    """The row position (row-major over the row axes) of element sn of slice sp."""
    return E.Call("int32", "add", (E.Call("int32", "mul", (_var(SPLIT), _int(length))), _var(POS)))


def _row_position(kernel: Kernel, length: int) -> dict[str, E.Expr]:
    """Row axis -> its coordinate at the flat row position of (sp, sn)."""
    flat = _flat_position(length)
    out: dict[str, E.Expr] = {}
    stride = 1
    for k, ax in enumerate(reversed(kernel.row)):
        inner = flat if stride == 1 else E.Call("int32", "floordiv", (flat, _int(stride)))
        out[ax.name] = inner if k == len(kernel.row) - 1 else E.Call("int32", "floormod", (inner, _int(ax.extent)))
        stride *= ax.extent
    return out


def _on_slice(ins: Instr, coords: dict[str, E.Expr], mask: E.Expr | None) -> Instr:
    """An instruction of the row sweep rewritten to index the group's slice of the row."""
    if isinstance(ins, Load):
        pred = ins.src.predicate and E.substitute(ins.src.predicate, coords)
        if mask is not None:
            pred = mask if pred is None else E.Call("bool", "and", (pred, mask))
        return replace(ins, src=Slice(ins.src.buffer, tuple(E.substitute(i, coords) for i in ins.src.index), pred))
    if isinstance(ins, Compute):
        return replace(ins, args=tuple(a if isinstance(a, str) else E.substitute(a, coords) for a in ins.args))
    return ins


def _partial_init(red: Reduce) -> E.Expr:
    if red.op not in _NEUTRAL:
        return red.init
    neutral = _NEUTRAL[red.op]
    return E.Const(red.init.dtype, float(neutral) if red.init.dtype.startswith(("float", "bfloat")) else neutral)


def _partial(kernel: Kernel, s: ParallelStrategy, before, sweep, workspaces: dict[str, Buffer]) -> Kernel:
    length = s.serial * s.chunks * s.threads_per_row * s.vector
    coords = _row_position(kernel, length)
    mask = None
    if length * s.splits != s.row_size:
        mask = E.Call("bool", "lt", (_flat_position(length), _int(s.row_size)))
    row_names = {a.name for a in kernel.row}
    outer_vars = tuple(_var(a.name) for a in kernel.outer)
    split_axes = frozenset({SPLIT, POS})
    instrs: list[Instr] = list(_needed(before, list(sweep.sweep)))
    new: dict[str, Value] = {}
    for ins in sweep.sweep:
        if not isinstance(ins, Reduce):
            instrs.append(_on_slice(ins, coords, mask))
            new |= {w: _reshaped(kernel, w, (kernel.values[w].axes - row_names) | split_axes)
                    for w in ins.writes if kernel.values[w].axes & row_names}
            continue
        src, init = ins.src, _partial_init(ins)
        if mask is not None:   # elements past the row end must not count
            src = f"{ins.src}_in"
            new[src] = replace(new[ins.src], name=src)
            instrs.append(Compute(src, "select", (mask, ins.src, init)))
        instrs.append(replace(ins, src=src, init=init))
        new[ins.dst] = _reshaped(kernel, ins.dst, kernel.values[ins.dst].axes | {SPLIT})
        instrs.append(Store(Slice(workspaces[ins.dst].name, (*outer_vars, _var(SPLIT))), ins.dst))
    return Kernel(f"{kernel.name}_partial", (*kernel.outer, Axis(SPLIT, s.splits)), (Axis(POS, length),),
                  instrs, _values(kernel, instrs, new))


def _row_slot(kernel: Kernel) -> tuple[E.Expr, ...]:
    """Where a per-row value sits in a [O] workspace (a single row: [1])."""
    return tuple(_var(a.name) for a in kernel.outer) or (_int(0),)


def _finish(kernel: Kernel, s: ParallelStrategy, before, level, stats: dict[str, Buffer],
            workspaces: dict[str, Buffer]) -> Kernel:
    outer_vars = tuple(_var(a.name) for a in kernel.outer)
    instrs: list[Instr] = []
    new: dict[str, Value] = {}
    for red in level.reduces:
        part = f"{red.dst}_part"
        new[part] = Value(part, kernel.values[red.dst].dtype, kernel.values[red.dst].axes | {SPLIT})
        instrs += [Load(part, Slice(workspaces[red.dst].name, (*outer_vars, _var(SPLIT)))),
                   replace(red, src=part)]
    instrs += list(level.after) + [Store(Slice(b.name, _row_slot(kernel)), v) for v, b in stats.items()]
    stores = [i for i in before if isinstance(i, Store)]   # per-row outputs needing no reduction
    instrs = _needed(before, stores + instrs) + stores + instrs
    return Kernel(f"{kernel.name}_finish", kernel.outer, (Axis(SPLIT, s.splits),), instrs,
                  _values(kernel, instrs, new))


def _apply(kernel: Kernel, before, sweep, stats: dict[str, Buffer]) -> Kernel:
    loads = [Load(v, Slice(b.name, _row_slot(kernel))) for v, b in stats.items()]
    instrs = _needed(before, list(sweep.sweep)) + loads + list(sweep.sweep)
    return Kernel(f"{kernel.name}_apply", (*kernel.outer, *kernel.row), (), instrs, _values(kernel, instrs, {}))


def split_phases(kernel: Kernel, buffers: Mapping[str, Buffer]) -> tuple[list[Kernel], dict[str, Buffer]]:
    """The unplanned phase kernels of a split_row kernel and the workspaces they share."""
    s: ParallelStrategy = kernel.strategy
    assert {SPLIT, POS}.isdisjoint(kernel.axes), "split axes clash with the region's axes"
    before, passes = kernel.sweeps.before, kernel.sweeps.passes
    level, rest = passes[0], passes[1:]
    outer_shape = tuple(a.extent for a in kernel.outer)
    workspaces = {r.dst: Buffer(f"ws_{r.dst}", (*outer_shape, s.splits), kernel.values[r.dst].dtype)
                  for r in level.reduces}
    inside = {w for p in rest for i in p.sweep for w in i.writes}
    needs = [r for p in rest for i in p.sweep for r in i.reads if r not in inside]
    produced = {w for i in (*level.reduces, *level.after) for w in i.writes}
    stats = {v: Buffer(f"ws_{v}", outer_shape or (1,), kernel.values[v].dtype)
             for v in dict.fromkeys(needs) if v in produced}
    clash = ({b.name for b in workspaces.values()} | {b.name for b in stats.values()}) & set(buffers)
    assert not clash, f"workspace names clash with the region's buffers: {sorted(clash)}"
    phases = [_partial(kernel, s, before, level, workspaces), _finish(kernel, s, before, level, stats, workspaces)]
    if rest:
        (sweep,) = rest
        phases.append(_apply(kernel, before, sweep, stats))
    return phases, {b.name: b for b in (*workspaces.values(), *stats.values())}


def expand_program(program: Program, hw: HardwareModel) -> Program:
    """`program` with every split_row kernel replaced by its planned phases (the partial
    phase keeps the split's knobs; finishing and applying get their default plans)."""
    kernels: list[Kernel] = []
    buffers = dict(program.buffers)
    for kernel in program.kernels:
        s = kernel.strategy
        if s is None or s.kind is not PlanFamily.SPLIT_ROW:
            kernels.append(kernel)
            continue
        phases, workspaces = split_phases(kernel, program.buffers)
        buffers |= workspaces
        partial, *later = phases
        strategy = row_strategy(partial, hw, s.threads_per_row, s.vector, 1, chunks=s.chunks)
        kernels.append(with_strategy(partial, replace(strategy, unroll=s.unroll), hw))
        kernels += [plan_kernel(k, buffers, hw) for k in later]
    return replace(program, buffers=buffers, kernels=kernels)
