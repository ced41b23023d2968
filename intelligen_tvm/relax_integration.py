"""Region selection in Relax and the `relax_pipeline="intelligen"` entry point.

After LegalizeOps every op is a `call_tir`.  We group maximal memory-intensive regions:
a call joins a producer's region when the merged region still lowers to ONE kernel
(same region space, every intermediate forwarded on chip) and stays convex.  Unlike
FuseOps, several reductions in a chain (softmax, decomposed LayerNorm) become one region.
Each taken region is replaced by one call to the kernel we emit; everything else goes
through TVM's default pipeline (FuseOps, FuseTIR, DLight on GPUs).

A region we cannot take falls back for one of two reasons.  `Unsupported` is by design
(an op without a GIR lowering, a compute-bound op).  Any other exception while lowering is
an internal error, a bug of ours: the region still falls back (a bug must never break the
user's build), but it is reported as such, with the exception and where it was raised,
and warned about as `IntelliGenInternalError` (raised instead with INTELLIGEN_STRICT=1;
the test suite turns the warning into an error).  Trial merges of region selection that
hit an internal error are recorded in the report of the region the call ended up in.
"""

from __future__ import annotations

import ast
import contextlib
import os
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import tvm
from tvm import relax

from . import targets
from .gir import expr as E
from .gir.errors import Unsupported
from .gir.program import numel
from .gir.symbolic import is_symbolic
from .gir_lowering.tir_reader import Stage, StageProgram, concat_programs, read_prim_func
from .host_constants import fold_constants_on_host
from .region import (Chooser, LoweredRegion, RewrittenRegion, default_choice, plan_rewritten, render_region,
                     repeats_worked_out_once, rewrite_region, shipped_choice)

_CALL_TIR = tvm.ir.Op.get("relax.call_tir")
# A stage iterating more than this many times the elements of its largest tensor is
# compute-bound (matmul, conv): those stay with TVM.
MAX_ITERATIONS_PER_ELEMENT = 8


STRICT_ENV = "INTELLIGEN_STRICT"
_PACKAGE_DIR = Path(__file__).resolve().parent


class IntelliGenInternalError(UserWarning):
    """A bug of ours while lowering a region: the region fell back to TVM (see the report)."""


@dataclass(frozen=True)
class InternalError:
    """An exception other than `Unsupported` raised while lowering `ops`."""

    ops: tuple[str, ...]
    during: str                 # "trial merge" (of region selection), "planning" or "rendering"
    type: str
    message: str
    where: str                  # innermost frame inside intelligen_tvm: path:line (function)
    exception: BaseException = field(compare=False, repr=False)

    @classmethod
    def of(cls, err: BaseException, ops: list[str], during: str) -> "InternalError":
        frames = traceback.extract_tb(err.__traceback__)
        ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(_PACKAGE_DIR)]
        frame = (ours or frames)[-1] if frames else None
        where = "?" if frame is None else \
            f"{_relative(frame.filename)}:{frame.lineno} ({frame.name})"
        return cls(tuple(ops), during, type(err).__name__, str(err).strip(), where, err)

    def as_dict(self) -> dict:
        return {"ops": list(self.ops), "during": self.during, "type": self.type,
                "message": self.message, "where": self.where}

    def text(self) -> str:
        first_line = self.message.splitlines()[0] if self.message else ""
        return f"{self.type}: {first_line} (during {self.during} of {'+'.join(self.ops)}, at {self.where})"


def _relative(filename: str) -> str:
    path = Path(filename).resolve()
    root = _PACKAGE_DIR.parent
    return str(path.relative_to(root)) if path.is_relative_to(root) else filename


class LoweringBug(Exception):
    """Raised by `RegionSelector.try_lower` for an internal error (carries its record)."""

    def __init__(self, record: InternalError):
        super().__init__(record.text())
        self.record = record


