"""Shared helpers for the compiler-core tests: tiny Relax modules legalized into TIR, read into
stage programs, and suite regions as stage programs (the same path region selection takes)."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path


import numpy as np
import onnx
import tvm
from tvm import relax
from tvm.script import relax as R

import intelligen_tvm
from intelligen_tvm import suite
from intelligen_tvm.gir.interpret import eval_expr
from intelligen_tvm.gir.symbolic import SymInt
from intelligen_tvm.gir_lowering.tir_reader import StageProgram, read_prim_func
from intelligen_tvm.testing import nvcc_check

LLVM = tvm.target.Target({"kind": "llvm"})


def relax_module(fn: Callable, shapes: Sequence[tuple[int, ...]],
                 dtypes: Sequence[str] | None = None) -> tvm.IRModule:
    """`main(x0, x1, ...) = fn(x0, x1, ...)` as a Relax module (not legalized)."""
    dtypes = list(dtypes or ["float32"] * len(shapes))
    bb = relax.BlockBuilder()
    params = [relax.Var(f"x{i}", R.Tensor(tuple(s), d)) for i, (s, d) in enumerate(zip(shapes, dtypes))]
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(fn(*params))
        bb.emit_func_output(out)
    return bb.get()


def legalized(fn: Callable, shapes: Sequence[tuple[int, ...]],
              dtypes: Sequence[str] | None = None) -> tvm.IRModule:
    return relax.transform.LegalizeOps()(relax_module(fn, shapes, dtypes))


def prim_funcs(mod: tvm.IRModule) -> dict[str, tvm.tirx.PrimFunc]:
    """The PrimFuncs of a legalized module, in the order main calls them."""
    order = []
    for binding in mod["main"].body.blocks[0].bindings:
        value = binding.value
        if isinstance(value, relax.Call) and len(value.args) == 2 and isinstance(value.args[0], tvm.ir.GlobalVar):
            order.append(value.args[0].name_hint)
    return {name: mod[name] for name in order}


def single_prim_func(fn: Callable, shapes, dtypes=None) -> tvm.tirx.PrimFunc:
    funcs = prim_funcs(legalized(fn, shapes, dtypes))
    assert len(funcs) == 1, list(funcs)
    return next(iter(funcs.values()))


def read_single(fn: Callable, shapes, arg_names: Sequence[str], dtypes=None, prefix: str = "c0_") -> StageProgram:
    """Legalize a one-op Relax function and read its PrimFunc (params named `arg_names`)."""
    return read_prim_func(single_prim_func(fn, shapes, dtypes), list(arg_names), prefix)


def run_prim_func(func: tvm.tirx.PrimFunc, inputs: Sequence[np.ndarray], target=LLVM) -> list[np.ndarray]:
    """Build a PrimFunc alone and run it on numpy inputs; returns its outputs (the remaining params)."""
    lib = tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), target=target)
    args = [tvm.runtime.tensor(np.array(a, copy=True, order="C")) for a in inputs]
    outs = [tvm.runtime.tensor(np.zeros([int(d) for d in p.ty.shape], str(p.ty.dtype)))
            for p in func.params[len(inputs):]]
    lib["main"](*args, *outs)
    return [o.numpy() for o in outs]


@functools.cache
def check_nvcc_compiles(source: str, path: Path) -> None:
    """When nvcc is on PATH, the CUDA source must compile for sm_90 (written to `path`)."""
    if shutil.which("nvcc"):
        path.write_text(source)
        result = nvcc_check(path, "sm_90")
        assert ": OK" in result, result


def suite_model(name: str, small: bool = True) -> onnx.ModelProto:
    """Built once per session (the full bert_embedding table is 94 MB); do not mutate."""
    return suite.get_case(name).build(small=small)


def suite_region(name: str, small: bool = True, target_kind: str = "llvm", seed: int = 0):
    """The one region that region selection forms for a suite case, with concrete data.

    Returns (stage_program, feed, expected): `feed` maps every region input (graph inputs and
    baked-in weights) to an array, `expected` maps the region output to the ONNX reference."""
    inputs = suite.make_inputs(suite.get_case(name), np.random.default_rng(seed), small=small)
    return model_region(suite_model(name, small), inputs, target_kind)


def _selected_region(model: onnx.ModelProto, target_kind: str):
    """The stage program of a one-region model's region and the selector that formed it."""
    from intelligen_tvm.relax_integration import RegionSelector, prepare

    mod = prepare(intelligen_tvm.from_onnx(model))
    selector = RegionSelector.for_block(mod, mod["main"], 0, target_kind)
    regions = [r for r in selector.select() if r.lowered is not None]
    assert len(regions) == 1, [r.ops for r in regions]
    return regions[0].lowered.stage_program, selector


