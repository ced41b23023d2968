"""The dataflow graph as DOT: every instruction a node coloured by its memory level, edges
labelled with the slice or value they carry and its bytes, the strategy in the caption."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

import intelligen_tvm
from intelligen_tvm import suite
from intelligen_tvm.gir.dot import LEVEL_COLOURS, human_bytes, program_dot
from intelligen_tvm.gir.program import Level, Load, Store, Sync, instr_op, instr_text
from intelligen_tvm.inspection import region_details

CUDA = {"kind": "cuda", "arch": "sm_90"}


def _planned(case: str, small: bool = True):
    mod = intelligen_tvm.from_onnx(suite.get_case(case).build(small=small))
    _, details = region_details(mod, CUDA)
    (detail,) = details
    return detail.program


def _nodes(text: str) -> dict[str, str]:
    """Instruction node id -> its attribute list."""
    return dict(re.findall(r'^\s+"(k\d+:i\d+)" \[(.*)\];$', text, re.M))


def test_transpose_tile_shows_every_level_and_its_bytes() -> None:
    program = _planned("transpose_relu", small=False)   # a padded SRAM tile: dram, sram and reg moves
    (kernel,) = program.kernels
    text = program_dot(program, "caption here")
    nodes = _nodes(text)
    assert len(nodes) == len(kernel.instrs)
    for i, ins in enumerate(kernel.instrs):
        attrs = nodes[f"k0:i{i}"]
        if isinstance(ins, (Load, Store, Sync)):
            assert f'fillcolor="{LEVEL_COLOURS[ins.level]}"' in attrs
        assert f'label="{instr_op(ins)}' in attrs and instr_op(ins) in instr_text(ins, kernel.values)
    levels = {ins.level for ins in kernel.instrs if isinstance(ins, (Load, Store))}
    assert levels == {Level.DRAM, Level.SRAM}
    assert any(isinstance(ins, Sync) for ins in kernel.instrs) and "shape=octagon" in text
    # the DRAM input edge: its slice and its bytes (the whole input, read once)
    (inp,) = program.inputs
    nbytes = program.buffers[inp].nbytes
    edge = re.search(rf'"buf:{inp}" -> "k0:i\d+" \[label="{inp}\[[^"]*\\n([^"]+)"\]', text)
    assert edge and edge[1] == human_bytes(nbytes) == "4.0 MiB"
    assert re.search(r'"buf:\w+" -> "k0:i\d+" \[style=dashed, label="[^"]*\\nview: 0 B"\]', text)  # a folded view
    assert f"strategy {kernel.strategy}" in text and 'label="caption here"' in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not on PATH (apt-get install graphviz)")
def test_graphviz_reads_it() -> None:
    text = program_dot(_planned("softmax"))
    proc = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "<svg" in proc.stdout, proc.stderr
