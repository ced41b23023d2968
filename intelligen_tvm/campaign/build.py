"""Build the campaign bundle on a machine without the GPU.

Per case (every public suite case and the demo's BERT encoder layer):

- the float weights become graph inputs (``externalize_weights``): baked in, they would ship
  once per executable (the BERT layer's are 28 MB, bert_embedding's table 94 MB); as inputs,
  the runner draws them from a seed like the activations (``runner.make_array``: the mean and
  spread of the real weights, hashed counters, the same numbers on every machine);
- three Relax executables: intelligen's default plan, the analytical prior's pick
  (``pipeline(prior=True)``: no pretrained GPU model ships) and TVM's default pipeline (DLight);
- the best ``trials`` candidates of every region by the prior, packed one library per case
  (``tuning.export_tuning_bundle``: ``ingest_tuning_bundle`` reads what the runner measured);
- reference outputs from ``onnx.reference`` on exactly the arrays the runner will draw, kept at
  ``runner.CHECK_SAMPLES`` spread positions per output (full outputs are GBs).

Plus a copy kernel (TVM default pipeline), the runner files, the runtime-only TVM
(``runtime_pack``) and, for CUDA, every kernel source precompiled by nvcc (sm_90 SASS + PTX).
MetaSchedule is not part of it: it needs TVM's compiler on the device, and its search does not
fit the window.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import tvm
from onnx import helper, numpy_helper

from .. import suite
from ..benchmark import timing, torch_fns
from ..cost_model import bundle_runner
from ..frontend import from_onnx
from ..testing import device_sources, reference_outputs, tolerances
from ..tuning import export_tuning_bundle, pipeline
from . import runner, runtime_pack

TARGETS = {"cuda": {"kind": "cuda", "arch": "sm_90"}, "llvm": {"kind": "llvm"}}
CUDA_ARCH = "sm_90"
BERT = "bert_encoder_layer"
RUNNER_FILE = "campaign_runner.py"
COPY_FILE = "copy_kernel.so"  # not copy.so: the bundle directory is on sys.path (stdlib `copy`)
COPY_ELEMENTS = {"cuda": 64 << 20, "llvm": 1 << 20}  # fp32 values: 512 MiB / 8 MiB moved
# What the runner reserves (seconds): not measured on a GPU yet; see estimate_device_seconds
PLAN = {"cuda": {"case_s": 4.0, "torch_compile_s": 12.0, "margin_s": 10.0},
        "llvm": {"case_s": 1.0, "torch_compile_s": 30.0, "margin_s": 2.0}}


@dataclass(frozen=True)
class CaseModel:
    """One workload as the bundle sees it."""

    name: str
    model: onnx.ModelProto  # as the suite builds it (weights as initializers)
    dims: dict[str, int]
    inputs: list[dict[str, Any]]  # runner specs of the graph inputs


def case_models(small: bool, names: list[str] | None = None, with_bert: bool = True) -> list[CaseModel]:
    """The suite cases (all, or ``names``) and the BERT layer, at full or small shapes."""
    chosen = names if names is not None else [c.name for c in suite.SUITE] + ([BERT] if with_bert else [])
    out = []
    for name in chosen:
        if name == BERT:
            dims = dict(suite.bert_encoder_dims(small=small))
            model, specs = suite.bert_encoder_layer(small=small), suite.bert_encoder_input_specs()
        else:
            case = suite.get_case(name)
            dims, model, specs = dict(case.dims_for(small)), case.build(small=small), case.inputs
        inputs = [{"name": s.name, "shape": list(s.concrete_shape(dims)), "dtype": s.dtype, "kind": s.kind,
                   "high": dims[s.high] if s.high else None, "mask_value": suite.MASK_VALUE} for s in specs]
        out.append(CaseModel(name, model, dims, inputs))
    return out


def externalize_weights(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[dict[str, Any]]]:
    """The model with every float initializer of more than one element as a graph input (after
    the existing inputs), and the runner specs that draw look-alikes (same mean and spread).
    Scalars and integer initializers (shapes, axes) stay constants: they shape the graph."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    kept, specs = [], []
    for init in out.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype != np.float32 or array.size <= 1:
            kept.append(init)
            continue
        specs.append({"name": init.name, "shape": list(array.shape), "dtype": "float32", "kind": "normal",
                      "mean": float(array.mean()), "std": float(array.std())})
        out.graph.input.append(helper.make_tensor_value_info(init.name, onnx.TensorProto.FLOAT, array.shape))
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept)
    return out, specs


