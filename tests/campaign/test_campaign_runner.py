"""The campaign runner's own pieces: the arrays both machines draw, the sample positions, and the
CUDA compile callback the runtime-only TVM needs (the rehearsal runs everything else)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from intelligen_tvm.campaign import runner

FATBIN_MAGIC = bytes.fromhex("50ed55ba")  # little-endian 0xBA55ED50


def _splitmix_reference(index: int, seed: int) -> float:
    """The same hash in Python integers (no numpy wrap-around involved)."""
    mask = (1 << 64) - 1
    x = (index + seed * 0x9E3779B97F4A7C15) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    x ^= x >> 31
    return (x >> 40) / float(1 << 24)


def test_draws_are_the_hash_on_every_machine():
    spec = {"shape": [3, 5], "mean": 1.0, "std": 0.5}
    a = runner.make_array(spec, 7)
    assert a.dtype == np.float32 and a.shape == (3, 5)
    expected = [1.0 + 0.5 * (_splitmix_reference(i, 7) - 0.5) * np.sqrt(12.0) for i in range(15)]
    np.testing.assert_allclose(a.reshape(-1), expected, rtol=1e-6)
    assert not np.array_equal(a, runner.make_array(spec, 8))


def test_draw_kinds():
    ids = runner.make_array({"shape": [4096], "kind": "index", "high": 30}, 1)
    assert ids.dtype == np.int64 and ids.min() == 0 and ids.max() == 29
    mask = runner.make_array({"shape": [4096], "kind": "mask", "mask_value": -1e4}, 2)
    assert set(np.unique(mask)) == {0.0, -1e4} and 0.2 < (mask < 0).mean() < 0.3
    w = runner.make_array({"shape": [1 << 16], "mean": 2.0, "std": 0.1}, 3)
    assert abs(w.mean() - 2.0) < 0.01 and abs(w.std() - 0.1) < 0.01


def test_case_arrays_follow_main_parameter_order():
    case = {"inputs": [{"shape": [2, 3]}], "weights": [{"name": "g", "shape": [3], "mean": 1.0, "std": 0.0}]}
    x, g = runner.case_arrays(case)
    assert x.shape == (2, 3) and np.array_equal(g, np.ones(3, np.float32))


def test_sample_indices():
    assert np.array_equal(runner.sample_indices(10, 16), np.arange(10))
    idx = runner.sample_indices(10 ** 6, 4096)
    assert len(idx) > 4000 and idx.min() == 0 and idx.max() >= 10 ** 6 - 8 and np.all(np.diff(idx) > 0)


def test_cuda_compiler_prefers_the_precompiled_fatbin(tmp_path):
    source = 'extern "C" __global__ void k(float* a) { a[threadIdx.x] = 1.0f; }\n'
    (tmp_path / runner.CUDA_DIR).mkdir()
    (tmp_path / runner.CUDA_DIR / f"{runner.source_key(source)}.fatbin").write_bytes(b"shipped")
    compiler = runner.CudaCompiler(tmp_path, "sm_90")
    assert compiler(source) == b"shipped"
    assert compiler.stats["precompiled"] == 1 and compiler.stats["compiled_here"] == 0


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_cuda_compiler_compiles_a_missing_source_with_this_machines_nvcc(tmp_path):
    compiler = runner.CudaCompiler(tmp_path, "sm_90")
    data = compiler('extern "C" __global__ void k(float* a) { a[threadIdx.x] *= 2.0f; }\n')
    assert data[:4] == FATBIN_MAGIC
    assert compiler.stats["compiled_here"] == 1
    with pytest.raises(RuntimeError, match="nvcc failed"):
        compiler("this is not CUDA")
    assert compiler.stats["errors"]


def test_candidate_queue_takes_the_best_of_every_region_first(tmp_path):
    """Tiers: a deadline cut still leaves the prior's best few of every region measured."""
    tuning = tmp_path / "cases" / "c" / "tuning"
    tuning.mkdir(parents=True)
    regions = ["a"] * 20 + ["b"] * 3 + ["c"] * 12
    (tuning / "tuning.json").write_text(json.dumps({"candidates": [{"region": r} for r in regions]}))
    (tmp_path / runner.MANIFEST_NAME).write_text(json.dumps({
        "format_version": runner.FORMAT_VERSION, "cases": [{"name": "c", "dir": "cases/c", "tuning": "tuning"}]}))
    campaign = runner.Campaign(tmp_path, "cpu", runner.Clock(10.0), repeat=1)
    queue = campaign.candidate_queue()
    assert len(queue) == len(regions)
    first = [i for _, i, tier in queue if tier == 0]
    assert first == list(range(0, 8)) + [20, 21, 22] + list(range(23, 31))
    assert [i for _, i, _ in queue[len(first):]] == list(range(8, 16)) + [31, 32, 33, 34] + list(range(16, 20))