@contextlib.contextmanager
def _bugs_as_lowering_bugs(calls: list[CallSite], during: str):
    """An exception other than `Unsupported` inside the block is a bug of ours: it must cost
    speed, never the user's build, so it leaves as a `LoweringBug` with its record."""
    try:
        yield
    except Unsupported:
        raise
    except Exception as err:
        raise LoweringBug(InternalError.of(err, [c.func_name for c in calls], during)) from err


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def warn_internal_errors(name: str, ops: list[str], errors: list[InternalError], fell_back: bool) -> None:
    """Warn (or raise, with INTELLIGEN_STRICT=1) about the internal errors of one region."""
    if not errors:
        return
    outcome = "fell back to TVM" if fell_back else "was taken smaller than it should be"
    text = (f"intelligen internal error in {name} ({'+'.join(ops)}), which {outcome}: "
            + "; ".join(e.text() for e in errors))
    if strict():
        raise IntelliGenInternalError(text) from errors[0].exception
    warnings.warn(text, IntelliGenInternalError, stacklevel=2)


@dataclass
class CallSite:
    index: int                 # position in the dataflow block
    var: relax.Var
    func_name: str
    prim_func: tvm.tirx.PrimFunc
    args: list                 # relax expressions


@dataclass
class Region:
    calls: list[CallSite]
    lowered: LoweredRegion | None = None
    reason: str = ""
    outputs: list = field(default_factory=list)
    failure: InternalError | None = None          # why it fell back, when that is a bug of ours
    trial_errors: list[InternalError] = field(default_factory=list)   # failed merges into it

    @property
    def internal_errors(self) -> list[InternalError]:
        return self.trial_errors + ([self.failure] if self.failure else [])

    def fail(self, err: Unsupported | LoweringBug) -> None:
        self.lowered, self.reason = None, str(err)
        self.failure = err.record if isinstance(err, LoweringBug) else None

    @property
    def ops(self) -> list[str]:
        return [c.func_name for c in self.calls]


def _call_site(index: int, binding, mod: tvm.IRModule) -> CallSite | None:
    value = binding.value
    if not (isinstance(value, relax.Call) and value.op.same_as(_CALL_TIR)):
        return None
    if len(value.args) != 2 or not isinstance(value.args[1], relax.Tuple):
        return None
    gvar = value.args[0]
    func = mod[gvar]
    if not isinstance(func, tvm.tirx.PrimFunc):
        return None
    return CallSite(index, binding.var, gvar.name_hint, func, list(value.args[1].fields))


def compute_bound_reason(stages: StageProgram) -> str | None:
    """Why a region is compute-bound and stays with TVM (None if it is not)."""
    for st in stages.stages:
        if is_contraction(st):
            return "a contraction (matmul/conv): compute-bound; left to TVM"
    biggest = max(numel(b.shape) for b in stages.buffers.values())
    for st in stages.stages:
        domain = numel([e for _, e in (*st.spatial, *st.reduce)])
        if domain > MAX_ITERATIONS_PER_ELEMENT * biggest:
            return "compute-intensive (iterates many times per element); left to TVM"
    return None


def is_contraction(stage: Stage) -> bool:
    """A sum of a product of two different tensors that both vary along the reduced axes:
    matmul, batch matmul and every convolution (1x1, depthwise, grouped), whatever the
    extents.  A sum of squares (one tensor twice) or a scaled sum (the factor is constant
    along the row) is not one."""
    if stage.reducer != "sum" or not stage.reduce:
        return False
    reduced = {name for name, _ in stage.reduce}
    tensors = set()
    for factor in _factors(stage.value):
        varying = frozenset(ld.buffer for ld in E.loads(factor) if E.free_vars(ld) & reduced)
        if varying:
            tensors.add(varying)
    return len(tensors) >= 2


def _factors(value: E.Expr) -> list[E.Expr]:
    """The factors of a product, through casts (mixed-precision matmuls cast each operand)."""
    if isinstance(value, E.Call) and value.op == "cast":
        return _factors(value.args[0])
    if isinstance(value, E.Call) and value.op == "mul":
        return [f for a in value.args for f in _factors(a)]
    return [value]


