"""Tuning: measure the best-ranked candidates of every region, keep the records, and compile
with the winners.

    records = "records.jsonl"
    intelligen_tvm.tune(mod, target, trials=32, records=records)      # needs the target's device
    tvm.compile(mod, target, relax_pipeline=intelligen_tvm.pipeline(records=records))

Candidates are ranked by the trained model when one is given, else by the model that ships
for the target's hardware (CPUs), else by the analytical prior; the top `trials` per region
are measured.  Without measurement the pipeline picks
what the records say was fastest, else the model's choice, else the default plan.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import tvm

from . import targets
from .cost_model.bundle import export_bundle, ingest_bundle
from .cost_model.measure import LocalMeasurer, MeasureInput
from .cost_model.ranking import rank
from .cost_model.records import Record, RecordDB, load_records, package_version
from .dataflow_graph.choices import Candidate, enumerate_candidates
from .dataflow_graph.cpu_plan import is_cpu
from .gir.fingerprint import region_fingerprint
from .gir.hardware import HardwareModel
from .gir.program import Kernel, Program
from .gir.strategy import ParallelStrategy
from .progress import progress as progress_bar
from .region import default_choice, shipped_choice, shipped_model
from .relax_integration import explain, intelligen_pipeline

TUNING_SIDECAR = "tuning.json"


def target_key(target: tvm.target.Target) -> str:
    """The part of a target that decides code and speed: kind and architecture."""
    arch = target.attrs.get("arch") or target.attrs.get("mcpu") or ""
    return f"{target.kind.name} {arch}".strip()


def strategy_key(strategy: ParallelStrategy) -> dict:
    """A strategy as stored in records (JSON round-trips: tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(strategy)))


@dataclass
class RegionToTune:
    name: str
    fingerprint: str
    kernel: Kernel      # rewritten, not planned
    shell: Program


def collect_regions(mod: tvm.IRModule, target: tvm.target.Target,
                    symbol_hints: Mapping[str, int] | None = None) -> list[RegionToTune]:
    """The regions the pipeline would take, once each (by fingerprint); symbolic dimensions
    at `symbol_hints` (the sizes their candidates are planned and measured at)."""
    found: dict[str, RegionToTune] = {}

    def collect(kernel: Kernel, shell: Program, hw: HardwareModel) -> Candidate:
        fp = region_fingerprint(kernel, shell)
        found.setdefault(fp, RegionToTune(shell.name, fp, kernel, shell))
        return default_choice(kernel, shell, hw)

    explain(mod, target, choose=collect, symbol_hints=symbol_hints)
    return list(found.values())


def measure_inputs(region: RegionToTune, candidates: list[Candidate], target: tvm.target.Target):
    shell = region.shell
    specs = [(shell.buffers[b].shape, shell.buffers[b].dtype) for b in (*shell.inputs, *shell.outputs)]
    inputs = []
    for i, cand in enumerate(candidates):
        name = f"{region.name}_c{i}"
        func = targets.source_prim_func(targets.render_source(cand.program.renamed(name), target.kind.name, name))
        inputs.append(MeasureInput(name, func, specs))
    return inputs


def _ranked_regions(mod: tvm.IRModule, target: tvm.target.Target, trials: int, model,
                    symbol_hints: Mapping[str, int] | None = None
                    ) -> Iterator[tuple[RegionToTune, list[tuple[Candidate, dict]]]]:
    if not targets.renders_tir(target.kind.name):
        raise ValueError(f"cannot tune for target kind {target.kind.name!r}: intelligen renders "
                         f"{', '.join(sorted(targets.DIALECTS))}")
    hw = targets.hardware_model(target)
    for region in collect_regions(mod, target, symbol_hints):
        yield region, rank(enumerate_candidates(region.kernel, region.shell, hw), hw, model)[:trials]


def _records(target: tvm.target.Target, measured) -> list[Record]:
    """One record per successful measurement of (region, candidate key, features, result)."""
    return [Record(region=region, target=target_key(target), device=res.device, candidate=cand, features=feats,
                   times_us=list(res.times_us), version=package_version(), timestamp=time.time())
            for region, cand, feats, res in measured if res.error is None and res.times_us]


