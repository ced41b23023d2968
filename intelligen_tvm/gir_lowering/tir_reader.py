"""Read legalized TIR PrimFuncs into stages: one stage per TIR block.

A stage is "out[spatial vars] = value" or "out[spatial vars] = reduce(op, value over
reduce vars)".  This is the form LegalizeOps produces for every memory-intensive op
(elementwise, broadcast, injective, reduction, gather), so reading it is enough to cover
softmax, norms, GELU and friends without a per-op table.
"""

from __future__ import annotations

import functools
import keyword
from collections.abc import Mapping
from dataclasses import dataclass

import tvm
from tvm import tirx
from tvm.s_tir import SBlock, SBlockRealize

from ..gir.errors import Unsupported
from ..gir.expr import Call, Const, Expr, Load, UNARY_OPS, Var, loads
from ..gir.program import Buffer
from ..gir.symbolic import DEFAULT_HINT, symbol


@dataclass(frozen=True)
class Stage:
    name: str
    out: str
    spatial: tuple[tuple[str, int], ...]
    reduce: tuple[tuple[str, int], ...]
    value: Expr
    reducer: str | None = None
    init: Expr | None = None


@dataclass
class StageProgram:
    stages: list[Stage]
    buffers: dict[str, Buffer]
    inputs: list[str]
    outputs: list[str]


_BINARY = {
    tirx.Add: "add", tirx.Sub: "sub", tirx.Mul: "mul", tirx.Div: "div",
    tirx.FloorDiv: "floordiv", tirx.FloorMod: "floormod", tirx.Max: "max", tirx.Min: "min",
    tirx.LT: "lt", tirx.LE: "le", tirx.GT: "gt", tirx.GE: "ge", tirx.EQ: "eq", tirx.NE: "ne",
    tirx.And: "and", tirx.Or: "or",
}
_COMPARISONS = (tirx.LT, tirx.LE, tirx.GT, tirx.GE, tirx.EQ, tirx.NE)
_RENAMED = {"fabs": "abs", "nearbyint": "round"}   # TIR intrinsic name -> GIR op
_COMBINERS = {"add": "sum", "max": "max", "min": "min", "mul": "prod"}


class _ExprReader:
    """Converts TIR expressions; buffer and variable names are mapped to region names."""

    def __init__(self, buffer_names: dict[object, str], var_names: dict[object, Expr],
                 domains: Mapping[object, tvm.ir.Range] | None = None):
        self.buffer_names = buffer_names
        self.var_names = var_names
        self.domains = domains or {}

    def __call__(self, e, index: bool = False) -> Expr:
        """Index arithmetic is done in int32 (our axes are int32); data keeps its dtype."""
        dtype = str(e.ty)
        if index and dtype == "int64":
            dtype = "int32"
        sub = lambda x: self(x, index)  # noqa: E731
        if isinstance(e, tvm.ir.expr.Var):
            if e in self.var_names:
                axis = self.var_names[e]   # int32 in GIR; as data (iota, a mask from positions) it keeps its type
                return axis if axis.dtype == dtype else Call(dtype, "cast", (axis,))
            raise Unsupported(f"symbolic shape: index arithmetic on {e}" if str(e.ty).startswith("int")
                              else f"free variable {e} in block body")
        if isinstance(e, (tirx.IntImm, tirx.FloatImm)):
            value = e.value
            if dtype.startswith("int") or dtype.startswith("uint"):
                value = int(value)
            return Const(dtype, value)
        if isinstance(e, tvm.ir.expr.TensorLoad):
            name = self.buffer_names.get(e.source)
            if name is None:
                raise Unsupported(f"load from unknown buffer {e.source.name}")
            ld = Load(str(e.ty), name, tuple(self(i, True) for i in _fold_symbolic_division(e.indices, self.domains)))
            # A gathered position (int64 data) joins int32 index arithmetic as int32.
            return Call(dtype, "cast", (ld,)) if index and ld.dtype != dtype else ld
        if isinstance(e, _COMPARISONS) and not index:
            a, b = sub(e.a), sub(e.b)
            if _is_index_arithmetic(a) and _is_index_arithmetic(b):
                # a bound on the iteration vars (concat's `8 <= ax1`): compare in index arithmetic
                a, b = self(e.a, True), self(e.b, True)
            return Call(dtype, _BINARY[type(e)], (a, b))
        if type(e) in _BINARY:
            return Call(dtype, _BINARY[type(e)], (sub(e.a), sub(e.b)))
        if isinstance(e, tirx.Not):
            return Call(dtype, "not", (sub(e.a),))
        if isinstance(e, tirx.Select):
            return Call(dtype, "select", (sub(e.condition), sub(e.true_value), sub(e.false_value)))
        if isinstance(e, tirx.Cast):
            return Call(dtype, "cast", (sub(e.value),))
        if isinstance(e, tvm.ir.expr.Call):
            op = str(e.op.name).split(".")[-1]
            if op == "if_then_else":
                return Call(dtype, "select", tuple(sub(a) for a in e.args))
            gir_op = _RENAMED.get(op, op)
            if gir_op in UNARY_OPS or gir_op == "pow":
                return Call(dtype, gir_op, tuple(sub(a) for a in e.args))
            raise Unsupported(f"intrinsic {op} has no GIR lowering")
        raise Unsupported(f"expression {type(e).__name__} has no GIR lowering")