class _Names:
    """Stable, unique tensor names for relax expressions (vars and constants)."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}
        self._exprs: dict[str, object] = {}

    def __call__(self, expr) -> str:
        key = expr.__hash__()
        if key not in self._names:
            name = f"t{len(self._names)}"
            self._names[key] = name
            self._exprs[name] = expr
        return self._names[key]

    def expr(self, name: str):
        return self._exprs[name]


class RegionSelector:
    """Groups the call_tir bindings of one dataflow block into regions."""

    def __init__(self, bindings: list, mod: tvm.IRModule, outside_uses: set[int], target,
                 trial_choose: Chooser = default_choice, hints: Mapping[str, int] | None = None,
                 plans: dict | None = None):
        self.target = targets.as_target(target)
        self.trial_choose = trial_choose   # plans trial merges: a target may refuse what it cannot emit
        self.hints = dict(hints or {})     # representative sizes of symbolic dimensions
        self.names = _Names()
        self.sites = {i: s for i, b in enumerate(bindings) if (s := _call_site(i, b, mod)) is not None}
        self.users: dict[int, set[int]] = {}
        self.var_index = {b.var.__hash__(): i for i, b in enumerate(bindings)}
        self.reads = [_used_vars(b.value) for b in bindings]   # var hashes each binding reads
        for i, read in enumerate(self.reads):
            for used in read:
                if used in self.var_index:
                    self.users.setdefault(self.var_index[used], set()).add(i)
        self.outside_uses = outside_uses   # hashes of vars used after the block
        # plans by (call-set structure, chooser), each structure's rewritten region by
        # (structure, None): shared by the selectors of one compilation
        self._plans: dict[tuple, LoweredRegion | Unsupported | LoweringBug] = {} if plans is None else plans
        self._type_keys: dict[int, tuple] = {}

    @classmethod
    def for_block(cls, mod: tvm.IRModule, func: relax.Function, block_index: int, target,
                  trial_choose: Chooser = default_choice) -> RegionSelector:
        """The selector of `func`'s dataflow block `block_index` (`func` being in `mod`, or
        standing for a function of it: its calls' PrimFuncs are looked up in `mod`)."""
        block = func.body.blocks[block_index]
        return cls(list(block.bindings), mod, _outside_uses(func, block_index), target, trial_choose)

    def _used_outside(self, call: CallSite, members: set[int]) -> bool:
        return any(u not in members for u in self.users.get(call.index, ())) \
            or call.var.__hash__() in self.outside_uses

    def region_io(self, calls: list[CallSite]) -> tuple[list, list]:
        """The call set's inputs (what it reads and does not produce, in order of first use)
        and outputs (results used after it, in call order): the kernel's parameters."""
        produced = {c.var.__hash__() for c in calls}
        members = {c.index for c in calls}
        inputs, seen = [], set()
        for c in calls:
            for a in c.args:
                if a.__hash__() not in produced and a.__hash__() not in seen:
                    seen.add(a.__hash__())
                    inputs.append(a)
        return inputs, [c.var for c in calls if self._used_outside(c, members)]

    def _type_key(self, expr) -> tuple:
        key = self._type_keys.get(expr.__hash__())
        if key is None:
            ty = expr.ty
            if isinstance(ty, relax.TensorType) and ty.shape is not None:
                dims = tuple(int(d) if isinstance(d, tvm.tirx.IntImm) else str(d) for d in ty.shape.values)
                key = (str(ty.dtype), dims)
            else:
                key = (str(ty),)
            self._type_keys[expr.__hash__()] = key
        return key

    def structure(self, calls: list[CallSite]) -> tuple:
        """The call set up to the names of its tensors: each call's PrimFunc, where each
        argument comes from (a call of the set, or the n-th input), every tensor type, and
        which results are used after the set.  The layers of a model repeat their call sets;
        two call sets of one structure have one plan, up to tensor names."""
        position = {c.var.__hash__(): n for n, c in enumerate(calls)}
        inputs: dict[int, int] = {}
        members = {c.index for c in calls}
        key = []
        for c in calls:
            args = tuple(("call", position[a.__hash__()]) if a.__hash__() in position
                         else ("input", inputs.setdefault(a.__hash__(), len(inputs)), self._type_key(a))
                         for a in c.args)
            key.append((c.func_name, args, self._type_key(c.var), self._used_outside(c, members)))
        return tuple(key)

    def _stages(self, calls: list[CallSite]) -> StageProgram:
        _check_symbols_unique([e for c in calls for e in (*c.args, c.var)])
        parts = []
        for n, c in enumerate(calls):
            if not isinstance(c.var.ty, relax.TensorType):
                raise Unsupported("call with a tuple result")
            names = [self.names(a) for a in c.args] + [self.names(c.var)]
            parts.append(read_prim_func(c.prim_func, names, f"c{n}_", self.hints))
        inputs, outputs = self.region_io(calls)
        return concat_programs(parts, [self.names(a) for a in inputs], [self.names(v) for v in outputs])

    def plan(self, calls: list[CallSite], choose: Chooser | None = None) -> LoweredRegion:
        """The call set planned as one region, nothing rendered; raises `Unsupported` (by
        design) or `LoweringBug` (ours).  Trial merges and the final lowering share one plan
        per call-set structure and chooser, planned from one rewritten region per structure:
        that of the first call set of a structure, whose tensor names are its own
        (`region_io` gives any call set's parameters)."""
        structure = self.structure(calls)
        choose = choose or self.trial_choose
        return self._shared((structure, choose), lambda: self._plan(self._rewritten(calls, structure), calls, choose))

    def _rewritten(self, calls: list[CallSite], structure: tuple) -> RewrittenRegion:
        return self._shared((structure, None), lambda: self._rewrite(calls))

    def _shared(self, key: tuple, work: Callable[[], object]):
        """`work()` once per key for the compilation, its `Unsupported` or `LoweringBug` too."""
        if key not in self._plans:
            try:
                self._plans[key] = work()
            except (Unsupported, LoweringBug) as err:
                self._plans[key] = err
        found = self._plans[key]
        if isinstance(found, (Unsupported, LoweringBug)):
            raise found
        return found

    def _rewrite(self, calls: list[CallSite]) -> RewrittenRegion:
        with _bugs_as_lowering_bugs(calls, "planning"):
            stages = self._stages(calls)
            reason = compute_bound_reason(stages)
            if reason:
                raise Unsupported(reason)
            if len(calls) == 1 and relax.analysis.has_reshape_pattern(calls[0].prim_func):
                raise Unsupported("a lone reshape: TVM turns it into a zero-copy view")
            return rewrite_region(stages, "region", self.target)

    def _plan(self, rewritten: RewrittenRegion, calls: list[CallSite], choose: Chooser) -> LoweredRegion:
        with _bugs_as_lowering_bugs(calls, "planning"):
            return plan_rewritten(rewritten, self.target, choose)

    def try_lower(self, calls: list[CallSite], name: str, choose: Chooser | None = None) -> LoweredRegion:
        """The region planned (see `plan`) and rendered once, under its final name."""
        planned = self.plan(calls, choose)
        with _bugs_as_lowering_bugs(calls, "rendering"):
            return render_region(planned, name, self.target)

    def _is_convex(self, group: set[int]) -> bool:
        """No path leaves the group and comes back (that would need the group to run twice)."""
        tainted: set[int] = set()   # outside bindings that depend on a member
        for i in range(min(group), max(group) + 1):
            deps = {self.var_index[v] for v in self.reads[i] if v in self.var_index}
            if i in group:
                if deps & tainted:
                    return False
            elif deps & (group | tainted):
                tainted.add(i)
        return True

    def _merge_into_producers(self, producers: list[Region], site: CallSite, owner: dict,
                              errors: list[InternalError]) -> bool:
        """Join all producer regions and the call into one region if that still lowers;
        otherwise join the latest producer region that accepts it.  Merges that fail with
        an internal error are appended to `errors` (and recorded on the region taking the
        call)."""
        options = [producers] if len(producers) > 1 else []
        options += [[r] for r in sorted(producers, key=lambda r: -r.calls[-1].index)]
        for chosen in options:
            calls = sorted((c for r in chosen for c in r.calls), key=lambda c: c.index)
            if not self._is_convex({c.index for c in calls} | {site.index}):
                continue
            try:
                lowered = self.plan(calls + [site])
            except Unsupported:
                continue
            except LoweringBug as bug:
                errors.append(replace(bug.record, during="trial merge"))
                continue
            keep, rest = chosen[0], chosen[1:]
            keep.calls, keep.lowered, keep.reason = calls + [site], lowered, ""
            for r in rest:
                keep.trial_errors += r.trial_errors
                r.calls, r.trial_errors = [], []
            keep.trial_errors += errors
            for c in keep.calls:
                owner[c.index] = keep
            return True
        return False

    def select(self) -> list[Region]:
        regions: list[Region] = []
        owner: dict[int, Region] = {}
        for i in sorted(self.sites):
            site = self.sites[i]
            producers = []
            for v in self.reads[i]:
                j = self.var_index.get(v)
                if j in owner and owner[j] not in producers:
                    producers.append(owner[j])
            errors: list[InternalError] = []
            if self._merge_into_producers(producers, site, owner, errors):
                continue
            region = Region([site], trial_errors=errors)
            try:
                region.lowered = self.plan([site])
            except (Unsupported, LoweringBug) as err:
                region.fail(err)
            regions.append(region)
            owner[i] = region
        return [r for r in regions if r.calls]