def tune(mod: tvm.IRModule, target, trials: int = 32, records: str = "intelligen_records.jsonl",
         measurer=None, model=None, progress: bool = True,
         symbol_hints: Mapping[str, int] | None = None) -> dict[str, dict]:
    """Measure up to `trials` candidates per region; append records; return the best
    candidate per region fingerprint.  A region with symbolic dimensions is planned and
    measured at `symbol_hints` (DEFAULT_HINT for a symbol not named); its records apply where
    `pipeline(records=..., symbol_hints=...)` plans it at the same sizes (the candidates are
    the same strategies there), elsewhere the model or default chooses."""
    target = targets.as_target(target)
    measurer = measurer or LocalMeasurer(target)
    db = RecordDB(records)
    best: dict[str, dict] = {}
    regions = list(_ranked_regions(mod, target, trials, model or default_model(target), symbol_hints))
    for n, (region, ranked) in enumerate(regions):
        if progress:
            progress_bar(n, len(regions), f"{region.name}: {len(ranked)} candidates")
        new = []
        for k, f in ranked:   # one at a time: each record's timestamp says when its result was known
            (res,) = measurer.measure(measure_inputs(region, [k], target))
            new += _records(target, [(region.fingerprint, strategy_key(k.strategy), f, res)])
            db.append(new[-1:])
        if new:
            best[region.fingerprint] = min(new, key=lambda r: r.median_us).candidate
    if progress and regions:
        progress_bar(len(regions), len(regions), "tuned")
    return best


def default_model(target: tvm.target.Target):
    """The model that ranks candidates when none is given: the shipped one of the target's
    hardware family (CPUs), else None (the analytical prior ranks)."""
    return shipped_model("cpu") if is_cpu(targets.hardware_model(target)) else None


def export_tuning_bundle(mod: tvm.IRModule, target, directory: str | Path, trials: int = 32,
                         model=None, pack: bool = False, on_built=None) -> Path:
    """Cross-host tuning, step 1 (compile host): the top candidates of every region as a
    measurement bundle, plus what each one is (region, candidate, features). ``pack`` and
    ``on_built``: see ``cost_model.bundle.export_bundle``."""
    target = targets.as_target(target)
    inputs, described = [], []
    for region, ranked in _ranked_regions(mod, target, trials, model):
        inputs += measure_inputs(region, [k for k, _ in ranked], target)
        described += [{"region": region.fingerprint, "candidate": strategy_key(k.strategy), "features": f}
                      for k, f in ranked]
    directory = export_bundle(inputs, target, directory, pack=pack, on_built=on_built)
    (directory / TUNING_SIDECAR).write_text(json.dumps({"candidates": described}))
    return directory


def ingest_tuning_bundle(directory: str | Path, target, records: str) -> list[Record]:
    """Cross-host tuning, step 3: after `python bundle_runner.py DIR` ran on the GPU host,
    turn its results into records."""
    directory = Path(directory)
    described = json.loads((directory / TUNING_SIDECAR).read_text())["candidates"]
    new = _records(targets.as_target(target), ((d["region"], d["candidate"], d["features"], res)
                                        for d, res in zip(described, ingest_bundle(directory))))
    RecordDB(records).append(new)
    return new


class RecordChooser:
    """Chooses a region's plan from measured records, else a model, else (with `prior`) the
    analytical prior's ranking, else the shipped model's pick (CPUs), else the default plan.

    The prior is not the default: it has never been calibrated against a measurement, so the
    hand-written default plan stays the choice of plain compilation until a model exists."""

    def __init__(self, records: str | None = None, model=None, target=None, prior: bool = False):
        self.best: dict[tuple[str, str], Record] = {}
        for rec in load_records(records) if records else []:
            key = (rec.region, rec.target)
            if key not in self.best or rec.median_us < self.best[key].median_us:
                self.best[key] = rec
        self.model = model
        self.prior = prior
        self.target = targets.as_target(target) if target is not None else None

    def __call__(self, kernel: Kernel, shell: Program, hw: HardwareModel) -> Candidate:
        target = self.target or tvm.target.Target.current()
        best = self.best.get((region_fingerprint(kernel, shell), target_key(target)))
        if best is None and self.model is None and not self.prior:
            return shipped_choice(kernel, shell, hw)
        candidates = enumerate_candidates(kernel, shell, hw)
        if best is not None:
            for cand in candidates:
                if strategy_key(cand.strategy) == best.candidate:
                    return cand
        if (self.model is not None or self.prior) and candidates:
            return rank(candidates, hw, self.model)[0][0]
        return shipped_choice(kernel, shell, hw)


def pipeline(records: str | None = None, model=None, prior: bool = False,
             symbol_hints: dict[str, int] | None = None) -> tvm.transform.Pass:
    """The "intelligen" relax pipeline, choosing plans from `records` / `model` / the prior;
    symbolic dimensions are planned at `symbol_hints` (by symbol name)."""
    return intelligen_pipeline(RecordChooser(records, model, prior=prior), symbol_hints)
