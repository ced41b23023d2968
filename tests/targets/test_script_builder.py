"""script_builder: the PrimFunc built from a rendered source is the one TVM's parser makes of
it (printed identically, structurally equal), for the kernels every backend renders."""

from __future__ import annotations

import onnx
import pytest
import tvm
from onnx import TensorProto, helper

import intelligen_tvm
from intelligen_tvm import suite, targets
from intelligen_tvm.dataflow_graph.choices import enumerate_candidates
from intelligen_tvm.inspection import kernel_source, region_details
from intelligen_tvm.targets.script_builder import Untranslatable, build_prim_func_from_script
from intelligen_tvm.tuning import collect_regions

TARGETS = {"llvm": {"kind": "llvm"}, "cuda": {"kind": "cuda", "arch": "sm_90"},
           "rocm": {"kind": "rocm", "mcpu": "gfx942"}}
SAMPLES_PER_REGION = 4


def _same_as_parsed(source: str) -> None:
    built = build_prim_func_from_script(source)
    parsed = targets.parse_source(source)
    assert built.script() == parsed.script()
    tvm.ir.assert_structural_equal(built, parsed)


@pytest.mark.parametrize("kind", sorted(TARGETS))
@pytest.mark.parametrize("name", [c.name for c in suite.SUITE])
def test_sampled_candidates_of_every_suite_region_build_as_parsed(name: str, kind: str) -> None:
    target = tvm.target.Target(TARGETS[kind])
    hw = targets.hardware_model(target)
    mod = intelligen_tvm.from_onnx(suite.get_case(name).build(small=True))
    regions = collect_regions(mod, target)
    assert regions
    for region in regions:
        candidates = enumerate_candidates(region.kernel, region.shell, hw)
        for k, cand in enumerate(candidates[:: max(1, len(candidates) // SAMPLES_PER_REGION)]):
            _same_as_parsed(targets.render_source(cand.program.renamed(f"c{k}"), kind, f"c{k}"))


def _dynamic_softmax_of_sum() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 96])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 96])
    nodes = [helper.make_node("Add", ["x", "x"], ["s"]), helper.make_node("Softmax", ["s"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "dynamic", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("kind", ["llvm", "cuda"])
def test_symbolic_kernels_build_as_parsed(kind: str) -> None:
    """Shapes bound at run time: handles, match_buffer and the symbol's declaration."""
    mod = intelligen_tvm.from_onnx(_dynamic_softmax_of_sum())
    _, details = region_details(mod, TARGETS[kind])
    sources = [kernel_source(d, TARGETS[kind]) for d in details if d.handled]
    assert sources and all("T.handle" in s and "T.match_buffer" in s for s in sources)
    for source in sources:
        _same_as_parsed(source)


@pytest.mark.parametrize("source, construct", [
    ("@T.prim_func\ndef f(a: T.Buffer((4,), 'float32')):\n    x = a[0] + 1.0\n", "assignment"),
    ("@T.prim_func\ndef f(a: T.Buffer((4,), 'float32')):\n"
     "    for i in T.serial(4):\n        for i in T.serial(2):\n            a[i] = 0.0\n", "shadows"),
    ("@T.prim_func\ndef f(a: T.Buffer((4,), 'float32')):\n    while True:\n        pass\n", "While"),
    ("@T.prim_func\ndef f(a: T.Buffer((4,), 'float32')):\n    a[0] = 1.0 if True else 2.0\n", "IfExp"),
])
def test_what_the_subset_does_not_cover_is_refused(source: str, construct: str) -> None:
    with pytest.raises(Untranslatable, match=construct):
        build_prim_func_from_script(source)


def test_the_shipped_path_parses_what_it_cannot_build() -> None:
    source = "@T.prim_func(s_tir=True)\ndef f(a: T.Buffer((4,), 'float32')):\n    x = a[0] + 1.0\n    a[1] = x\n"
    tvm.ir.assert_structural_equal(targets.source_prim_func(source), targets.parse_source(source))