def _check_symbols_unique(exprs: list) -> None:
    """The kernels of a region match symbols by name: a name must stand for one Relax
    shape variable across the region's tensors."""
    seen: dict[str, object] = {}
    for e in exprs:
        shape = getattr(e.ty, "shape", None) if isinstance(e.ty, relax.TensorType) else None
        for dim in getattr(shape, "values", None) or ():
            for v in tvm.tirx.analysis.undefined_vars(dim) if not isinstance(dim, tvm.tirx.IntImm) else ():
                if not seen.setdefault(v.name, v).same_as(v):
                    raise Unsupported(f"symbolic shape: two different symbols named {v.name}")


def _used_vars(expr) -> list[int]:
    """Hashes of the relax Vars an expression reads."""
    found: list[int] = []

    def visit(e):
        if isinstance(e, relax.Var):
            found.append(e.__hash__())

    relax.analysis.post_order_visit(expr, visit)
    return found


def _final_lower(selector: RegionSelector, region: Region, name: str, choose: Chooser) -> None:
    """Render the region under its name, planned with the final chooser."""
    try:
        region.lowered = selector.try_lower(region.calls, name, choose)
    except (Unsupported, LoweringBug) as err:
        region.fail(err)


# Builds the call that replaces a taken region: (builder, name, region, input exprs, output vars) -> call.
RegionCall = Callable[[relax.BlockBuilder, str, Region, list, list], relax.Expr]