def _fold_symbolic_division(indices, domains: Mapping[object, tvm.ir.Range]) -> list:
    """A reshape over symbolic extents loads at `((i * seq + j) // seq) % batch`: TVM's simplifier
    does not divide by a symbol, but with 0 <= j < seq (the axis domains) that is i, and
    `(i * seq + j) % seq` is j.  Indices without a division by a non-constant stay as they are."""
    indices = list(indices)
    if not any(_divides_by_symbol(i) for i in indices):
        return indices
    analyzer = tvm.sym.Analyzer()
    for var, dom in domains.items():
        analyzer.bind(var, dom)
    indices = [analyzer.simplify(i) for i in indices]

    def fold(e):
        if isinstance(e, (tirx.Add, tirx.Sub, tirx.Mul)):
            return type(e)(fold(e.a), fold(e.b))
        if not isinstance(e, (tirx.FloorDiv, tirx.FloorMod)):
            return e
        a, d = fold(e.a), fold(e.b)
        terms = _sum_terms(a)
        quotients = [_quotient(t, d, analyzer) for t in terms]
        rest = [t for t, q in zip(terms, quotients) if q is None]
        r = functools.reduce(tirx.Add, rest) if rest else tirx.IntImm(a.ty, 0)
        if analyzer.can_prove(r >= 0) and analyzer.can_prove(r < d):
            if isinstance(e, tirx.FloorMod):
                return r
            kept = [q for q in quotients if q is not None]
            return functools.reduce(tirx.Add, kept) if kept else tirx.IntImm(a.ty, 0)
        return type(e)(a, d)

    return [analyzer.simplify(fold(i)) for i in indices]


# the index expressions with operands `a` (and `b`): asking an FFI object hasattr costs microseconds
_OPERAND_NODES = (tirx.Add, tirx.Sub, tirx.Mul, tirx.Div, tirx.Mod, tirx.FloorDiv, tirx.FloorMod, tirx.Min,
                  tirx.Max, tirx.EQ, tirx.NE, tirx.LT, tirx.LE, tirx.GT, tirx.GE, tirx.And, tirx.Or, tirx.Not)


def _divides_by_symbol(e) -> bool:
    if isinstance(e, (tirx.FloorDiv, tirx.FloorMod)) and not isinstance(e.b, tirx.IntImm):
        return True
    if not isinstance(e, _OPERAND_NODES):
        return False
    return _divides_by_symbol(e.a) or (not isinstance(e, tirx.Not) and _divides_by_symbol(e.b))


def _sum_terms(e) -> list:
    return _sum_terms(e.a) + _sum_terms(e.b) if isinstance(e, tirx.Add) else [e]


def _quotient(term, d, analyzer):
    """term / d when term is a product with the factor d, else None."""
    if isinstance(term, tirx.Mul):
        if analyzer.can_prove_equal(term.b, d):
            return term.a
        if analyzer.can_prove_equal(term.a, d):
            return term.b
    return None


