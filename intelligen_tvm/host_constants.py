"""Evaluate the constant part of a Relax module on the host, with numpy, before legalization.

A model exported from PyTorch computes some values from constants alone: the transpose of
every Linear weight (`permute_dims(W)`), causal masks (`arange`, `expand_dims`,
`less_equal`, ...), rotary tables (`arange`, `power`, `cos`, `sin`).  Folding them matters
at run time (they would otherwise run at every call) and for region selection (a weight
transpose is not a region of the model).  Relax's FoldConstant folds them by building each
call through the target's code generator: 5.8 s of GPT-2 small's llvm compilation, more
than TVM's whole default pipeline.  Each op below is one numpy call (milliseconds); a result
whose shape or dtype differs from the binding's type, and any op not in the table, is left
to FoldConstant, which runs after legalization.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tvm
from tvm import relax

# dtypes whose tensors numpy holds exactly (bfloat16 and fp8 are not among them)
_NUMPY_DTYPES = frozenset({"float16", "float32", "float64", "int8", "int16", "int32", "int64",
                           "uint8", "uint16", "uint32", "uint64", "bool"})
_FLOAT = ("float16", "float32", "float64")


def _axes(values) -> tuple[int, ...] | None:
    return None if values is None else tuple(int(v) for v in values)


def _take(call: relax.Call, x: np.ndarray, indices: np.ndarray) -> np.ndarray:
    axis = 0 if call.attrs.axis is None else int(call.attrs.axis)
    if indices.size and (indices.min() < 0 or indices.max() >= x.shape[axis]):
        raise ValueError("take: an index out of bounds (the kernel's behaviour, not numpy's)")
    return np.take(x, indices, axis=axis)


def _float_only(fn: Callable) -> Callable:
    """Integer division and power differ between numpy and TIR (rounding, negative powers)."""
    def evaluate(_call, a, b):
        if str(a.dtype) not in _FLOAT:
            raise ValueError("integer operands are left to FoldConstant")
        return fn(a, b)
    return evaluate


def _binary(fn: Callable) -> Callable:
    return lambda _call, a, b: fn(a, b)


def _unary(fn: Callable) -> Callable:
    return lambda _call, a: fn(a)


# relax op name -> numpy evaluation of (call, *argument values)
_EVALUATE: dict[str, Callable[..., np.ndarray]] = {
    "relax.permute_dims": lambda call, x: np.transpose(x, _axes(call.attrs.axes)),
    "relax.expand_dims": lambda call, x: np.expand_dims(x, _axes(call.attrs.axis)),
    "relax.reshape": lambda _call, x, shape: x.reshape(shape),
    "relax.broadcast_to": lambda _call, x, shape: np.broadcast_to(x, shape),
    "relax.astype": lambda call, x: x.astype(str(call.attrs.dtype)),
    "relax.full": lambda call, shape, value: np.full(shape, value, dtype=str(call.attrs.dtype)),
    "relax.arange": lambda call, start, end, step: np.arange(start, end, step, dtype=str(call.attrs.dtype)),
    "relax.take": _take,
    "relax.concat": lambda call, parts: np.concatenate(parts, axis=int(call.attrs.axis)),
    "relax.add": _binary(np.add),
    "relax.subtract": _binary(np.subtract),
    "relax.multiply": _binary(np.multiply),
    "relax.divide": _float_only(np.divide),
    "relax.power": _float_only(np.power),
    "relax.less": _binary(np.less),
    "relax.less_equal": _binary(np.less_equal),
    "relax.greater": _binary(np.greater),
    "relax.greater_equal": _binary(np.greater_equal),
    "relax.equal": _binary(np.equal),
    "relax.not_equal": _binary(np.not_equal),
    "relax.logical_and": _binary(np.logical_and),
    "relax.logical_or": _binary(np.logical_or),
    "relax.cos": _unary(np.cos),
    "relax.sin": _unary(np.sin),
}


class _NotConstant(Exception):
    pass


def _value(arg, known: dict) -> object:
    """The host value of a call argument, or _NotConstant."""
    if isinstance(arg, relax.Var):
        if arg in known:
            return known[arg]
        raise _NotConstant
    if isinstance(arg, tvm.ir.GenericConst):
        if str(arg.value.dtype) not in _NUMPY_DTYPES:
            raise _NotConstant
        return np.from_dlpack(arg.value)   # a view: reading a weight that turns out unused costs nothing
    if isinstance(arg, relax.ShapeExpr):
        if not all(isinstance(v, tvm.tirx.IntImm) for v in arg.values):
            raise _NotConstant
        return tuple(int(v) for v in arg.values)
    if isinstance(arg, (tvm.tirx.IntImm, tvm.tirx.FloatImm)):
        return arg.value
    if isinstance(arg, relax.Tuple):
        return [_value(field, known) for field in arg.fields]
    raise _NotConstant


def _evaluated(binding, known: dict) -> np.ndarray | None:
    """`binding`'s value computed on the host, when it is a table op of constants and its
    result has the binding's shape and dtype."""
    call = binding.value
    if not isinstance(call, relax.Call) or not isinstance(call.op, tvm.ir.Op):
        return None
    evaluate = _EVALUATE.get(call.op.name)
    if evaluate is None:
        return None
    try:
        result = np.asarray(evaluate(call, *(_value(a, known) for a in call.args)))
    except (_NotConstant, ValueError, TypeError):
        return None
    expected = binding.var.ty
    if not isinstance(expected, relax.TensorType) or expected.shape is None:
        return None
    shape = tuple(int(v) if isinstance(v, tvm.tirx.IntImm) else None for v in expected.shape)
    if shape != result.shape or str(expected.dtype) != str(result.dtype):
        return None
    return result if result.flags.c_contiguous else result.copy(order="C")   # (ascontiguousarray makes 0-d 1-d)


def _fold_block(block, known: dict):
    bindings = []
    for binding in block.bindings:
        result = _evaluated(binding, known) if isinstance(binding, relax.VarBinding) else None
        if result is None:
            bindings.append(binding)
            continue
        known[binding.var] = result
        bindings.append(relax.VarBinding(binding.var, relax.const(result, str(result.dtype))))   # relax.const alone makes int64 int32
    kind = relax.DataflowBlock if isinstance(block, relax.DataflowBlock) else relax.BindingBlock
    return kind(bindings)


@tvm.transform.module_pass(opt_level=0, name="FoldConstantsOnHost")
def fold_constants_on_host(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
    """`mod` with every binding the table evaluates bound to its constant (FoldConstant,
    after legalization, propagates the constants into their uses)."""
    bb = relax.BlockBuilder(mod)
    for gvar, func in mod.functions.items():
        if not isinstance(func, relax.Function) or not isinstance(func.body, relax.SeqExpr):
            continue
        known: dict = {}
        blocks = [_fold_block(block, known) for block in func.body.blocks]
        if known:
            body = relax.SeqExpr(blocks, func.body.body)
            bb.update_func(gvar, bb.normalize(relax.Function(func.params, body, func.ret_ty, func.is_pure, func.attrs)))
    return bb.get()