def call_prim_func(bb: relax.BlockBuilder, name: str, region: Region, args: list, out_vars: list) -> relax.Expr:
    """The region's kernel joins the module as a PrimFunc, called with call_tir."""
    gvar = bb.add_func(region.lowered.prim_func, name)
    out_ty = [v.ty for v in out_vars]
    return relax.call_tir(gvar, relax.Tuple(args), out_ty if len(out_ty) > 1 else out_ty[0])


def _rewrite_block(block: relax.DataflowBlock, bb: relax.BlockBuilder, outside: set[int], target,
                   counter: list[int], reports: list[dict], choose: Chooser,
                   make_call: RegionCall, trial_choose: Chooser, hints: Mapping[str, int],
                   plans: dict) -> relax.DataflowBlock:
    bindings = list(block.bindings)
    selector = RegionSelector(bindings, bb.get(), outside, target, trial_choose, hints, plans)
    regions = selector.select()
    replace_at: dict[int, list] = {}
    drop: set[int] = set()
    for region in regions:
        name = f"intelligen_region{counter[0]}"
        counter[0] += 1
        if region.lowered is not None:
            _final_lower(selector, region, name, choose)
        reports.append(region_report(name, region))
        warn_internal_errors(name, region.ops, region.internal_errors, region.lowered is None)
        if region.lowered is None:
            continue
        args, out_vars = selector.region_io(region.calls)
        call = make_call(bb, name, region, args, out_vars)
        last = region.calls[-1].index
        drop |= {c.index for c in region.calls}
        if len(out_vars) == 1:
            replace_at[last] = [relax.VarBinding(out_vars[0], call)]
        else:
            tup = relax.DataflowVar(f"{name}_out", relax.TupleType([v.ty for v in out_vars]))
            replace_at[last] = [relax.VarBinding(tup, call)] + [
                relax.VarBinding(v, relax.TupleGetItem(tup, k)) for k, v in enumerate(out_vars)]
    new_bindings = []
    for i, b in enumerate(bindings):
        if i in replace_at:
            new_bindings += replace_at[i]
        elif i not in drop:
            new_bindings.append(b)
    return relax.DataflowBlock(_topological(new_bindings))


