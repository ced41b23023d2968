"""Features and the analytical prior of CPU candidates."""

from __future__ import annotations


from tvm import relax

from intelligen_tvm.cost_model.features import features
from intelligen_tvm.cost_model.prior import predicted_time_us
from intelligen_tvm.dataflow_graph.choices import enumerate_candidates, planned_candidate
from intelligen_tvm.dataflow_graph.cpu_plan import cpu_row_strategy, with_cpu_strategy
from intelligen_tvm.dataflow_graph.fuse import build_kernel
from intelligen_tvm.dataflow_graph.rewrites import monotonic_rewrites
from intelligen_tvm.gir.program import Program
from tests.dataflow_graph.test_cpu_plan import HW
from tests.helpers import chain_stages


def _softmax():
    sp, _ = chain_stages(lambda x: relax.op.nn.softmax(x), [(256, 1024)])
    kernel = monotonic_rewrites(build_kernel(sp, "k")[0], sp.inputs, sp.outputs)
    return kernel, Program("k", sp.buffers, sp.inputs, sp.outputs, [])


def test_every_candidate_has_the_same_numeric_features() -> None:
    kernel, program = _softmax()
    feats = [features(c, HW) for c in enumerate_candidates(kernel, program, HW)]
    assert len({tuple(sorted(f)) for f in feats}) == 1
    assert all(isinstance(v, float) for f in feats for v in f.values())


def test_streaming_reads_the_row_once_per_sweep() -> None:
    kernel, program = _softmax()
    held = features(planned_candidate(program, with_cpu_strategy(kernel, cpu_row_strategy(kernel, 16, 16, 4, held=True), HW), HW), HW)
    streamed = features(planned_candidate(program, with_cpu_strategy(kernel, cpu_row_strategy(kernel, 16, 16, 4, held=False), HW), HW), HW)
    assert held["dram_bytes"] == 2 * 256 * 1024 * 4 and streamed["dram_bytes"] == 4 * 256 * 1024 * 4
    assert (held["sweeps"], streamed["sweeps"]) == (3, 3)
    assert held["held_bytes"] == 2 * 4 * 1024 and streamed["held_bytes"] == 0   # exp kept, x re-read from cache
    assert streamed["swept_transcendental"] == 2 and held["swept_transcendental"] == 1
    assert predicted_time_us(held, HW) < predicted_time_us(streamed, HW)


def test_prior_prefers_busy_cores_and_vectors() -> None:
    kernel, program = _softmax()
    plan = lambda rpt, vec: features(planned_candidate(  # noqa: E731
        program, with_cpu_strategy(kernel, cpu_row_strategy(kernel, rpt, vec, 4, True), HW), HW), HW)
    assert plan(256, 16)["core_balance"] == 0.25   # one task for four cores
    assert predicted_time_us(plan(16, 16), HW) < predicted_time_us(plan(256, 16), HW)
    assert predicted_time_us(plan(16, 16), HW) < predicted_time_us(plan(16, 1), HW)


def test_plain_compilation_picks_with_the_shipped_model(tmp_path, monkeypatch) -> None:
    """With a CPU model in the package, plain compilation's chooser is its argmin over the
    verified candidates (a model fitted here on synthetic times: faster with more tasks)."""
    from intelligen_tvm import region
    from intelligen_tvm.cost_model.model import CostModel
    from intelligen_tvm.cost_model.records import Record

    kernel, program = _softmax()
    found = enumerate_candidates(kernel, program, HW)
    records = [Record("r", "llvm", "cpu", {}, f, [1000.0 / f["tasks"] + f["vector"]])
               for f in (features(c, HW) for c in found)]
    path = tmp_path / "cpu.json"
    model = CostModel(num_boost_round=50).fit(records)
    model.save(path)
    monkeypatch.setitem(region.SHIPPED_MODELS, "cpu", path)
    region.shipped_model.cache_clear()
    try:
        picked = region.shipped_choice(kernel, program, HW).strategy
    finally:
        region.shipped_model.cache_clear()
    scores = model.predict([features(c, HW) for c in found])
    assert picked == found[int(scores.argmin())].strategy
    assert picked.groups == max(c.strategy.groups for c in found)