def _is_index_arithmetic(e: Expr) -> bool:
    """Integer arithmetic on iteration vars and constants only (no data loaded)."""
    return e.dtype.startswith(("int", "uint")) and not loads(e)


def _block_realizes(stmt) -> list[SBlockRealize]:
    found: list[SBlockRealize] = []

    def visit(node):
        if isinstance(node, SBlockRealize):
            if node.block.name_hint == "root":
                visit(node.block.body)
            else:
                found.append(node)
            return
        if isinstance(node, tirx.For):
            visit(node.body)
        elif isinstance(node, tirx.SeqStmt):
            for s in node.seq:
                visit(s)
        elif isinstance(node, SBlock):
            visit(node.body)
        elif hasattr(node, "body"):
            visit(node.body)
        else:
            raise Unsupported(f"statement {type(node).__name__} outside blocks")

    visit(stmt)
    return found


def _root_alloc_buffers(func: tirx.PrimFunc) -> list:
    body = func.body
    if isinstance(body, SBlockRealize):
        return list(body.block.alloc_buffers)
    return []


def _extent(e, what: str, hints: Mapping[str, int]) -> int:
    """A shape or loop extent: an int, or a `SymInt` for a symbol (ONNX dim_param, Relax
    R.Tensor(("n", 768))) or a product of symbols, planned at its hint.  Symbols are matched
    by name across the PrimFuncs of a region (LegalizeOps keeps the Relax names).  Any other
    run-time extent is refused with a reason."""
    if isinstance(e, tirx.IntImm):
        return int(e.value)
    if isinstance(e, tvm.ir.expr.Var) and str(e.ty).startswith("int"):
        if not e.name.isidentifier() or keyword.iskeyword(e.name):
            raise Unsupported(f"symbolic shape: {what} has a symbol named {e.name!r}, not an identifier")
        return symbol(e.name, hints.get(e.name, DEFAULT_HINT))
    if isinstance(e, tirx.Mul):
        return _extent(e.a, what, hints) * _extent(e.b, what, hints)
    raise Unsupported(f"symbolic shape: {what} has extent {e}")


def _check_symbols_unique(func: tirx.PrimFunc) -> None:
    """Symbols are matched by name: two different shape variables of one name (a dynamic
    slice's output dims) must not become one."""
    seen: dict[str, object] = {}
    for p in func.params:
        for dim in p.ty.shape:
            for v in tvm.tirx.analysis.undefined_vars(dim) if not isinstance(dim, tirx.IntImm) else ():
                if not seen.setdefault(v.name, v).same_as(v):
                    raise Unsupported(f"symbolic shape: two different symbols named {v.name}")


def _buffer(name: str, var, hints: Mapping[str, int]) -> Buffer:
    shape = tuple(_extent(s, f"buffer {var.name}", hints) for s in var.ty.shape)
    return Buffer(name, shape, str(var.ty.dtype))


def read_prim_func(func: tirx.PrimFunc, arg_names: list[str], prefix: str,
                   hints: Mapping[str, int] | None = None) -> StageProgram:
    """Read one PrimFunc whose parameters are called `arg_names` (inputs..., outputs...).

    Internal buffers are renamed `prefix + name` so that several functions of one region
    can be concatenated without clashes.  `hints` gives symbolic dimensions their
    representative sizes (DEFAULT_HINT otherwise).
    """
    hints = hints or {}
    buffer_names: dict[object, str] = {}
    buffers: dict[str, Buffer] = {}
    params = list(func.params)
    if len(params) != len(arg_names) or not all(isinstance(p.ty, tirx.BufferType) for p in params):
        raise Unsupported("PrimFunc has non-buffer parameters")
    _check_symbols_unique(func)
    for buf, name in zip(params, arg_names):
        buffer_names[buf] = name
        buffers[name] = _buffer(name, buf, hints)
        if 0 in buffers[name].shape:
            raise Unsupported(f"{name} is an empty tensor")
    for n, buf in enumerate(_root_alloc_buffers(func)):
        # Intermediate names repeat (legalized GELU allocates several "T_multiply").
        name = f"{prefix}{buf.name}" if f"{prefix}{buf.name}" not in buffers else f"{prefix}{buf.name}_{n}"
        buffer_names[buf] = name
        buffers[name] = _buffer(name, buf, hints)

    stages = [_read_block(r, buffer_names, f"{prefix}{n}_", hints) for n, r in enumerate(_block_realizes(func.body))]
    written = {s.out for s in stages}
    n_out = len(arg_names) - sum(1 for name in arg_names if name not in written)
    outputs = [n for n in arg_names if n in written]
    inputs = [n for n in arg_names if n not in written]
    if len(outputs) != n_out or not outputs:
        raise Unsupported("could not identify the PrimFunc outputs")
    return StageProgram(stages, buffers, inputs, outputs)