def _topological(bindings: list) -> list:
    """Stable topological order: a region call sits where its last member was, so a binding
    that used an earlier member's result may now come before it; move such bindings down."""
    defined_here = {b.var.__hash__() for b in bindings}
    done: set[int] = set()
    pending = list(bindings)
    ordered = []
    while pending:
        for k, b in enumerate(pending):
            needs = {v for v in _used_vars(b.value) if v in defined_here}
            if needs <= done:
                ordered.append(b)
                done.add(b.var.__hash__())
                del pending[k]
                break
        else:
            raise Unsupported("region rewrite produced a cycle")
    return ordered


def region_report(name: str, region: Region) -> dict:
    """`fallback` says why a region was not taken: "unsupported" (by design, see `reason`)
    or "internal_error" (a bug of ours); `internal_errors` lists every internal error met
    on the region, failed trial merges of a taken region included."""
    errors = [e.as_dict() for e in region.internal_errors]
    if region.lowered is None:
        return {"name": name, "ops": region.ops, "handled_by": "fallback", "reason": region.reason,
                "fallback": "internal_error" if region.failure else "unsupported",
                "internal_errors": errors,
                "dram_bytes_ideal": None, "dram_bytes_naive": None, "dram_bytes_planned": None,
                "kernels": len(region.calls), "strategy": None, "fingerprint": None}
    lw = region.lowered
    counts = {"ideal": lw.dram_bytes_ideal, "naive": lw.dram_bytes_naive, "planned": lw.dram_bytes_planned}
    report = {
        "name": name, "ops": region.ops, "handled_by": "intelligen", "fallback": None,
        "internal_errors": errors,
        **{f"dram_bytes_{k}": int(v) for k, v in counts.items()}, "kernels": len(lw.optimized.kernels),
        "strategy": {k: int(v) if is_symbolic(v) else v for k, v in lw.kernel.strategy.describe().items()},
        "fingerprint": lw.fingerprint,
    }
    if lw.symbols:   # bytes and groups above are at these sizes; the formulas hold for every size
        report["symbols"] = lw.symbols
        report["dram_bytes_formula"] = {k: _formula(v) for k, v in counts.items()}
        report["groups_formula"] = str(lw.kernel.strategy.groups)
    return report


def _formula(count: int) -> str:
    """A byte count as a polynomial of its symbols, in one canonical form (the expression is
    read with ast, never evaluated); anything but + - * of symbols and ints is shown as built."""

    def poly(node) -> dict[tuple[str, ...], int]:
        if isinstance(node, ast.Name):
            return {(node.id,): 1}
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return {(): node.value} if node.value else {}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return {m: -c for m, c in poly(node.operand).items()}
        if not isinstance(node, ast.BinOp) or type(node.op) not in (ast.Add, ast.Sub, ast.Mult):
            raise ValueError("not a polynomial")
        a, b = poly(node.left), poly(node.right)
        if isinstance(node.op, ast.Mult):
            terms = [(tuple(sorted(ma + mb)), ca * cb) for ma, ca in a.items() for mb, cb in b.items()]
        else:
            sign = -1 if isinstance(node.op, ast.Sub) else 1
            terms = list(a.items()) + [(m, sign * c) for m, c in b.items()]
        out: dict[tuple[str, ...], int] = {}
        for m, c in terms:
            out[m] = out.get(m, 0) + c
        return {m: c for m, c in out.items() if c}

    try:
        terms = poly(ast.parse(str(count), mode="eval").body)
    except ValueError:
        return str(count)
    ordered = sorted(terms.items(), key=lambda t: (-len(t[0]), t[0]))
    text = " + ".join(" * ".join([*m, str(c)] if c != 1 or not m else m) for m, c in ordered)
    return text.replace("+ -", "- ") or "0"


