"""The CPU backend: plain compilation on llvm uses it, its kernels are parallel SIMD loops with
no libm calls, its math expansions are accurate, and sampled candidates of every suite region
are numerically right against onnx.reference."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.target import codegen

import intelligen_tvm
from intelligen_tvm import suite, targets
from intelligen_tvm.dataflow_graph.choices import default_plan, enumerate_candidates
from intelligen_tvm.dataflow_graph.cpu_plan import CpuModel, cpu_row_strategy, with_cpu_strategy
from intelligen_tvm.dataflow_graph.fuse import build_kernel
from intelligen_tvm.dataflow_graph.rewrites import monotonic_rewrites
from intelligen_tvm.gir.program import Program
from intelligen_tvm.region import lower_region
from tests.helpers import chain_stages, relax_module, run_prim_func, suite_region

HW = CpuModel.make(cores=4, vector_bytes=64, l1_bytes=48 * 1024, l2_bytes=2 * 1024 * 1024,
                   l3_bytes=32 * 1024 * 1024, dram_gbps=40.0, isa="avx512f")
AVX512 = tvm.target.Target({"kind": "llvm", "mcpu": "skylake-avx512"})      # compiled only
HOST = tvm.target.Target({"kind": "llvm", "mcpu": codegen.llvm_get_system_cpu()})   # compiled and run
op = relax.op


def test_plain_llvm_compilation_uses_the_cpu_backend() -> None:
    mod = intelligen_tvm.from_onnx(suite.get_case("softmax").build(small=True))
    (region,) = intelligen_tvm.explain(mod, {"kind": "llvm"})["regions"]
    assert region["handled_by"] == "intelligen" and region["strategy"]["backend"] == "cpu"
    sp, _ = chain_stages(lambda x: op.nn.softmax(x), [(64, 1000)])
    src = lower_region(sp, "r", "llvm").source
    assert "T.parallel(" in src and "T.vectorized(" in src
    assert "T.grid(" not in src and "thread_binding" not in src   # not the thread emulation


def _asm(fn, shapes, target) -> str:
    sp, _ = chain_stages(fn, shapes)
    lowered = lower_region(sp, "r", target)
    return tvm.compile(tvm.IRModule({"r": lowered.prim_func}), target=target).mod.inspect_source("asm")


@pytest.mark.parametrize("fn", [lambda x: op.nn.softmax(x), lambda x: op.nn.gelu(x), lambda x: op.nn.silu(x)],
                         ids=["softmax", "gelu_erf", "silu"])
def test_kernels_are_avx512_vectors_without_libm_calls(fn) -> None:
    asm = _asm(fn, [(64, 1024)], AVX512)
    assert "zmm" in asm
    assert not any(f in asm for f in ("expf", "erff", "exp@", "erf@")), "a transcendental left to libm"


@pytest.mark.parametrize("name, fn, ref", [
    ("exp", lambda x: op.exp(x), np.exp),
    ("erf", lambda x: op.erf(x), np.vectorize(__import__("math").erf)),
    ("sigmoid", lambda x: op.sigmoid(x), lambda x: 1 / (1 + np.exp(-x))),
    ("tanh", lambda x: op.tanh(x), np.tanh),
])
def test_math_expansions_are_accurate(name, fn, ref) -> None:
    x = np.linspace(-30, 30, 4096, dtype=np.float32).reshape(4, 1024)
    if name == "exp":
        x = np.linspace(-87, 88, 4096, dtype=np.float32).reshape(4, 1024)
    ex = tvm.compile(relax_module(fn, [x.shape]), target=HOST, relax_pipeline="intelligen")
    got = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
    want = ref(x.astype(np.float64))
    if name == "exp":
        np.testing.assert_allclose(got, want, rtol=5e-7)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=2e-7)


def _candidates(name: str):
    sp, feed, expected = suite_region(name, small=True)
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    program = Program("r", sp.buffers, sp.inputs, sp.outputs, [])
    return sp, feed, expected, program, enumerate_candidates(kernel, program, HW)


@pytest.mark.slow
@pytest.mark.parametrize("name", [c.name for c in suite.SUITE])
def test_sampled_cpu_candidates_match_reference(name: str) -> None:
    """Eight candidates spread over the choice space of each suite region (small shapes), built
    for this host: held, reloaded and streamed rows, vector widths, accumulators, tiles."""
    sp, feed, expected, program, found = _candidates(name)
    sample = found[:: max(1, len(found) // 8)]
    (out,) = sp.outputs
    for k, candidate in enumerate(sample):
        planned = candidate.program.renamed(f"cand{k}")
        func = targets.source_prim_func(targets.render_source(planned, "llvm", f"cand{k}"))
        (actual,) = run_prim_func(func, [feed[n] for n in sp.inputs], target=HOST)
        np.testing.assert_allclose(actual, expected[out], rtol=1e-4, atol=1e-5, err_msg=f"{name}: {candidate.strategy}")


@pytest.mark.parametrize("bias_shape", [(1, 116, 1, 1), (1, 1, 1, 28), (116, 28, 28), (1, 116, 28, 1)])
def test_elementwise_rows_over_fused_axes_are_contiguous_and_right(bias_shape) -> None:
    """Rows spanning several innermost axes: every candidate (vectors crossing the fused axes'
    boundaries, scalar tails) matches numpy, and the shipped kernel loads whole vectors (no gathers)."""
    x_shape = (3, 116, 28, 28)
    sp, _ = chain_stages(lambda x, b: op.add(x, b), [x_shape, bias_shape])
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    program = Program("r", sp.buffers, sp.inputs, sp.outputs, [])
    rng = np.random.default_rng(0)
    x = (3 * rng.standard_normal(x_shape) + 2).astype("float32")
    b = (rng.standard_normal(bias_shape) + 100).astype("float32")
    candidates = enumerate_candidates(kernel, program, HW)
    assert {c.strategy.row_axes for c in candidates} == {default_plan(kernel, sp.buffers, HW).strategy.row_axes}
    for k, cand in enumerate(candidates[:: max(1, len(candidates) // 6)]):
        planned = cand.program.renamed(f"cand{k}")
        func = targets.source_prim_func(targets.render_source(planned, "llvm", f"cand{k}"))
        (got,) = run_prim_func(func, [x, b], target=HOST)
        np.testing.assert_array_equal(got, x + b, err_msg=str(cand.strategy))
    assert "gather" not in _asm(lambda x, b: op.add(x, b), [x_shape, bias_shape], AVX512)


def test_only_loops_over_bool_lanes_are_unrolled() -> None:
    """TVM's LLVM vectorizer gets bool lanes wrong, so a loop whose body touches a bool value
    runs lane by lane; the BERT embedding's bools are per row (index normalisation, outside the
    sweeps), so its sweeps stay vectors, while an elementwise `where` runs lane by lane."""
    def source(name: str, sp, kernel) -> str:
        program = Program(name, sp.buffers, sp.inputs, sp.outputs, [])
        planned = replace(program, kernels=[default_plan(kernel, sp.buffers, HW)])
        return targets.render_source(planned, "llvm", name)

    sp, _, _ = suite_region("bert_embedding", small=True)
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    assert any(v.dtype == "bool" for v in kernel.values.values())
    text = source("emb", sp, kernel)
    assert "T.vectorized" in text and "T.unroll(8)" not in text and "T.unroll(16)" not in text

    sp, _ = chain_stages(lambda x, y: op.where(op.less(x, y), x, y), [(64, 256), (64, 256)])
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    assert "T.vectorized" not in source("where", sp, kernel)


def test_softmax_keeps_exp_in_its_output_row_and_prefetches_the_next_row() -> None:
    """exp(x - max) goes to the output in the sum's sweep and is scaled there in place (the
    output's cache lines load while exp computes), not to a per-task buffer; the last sweep
    prefetches the next row's input; numbers unchanged."""
    sp, _ = chain_stages(lambda x: op.nn.softmax(x), [(64, 1000)])
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    program = Program("sm", sp.buffers, sp.inputs, sp.outputs, [])
    planned = default_plan(kernel, sp.buffers, HW)
    text = targets.render_source(replace(program, kernels=[planned]), "llvm", "sm")
    (out,) = sp.outputs
    assert not any(line.strip().startswith("h_") for line in text.splitlines())   # no per-task row buffer
    assert f"= b_{out}[" in text   # the output row is read back (exp) before its final store
    (x_name,) = sp.inputs   # the last sweep prefetches the next row's input, each cache line of a step
    step_bytes = planned.strategy.vector * planned.strategy.accumulators * 4
    assert text.count("llvm.prefetch") == step_bytes // 64 and f"T.address_of(b_{x_name}[T.min(" in text
    x = (3 * np.random.default_rng(0).standard_normal((64, 1000)) + 2).astype("float32")
    (got,) = run_prim_func(targets.source_prim_func(text), [x], target=HOST)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_a_single_sweep_has_nothing_to_prefetch() -> None:
    """One sweep per row (a mean) streams: the hardware prefetcher follows it unaided."""
    sp, _ = chain_stages(lambda x: op.mean(x, axis=[1], keepdims=True), [(64, 1024)])
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    program = Program("m", sp.buffers, sp.inputs, sp.outputs, [])
    plan = default_plan(kernel, sp.buffers, HW)
    assert plan.strategy.kind == "row"
    assert "prefetch" not in targets.render_source(replace(program, kernels=[plan]), "llvm", "m")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("fn, shapes, ref", [
    (lambda x: op.nn.softmax(x), [(3, 1003)], _softmax),
    (lambda x, b: op.add(x, b), [(3, 116, 7, 13), (1, 116, 1, 1)], np.add),
], ids=["softmax_rows", "bias_add_flat_rows"])
def test_row_tails_are_whole_vectors_then_fewer_scalars_than_a_vector(fn, shapes, ref) -> None:
    """Every candidate sweeps a row in steps of `accumulators` vectors, then the tail's whole
    vectors, then fewer scalars than a vector (a longer scalar tail LLVM vectorizes itself, at
    twice the codegen time of the bias add); every candidate, built in one module, is right."""
    sp, _ = chain_stages(fn, shapes)
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    program = Program("r", sp.buffers, sp.inputs, sp.outputs, [])
    rng = np.random.default_rng(0)
    args = [(3 * rng.standard_normal(s) + 2).astype("float32") for s in shapes]
    want = ref(*args)
    candidates = enumerate_candidates(kernel, program, HW)
    assert any(c.strategy.row_size % (c.strategy.vector * c.strategy.accumulators) >= c.strategy.vector
               for c in candidates)   # some tails hold whole vectors
    funcs = {}
    for k, cand in enumerate(candidates):
        s = cand.strategy
        text = targets.render_source(cand.program.renamed(f"c{k}"), "llvm", f"c{k}")
        tails = [int(line.split("T.serial(")[1].rstrip("):")) for line in text.splitlines() if "for e in T.serial(" in line]
        assert tails == [s.row_size % s.vector] * len(tails) and (tails or s.row_size % s.vector == 0), s
        funcs[f"c{k}"] = targets.source_prim_func(text).with_attr("global_symbol", f"c{k}")
    lib = tvm.compile(tvm.IRModule(funcs), target=HOST)
    for name in funcs:
        out = tvm.runtime.tensor(np.zeros(want.shape, "float32"))
        lib[name](*[tvm.runtime.tensor(a) for a in args], out)
        np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-6, err_msg=name)


