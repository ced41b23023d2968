"""The MLU (BANG C) hook: emitted kernels compiled with g++ against bang_emu.h and run task by
task; every suite case the hook takes matches onnx.reference end to end (MLU regions emulated,
the rest of the model on llvm); every candidate (tile rows, double buffering) of awkward
shapes matches TVM's own lowering; the hook goes through RunCodegen."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import tvm
from tvm import relax

import intelligen_tvm
from intelligen_tvm import suite
from intelligen_tvm import mlu
from intelligen_tvm.targets.bang.plan import candidates
from intelligen_tvm.testing import assert_close, reference_outputs, to_numpy, tolerances
from tests.helpers import LLVM, relax_module
from tests.targets.bang_emulation import HEADER, build, codegen_functions, emulate_module, require_gxx, run

op = relax.op

# Suite cases the hook leaves (wholly or partly) to TVM, and why.
NOT_TAKEN = {
    "bias_gelu_erf": "erf has no whole-vector BANG instruction",
    "sum_axis0": "not contiguous along the row",
    "transpose_relu": "not contiguous along the row",   # the transpose; the relu is taken
}
CASES = [c.name for c in suite.SUITE]


def _run_vm(mod: tvm.IRModule, inputs: list[np.ndarray]) -> list[np.ndarray]:
    ex = tvm.compile(mod, target=LLVM, relax_pipeline="default")
    vm = relax.VirtualMachine(ex, tvm.cpu())
    return to_numpy(vm["main"](*[tvm.runtime.tensor(a) for a in inputs]))


@pytest.mark.parametrize("name", CASES)
def test_suite_case_emulated_matches_onnx_reference(name: str, tmp_path: Path) -> None:
    require_gxx()
    case = suite.get_case(name)
    model = case.build(small=True)
    report = mlu.explain_mlu(intelligen_tvm.from_onnx(model))
    fallbacks = [r for r in report["regions"] if r["handled_by"] != mlu.CODEGEN]
    if name in NOT_TAKEN:
        assert any(NOT_TAKEN[name] in r["reason"] for r in fallbacks), fallbacks
    else:
        assert not fallbacks, fallbacks
    partitioned = mlu.partition_for_mlu(intelligen_tvm.from_onnx(model))
    mod, emitted = emulate_module(partitioned, tmp_path)
    if name not in ("bias_gelu_erf", "sum_axis0"):
        assert emitted, "the hook took no region"
    inputs = suite.make_inputs(case, np.random.default_rng(0), small=True)
    expected = reference_outputs(model, inputs)
    actual = _run_vm(mod, inputs)
    assert_close(actual, expected, *tolerances(model))


# Awkward shapes: rows and tiles with tails, columns not a multiple of 128 bytes, several
# reductions, broadcast vectors and per-row scalars.
SHAPES = [
    ("softmax_tail", lambda x: op.nn.softmax(x), [(37, 100)]),
    ("layer_norm_tail", lambda x, g, b: op.nn.layer_norm(x, g, b, axes=[-1], epsilon=1e-5),
     [(13, 70), (70,), (70,)]),
    ("rms_norm_long_row", lambda x, w: op.nn.rms_norm(x, w, axes=[-1]), [(3, 1100), (1100,)]),
    ("max_then_sub_3d", lambda x: op.subtract(x, op.max(x, axis=[-1], keepdims=True)), [(2, 5, 33)]),
    ("mean_last_3d", lambda x: op.mean(x, axis=[-1]), [(3, 7, 45)]),
    ("bias_add_4d", lambda x, b: op.add(x, b), [(2, 5, 3, 7), (1, 5, 1, 1)]),
    ("scalar_minus_row", lambda x: op.divide(op.subtract(relax.const(1.0), x), op.add(x, relax.const(3.0))),
     [(9, 40)]),
]


def _tvm_reference(fn, shapes, inputs) -> list[np.ndarray]:
    return _run_vm(relax_module(fn, shapes), inputs)


def _sample(found: list) -> list[int]:
    """One tile, a tile that leaves a partial last tile, the largest tile; each buffering."""
    tiles = sorted({k.strategy.rows_per_group for k in found})
    rows = found[0].strategy.outer_size
    partial = [t for t in tiles if rows % t]
    keep = {tiles[0], tiles[-1], *partial[:1]}
    return [i for i, k in enumerate(found) if k.strategy.rows_per_group in keep]


@pytest.mark.parametrize("name,fn,shapes", SHAPES, ids=[s[0] for s in SHAPES])
def test_candidates_match_tvm(name, fn, shapes, tmp_path: Path) -> None:
    """(tile rows, buffers) candidates the cost model may pick compute the same: single and
    double buffering, one row per tile, a partial last tile, the largest tile."""
    require_gxx()
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal(s).astype("float32") for s in shapes]
    expected = _tvm_reference(fn, shapes, inputs)
    (func,) = codegen_functions(mlu.partition_for_mlu(relax_module(fn, shapes))).values()
    seen: list = []

    def collect(kernel, shell, hw):
        seen.extend(candidates(kernel, shell, hw))
        return seen[0]

    mlu.emit_function(func, collect)
    kinds = {(k.strategy.rows_per_group, k.strategy.buffers) for k in seen}
    assert {b for _, b in kinds} == {1, 2} and len({t for t, _ in kinds}) > 2, kinds
    for i in _sample(seen):
        e = mlu.emit_function(func, lambda kernel, shell, hw, i=i: candidates(kernel, shell, hw)[i])
        exe = build(e, "intelligen_region0", tmp_path / f"c{i}", tasks=3)   # several tiles per task
        (out,) = run(exe, e, inputs, tmp_path / f"c{i}")
        assert_close([out], [expected[0].reshape(out.shape)], 1e-5, 1e-5)


def test_tails_are_padded_with_the_neutral_value() -> None:
    (func,) = codegen_functions(mlu.partition_for_mlu(relax_module(lambda x: op.nn.softmax(x), [(4, 100)]))).values()
    src = mlu.emit_function(func).source
    assert "__bang_write_value(v_neutral_max, 32, -3.40282347e+38f);" in src
    assert "__bang_write_value(v_neutral_sum, 32, 0.0f);" in src
    assert "npad=128" in src and "+ 100, v_neutral_max, 112, NRAM2NRAM" in src


def test_reduce_sum_emulation_needs_the_second_step(tmp_path: Path) -> None:
    """bang_emu.h leaves all but the first element of every 128-byte chunk unspecified (NaN):
    a kernel that read the partial sums as if reduced would fail the comparison."""
    gxx = require_gxx()
    src = tmp_path / "probe.cpp"
    src.write_text('#include "bang_emu.h"\n'
                   "int main() {\n"
                   "  __nram__ float x[64]; __nram__ float y[64];\n"
                   "  for (int i = 0; i < 64; ++i) x[i] = 1.0f;\n"
                   "  __bang_reduce_sum(y, x, 64);\n"
                   '  std::printf("%g %g %g\\n", y[0], y[32], y[1]);\n'
                   "  __bang_reduce_sum(y, x, 40);\n"   # not a multiple of 128 bytes: refused
                   "}\n")
    exe = tmp_path / "probe"
    subprocess.run([gxx, "-std=c++17", f"-I{HEADER.parent}", str(src), "-o", str(exe)], check=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True)
    assert proc.stdout.split() == ["32", "32", "nan"]
    assert proc.returncode == 3 and "multiple of 128 bytes" in proc.stderr


def test_run_codegen_returns_the_bang_source() -> None:
    model = suite.get_case("layer_norm").build(small=True)
    partitioned = mlu.partition_for_mlu(intelligen_tvm.from_onnx(model))
    (symbol,) = codegen_functions(partitioned)
    mod = relax.transform.RunCodegen()(partitioned)
    (ext,) = mod.attrs["external_mods"]
    source = ext.inspect_source()
    assert f"__mlu_global__ void {symbol}(" in source and "GDRAM2NRAM" in source
    assert "__bang_reduce_sum" in source and "taskDim" in source
    assert f'R.call_dps_packed("{symbol}"' in mod["main"].script()


def test_codegen_compiles_the_plan_chosen_at_partition_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The codegen receives the chosen plan's source with the function: it plans nothing again."""
    partitioned = mlu.partition_for_mlu(relax_module(lambda x: op.nn.softmax(x), [(4, 100)]))
    (func,) = codegen_functions(partitioned).values()
    assert str(func.attrs[mlu.SOURCE_ATTR]) == mlu.emit_function(func).source

    def no_replanning(*_args, **_kwargs):
        raise AssertionError("the codegen planned the region again")

    monkeypatch.setattr(mlu, "emit_function", no_replanning)
    monkeypatch.setattr(mlu.RegionSelector, "select", no_replanning)
    monkeypatch.setattr(mlu.RegionSelector, "try_lower", no_replanning)
    (ext,) = relax.transform.RunCodegen()(partitioned).attrs["external_mods"]
    assert ext.inspect_source() == str(func.attrs[mlu.SOURCE_ATTR])