def _outside_uses(func: relax.Function, block_index: int) -> set[int]:
    """Vars of dataflow block `block_index` that are used after it (its outputs)."""
    body = func.body
    uses: set[int] = set(_used_vars(body.body))
    for k, blk in enumerate(body.blocks):
        if k == block_index:
            continue
        for b in blk.bindings:
            uses |= set(_used_vars(b.value))
    return uses


def apply_regions(mod: tvm.IRModule, target, choose: Chooser = shipped_choice,
                  make_call: RegionCall = call_prim_func,
                  trial_choose: Chooser = default_choice,
                  hints: Mapping[str, int] | None = None) -> tuple[tvm.IRModule, list[dict]]:
    """Replace memory-intensive regions of every Relax function; returns the report too.

    `make_call` builds each taken region's replacement (by default a call_tir of its kernel,
    added to a copy of `mod`; an external codegen builds a call of an annotated function).
    `trial_choose` plans the trial merges of region selection.  `hints` are the sizes a
    symbolic dimension is planned (and its bytes are reported) at, by symbol name.  A region
    repeated up to names (the layers of a model) is planned once (one plan per call-set
    structure) and built once (`repeats_worked_out_once`)."""
    bb = relax.BlockBuilder(mod)
    reports: list[dict] = []
    counter = [0]
    updates: dict = {}
    plans: dict = {}   # one plan per call-set structure, for every block
    with repeats_worked_out_once():
        for gvar, func in mod.functions.items():
            if not isinstance(func, relax.Function) or not isinstance(func.body, relax.SeqExpr):
                continue
            blocks = []
            for k, blk in enumerate(func.body.blocks):
                if isinstance(blk, relax.DataflowBlock):
                    blk = _rewrite_block(blk, bb, _outside_uses(func, k), target, counter, reports, choose,
                                         make_call, trial_choose, hints or {}, plans)
                blocks.append(blk)
            new_body = relax.SeqExpr(blocks, func.body.body)
            updates[gvar] = relax.Function(func.params, new_body, func.ret_ty, func.is_pure, func.attrs)
    for gvar, func in updates.items():
        bb.update_func(gvar, func)
    mod = relax.transform.DeadCodeElimination()(bb.get())
    return mod, reports


def _preparation_passes() -> list:
    """What runs before region selection, in the pipeline and in explain() alike.

    A weight transpose feeding a matmul (every PyTorch Linear) becomes a matmul that reads the
    weight as stored (FuseTransposeMatmul; dead code elimination drops the pattern functions
    it leaves behind): no transpose at run time, and no transposed copy of the weights to
    fold.  The rest of what is constant is evaluated on the host; FoldConstant, which builds
    each call it folds, catches what the host table does not cover."""
    return [relax.transform.FuseTransposeMatmul(), relax.transform.DeadCodeElimination(),
            fold_constants_on_host, relax.backend.DispatchSampling(), relax.backend.DispatchSortScan(),
            relax.transform.LegalizeOps(), relax.transform.AnnotateTIROpPattern(),
            relax.transform.FoldConstant()]


def prepare(mod: tvm.IRModule) -> tvm.IRModule:
    """`mod` as region selection sees it: legalized, every op a call_tir."""
    return tvm.transform.Sequential(_preparation_passes())(mod)


def intelligen_regions_pass(target: tvm.target.Target, choose: Chooser = shipped_choice,
                            hints: Mapping[str, int] | None = None) -> tvm.transform.Pass:
    @tvm.transform.module_pass(opt_level=0, name="IntelliGenRegions")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        try:
            return apply_regions(mod, target, choose, hints=hints)[0]
        except IntelliGenInternalError:
            raise   # raised by strict mode, or by a warnings filter that makes it an error
        except Exception as err:  # a bug outside any one region: the whole module goes to TVM
            record = InternalError.of(err, [], "region rewrite")
            warn_internal_errors("region rewriting", ["the whole module"], [record], fell_back=True)
            return mod

    return _pass


