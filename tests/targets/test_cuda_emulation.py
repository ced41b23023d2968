"""The CUDA source that tvm.compile emits, run on the CPU by the emulation harness
(cuda_emu.h + cuda_emulation.py) and compared with onnx.reference: every suite case, fp16
variants, sampled candidates of every plan family, the two renderer fixes, and mutations of
real sources that the harness must report."""

from __future__ import annotations

import dataclasses
import functools
import re

import numpy as np
import pytest
import tvm

import intelligen_tvm
from intelligen_tvm import suite
from intelligen_tvm.dataflow_graph.choices import enumerate_candidates
from intelligen_tvm.region import default_choice, lower_region, plan_region
from intelligen_tvm.targets import render
from intelligen_tvm.testing import reference_outputs, tolerances
from tests.helpers import check_nvcc_compiles, model_region, suite_model
from tests.targets.cuda_emulation import (CUDA, DISTRIBUTIONS, CompileError, check_outputs, compile_cuda, emulate,
                                          emulate_model, region_inputs, shifted_inputs, with_float_type)

NAMES = [c.name for c in suite.SUITE]
FULL = ["softmax", "rms_norm", "sum_axis0", "transpose_relu"]   # block-level reductions, the tile
FP16 = ["layer_norm", "add_layer_norm", "rms_norm", "softmax", "attention_softmax", "bias_gelu_erf", "swiglu",
        "relu_add", "bias_add"]


@functools.cache
def _emulated(name: str, small: bool = True, dtype: str = "float32"):
    model = suite_model(name, small)
    return emulate_model(model if dtype == "float32" else with_float_type(model, dtype))


def _tolerance(model, want: np.ndarray) -> tuple[float, float]:
    rtol, atol = tolerances(model)
    return rtol, atol * max(1.0, float(np.abs(want).max()))


def _check_case(name: str, small: bool, dist: str) -> None:
    em = _emulated(name, small)
    inputs = shifted_inputs(suite.get_case(name), np.random.default_rng(1), small, dist)
    got, want = em.run(inputs)
    check_outputs([got], [want], *_tolerance(em.model, want), what=f"{name} ({dist})")


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
@pytest.mark.parametrize("name", NAMES)
def test_suite_case_matches_onnx_reference(name: str, dist: str) -> None:
    _check_case(name, True, dist)


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL)
def test_suite_case_full_size(name: str) -> None:
    _check_case(name, False, "scaled")


@pytest.mark.parametrize("name", FP16)
def test_fp16_case_matches_fp32_reference(name: str) -> None:
    """The model in float16 (GPU inference): compared with the fp32 reference of the same
    (fp16-rounded) weights and inputs, at fp16 tolerance."""
    em = _emulated(name, True, "float16")
    assert "half" in em.build.source
    inputs = [a.astype(np.float16) if a.dtype == np.float32 else a
              for a in shifted_inputs(suite.get_case(name), np.random.default_rng(2), True, "scaled")]
    got, _ = em.run(inputs)
    assert got.dtype == np.float16
    ref_model = with_float_type(em.model, "float32")
    (want,) = reference_outputs(ref_model, [a.astype(np.float32) if a.dtype == np.float16 else a for a in inputs])
    check_outputs([got], [want.reshape(got.shape)], 1e-2, 2e-3 * max(1.0, float(np.abs(want).max())), what=name)


# ---- candidates of every plan family ---------------------------------------------------------

def _family(s) -> str:
    if s.kind == "row" and s.serial > 1:
        return "online" if s.single_pass else "streamed"
    return s.kind


# (suite case, small dims, family, how many candidates of that family, spread over its list)
CANDIDATES = [
    ("softmax", {"m": 4, "n": 64}, "row", 4),
    ("softmax", {"m": 2, "n": 4096}, "row", 1),
    ("softmax", {"m": 2, "n": 4096}, "streamed", 2),
    ("softmax", {"m": 2, "n": 4096}, "online", 2),
    ("layer_norm", {"m": 2, "n": 4096}, "streamed", 1),
    ("layer_norm", {"m": 2, "n": 4096}, "online", 2),
    ("rms_norm", {"m": 2, "n": 16384}, "split_row", 3),
    ("rms_norm", {"m": 2, "n": 16384}, "streamed", 1),
    ("sum_axis0", {"m": 40, "n": 64}, "column", 3),
    ("transpose_relu", {"a": 4, "b": 40, "c": 9, "d": 36}, "tile", 3),
    ("transpose_relu", {"a": 4, "b": 40, "c": 9, "d": 36}, "flat", 1),
    ("swiglu", {"m": 8, "n": 64}, "flat", 2),
]
CANDIDATE_PARAMS = [(c, d, f, i) for c, d, f, k in CANDIDATES for i in range(k)]


