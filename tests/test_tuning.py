"""tune() end to end on the CPU target: candidates ranked, measured, recorded; the records
then decide what `pipeline(records=...)` compiles, and it still computes the right thing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import tvm
from tvm import relax

import intelligen_tvm
from intelligen_tvm import suite, targets
from intelligen_tvm.cost_model.measure import LocalMeasurer
from intelligen_tvm.cost_model.ranking import rank
from intelligen_tvm.cost_model.records import RecordDB
from intelligen_tvm.testing import assert_close, build, reference_outputs, run, tolerances
from intelligen_tvm.dataflow_graph.choices import enumerate_candidates
from intelligen_tvm.tuning import (RecordChooser, collect_regions, export_tuning_bundle, ingest_tuning_bundle,
                                   target_key)
from tests.helpers import recording, relax_module

LLVM = tvm.target.Target({"kind": "llvm"})


def test_tune_records_and_compiles_the_fastest(tmp_path) -> None:
    case = suite.get_case("layer_norm")
    model = case.build(small=True)
    mod = intelligen_tvm.from_onnx(model)
    records = str(tmp_path / "records.jsonl")

    best = intelligen_tvm.tune(mod, LLVM, trials=4, records=records,
                               measurer=LocalMeasurer(LLVM, repeat=3), progress=False)

    (region,) = collect_regions(mod, LLVM)
    rows = RecordDB(records).load()
    assert len(rows) == 4
    assert {r.region for r in rows} == {region.fingerprint}
    assert {r.target for r in rows} == {target_key(LLVM)}
    assert all(r.median_us > 0 and r.features["dram_bytes"] > 0 for r in rows)
    fastest = min(rows, key=lambda r: r.median_us)
    assert best == {region.fingerprint: fastest.candidate}

    chosen: list = []
    intelligen_tvm.explain(mod, LLVM, choose=recording(RecordChooser(records, target=LLVM), chosen))
    assert chosen == [fastest.candidate]

    inputs = suite.make_inputs(case, np.random.default_rng(0), small=True)
    executable = build(mod, {"kind": "llvm"}, intelligen_tvm.pipeline(records=records))
    assert_close(run(executable, LLVM, inputs), reference_outputs(model, inputs), *tolerances(model))


def test_records_of_another_target_are_ignored(tmp_path) -> None:
    mod = intelligen_tvm.from_onnx(suite.get_case("softmax").build(small=True))
    records = str(tmp_path / "records.jsonl")
    intelligen_tvm.tune(mod, LLVM, trials=2, records=records, measurer=LocalMeasurer(LLVM, repeat=2),
                        progress=False)
    cuda = tvm.target.Target({"kind": "cuda", "arch": "sm_90"})
    default = intelligen_tvm.explain(mod, cuda)["regions"][0]["strategy"]
    chosen = intelligen_tvm.explain(mod, cuda, choose=RecordChooser(records, target=cuda))["regions"][0]["strategy"]
    assert chosen == default


def test_cross_host_bundle_round_trip(tmp_path) -> None:
    """Compile host exports, the measuring host runs the standalone runner (here: another
    process on llvm), the compile host ingests records and compiles with them."""
    case = suite.get_case("softmax")
    model = case.build(small=True)
    mod = intelligen_tvm.from_onnx(model)
    bundle = export_tuning_bundle(mod, LLVM, tmp_path / "bundle", trials=3)
    runner = bundle / "bundle_runner.py"
    subprocess.run([sys.executable, str(runner), str(bundle), "--device", "cpu", "--repeat", "2"],
                   check=True, capture_output=True, timeout=300)
    records = str(tmp_path / "records.jsonl")
    new = ingest_tuning_bundle(bundle, LLVM, records)
    (region,) = collect_regions(mod, LLVM)
    assert len(new) == 3 and {r.region for r in new} == {region.fingerprint}
    fastest = min(new, key=lambda r: r.median_us)
    chosen = intelligen_tvm.explain(mod, LLVM, choose=RecordChooser(records, target=LLVM))["regions"][0]
    assert chosen["fingerprint"] == region.fingerprint
    inputs = suite.make_inputs(case, np.random.default_rng(0), small=True)
    executable = build(mod, {"kind": "llvm"}, intelligen_tvm.pipeline(records=records))
    assert_close(run(executable, LLVM, inputs), reference_outputs(model, inputs), *tolerances(model))
    for key in ("kind", "groups", "threads_per_row", "rows_per_group", "vector"):
        assert chosen["strategy"][key] == fastest.candidate[key]


def test_tune_measures_cpu_candidates(tmp_path) -> None:
    """On llvm tune() measures CPU-backend candidates (ranked by the shipped model, or the prior),
    one record each, and the winner compiles correctly."""
    mod = relax_module(lambda x: relax.op.sum(x, axis=[-1]), [(4, 1 << 17)])
    records = str(tmp_path / "records.jsonl")
    intelligen_tvm.tune(mod, LLVM, trials=3, records=records, measurer=LocalMeasurer(LLVM, repeat=2),
                        progress=False)
    rows = RecordDB(records).load()
    assert len(rows) == 3 and all(r.candidate["kind"] == "row" and "accumulators" in r.candidate for r in rows)
    assert rows[0].timestamp <= rows[1].timestamp <= rows[2].timestamp   # recorded as measured
    x = np.random.default_rng(0).standard_normal((4, 1 << 17)).astype("float32")
    executable = build(mod, {"kind": "llvm"}, intelligen_tvm.pipeline(records=records))
    (got,) = run(executable, LLVM, [x])
    np.testing.assert_allclose(got, x.astype(np.float64).sum(-1), rtol=1e-5, atol=1e-3)


def test_pipeline_with_the_prior_compiles_its_top_ranked_candidate() -> None:
    """Without records or a model, `prior=True` compiles what the analytical prior ranks first
    (plain compilation keeps the default plan), and the result is still right."""
    mod = relax_module(lambda x: relax.op.sum(x, axis=[-1]), [(4, 1 << 17)])
    (region,) = collect_regions(mod, LLVM)
    hw = targets.hardware_model(LLVM)
    with LLVM:
        picked = RecordChooser(prior=True, target=LLVM)(region.kernel, region.shell, hw)
        default = RecordChooser(target=LLVM)(region.kernel, region.shell, hw)
    ranked = rank(enumerate_candidates(region.kernel, region.shell, hw), hw)
    assert picked.strategy == ranked[0][0].strategy
    assert default.strategy != picked.strategy   # the prior really decides something here
    x = np.random.default_rng(0).standard_normal((4, 1 << 17)).astype("float32")
    (got,) = run(build(mod, {"kind": "llvm"}, intelligen_tvm.pipeline(prior=True)), LLVM, [x])
    np.testing.assert_allclose(got, x.astype(np.float64).sum(-1), rtol=1e-5, atol=1e-3)