def explain(mod: tvm.IRModule, target, choose: Chooser = shipped_choice,
            symbol_hints: Mapping[str, int] | None = None) -> dict:
    """JSON-serializable region report for `mod` compiled for `target`.

    A target kind we do not render (vulkan, opencl, c, ...) is left to TVM: every call is
    reported as a fallback region with the reason, with a warning.  Byte counts of a region
    with symbolic dimensions are evaluated at `symbol_hints` (DEFAULT_HINT for a symbol not
    named), the sizes its plan was chosen for; the region's `symbols` says which, and
    `dram_bytes_formula` gives the counts as expressions of the symbols."""
    target = targets.as_target(target)
    with target:
        prepared = prepare(mod)
        if not targets.renders_tir(target.kind.name):
            warnings.warn(unsupported_target_message(target), stacklevel=2)
            return {"target": str(target.kind.name), "regions": _unsupported_reports(prepared, target)}
        _, reports = apply_regions(prepared, target, choose, hints=symbol_hints)
    return {"target": str(target.kind.name), "regions": reports}


def unsupported_target_message(target: tvm.target.Target) -> str:
    return (f"intelligen: target kind {target.kind.name!r} not supported (intelligen renders "
            f"{', '.join(sorted(targets.DIALECTS))}); the module goes through TVM's own pipeline")


def _unsupported_reports(mod: tvm.IRModule, target: tvm.target.Target) -> list[dict]:
    """One fallback report per call_tir: nothing is taken on a target we do not render."""
    reason = f"target not supported: {target.kind.name} (intelligen renders {', '.join(sorted(targets.DIALECTS))})"
    reports = []
    for func in mod.functions.values():
        if not isinstance(func, relax.Function) or not isinstance(func.body, relax.SeqExpr):
            continue
        for blk in func.body.blocks:
            for i, binding in enumerate(blk.bindings):
                site = _call_site(i, binding, mod)
                if site is not None:
                    reports.append(region_report(f"intelligen_region{len(reports)}", Region([site], reason=reason)))
    return reports


def _tvm_pipeline(target: tvm.target.Target) -> tvm.transform.Pass:
    """What `tvm.compile(..., relax_pipeline="default")` runs for this target."""
    from tvm.relax import pipeline as rp

    if "gpu" in target.keys:
        try:
            return rp.get_default_pipeline(target)
        except (ValueError, AttributeError):
            pass
    return rp.default_build_pipeline()


def intelligen_pipeline(choose: Chooser = shipped_choice,
                        symbol_hints: Mapping[str, int] | None = None) -> tvm.transform.Pass:
    """The relax pipeline registered as "intelligen" (see tvm.compile's relax_pipeline);
    `intelligen_tvm.pipeline(records=...)` builds it with tuned choices.  A region with
    symbolic dimensions is compiled once for every size, its plan chosen for `symbol_hints`."""

    @tvm.transform.module_pass(opt_level=0, name="IntelliGenPipeline")
    def _pipeline(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        target = tvm.target.Target.current()
        from tvm.relax import pipeline as rp

        if not targets.renders_tir(target.kind.name):
            warnings.warn(unsupported_target_message(target), stacklevel=2)
            return _tvm_pipeline(target)(mod)

        rest = []
        if "gpu" in target.keys:
            from tvm.s_tir import dlight as dl

            rest = [dl.ApplyDefaultSchedule(dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(),
                                            dl.gpu.GeneralReduction(), dl.gpu.Fallback())]
        seq = tvm.transform.Sequential(
            _preparation_passes()
            + [intelligen_regions_pass(target, choose, symbol_hints), relax.transform.FuseOps(), relax.transform.FuseTIR()]
            + rest
            + [rp.default_build_pipeline()]
        )
        return seq(mod)

    return _pipeline


def register() -> None:
    from tvm.relax import pipeline as rp

    if "intelligen" not in rp.PIPELINE_MAP:
        rp.register_pipeline("intelligen")(intelligen_pipeline)
