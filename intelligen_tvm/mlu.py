"""The Cambricon MLU external codegen: `partition_for_mlu` and `relax.ext.intelligen_mlu`
(the Relax side of the BANG backend in targets/bang/: region selection, then BANG C per region).

    mod = intelligen_tvm.mlu.partition_for_mlu(mod)   # annotate the regions taken
    mod = tvm.relax.transform.RunCodegen()(mod)        # BANG C per region
    mod.attrs["external_mods"][0].inspect_source()

`partition_for_mlu(mod)` runs the same region selection as the "intelligen" pipeline (trial
merges need an NRAM row layout); a final region is taken when the BANG renderer can emit all
of it and some tile fits NRAM, else it stays whole with TVM, with the reason.
Each taken region becomes a Relax function with the `Codegen` attribute, its `global_symbol`,
the BANG C of the plan chosen for it (attribute `intelligen_mlu.source`) and the PrimFuncs its
calls use (attribute `intelligen_mlu.prim_funcs`, so that `emit_function` can plan the region
again from the function alone).
`relax.transform.RunCodegen()` then calls `relax.ext.intelligen_mlu`, which compiles each
function's source with `cncc` when that is on PATH, else returns the source in a runtime
module (`inspect_source()` shows it).  Regions not taken stay with TVM.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import tvm
import tvm_ffi
from tvm import relax

from .region import Chooser
from .relax_integration import Region, RegionSelector, apply_regions, prepare
from .targets.bang.plan import TARGET_KIND, Emitted, choose_mlu, emit, trial_mlu

CODEGEN = "intelligen_mlu"
PRIM_FUNCS_ATTR = "intelligen_mlu.prim_funcs"
SOURCE_ATTR = "intelligen_mlu.source"   # the BANG C of the plan chosen at partition time
CNCC_ARCH = "mtp_592"   # MLU590


def _region_function(bb: relax.BlockBuilder, symbol: str, region: Region, args: list, out_vars: list) -> relax.Function:
    """The region's call_tir bindings as a function of the region inputs (constants become
    parameters: the kernel reads every input from GDRAM)."""
    params = [relax.Var(f"in{i}", a.ty) for i, a in enumerate(args)]
    mapping = {a.__hash__(): p for a, p in zip(args, params)}
    outputs = {v.__hash__() for v in out_vars}
    bindings = []
    mod = bb.get()
    for call in region.calls:
        new_args = [mapping.get(a.__hash__(), a) for a in call.args]
        var_type = relax.Var if call.var.__hash__() in outputs else relax.DataflowVar
        var = var_type(call.var.name, call.var.ty)
        gvar = mod.get_global_var(call.func_name)
        bindings.append(relax.VarBinding(var, relax.call_tir(gvar, relax.Tuple(new_args), call.var.ty)))
        mapping[call.var.__hash__()] = var
    results = [mapping[v.__hash__()] for v in out_vars]
    ret = results[0] if len(results) == 1 else relax.Tuple(results)
    ret_ty = ret.ty if len(results) == 1 else relax.TupleType([r.ty for r in results])
    kernels = {c.func_name: mod[c.func_name] for c in region.calls}
    func = relax.Function(params, relax.SeqExpr([relax.DataflowBlock(bindings)], ret), ret_ty, True)
    source = emit(region.lowered.optimized, symbol).source
    return func.with_attrs({"Codegen": CODEGEN, "global_symbol": symbol, PRIM_FUNCS_ATTR: kernels,
                            SOURCE_ATTR: source})


def _call_codegen_function(bb: relax.BlockBuilder, name: str, region: Region, args: list, out_vars: list):
    gvar = bb.add_func(_region_function(bb, name, region, args, out_vars), name)
    return relax.Call(gvar, args)


def _partition(mod: tvm.IRModule) -> tuple[tvm.IRModule, list[dict]]:
    mod, reports = apply_regions(prepare(mod), TARGET_KIND, choose_mlu, _call_codegen_function, trial_mlu)
    for r in reports:
        if r["handled_by"] == "intelligen":
            r["handled_by"] = CODEGEN
    return mod, reports


def partition_for_mlu(mod: tvm.IRModule) -> tvm.IRModule:
    """Legalize `mod` and annotate the regions the MLU codegen takes (`Codegen` functions);
    `relax.transform.RunCodegen()` then emits their BANG C."""
    return _partition(mod)[0]


def explain_mlu(mod: tvm.IRModule) -> dict:
    """Which regions the MLU codegen takes, and why the others are left to TVM."""
    return {"target": CODEGEN, "regions": _partition(mod)[1]}


def emit_function(func: relax.Function, choose: Chooser = choose_mlu) -> Emitted:
    """BANG C of an annotated region function planned again with `choose` (its call_tir
    bindings are the region: no selection runs), e.g. to emit every MLU candidate.  The
    codegen itself compiles the source chosen at partition time (`SOURCE_ATTR`)."""
    symbol = str(func.attrs["global_symbol"])
    kernels = func.attrs[PRIM_FUNCS_ATTR]
    main = relax.Function(func.params, func.body, func.ret_ty, True)
    gvars = {b.value.args[0].name_hint: b.value.args[0] for b in main.body.blocks[0].bindings}
    mod = tvm.IRModule({**{gvars[n]: kernels[n] for n in gvars}, tvm.ir.GlobalVar("main"): main})
    selector = RegionSelector.for_block(mod, main, 0, TARGET_KIND, trial_mlu)
    calls = [selector.sites[i] for i in sorted(selector.sites)]
    lowered = selector.try_lower(calls, symbol, choose)
    order = [a.__hash__() for a in selector.region_io(calls)[0]]
    if order != [p.__hash__() for p in func.params]:
        raise ValueError(f"{symbol}: kernel inputs are not in parameter order")
    return emit(lowered.optimized, symbol)


def compile_source(source: str, symbol: str) -> tvm.runtime.Module:
    """cncc's object in a static-library module when cncc is on PATH, else the source."""
    cncc = shutil.which("cncc")
    if cncc is None:
        return tvm.get_global_func("runtime.SourceModuleCreate")(source, "bang")
    work = tempfile.mkdtemp(prefix="intelligen_mlu_")
    src, obj = os.path.join(work, f"{symbol}.mlu"), os.path.join(work, f"{symbol}.o")
    with open(src, "w") as f:
        f.write(source)
    subprocess.run([cncc, "-c", "-O3", f"--bang-mlu-arch={CNCC_ARCH}", src, "-o", obj],
                   check=True, capture_output=True, text=True)
    return tvm.runtime.load_static_library(obj, [symbol])


@tvm_ffi.register_global_func(f"relax.ext.{CODEGEN}")
def _codegen(funcs, options, constant_names) -> list:
    """Called by RunCodegen with every function annotated `Codegen: intelligen_mlu`."""
    del options, constant_names   # parameters carry every input, constants included
    return [compile_source(str(f.attrs[SOURCE_ATTR]), str(f.attrs["global_symbol"])) for f in funcs]