def test_report_names_regions_not_taken_with_reasons() -> None:
    model = suite.get_case("bias_gelu_erf").build(small=True)
    (region,) = mlu.explain_mlu(intelligen_tvm.from_onnx(model))["regions"]
    assert region["handled_by"] == "fallback" and "erf" in region["reason"]
    model = suite.get_case("softmax").build(small=True)
    (region,) = mlu.explain_mlu(intelligen_tvm.from_onnx(model))["regions"]
    assert region["handled_by"] == mlu.CODEGEN and region["strategy"]["rows_per_group"] >= 1


def test_candidates_respect_nram_capacity() -> None:
    """A softmax row of 30000 fp32 (120 KB) leaves room for one tile row, no second buffer;
    a row of 40000 is not taken (a row split over the cores of a cluster is not implemented)."""
    fn = lambda x: op.nn.softmax(x)  # noqa: E731
    (func,) = codegen_functions(mlu.partition_for_mlu(relax_module(fn, [(8, 30000)]))).values()
    seen: list = []
    e = mlu.emit_function(func, lambda k, s, hw: seen.extend(candidates(k, s, hw)) or seen[0])
    assert {(c.strategy.rows_per_group, c.strategy.buffers) for c in seen} == {(1, 1)}
    assert 120_000 < e.nram_bytes <= 256 * 1024
    (region,) = mlu.explain_mlu(relax_module(fn, [(2, 40000)]))["regions"]
    assert region["handled_by"] == "fallback" and "does not fit in NRAM" in region["reason"]
