"""Monotonic rewrites of the dataflow graph: none of them ever adds a byte of DRAM traffic.

Each rewrite is a pure function Kernel -> Kernel.  Values are SSA, so forwarding a load
is a rename of its uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ..gir import expr as E
from ..gir.errors import Unsupported
from ..gir.program import Compute, Identity, Instr, Kernel, Load, Reduce, Slice, Store


def _rename_instr(ins: Instr, ren: dict[str, str]) -> Instr:
    if not ren:
        return ins
    r = lambda n: ren.get(n, n)  # noqa: E731
    fix = lambda e: E.transform(e, lambda x: E.ValueRef(x.dtype, r(x.value)) if isinstance(x, E.ValueRef) else None)  # noqa: E731

    def idx(sl: Slice) -> Slice:
        """Gathered indices and the guard's condition both refer to register values."""
        return Slice(sl.buffer, tuple(fix(i) for i in sl.index), sl.predicate and fix(sl.predicate))

    if isinstance(ins, Load):
        return replace(ins, src=idx(ins.src))
    if isinstance(ins, Store):
        return replace(ins, dst=idx(ins.dst), src=r(ins.src))
    if isinstance(ins, Compute):
        return replace(ins, args=tuple(r(a) if isinstance(a, str) else fix(a) for a in ins.args))
    if isinstance(ins, Reduce):
        return replace(ins, src=r(ins.src))
    return ins


def _key(sl: Slice) -> tuple:
    return (sl.buffer, sl.index, sl.predicate)


def forward_stores(kernel: Kernel) -> Kernel:
    """store->load forwarding and duplicate-load elimination.

    A load of a slice that this kernel stored (same buffer, same index function) or
    already loaded is replaced by the register value; the element-to-lane mapping is a
    function of the region axes only, so equal index functions mean equal registers.
    """
    known: dict[tuple, str] = {}
    ren: dict[str, str] = {}
    out: list[Instr] = []
    for ins in kernel.instrs:
        ins = _rename_instr(ins, ren)
        if isinstance(ins, Load):
            # A stored value is in registers whatever a load's guard says.
            hit = known.get(_key(ins.src)) or known.get(_key(Slice(ins.src.buffer, ins.src.index)))
            if hit is not None:
                ren[ins.dst] = hit
                continue
            known[_key(ins.src)] = ins.dst
        if isinstance(ins, Store):
            known[_key(ins.dst)] = ins.src
        out.append(ins)
    return replace(kernel, instrs=out)


def eliminate_common_subexpressions(kernel: Kernel) -> Kernel:
    """A computation or reduction equal to an earlier one (same operation on the same values,
    same result type) is replaced by the earlier result.  Imported graphs repeat them: the
    decomposed layer norm of BERT's embedding computes x - mean three times."""
    seen: dict[tuple, str] = {}
    ren: dict[str, str] = {}
    out: list[Instr] = []
    for ins in kernel.instrs:
        ins = _rename_instr(ins, ren)
        if isinstance(ins, (Compute, Reduce)):
            value = kernel.values[ins.dst]
            key = (replace(ins, dst=""), value.dtype, value.axes)
            if key in seen:
                ren[ins.dst] = seen[key]
                continue
            seen[key] = ins.dst
        out.append(ins)
    return replace(kernel, instrs=out)


def eliminate_dead_stores(kernel: Kernel, outputs: list[str]) -> Kernel:
    """Stores of intermediates nobody loads any more are dropped (region outputs stay)."""
    loaded = {ins.src.buffer for ins in kernel.instrs if isinstance(ins, Load)}
    instrs = [ins for ins in kernel.instrs
              if not (isinstance(ins, Store) and ins.dst.buffer not in outputs and ins.dst.buffer not in loaded)]
    return replace(kernel, instrs=instrs)


def eliminate_dead_values(kernel: Kernel) -> Kernel:
    """Instructions whose results are never read are dropped; views that nothing uses too."""
    live: set[str] = set()
    kept: list[Instr] = []
    for ins in reversed(kernel.instrs):
        if isinstance(ins, Identity):
            continue
        if ins.writes and not any(w in live for w in ins.writes):
            continue
        live |= set(ins.reads)
        kept.append(ins)
    kept.reverse()
    views = [ins for ins in kernel.instrs if isinstance(ins, Identity)]
    values = {n: v for n, v in kernel.values.items() if n in live or any(n in i.writes for i in kept)}
    return replace(kernel, instrs=views + kept, values=values)


def check_no_intermediate_reads(kernel: Kernel, inputs: list[str]) -> None:
    """After forwarding, a kernel may only load region inputs: anything else would read data
    other groups write in the same launch."""
    for ins in kernel.instrs:
        if isinstance(ins, Load) and ins.src.buffer not in inputs:
            raise Unsupported(f"{ins.src.buffer} is re-read at another index than written (needs a second kernel)")


def monotonic_rewrites(kernel: Kernel, inputs: list[str], outputs: list[str],
                       after_stage: Callable[[str, Kernel], None] | None = None) -> Kernel:
    """The monotonic stages in order; `after_stage` sees each stage's name and result (the
    planner's rewrite check, see rewrite_check.py)."""
    stages = (("forward_stores", forward_stores),
              ("eliminate_common_subexpressions", eliminate_common_subexpressions),
              ("eliminate_dead_stores", lambda k: eliminate_dead_stores(k, outputs)),
              ("eliminate_dead_values", eliminate_dead_values))
    for name, rewrite in stages:
        kernel = rewrite(kernel)
        if after_stage is not None:
            after_stage(name, kernel)
    check_no_intermediate_reads(kernel, inputs)
    return kernel