@functools.cache
def _candidate_region(case_name: str, dims: tuple):
    case = dataclasses.replace(suite.get_case(case_name), small_dims=dict(dims))
    model = case.build(small=True)
    inputs = suite.make_inputs(case, np.random.default_rng(0), small=True)
    sp = model_region(model, inputs, "cuda")[0]
    found = []

    def collect(kernel, shell, hw):
        found.extend(enumerate_candidates(kernel, shell, hw))
        return default_choice(kernel, shell, hw)

    plan_region(sp, "region0", CUDA, choose=collect)
    return case, model, sp, found


def _spread(items: list, k: int) -> list:
    return [items[round(i * (len(items) - 1) / max(k - 1, 1))] for i in range(min(k, len(items)))]


@pytest.mark.parametrize("case_name, dims, family, index", CANDIDATE_PARAMS,
                         ids=[f"{c}-{'x'.join(map(str, d.values()))}-{f}{i}" for c, d, f, i in CANDIDATE_PARAMS])
def test_candidate_matches_onnx_reference(case_name, dims, family, index) -> None:
    case, model, sp, found = _candidate_region(case_name, tuple(sorted(dims.items())))
    k = dict((f, n) for c, d, f, n in CANDIDATES if c == case_name and d == dims)[family]
    picked = _spread([c for c in found if _family(c.strategy) == family], k)
    assert len(picked) == k, f"only {len(picked)} {family} candidates"
    cand = picked[index]
    lowered = lower_region(sp, "region0", CUDA, choose=lambda *_: cand)
    build = compile_cuda(tvm.IRModule({"region0": lowered.prim_func}), relax_pipeline=None)
    host = build.hosts["region0"]
    assert len(host.launches) == len(lowered.optimized.kernels)
    for launch, kernel in zip(host.launches, lowered.optimized.kernels):   # the plan's geometry, in order
        s = kernel.strategy
        assert launch.geometry_at({}) == ((s.groups, 1, 1), (s.lanes, s.units, 1)), (launch, s)
    em = emulate(build, "region0")
    for dist in DISTRIBUTIONS:
        inputs = shifted_inputs(case, np.random.default_rng(3), True, dist, case.small_dims)
        _, feed, expected = model_region(model, inputs, "cuda")
        (got,) = em.run(region_inputs(host, sp, feed))
        want = expected[sp.outputs[0]]
        check_outputs([got], [want], *_tolerance(model, want), what=f"{cand.strategy} ({dist})")


# ---- fix 1: no stale vector temporaries ------------------------------------------------------

def stale_vector_temporaries(source: str) -> list[str]:
    """Vector temporaries (`v_*`) declared at the scope of the statement that uses them (not in a
    scope of their own): TVM reuses such a temporary for every later read of the same text."""
    bad, result_indent = [], None
    for line in source.splitlines():
        m = re.match(r"(\s*)\w+ __\d+;$", line)
        if m:
            result_indent = len(m.group(1))
            continue
        m = re.match(r"(\s*)\w+ v_\w* = ", line)
        if m and result_indent is not None and len(m.group(1)) <= result_indent:
            bad.append(line.strip())
    return bad


def _old_rule(op: str, dtypes: list[str]) -> bool:
    """The rule before the fix: every non-bool result vectorized."""
    return dtypes[0] != "bool"


def test_no_suite_source_keeps_vector_temporaries_in_scope() -> None:
    sources = {n: _emulated(n).build.source for n in NAMES}
    sources |= {f"{n}_fp16": _emulated(n, True, "float16").build.source for n in FP16}
    assert {n: stale_vector_temporaries(s) for n, s in sources.items() if stale_vector_temporaries(s)} == {}


def test_the_old_vectorization_rule_is_caught(monkeypatch) -> None:
    """Rendered with the old rule, rms_norm keeps `v_` in scope and the emulation sees x*w
    without 1/rms: both checks would have caught the bug."""
    monkeypatch.setattr(render, "vector_safe", _old_rule)
    model = suite_model("rms_norm")
    build = compile_cuda(intelligen_tvm.from_onnx(model))
    assert stale_vector_temporaries(build.source)
    em = emulate(build, "intelligen_region0")
    inputs = shifted_inputs(suite.get_case("rms_norm"), np.random.default_rng(1), True, "scaled")
    sp, feed, expected = model_region(model, inputs, "cuda")
    (got,) = em.run(region_inputs(em.host, sp, feed))
    with pytest.raises(AssertionError, match="Mismatched elements"):
        check_outputs([got], [expected[sp.outputs[0]]], 1e-3, 1e-3)


# ---- fix 6: no bool vectors ------------------------------------------------------------------

def _greater_where_model():
    from onnx import TensorProto, helper

    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [8, 1024]) for n in "xy")
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [8, 1024])
    nodes = [helper.make_node("Greater", ["x", "y"], ["c"]), helper.make_node("Where", ["c", "x", "y"], ["out"])]
    graph = helper.make_graph(nodes, "greater_where", [x, y], [out])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", suite.OPSET)], ir_version=suite.IR_VERSION)


