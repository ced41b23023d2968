"""A GIR program as a Graphviz DOT graph: the instruction-level dataflow graph one can look at.

Nodes are instructions and buffers, coloured by memory level (DRAM red, SRAM orange, registers
green); edges carry the slice or register value they move and its bytes over the whole launch,
so a store->reload pair or a broadcast re-read shows as an edge through a DRAM node.  Each
kernel is a cluster whose caption is its parallel strategy.  Pure text: rendering is elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from .program import (Buffer, Compute, Identity, Instr, Kernel, Level, Load, Program, Reduce, Slice, Store,
                      Sync, dtype_bytes, instr_op, instr_text, slice_footprint)

LEVEL_COLOURS = {Level.DRAM: "#f4a6a6", Level.SRAM: "#f8cf8b", Level.REG: "#b7e3b0"}
VIEW_COLOUR = "#dddddd"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _instr_level(ins: Instr) -> Level | None:
    """The memory level an instruction works at (None: a view, no data moves)."""
    if isinstance(ins, (Load, Store, Sync)):
        return ins.level
    if isinstance(ins, (Compute, Reduce)):
        return Level.REG
    return None


def _instr_label(ins: Instr) -> str:
    """The operation's name; an online reduction (folded into its max's sweep) says so."""
    online = isinstance(ins, Reduce) and ins.shift is not None
    return instr_op(ins) + (" (online)" if online else "")


def _value_bytes(kernel: Kernel, name: str) -> int:
    """Bytes of a register value over the whole launch: its axes' extents times its dtype."""
    val = kernel.values.get(name)
    if val is None:
        return 0
    count = 1
    for axis in val.axes:
        count *= kernel.axes.get(axis, 1)
    return count * dtype_bytes(val.dtype)


def _slice_label(sl: Slice, kernel: Kernel, buffers: Mapping[str, Buffer]) -> str:
    return f"{sl.text()}\n{human_bytes(slice_footprint(sl, kernel.axes, buffers, kernel.values))}"


def program_dot(program: Program, caption: str = "") -> str:
    """DOT text of `program`: one cluster per kernel, buffers shared between kernels."""
    lines = ["digraph gir {", "  rankdir=TB;", "  labelloc=t;", "  fontname=Helvetica;",
             "  node [fontname=Helvetica, fontsize=10, style=filled];",
             "  edge [fontname=Helvetica, fontsize=9];",
             f"  label={_quote(caption or 'gir.program ' + program.name)};"]
    for buf in program.buffers.values():
        role = "in" if buf.name in program.inputs else "out" if buf.name in program.outputs else "tmp"
        label = f"{buf.name} ({role})\n{buf.dtype}{list(buf.shape)} @{buf.level.value}\n{human_bytes(buf.nbytes)}"
        lines.append(f"  {_quote('buf:' + buf.name)} [shape=cylinder, label={_quote(label)}, "
                     f"fillcolor={_quote(LEVEL_COLOURS[buf.level])}];")
    for k, kernel in enumerate(program.kernels):
        lines += _kernel_lines(k, kernel, program)
    lines += _legend_lines()
    lines.append("}")
    return "\n".join(lines) + "\n"


def _kernel_lines(k: int, kernel: Kernel, program: Program) -> list[str]:
    buffers = {**program.buffers, **kernel.local_buffers}
    outer = ", ".join(f"{a.name}<{a.extent}>" for a in kernel.outer)
    row = ", ".join(f"{a.name}<{a.extent}>" for a in kernel.row)
    caption = f"kernel {kernel.name} outer({outer}) row({row})"
    if kernel.strategy is not None:
        caption += f"\nstrategy {kernel.strategy}"
    lines = [f"  subgraph cluster_k{k} {{", f"    label={_quote(caption)};", "    style=rounded;",
             "    color=\"#888888\";"]
    for buf in kernel.local_buffers.values():
        label = f"{buf.name}\n{buf.dtype}{list(buf.shape)} @{buf.level.value}\n{human_bytes(buf.nbytes)}"
        lines.append(f"    {_quote(f'k{k}:buf:' + buf.name)} [shape=cylinder, label={_quote(label)}, "
                     f"fillcolor={_quote(LEVEL_COLOURS[buf.level])}];")
    producer: dict[str, str] = {}
    edges: list[str] = []
    last_store: dict[Level, str] = {}   # a barrier orders the stores before it ...
    barrier: dict[Level, str] = {}      # ... and the loads after it, at its level

    def buffer_node(name: str) -> str:
        return _quote(f"k{k}:buf:{name}" if name in kernel.local_buffers else f"buf:{name}")

    for i, ins in enumerate(kernel.instrs):
        node = _quote(f"k{k}:i{i}")
        level = _instr_level(ins)
        colour = LEVEL_COLOURS[level] if level is not None else VIEW_COLOUR
        shape = "octagon" if isinstance(ins, Sync) else "box"
        lines.append(f"    {node} [shape={shape}, label={_quote(_instr_label(ins))}, "
                     f"tooltip={_quote(instr_text(ins, kernel.values))}, fillcolor={_quote(colour)}];")
        if isinstance(ins, Sync) and ins.level in last_store:
            edges.append(f"  {last_store[ins.level]} -> {node} [style=dotted, label=\"barrier\"];")
            barrier[ins.level] = node
        if isinstance(ins, Store):
            last_store[ins.level] = node
        if isinstance(ins, Load) and ins.level in barrier:
            edges.append(f"  {barrier.pop(ins.level)} -> {node} [style=dotted];")
        if isinstance(ins, Load):
            edges.append(f"  {buffer_node(ins.src.buffer)} -> {node} "
                         f"[label={_quote(_slice_label(ins.src, kernel, buffers))}];")
        if isinstance(ins, Identity):
            edges.append(f"  {buffer_node(ins.src.buffer)} -> {node} "
                         f"[style=dashed, label={_quote(ins.src.text() + chr(10) + 'view: 0 B')}];")
        if isinstance(ins, Store):
            edges.append(f"  {node} -> {buffer_node(ins.dst.buffer)} "
                         f"[label={_quote(_slice_label(ins.dst, kernel, buffers))}];")
        for name in ins.reads:
            if name in producer:
                label = f"%{name}\n{human_bytes(_value_bytes(kernel, name))}"
                edges.append(f"  {producer[name]} -> {node} [label={_quote(label)}];")
        for name in ins.writes:
            producer[name] = node
    lines.append("  }")
    return lines + edges


def _legend_lines() -> list[str]:
    """A small key: which colour is which memory level."""
    lines = ["  subgraph cluster_legend {", "    label=\"memory level\";", "    style=dashed;"]
    for level, colour in LEVEL_COLOURS.items():
        lines.append(f"    {_quote('legend:' + level.value)} [shape=box, label={_quote(level.value)}, "
                     f"fillcolor={_quote(colour)}];")
    lines.append(f"    \"legend:view\" [shape=box, label=\"view (no data moves)\", fillcolor={_quote(VIEW_COLOUR)}];")
    lines.append("  }")
    return lines
