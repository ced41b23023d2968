"""Compare IntelliGen against what users run today, on one target, in one run.

    python scripts/compare.py [--target llvm|cuda] [--small] [--cases softmax,bias_add]
                              [--repeat 10] [--metaschedule-trials N] [--with-bert]
                              [--out results/compare] [--plot]

Contestants per suite case (every one is checked against ``onnx.reference`` with the suite's
tolerances BEFORE its time counts; a mismatch is reported with no time):

- ``intelligen``   ``tvm.compile(mod, target, relax_pipeline="intelligen")``, untuned (default plan).
- ``tvm_default``  ``relax_pipeline="default"``. On GPU targets ``tvm.compile`` swaps in the
  target's default pipeline (FuseOps + DLight); on llvm "default" only legalizes (one unscheduled
  loop nest per op, no fusion), so it is a weak CPU baseline.
- ``metaschedule`` only with ``--metaschedule-trials N > 0``: NOT AVAILABLE in this version of the
  script (MetaSchedule tuning crashes in TVM 0.27 here, see ``METASCHEDULE_NOTE``); the flag fails
  loudly instead of reporting a fake number.
- ``torch_eager`` / ``torch_compile`` (``mode="max-autotune", dynamic=False``) only when
  ``import torch`` works; each case is written in torch from its ONNX semantics.

Timing: ``main`` in the Relax VM via ``VirtualMachine.time_evaluator`` (median of ``--repeat``
repeats). Physical limit, measured in the same run: a device-to-device copy moving the case's
ideal traffic (``ideal_bytes / 2`` read + ``ideal_bytes / 2`` written), both as a runtime tensor
copy (memcpy / cudaMemcpy) and as a copy kernel built by TVM for the target; the faster one is the
copy bandwidth. Ideal traffic: graph inputs once + outputs once + float weights once (a Gather
table counts only the gathered rows).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import tvm
from onnx import numpy_helper
from tvm import relax

import intelligen_tvm
from intelligen_tvm import suite
from intelligen_tvm.testing import reference_outputs, to_numpy, tolerances

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"llvm": {"kind": "llvm"}, "cuda": {"kind": "cuda", "arch": "sm_90"}}
DEFAULT_NOTE = {
    "llvm": "tvm_default on llvm = relax 'default' pipeline: LegalizeOps only, no fusion, no schedule; "
            "intelligen on llvm is the CPU lowering of the GPU plan (threads emulated by loops, made "
            "for numerics, not speed): llvm times say nothing about GPU performance",
    "cuda": "tvm_default on cuda = tvm.compile's GPU default pipeline (FuseOps + DLight rules)",
}
METASCHEDULE_NOTE = (
    "metaschedule is left out: in TVM 0.27 here MetaSchedule needs psutil (not installed) and, "
    "with psutil's cpu_count patched out, tune_relax segfaults in tvm::ffi::ToJSONGraph before the "
    "first trial; no MetaSchedule number is reported rather than a fake one"
)


# ---------------------------------------------------------------------------------------------
# Environment


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_of(target_name: str) -> tvm.runtime.Device:
    return tvm.cpu(0) if target_name == "llvm" else tvm.cuda(0)


def device_name(target_name: str, dev: tvm.runtime.Device) -> str:
    if target_name == "llvm":
        return f"cpu: {platform.processor() or platform.machine()}"
    return f"cuda: {dev.device_name} (compute {dev.compute_version})"


def try_import_torch():
    try:
        import torch  # noqa: PLC0415
    except Exception:  # noqa: BLE001 - any import failure means "no torch contestants"
        return None
    return torch


# ---------------------------------------------------------------------------------------------
# Bytes


def ideal_bytes(model: onnx.ModelProto, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> int:
    """Graph inputs read once + outputs written once + float weights read once.

    A Gather table counts only the rows it gathers (indices size x row bytes).
    """
    total = sum(a.nbytes for a in inputs) + sum(o.nbytes for o in outputs)
    feeds = dict(zip([i.name for i in model.graph.input], inputs))
    gathered = {n.input[0]: n.input[1] for n in model.graph.node if n.op_type == "Gather"}
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype.kind != "f" or array.size <= 1:
            continue  # shape constants and scalars are not traffic
        if init.name in gathered and gathered[init.name] in feeds:
            rows = feeds[gathered[init.name]].size
            total += rows * array[0].nbytes
        else:
            total += array.nbytes
    return int(total)


# ---------------------------------------------------------------------------------------------
# Timing


def time_vm(executable, dev, args, number: int, repeat: int) -> float:
    """Median seconds of one call of ``main`` (time_evaluator: warm-up call discarded)."""
    vm = relax.VirtualMachine(executable, dev)
    result = vm.time_evaluator("main", dev, number=number, repeat=repeat)(*args)
    return float(np.median(result.results))


def pick_number(seconds_once: float) -> int:
    """Calls per repeat so that one repeat lasts about 10 ms (at least 1, at most 1000)."""
    return int(min(1000, max(1, 0.01 / max(seconds_once, 1e-7))))


def run_vm(executable, dev, args) -> list[np.ndarray]:
    vm = relax.VirtualMachine(executable, dev)
    return to_numpy(vm["main"](*args))


def check(actual: list[np.ndarray], expected: list[np.ndarray], rtol: float, atol: float) -> tuple[bool, float]:
    if len(actual) != len(expected):
        return False, float("inf")
    err, ok = 0.0, True
    for a, e in zip(actual, expected):
        if a.shape != e.shape:
            return False, float("inf")
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        err = max(err, float(np.max(np.abs(a64 - e64), initial=0.0)))
        ok = ok and bool(np.allclose(a64, e64, rtol=rtol, atol=atol))
    return ok, err


def copy_kernel_module(n: int) -> tvm.IRModule:
    """A Relax module whose ``main`` copies ``n`` fp32 values with one TIR kernel."""
    from tvm import te  # noqa: PLC0415

    src = te.placeholder((n,), "float32", name="src")
    dst = te.compute((n,), lambda i: src[i], name="dst")
    func = te.create_prim_func([src, dst]).with_attr("global_symbol", "copy")
    bb = relax.BlockBuilder()
    gv = bb.add_func(func, "copy")
    x = relax.Var("x", relax.TensorType((n,), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.call_tir(gv, [x], relax.TensorType((n,), "float32")))
        bb.emit_func_output(out)
    return bb.get()


def copy_bandwidth(target, target_name: str, dev, traffic_bytes: int, repeat: int) -> dict:
    """Bandwidth (bytes moved / s) of a device copy moving ``traffic_bytes`` in total."""
    n = max(1, traffic_bytes // 8)  # fp32 values: n*4 read + n*4 written = traffic
    moved = 8 * n
    src = tvm.runtime.tensor(np.random.default_rng(1).standard_normal(n).astype(np.float32), dev)
    dst = tvm.runtime.empty((n,), "float32", dev)
    # 1) runtime copy (memcpy on CPU, cudaMemcpy device-to-device on CUDA)
    src.copyto(dst)
    dev.sync()
    start = time.perf_counter()
    src.copyto(dst)
    dev.sync()
    number = pick_number(time.perf_counter() - start)
    samples = []
    for _ in range(repeat):
        dev.sync()
        start = time.perf_counter()
        for _ in range(number):
            src.copyto(dst)
        dev.sync()
        samples.append((time.perf_counter() - start) / number)
    runtime_s = statistics.median(samples)
    ok = bool(np.array_equal(dst.numpy(), src.numpy()))
    # 2) a copy kernel TVM builds for the target (DLight schedules it on GPUs)
    kernel_s = None
    try:
        ex = tvm.compile(copy_kernel_module(n), target=target, relax_pipeline="default")
        once = time_vm(ex, dev, [src], 1, 1)
        kernel_s = time_vm(ex, dev, [src], pick_number(once), repeat)
    except Exception as err:  # noqa: BLE001 - the runtime copy still gives the limit
        print(f"  copy kernel failed ({type(err).__name__}: {err}); using the runtime copy only")
    best = min(s for s in (runtime_s, kernel_s) if s is not None)
    return {
        "bytes_moved": moved,
        "runtime_copy_us": runtime_s * 1e6,
        "kernel_copy_us": None if kernel_s is None else kernel_s * 1e6,
        "copy_gbps": moved / best / 1e9,
        "copy_ok": ok,
    }


# ---------------------------------------------------------------------------------------------
# Torch contestants (each suite case written from its ONNX semantics)


def torch_fn(torch, name: str, model: onnx.ModelProto, dims: dict):
    F = torch.nn.functional
    w = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}

    def p(key):
        return torch.from_numpy(np.ascontiguousarray(w[key]))

    eps = suite.LN_EPS
    fns = {
        "softmax": lambda x: torch.softmax(x, -1),
        "long_softmax": lambda x: torch.softmax(x, -1),
        "attention_softmax": lambda x, mask: torch.softmax(x * 0.125 + mask, -1),
        "layer_norm": lambda x, g=None, b=None: F.layer_norm(x, (x.shape[-1],), g, b, eps),
        "add_layer_norm": lambda x, r, g=None, b=None: F.layer_norm(x + r, (x.shape[-1],), g, b, eps),
        "decomposed_layer_norm": lambda x, g=None, b=None: (
            (x - x.mean(-1, keepdim=True))
            / torch.sqrt(((x - x.mean(-1, keepdim=True)) ** 2).mean(-1, keepdim=True) + eps) * g + b),
        "rms_norm": lambda x, wt=None: x * torch.rsqrt((x * x).mean(-1, keepdim=True) + suite.RMS_EPS) * wt,
        "bias_gelu_erf": lambda x, b=None: F.gelu(x + b),
        "swiglu": lambda a, b: F.silu(a) * b,
        "relu_add": lambda x, y: torch.relu(x) + y,
        "bias_add": lambda x, b=None: x + b,
        "channel_shuffle": lambda x: x.reshape(dims.get("n", 1), dims.get("g", 1), dims.get("c", 1),
                                               dims.get("h", 1), dims.get("w", 1))
        .transpose(1, 2).contiguous().reshape(x.shape),
        "transpose_relu": lambda x: torch.relu(x.permute(2, 0, 3, 1)).contiguous(),
        "attention_transpose": lambda x: x.permute(0, 2, 1, 3).contiguous(),
        "mean_last": lambda x: x.mean(-1),
        "sum_axis0": lambda x: x.sum(0, keepdim=True),
        "bert_embedding": lambda ids, t=None, pos=None, g=None, b=None: F.layer_norm(
            t[ids] + pos, (t.shape[-1],), g, b, eps),
    }
    params = {
        "layer_norm": ["ln_gamma", "ln_beta"], "add_layer_norm": ["ln_gamma", "ln_beta"],
        "decomposed_layer_norm": ["gamma", "beta"], "rms_norm": ["weight"],
        "bias_gelu_erf": ["bias"], "bias_add": ["bias"],
        "bert_embedding": ["word_embeddings", "position_embeddings", "ln_gamma", "ln_beta"],
    }
    if name not in fns:
        return None, []
    return fns[name], [p(k) for k in params.get(name, [])]


def time_torch(torch, fn, args, dev_kind: str, number: int, repeat: int) -> float:
    def sync():
        if dev_kind == "cuda":
            torch.cuda.synchronize()

    with torch.no_grad():
        for _ in range(3):
            fn(*args)
        sync()
        samples = []
        for _ in range(repeat):
            sync()
            start = time.perf_counter()
            for _ in range(number):
                fn(*args)
            sync()
            samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


# ---------------------------------------------------------------------------------------------
# One case


def measure_case(name: str, model: onnx.ModelProto, inputs: list[np.ndarray], dims: dict,
                 args: argparse.Namespace, target, dev, torch) -> dict:
    expected = reference_outputs(model, inputs)
    rtol, atol = tolerances(model)
    traffic = ideal_bytes(model, inputs, expected)
    mod = intelligen_tvm.from_onnx(model)
    vm_args = [tvm.runtime.tensor(np.ascontiguousarray(a), dev) for a in inputs]
    contestants: dict[str, dict] = {}

    def record(cname: str, build, run_once, timer):
        row: dict = {"contestant": cname}
        try:
            start = time.perf_counter()
            handle = build()
            row["build_s"] = round(time.perf_counter() - start, 3)
            ok, err = check(run_once(handle), expected, rtol, atol)
            row.update(numerics_ok=ok, max_abs_error=err)
            if ok:
                seconds = timer(handle)
                row.update(time_us=seconds * 1e6, gbps=traffic / seconds / 1e9)
            else:
                row.update(time_us=None, gbps=None, status="MISMATCH: not timed")
        except Exception as exc:  # noqa: BLE001 - report the failure, keep going
            row.update(numerics_ok=False, time_us=None, gbps=None,
                       status=f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
        contestants[cname] = row

    def tvm_timer(ex):
        once = time_vm(ex, dev, vm_args, 1, 1)
        return time_vm(ex, dev, vm_args, pick_number(once), args.repeat)

    for cname, pipeline in (("intelligen", "intelligen"), ("tvm_default", "default")):
        record(cname, lambda p=pipeline: tvm.compile(mod, target=target, relax_pipeline=p),
               lambda ex: run_vm(ex, dev, vm_args), tvm_timer)

    if torch is not None:
        fn, params = torch_fn(torch, name, model, dims)
        if fn is None:
            contestants["torch_eager"] = {"contestant": "torch_eager", "time_us": None,
                                          "status": "skipped: no torch version of this case"}
        else:
            tdev = "cuda" if args.target == "cuda" else "cpu"
            targs = [torch.from_numpy(np.ascontiguousarray(a)).to(tdev) for a in inputs]
            targs += [t.to(tdev) for t in params]

            def t_run(f):
                with torch.no_grad():
                    out = f(*targs)
                outs = out if isinstance(out, (tuple, list)) else [out]
                return [o.detach().cpu().numpy() for o in outs]

            def t_timer(f):
                start = time.perf_counter()
                time_torch(torch, f, targs, tdev, 1, 1)
                return time_torch(torch, f, targs, tdev, pick_number(time.perf_counter() - start),
                                  args.repeat)

            record("torch_eager", lambda: fn, t_run, t_timer)
            record("torch_compile",
                   lambda: torch.compile(fn, mode="max-autotune", dynamic=False), t_run, t_timer)

    copy = copy_bandwidth(target, args.target, dev, traffic, args.repeat)
    for row in contestants.values():
        if row.get("gbps"):
            row["fraction_of_copy"] = row["gbps"] / copy["copy_gbps"]
    mine = contestants["intelligen"].get("time_us")
    baselines = {k: r["time_us"] for k, r in contestants.items()
                 if k != "intelligen" and r.get("time_us")}
    best = min(baselines, key=baselines.get) if baselines else None
    speedup = baselines[best] / mine if (mine and best) else None
    return {"case": name, "ideal_bytes": traffic, "copy": copy, "contestants": contestants,
            "best_baseline": best, "speedup_vs_best_baseline": speedup}


# ---------------------------------------------------------------------------------------------
# Output


def _fmt(value, spec: str) -> str:
    return "-" if not value else format(value, spec)


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"# IntelliGen comparison on `{meta['target']}` ({meta['device']})", "",
             f"TVM {meta['tvm_version']}, commit `{meta['git_commit']}`, small={meta['settings']['small']}, "
             f"repeat={meta['settings']['repeat']}. {meta['notes']['tvm_default']}.", ""]
    for note in meta["notes"].get("left_out", []):
        lines.append(f"- left out: {note}")
    lines += ["", "| case | contestant | numerics | median (us) | GB/s | of copy BW | copy GB/s | "
              "intelligen speedup vs best baseline |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for cname, c in row["contestants"].items():
            t = c.get("time_us")
            num = "ok" if c.get("numerics_ok") else c.get("status", "no")
            speed = ""
            if cname == "intelligen" and row["speedup_vs_best_baseline"]:
                speed = f"{row['speedup_vs_best_baseline']:.2f}x vs {row['best_baseline']}"
            lines.append(
                f"| {row['case']} | {cname} | {num} | {'-' if t is None else f'{t:.2f}'} "
                f"| {_fmt(c.get('gbps'), '.2f')} | {_fmt(c.get('fraction_of_copy'), '.1%')} "
                f"| {row['copy']['copy_gbps']:.2f} | {speed} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], out: Path) -> list[str]:
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except Exception:  # noqa: BLE001
        print("matplotlib not available: no plots")
        return []
    names = sorted({c for r in rows for c in r["contestants"]})
    x = np.arange(len(rows))
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 1.2), 4))
    for i, cname in enumerate(names):
        vals = [r["contestants"].get(cname, {}).get("fraction_of_copy") or 0 for r in rows]
        ax.bar(x + i * width, vals, width, label=cname)
    ax.set_xticks(x + 0.4 - width / 2, [r["case"] for r in rows], rotation=45, ha="right")
    ax.set_ylabel("fraction of copy bandwidth")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "fraction_of_copy.png")
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.8), 4))
    ax.bar(x, [r["speedup_vs_best_baseline"] or 0 for r in rows])
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(x, [r["case"] for r in rows], rotation=45, ha="right")
    ax.set_ylabel("intelligen speedup vs best baseline")
    fig.tight_layout()
    fig.savefig(out / "speedup.png")
    return ["fraction_of_copy.png", "speedup.png"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="llvm")
    parser.add_argument("--small", action="store_true", help="shrunk shapes (seconds on a CPU)")
    parser.add_argument("--cases", default="", help="comma-separated suite case names (default: all)")
    parser.add_argument("--repeat", type=int, default=10, help="timing repeats (median reported)")
    parser.add_argument("--metaschedule-trials", type=int, default=0)
    parser.add_argument("--with-bert", action="store_true", help="also time one BERT encoder layer")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "compare")
    parser.add_argument("--plot", action="store_true", help="write PNGs if matplotlib imports")
    args = parser.parse_args(argv)

    if args.metaschedule_trials > 0:
        print(f"error: --metaschedule-trials is not supported: {METASCHEDULE_NOTE}", file=sys.stderr)
        return 2
    dev = device_of(args.target)
    if not dev.exist:
        print(f"error: --target {args.target} needs a {args.target} device and none exists here",
              file=sys.stderr)
        return 2
    target = tvm.target.Target(TARGETS[args.target])
    cases = [suite.get_case(n.strip()) for n in args.cases.split(",") if n.strip()] or suite.SUITE
    torch = try_import_torch()
    left_out = [METASCHEDULE_NOTE + " (pass --metaschedule-trials N to see this message)"]
    if torch is None:
        left_out.append("torch_eager / torch_compile: `import torch` failed")
    rng = np.random.default_rng(0)
    rows = []
    for case in cases:
        print(f"[{case.name}]", flush=True)
        model = case.build(small=args.small)
        inputs = suite.make_inputs(case, rng, small=args.small)
        rows.append(measure_case(case.name, model, inputs, dict(case.dims_for(args.small)), args,
                                 target, dev, torch))
    if args.with_bert:
        print("[bert_encoder_layer]", flush=True)
        model = suite.bert_encoder_layer(small=args.small)
        dims = suite.bert_encoder_dims(small=args.small)
        inputs = suite.make_inputs_from_specs(suite.bert_encoder_input_specs(), dims, rng)
        rows.append(measure_case("bert_encoder_layer", model, inputs, dict(dims), args, target,
                                 dev, torch))

    meta = {
        "device": device_name(args.target, dev),
        "tvm_version": tvm.__version__,
        "torch_version": None if torch is None else torch.__version__,
        "git_commit": git_commit(),
        "target": TARGETS[args.target],
        "settings": {"small": args.small, "repeat": args.repeat, "cases": [c.name for c in cases],
                     "with_bert": args.with_bert, "metaschedule_trials": args.metaschedule_trials,
                     "timing": "Relax VM time_evaluator, median of repeats, ~10 ms per repeat",
                     "copy": "device copy of ideal_bytes/2 read + ideal_bytes/2 written; best of "
                             "runtime copy and a TVM copy kernel"},
        "notes": {"tvm_default": DEFAULT_NOTE[args.target], "left_out": left_out},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({**meta, "rows": rows}, indent=1))
    table = markdown(rows, meta)
    (args.out / "results.md").write_text(table)
    print(table)
    if args.plot:
        plot(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