def _read_block(realize: SBlockRealize, buffer_names, prefix: str, hints: Mapping[str, int]) -> Stage:
    block = realize.block
    if not (isinstance(realize.predicate, tirx.IntImm) and int(realize.predicate.value) == 1):
        raise Unsupported(f"block {block.name_hint} has a predicate")
    if block.match_buffers or block.alloc_buffers:
        raise Unsupported(f"block {block.name_hint} allocates or matches buffers")
    var_map: dict[object, Expr] = {}
    spatial, reduce = [], []
    for iv in block.iter_vars:
        extent = _extent(iv.dom.extent, f"block {block.name_hint} axis {iv.var.name}", hints)
        name = f"{prefix}{block.name_hint}.{iv.var.name}"
        # Extent-1 axes carry no data: they index 0 (keepdims, broadcasting size-1 dims).
        var_map[iv.var] = Const("int32", 0) if extent == 1 else Var("int32", name)
        if extent == 1:
            continue
        if int(iv.iter_type) == 0:
            spatial.append((name, extent))
        elif int(iv.iter_type) == 2:
            reduce.append((name, extent))
        else:
            raise Unsupported(f"block {block.name_hint} has an opaque iterator")
    read = _ExprReader(buffer_names, var_map, {iv.var: iv.dom for iv in block.iter_vars})
    body = block.body
    if not isinstance(body, tirx.BufferStore):
        raise Unsupported(f"block {block.name_hint} is not a single store")
    out = buffer_names[body.buffer]
    out_index = [read(i, True) for i in body.indices]
    expected = [var_map[iv.var] for iv in block.iter_vars if int(iv.iter_type) == 0]
    if out_index != expected:
        raise Unsupported(f"block {block.name_hint} stores at a non-identity index")
    value = read(body.value)
    if block.init is None:
        if reduce:
            raise Unsupported(f"block {block.name_hint} reduces without init")
        return Stage(prefix + block.name_hint, out, tuple(spatial), (), value)
    if not isinstance(block.init, tirx.BufferStore):
        raise Unsupported(f"block {block.name_hint} has a complex init")
    init = read(block.init.value)
    self_load = Load(value.dtype, out, tuple(out_index))
    if not (isinstance(value, Call) and value.op in _COMBINERS and self_load in value.args):
        raise Unsupported(f"block {block.name_hint} is not a sum/max/min/prod reduction")
    a, b = value.args
    operand = b if a == self_load else a
    if not reduce:
        # Every reduced axis has extent 1 (a sum over a kept size-1 dim): one combine with init.
        return Stage(prefix + block.name_hint, out, tuple(spatial), (), Call(value.dtype, value.op, (init, operand)))
    return Stage(prefix + block.name_hint, out, tuple(spatial), tuple(reduce), operand,
                 _COMBINERS[value.op], init)


def concat_programs(parts: list[StageProgram], region_inputs: list[str], region_outputs: list[str]) -> StageProgram:
    """Concatenate the stage programs of one region's calls (already consistently named)."""
    stages: list[Stage] = []
    buffers: dict[str, Buffer] = {}
    for part in parts:
        stages += part.stages
        buffers.update(part.buffers)
    return StageProgram(stages, buffers, list(region_inputs), list(region_outputs))