class CudaSources:
    """Every CUDA source the bundle's modules will hand to ``tvm_callback_cuda_compile`` on the
    device, compiled here by nvcc once each (by source hash)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.seconds = 0.0
        self.count = 0
        self.owners: dict[str, list[str]] = {}  # "executables" / "candidates" -> fatbin files

    def __call__(self, built: Any, owner: str = "executables") -> None:
        if self.directory is None:
            return
        executable = built if hasattr(built, "mod") else type("Built", (), {"mod": built})()
        sources = device_sources(executable, "cuda")
        if sources and not all(s.encode() in serialized(executable.mod) for s in sources):
            raise RuntimeError("a CUDA source differs from what the library stores: the device would "
                               "have to compile it itself")
        for source in sources:
            path = self.directory / f"{runner.source_key(source)}.fatbin"
            self.owners.setdefault(owner, []).append(f"{runner.CUDA_DIR}/{path.name}")
            if not path.exists():
                start = time.perf_counter()
                path.write_bytes(runner.nvcc_fatbin(source, CUDA_ARCH))
                self.seconds += time.perf_counter() - start
                self.count += 1


def serialized(module: Any) -> bytes:
    """A module's imports as ``export_library`` stores them: what ``tvm_callback_cuda_compile``
    receives on the device is the CUDA source found in here."""
    return tvm.get_global_func("runtime.ModulePackImportsToTensor")(module).numpy().tobytes()


def build_case(case: CaseModel, target: tvm.target.Target, out: Path, trials: int,
               cuda: CudaSources, log: Callable[[str], None]) -> dict[str, Any]:
    """Write one case's executables, candidates and reference; returns its manifest entry."""
    case_dir = out / "cases" / case.name
    case_dir.mkdir(parents=True, exist_ok=True)
    model, weights = externalize_weights(case.model)
    entry: dict[str, Any] = {"name": case.name, "dir": f"cases/{case.name}", "dims": case.dims,
                             "inputs": case.inputs, "weights": weights}
    arrays = runner.case_arrays(entry)
    expected = reference_outputs(model, arrays)
    samples = {}
    for i, value in enumerate(expected):
        idx = runner.sample_indices(value.size)
        samples[f"idx{i}"], samples[f"val{i}"] = idx, value.reshape(-1)[idx]
    np.savez_compressed(case_dir / "reference.npz", **samples)
    rtol, atol = tolerances(model)
    n_in = len(case.inputs)
    entry.update(reference="reference.npz", rtol=rtol, atol=atol,
                 outputs=[{"shape": list(v.shape), "dtype": str(v.dtype)} for v in expected],
                 ideal_bytes=timing.ideal_bytes(case.model, arrays[:n_in], expected),
                 torch=case.name if torch_fns.covers(case.name) else None, executables={}, build_s={})
    mod = from_onnx(model)
    for name, pipe in (("intelligen", "intelligen"), ("intelligen_prior", pipeline(prior=True)),
                       ("tvm_default", "default")):
        start = time.perf_counter()
        executable = tvm.compile(mod, target=target, relax_pipeline=pipe)
        executable.export_library(str(case_dir / f"{name}.so"))
        cuda(executable)
        entry["executables"][name] = f"{name}.so"
        entry["build_s"][name] = time.perf_counter() - start
    if trials > 0:
        start = time.perf_counter()
        tuning = export_tuning_bundle(mod, target, case_dir / "tuning", trials=trials, pack=True,
                                      on_built=lambda built: cuda(built, "candidates"))
        described = json.loads((tuning / "tuning.json").read_text())["candidates"]
        entry.update(tuning="tuning", candidates=len(described),
                     regions=len({d["region"] for d in described}),
                     candidate_dram_bytes=[d["features"].get("dram_bytes", 0.0) for d in described])
        entry["build_s"]["candidates"] = time.perf_counter() - start
    log(f"  {case.name}: {entry.get('candidates', 0)} candidates in {entry.get('regions', 0)} regions, "
        f"{sum(entry['build_s'].values()):.1f} s")
    return entry