def test_select_on_a_bool_register_builds_and_runs(tmp_path) -> None:
    model = _greater_where_model()
    em = emulate_model(model)
    source = em.build.source
    bools = re.findall(r"bool (\w+)\[", source)
    assert bools and not re.search(rf"\(\w+\d\*\)\((?:{'|'.join(bools)}) ", source), "a bool register read as a vector"
    check_nvcc_compiles(source, tmp_path / "greater_where.cu")
    rng = np.random.default_rng(4)
    inputs = [(3 * rng.standard_normal((8, 1024)) + 2).astype(np.float32) for _ in range(2)]
    got, want = em.run(inputs)
    check_outputs([got], [want], 0, 0, what="greater_where")


# ---- the harness reports what it must ---------------------------------------------------------

def _run_mutated(name: str, mutate) -> None:
    em = _emulated(name)
    source = mutate(em.build.source)
    assert source != em.build.source, "the mutation did not apply"
    mutated = emulate(em.build, em.emulated.host.name, source=source)
    inputs = shifted_inputs(suite.get_case(name), np.random.default_rng(1), True, "scaled")
    sp, feed, expected = model_region(em.model, inputs, "cuda")
    (got,) = mutated.run(region_inputs(mutated.host, sp, feed))
    check_outputs([got], [expected[sp.outputs[0]]], *_tolerance(em.model, expected[sp.outputs[0]]))


def _wrap_line(pattern: str, cond: str):
    """Puts the first statement matching `pattern` under `if (cond)`."""
    def mutate(source: str) -> str:
        return re.sub(rf"^(\s*)(.*{pattern}.*)$", rf"\1if ({cond}) {{ \2 }}", source, count=1, flags=re.M)
    return mutate


def _shared_out_of_bounds(source: str) -> str:
    name, size = re.search(r"__shared__ alignas\(\d+\) \w+ (\w+)\[(\d+)\]", source).groups()
    return re.sub(rf"= {name}\[", f"= {name}[{size} + ", source, count=1)


def _write_back_after_read(source: str) -> str:
    """After the first read of a shared array, the reader writes the element back: the other
    threads that read it later in the same barrier phase race with that write."""
    name = re.search(r"__shared__ alignas\(\d+\) \w+ (\w+)\[", source).group(1)
    return re.sub(rf"^\s*(\w+\[0\]) = {name}\[(.*)\];$", rf"\g<0> {name}[\2] = \1;", source, count=1, flags=re.M)


MUTATIONS = [
    # name, suite case, mutation, what the harness says
    ("drop_syncthreads", "sum_axis0", lambda s: s.replace("__syncthreads();", "", 1), "shared memory"),
    ("shared_out_of_bounds", "sum_axis0", _shared_out_of_bounds, "out of bounds"),
    ("shared_write_race", "sum_axis0", _write_back_after_read, "shared memory race"),
    ("shuffle_width", "softmax", lambda s: re.sub(r"(__shfl_xor_sync\([^;]*, 16), 32\)", r"\1, 16)", s, count=1),
     "leaves its 16-lane segment"),
    ("divergent_shuffle", "softmax", _wrap_line(r"__shfl_xor_sync\(.*, 16, 32\)", "((int)threadIdx.x) < 16"),
     "reads lane"),
    ("divergent_full_mask_shuffle", "softmax",
     lambda s: _wrap_line(r"__shfl_xor_sync\(0xffffffffu.*, 1, 32\)", "((int)threadIdx.x) < 16")(
         s.replace("__shfl_xor_sync(__activemask()", "__shfl_xor_sync(0xffffffffu", 1)), "divergent shuffle"),
    ("caller_not_in_mask", "softmax", lambda s: s.replace("__shfl_xor_sync(__activemask()", "__shfl_xor_sync(0xfffffffeu", 1),
     "does not name it"),
    ("divergent_barrier", "sum_axis0",
     lambda s: s.replace("__syncthreads();", "__syncthreads(); if (((int)threadIdx.y) > 0) { __syncthreads(); }", 1),
     "divergent __syncthreads"),
    ("global_out_of_bounds", "softmax", lambda s: re.sub(r"(\*\(float2\*\)\(b_t1_ptr \+ )", r"\g<1>512 + ", s, count=1),
     "global memory"),
    ("drop_output_store", "softmax", lambda s: re.sub(r"^\s*\*\(float2\*\)\(b_t1_ptr .*$", "", s, count=1, flags=re.M),
     "never written"),
]


@pytest.mark.parametrize("name, case, mutate, message", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_harness_reports_mutation(name, case, mutate, message) -> None:
    with pytest.raises(AssertionError, match=message):
        _run_mutated(case, mutate)


def test_unknown_intrinsics_do_not_build() -> None:
    em = _emulated("softmax")
    source = em.build.source.replace("expf(", "__nv_unknown_expf(", 1)
    with pytest.raises(CompileError):
        emulate(em.build, em.emulated.host.name, source=source)