def model_region(model: onnx.ModelProto, inputs: Sequence[np.ndarray], target_kind: str = "llvm"):
    """`suite_region` for any one-region model and its graph inputs."""
    from intelligen_tvm.testing import input_names, reference_outputs

    sp, selector = _selected_region(model, target_kind)
    by_name = dict(zip(input_names(model), inputs))
    feed = {}
    for n in sp.inputs:
        expr = selector.names.expr(n)
        if isinstance(expr, tvm.ir.GenericConst):
            feed[n] = expr.value.numpy()
        else:
            feed[n] = by_name[expr.name]
    (out,) = sp.outputs
    want = reference_outputs(model, inputs)[0]
    shape = sp.buffers[out].shape   # a symbolic extent is its hint here: keep the reference's own shape
    expected = {out: want if any(isinstance(d, SymInt) for d in shape) else want.reshape(shape)}
    return sp, feed, expected


def suite_region_stages(name: str, small: bool = True, target_kind: str = "llvm") -> StageProgram:
    """The stage program of suite_region, without data or reference (cheap at full shapes)."""
    return _selected_region(suite_model(name, small), target_kind)[0]


# ---- a numpy interpreter of stage programs: the meaning the TIR reader assigns ---------------

def eval_stage_program(sp: StageProgram, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run every stage with numpy, in the dtypes the stages declare; returns all buffers."""
    from intelligen_tvm.gir_lowering.naive import stage_out_index

    bufs: dict[str, np.ndarray] = {}
    for name, b in sp.buffers.items():
        bufs[name] = np.array(inputs[name]) if name in inputs else np.zeros(b.shape, b.dtype)
    for st in sp.stages:
        axes = [*st.spatial, *st.reduce]
        grids = np.meshgrid(*[np.arange(n) for _, n in axes], indexing="ij") if axes else []
        env = {name: g for (name, _), g in zip(axes, grids)}
        value = np.broadcast_to(eval_expr(st.value, env, bufs), tuple(n for _, n in axes))
        if st.reducer is not None:
            red_axes = tuple(range(len(st.spatial), len(axes)))
            fn, combine = {"sum": (np.sum, np.add), "max": (np.max, np.maximum),
                           "min": (np.min, np.minimum), "prod": (np.prod, np.multiply)}[st.reducer]
            value = combine(eval_expr(st.init, {}, bufs), fn(value, axis=red_axes))
        out_index = stage_out_index(st, sp)
        sp_env = {name: g for (name, _), g in zip(st.spatial, np.meshgrid(
            *[np.arange(n) for _, n in st.spatial], indexing="ij"))} if st.spatial else {}
        idx = tuple(np.asarray(eval_expr(i, sp_env, bufs)).astype(np.int64) for i in out_index)
        bufs[st.out][idx] = value
    return bufs


def chain_stages(fn: Callable, shapes, dtypes=None) -> tuple[StageProgram, dict[str, np.ndarray]]:
    """Every call of a legalized Relax function read into ONE stage program (no region
    selection): params keep their names, constants become inputs `constK`, the result is the
    only output.  Returns the program and the constants' values."""
    from intelligen_tvm.gir_lowering.tir_reader import concat_programs

    mod = legalized(fn, shapes, dtypes)
    consts: dict[str, np.ndarray] = {}
    parts, produced, inputs = [], set(), []
    bindings = list(mod["main"].body.blocks[0].bindings)
    for n, b in enumerate(bindings):
        call = b.value
        names = []
        for a in call.args[1].fields:
            if isinstance(a, tvm.ir.GenericConst):
                name = f"const{len(consts)}"
                consts[name] = a.value.numpy()
            else:
                name = a.name
            names.append(name)
            if name not in produced and name not in inputs:
                inputs.append(name)
        parts.append(read_prim_func(mod[call.args[0]], [*names, b.var.name], f"c{n}_"))
        produced.add(b.var.name)
    return concat_programs(parts, inputs, [bindings[-1].var.name]), consts


def detach_unnamed_metaschedule_handlers() -> None:
    """Call at the start of a test body that tunes with MetaSchedule. pytest leaves unnamed
    log-capture handlers on MetaSchedule's logger, and MetaSchedule's logging setup (run for every
    tuning) formats the names of the handlers already there: ``None.format`` fails."""
    import logging  # pylint: disable=import-outside-toplevel

    logger = logging.getLogger("tvm.s_tir.meta_schedule")
    for handler in [h for h in logger.handlers if h.get_name() is None]:
        logger.removeHandler(handler)


def onnx_node_cases(*modules: str) -> dict[str, object]:
    """ONNX backend node cases by name, of the case modules named (e.g. "div", "slice").

    onnx records a case when its module is first imported, keeping only the op type of the
    last `collect_testcases(op)` call: one filtered call would hide every other module's cases
    from the rest of the process.  So every test imports the modules it needs here, unfiltered."""
    import importlib
    import warnings

    from onnx.backend.test.case import node

    node._TargetOpType = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the exports cast inf/nan on purpose
        np_err = np.seterr(all="ignore")
        try:
            for module in modules:
                importlib.import_module(f"onnx.backend.test.case.node.{module}")
        finally:
            np.seterr(**np_err)
    return {c.name: c for c in node._NodeTestCases}


def recording(chooser: Callable, chosen: list) -> Callable:
    """`chooser` as a region chooser that also appends each chosen strategy (as records store it)."""
    from intelligen_tvm.tuning import strategy_key

    def choose(kernel, shell, hw):
        planned = chooser(kernel, shell, hw)
        chosen.append(strategy_key(planned.strategy))
        return planned
    return choose