def _softmax_ref(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("fn, reference, shape, vector, paired", [
    (lambda x: op.nn.softmax(x), _softmax_ref, (64, 1000), 16, True),
    (lambda x: op.subtract(x, op.mean(x, axis=[1, 2], keepdims=True)),
     lambda x: x - x.mean(axis=(1, 2), keepdims=True), (64, 10, 24), 8, False)])
def test_two_vectors_of_a_step_run_as_one_vector_loop_unless_it_could_cross_an_axis(
        fn, reference, shape, vector, paired) -> None:
    """A step of 4 vectors of 16 lanes runs as two loops of 32 lanes; a row of two axes whose
    innermost (24) a vector of 16 would cross keeps loops of one vector; numbers right either way."""
    sp, _ = chain_stages(fn, [shape])
    kernel = monotonic_rewrites(build_kernel(sp, "r")[0], sp.inputs, sp.outputs)
    assert len(kernel.row) == len(shape) - 1
    planned = with_cpu_strategy(kernel, cpu_row_strategy(kernel, 4, vector, 4, held=True), HW)
    text = targets.render_source(Program("r", sp.buffers, sp.inputs, sp.outputs, [planned]), "llvm", "r")
    assert (f"T.vectorized({2 * vector})" in text and f"kk * {2 * vector} + vv" in text) == paired
    x = (3 * np.random.default_rng(0).standard_normal(shape) + 2).astype("float32")
    (got,) = run_prim_func(targets.source_prim_func(text), [x], target=HOST)
    np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)