def copy_entry(target: tvm.target.Target, out: Path, cuda: CudaSources) -> dict[str, Any]:
    n = COPY_ELEMENTS[target.kind.name]
    executable = tvm.compile(timing.copy_kernel_module(n), target=target, relax_pipeline="default")
    executable.export_library(str(out / COPY_FILE))
    cuda(executable)
    return {"file": COPY_FILE, "elements": n}


def build_bundle(out: Path, target_kind: str = "cuda", small: bool = False, cases: list[str] | None = None,
                 with_bert: bool = True, trials: int = 64, runtime: bool = True,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write the whole bundle into ``out`` (emptied first); returns its manifest."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    start = time.perf_counter()
    target = tvm.target.Target(TARGETS[target_kind])
    cuda_dir = out / runner.CUDA_DIR if target_kind == "cuda" else None
    if cuda_dir is not None:
        cuda_dir.mkdir()
    cuda = CudaSources(cuda_dir)
    manifest: dict[str, Any] = {
        "format_version": runner.FORMAT_VERSION, "target": json.loads(str(target)),
        "device_kind": "cuda" if target_kind == "cuda" else "cpu", "small": small, "trials": trials,
        "eps": [suite.LN_EPS, suite.RMS_EPS], "plan": PLAN[target_kind], "tvm": tvm.__version__,
        "notes": ["the prior's pick is the analytical prior's top candidate (pipeline(prior=True)): "
                  "no cost model trained on GPU measurements ships yet",
                  "weights are graph inputs drawn from a seed (same mean and spread as the suite's)",
                  "MetaSchedule is left out: it needs TVM's compiler on the device"],
    }
    manifest["cases"] = [build_case(c, target, out, trials, cuda, log) for c in case_models(small, cases, with_bert)]
    manifest["copy"] = copy_entry(target, out, cuda)
    for src, name in ((Path(runner.__file__), RUNNER_FILE), (Path(bundle_runner.__file__), "bundle_runner.py"),
                      (Path(torch_fns.__file__), "torch_fns.py")):
        shutil.copyfile(src, out / name)
    if runtime:
        manifest["runtime"] = runtime_pack.stage_runtime(out / runner.RUNTIME_DIR, manifest["device_kind"])
    manifest["build"] = {"seconds": time.perf_counter() - start, "nvcc_seconds": cuda.seconds,
                         "fatbins": cuda.count, "fatbins_by_owner": cuda.owners}
    start = time.perf_counter()
    manifest["build"]["binaries"] = pack_binaries(out)
    manifest["build"]["pack_s"] = time.perf_counter() - start
    (out / runner.MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
    manifest["bytes"] = directory_bytes(out)
    return manifest


def pack_binaries(out: Path) -> dict[str, int]:
    """Move every shared library and fatbin into one gzip tarball (the runner unpacks it in place):
    TVM keeps CUDA kernels as source text inside the libraries, which compresses well."""
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".so", ".fatbin")
                   or p.is_file() and ".so." in p.name)
    raw = sum(p.stat().st_size for p in files)
    deflated = {str(p.relative_to(out)): len(zlib.compress(p.read_bytes(), 6)) for p in files}
    with tarfile.open(out / runner.BINARIES, "w:gz", compresslevel=6) as tar:
        for path in files:
            tar.add(path, arcname=str(path.relative_to(out)))
    for path in files:
        path.unlink()
    return {"files": len(files), "raw_bytes": raw, "packed_bytes": (out / runner.BINARIES).stat().st_size,
            "deflated_by_file": deflated}


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
