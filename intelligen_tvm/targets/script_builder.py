"""The PrimFunc of a rendered TVMScript kernel, built without TVM's TVMScript parser.

The parser turns every expression into a doc tree and evaluates it with its own `compile`
and `eval` (60-300 ms for one of our kernels: most of a single-op compilation).  Our
renderers write a small subset of TVMScript, so we translate the Python AST of the source
once into a Python function making the IR builder calls the parser would make: arithmetic
is Python's operators (as in the parser), comparisons and boolean operators go through the
parser's own operator dispatch (`_eval_op`), each statement is built as the parser's visitor
builds it (loops and buffers named, `if` as If/Then/Else frames, expression statements
evaluated).  A construct outside that subset raises `Untranslatable`, and the
caller parses the source instead.  The result is checked against the parser's in the tests
(printed TVMScript identical) for every suite kernel and sampled candidates of every family.
"""

from __future__ import annotations

import ast
from functools import partial

import tvm
from tvm.script import tirx as T            # what the source's `T.` names (as when parsed)
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder.base import IRBuilderFrame
from tvm.script.parser.core import doc
from tvm.script.parser.core.evaluator import _eval_op
from tvm.tirx import IterVar, is_buffer_var
from tvm.tirx.script import builder as B    # the builder calls of the parser's statement visitors


class Untranslatable(Exception):
    """The source uses a construct the translation does not cover (the parser does)."""


# Python's operators on TIR expressions are the parser's too (its default for these)
_ARITHMETIC = frozenset({ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift,
                         ast.RShift, ast.BitOr, ast.BitXor, ast.BitAnd, ast.USub, ast.UAdd, ast.Invert})
# the operators the parser dispatches itself
_COMPARE = {ast.Eq: doc.Eq, ast.NotEq: doc.NotEq, ast.Lt: doc.Lt, ast.LtE: doc.LtE, ast.Gt: doc.Gt, ast.GtE: doc.GtE}
_BOOL = {ast.And: doc.And, ast.Or: doc.Or, ast.Not: doc.Not}
_OPS = {cls: cls() for cls in (*_COMPARE.values(), *_BOOL.values())}


def _op(op_cls: type, *values):
    return _eval_op(_OPS[op_cls], list(values))


def _bool_op(op_cls: type, *values):
    """The parser's BoolOp: a Python bool operand decides at once (our operands carry no effects)."""
    value = values[0]
    for rhs in values[1:]:
        if isinstance(value, bool) and (value if op_cls is doc.Or else not value):
            return value
        value = _eval_op(_OPS[op_cls], [value, rhs])
    return value


def _bind(name: str, value):
    """`name = value` for a new name: the parser names a buffer or a variable; anything else
    (a scalar let, a frame) is outside the subset."""
    if is_buffer_var(value) or isinstance(value, (IterVar, tvm.ir.Var)):
        IRBuilder.name(name, value)
        return value
    raise Untranslatable(f"assignment of {type(value).__name__} to {name}")


def _loop(frame):
    if not isinstance(frame, B.frame.ForFrame):
        raise Untranslatable(f"loop over {type(frame).__name__}")
    return frame


def _loop_var(var, name: str):
    if not isinstance(var, tvm.ir.Var):
        raise Untranslatable(f"loop binding of {type(var).__name__}")
    IRBuilder.name(name, var)
    return var


def _predicate(value):
    if not (tvm.ir.is_prim_expr(value) or isinstance(value, tvm.tirx.expr.ExprOp)):
        raise Untranslatable(f"compile-time if on {type(value).__name__}")
    return value


def _statement(res) -> None:
    """An expression statement, as the parser's visit_expr_stmt treats the kinds we write."""
    if res is None:
        return
    if isinstance(res, IRBuilderFrame):
        res.add_callback(partial(res.__exit__, None, None, None))
        res.__enter__()
    elif tvm.ir.is_prim_expr(res):
        B.evaluate(res)
    else:
        raise Untranslatable(f"expression statement of {type(res).__name__}")


def _param(name: str, annotation):
    if callable(annotation) and not isinstance(annotation, tvm.ir.Expr):
        annotation = annotation()
    return B.arg(name, annotation)


def _at(node: ast.AST) -> ast.AST:
    """A node we make, at the first line (locations only place tracebacks)."""
    node.lineno, node.col_offset, node.end_lineno, node.end_col_offset = 1, 0, 1, 0
    return node


def _name(name: str, store: bool = False) -> ast.Name:
    return _at(ast.Name(id=name, ctx=ast.Store() if store else ast.Load()))


def _const(value) -> ast.Constant:
    return _at(ast.Constant(value))


def _call(name: str, *args: ast.expr) -> ast.Call:
    return _at(ast.Call(func=_name(name), args=list(args), keywords=[]))


def _attr_call(attr: str, *args: ast.expr, **keywords: ast.expr) -> ast.Call:
    """A call of the builder (`B.attr(*args)`)."""
    func = _at(ast.Attribute(value=_name("B"), attr=attr, ctx=ast.Load()))
    return _at(ast.Call(func=func, args=list(args), keywords=[_at(ast.keyword(arg=k, value=v)) for k, v in keywords.items()]))


def _with(context: ast.expr, body: list[ast.stmt], target: str | None = None) -> ast.With:
    var = None if target is None else _name(target, store=True)
    return _at(ast.With(items=[ast.withitem(context_expr=context, optional_vars=var)], body=body or [_at(ast.Pass())]))


def _assign(name: str, value: ast.expr) -> ast.Assign:
    return _at(ast.Assign(targets=[_name(name, store=True)], value=value))


def _statement_of(value: ast.expr) -> ast.Expr:
    return _at(ast.Expr(value))


def _doc_op(table: dict, op: ast.AST) -> ast.expr:
    cls = table.get(type(op))
    if cls is None:
        raise Untranslatable(f"operator {type(op).__name__}")
    return _at(ast.Attribute(value=_name("doc"), attr=cls.__name__, ctx=ast.Load()))


def _expression(node: ast.expr) -> ast.expr:
    """`node` with comparisons and boolean operators through the parser's operator dispatch
    (it builds the comparison node itself, where Python's operators on TIR expressions go
    through TVM's operator functions).  Arithmetic stays Python's operators, as in the
    parser; calls, subscripts, attributes, names and constants evaluate as it evaluates them."""
    kind = type(node)
    if kind is ast.Name or kind is ast.Constant:
        return node
    if kind is ast.Call:
        node.func = _expression(node.func)
        node.args = [_expression(a) for a in node.args]
        for k in node.keywords:
            k.value = _expression(k.value)
        return node
    if kind is ast.BinOp:
        if type(node.op) not in _ARITHMETIC:
            raise Untranslatable(f"operator {type(node.op).__name__}")
        node.left, node.right = _expression(node.left), _expression(node.right)
        return node
    if kind is ast.Subscript:
        node.value, node.slice = _expression(node.value), _expression(node.slice)
        return node
    if kind is ast.Tuple or kind is ast.List:
        node.elts = [_expression(e) for e in node.elts]
        return node
    if kind is ast.Attribute:
        node.value = _expression(node.value)
        return node
    if kind is ast.Dict:
        node.keys = [k if k is None else _expression(k) for k in node.keys]
        node.values = [_expression(v) for v in node.values]
        return node
    if kind is ast.UnaryOp:
        if isinstance(node.op, ast.Not):
            return _call("_op", _doc_op(_BOOL, node.op), _expression(node.operand))
        if type(node.op) not in _ARITHMETIC:
            raise Untranslatable(f"operator {type(node.op).__name__}")
        node.operand = _expression(node.operand)
        return node
    if kind is ast.BoolOp:
        return _call("_bool_op", _doc_op(_BOOL, node.op), *(_expression(v) for v in node.values))
    if kind is ast.Compare:
        operands = [_expression(node.left), *(_expression(c) for c in node.comparators)]
        result = None
        for k, op in enumerate(node.ops):
            part = _call("_op", _doc_op(_COMPARE, op), operands[k], operands[k + 1])
            result = part if result is None else _call("_op", _doc_op(_BOOL, ast.And()), result, part)
        return result
    raise Untranslatable(f"expression {kind.__name__}")


class _Statements:
    """Our TVMScript statements as the IR builder calls the parser makes for them."""

    def __init__(self) -> None:
        self.names: set[str] = set()      # assigned names (buffers, symbols, parameters): once each
        self.loops: list[str] = []        # names of the enclosing loops

    def body(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        return [out for s in stmts for out in self.stmt(s)]

    def new_name(self, name: str) -> str:
        if name in self.names or name in self.loops:
            raise Untranslatable(f"{name} assigned twice")
        self.names.add(name)
        return name

    def stmt(self, node: ast.stmt) -> list[ast.stmt]:
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and not node.orelse:
            name = node.target.id
            if name in self.loops or name in self.names:   # the parser's scopes would restore it after
                raise Untranslatable(f"{name} shadows an enclosing name")
            frame = _call("_loop", _expression(node.iter))
            bind = _assign(name, _call("_loop_var", _name(name), _const(name)))
            self.loops.append(name)
            body = self.body(node.body)
            self.loops.pop()
            return [_with(frame, [bind, *body], target=name)]
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Subscript):
                index = target.slice
                indices = (_at(ast.List(elts=[_expression(i) for i in index.elts], ctx=ast.Load()))
                           if isinstance(index, ast.Tuple) else _expression(index))
                return [_assign("__rhs", _expression(node.value)),   # the parser evaluates the value first
                        _statement_of(_attr_call("buffer_store", _expression(target.value), _name("__rhs"), indices))]
            if isinstance(target, ast.Name):
                name = self.new_name(target.id)
                return [_assign(name, _call("_bind", _const(name), _expression(node.value)))]
        if isinstance(node, ast.With) and all(item.optional_vars is None for item in node.items):
            inner = self.body(node.body)
            for item in reversed(node.items):
                inner = [_with(_expression(item.context_expr), inner)]
            return inner
        if isinstance(node, ast.If):
            parts = [_with(_attr_call("Then"), self.body(node.body))]
            if node.orelse:
                parts.append(_with(_attr_call("Else"), self.body(node.orelse)))
            return [_with(_attr_call("If", _call("_predicate", _expression(node.test))), parts)]
        if isinstance(node, ast.Expr):
            return [_statement_of(_call("_statement", _expression(node.value)))]
        raise Untranslatable(f"statement {type(node).__name__}")

    def function(self, node: ast.FunctionDef) -> ast.FunctionDef:
        """`def build()` making the PrimFunc the parser makes of `node`."""
        if len(node.decorator_list) != 1 or node.args.vararg or node.args.kwarg or node.args.kwonlyargs \
                or node.args.posonlyargs or node.returns is not None:
            raise Untranslatable("function form")
        deco = node.decorator_list[0]
        options = {k.arg: k.value for k in deco.keywords} if isinstance(deco, ast.Call) else {}
        if set(options) - {"s_tir"}:
            raise Untranslatable(f"prim_func options {sorted(options)}")
        frame = _attr_call("prim_func", is_private=_const(False), s_tir=options.get("s_tir", _const(False)),
                           persistent=_const(False))
        inner: list[ast.stmt] = [_statement_of(_attr_call("func_name", _const(node.name)))]
        for arg in node.args.args:
            if arg.annotation is None:
                raise Untranslatable("parameter without annotation")
            inner.append(_assign(self.new_name(arg.arg), _call("_param", _const(arg.arg), _expression(arg.annotation))))
        inner += self.body(node.body)
        arguments = ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[])
        return _at(ast.FunctionDef(name="build", args=arguments, body=[_with(frame, inner)], decorator_list=[],
                                   returns=None, type_params=[]))


_NAMESPACE = {"T": T, "B": B, "doc": doc, "_op": _op, "_bool_op": _bool_op, "_bind": _bind, "_loop": _loop,
              "_loop_var": _loop_var, "_predicate": _predicate, "_statement": _statement, "_param": _param}


def build_prim_func_from_script(source: str) -> tvm.tirx.PrimFunc:
    """The PrimFunc of `source` (one `@T.prim_func` of our renderers' subset); raises
    `Untranslatable` where the subset ends."""
    module = ast.parse(source)
    if len(module.body) != 1 or not isinstance(module.body[0], ast.FunctionDef):
        raise Untranslatable("not one function")
    builder = _Statements().function(module.body[0])
    code = compile(ast.Module(body=[builder], type_ignores=[]), "<intelligen kernel>", "exec")
    namespace = dict(_NAMESPACE)
    exec(code, namespace)   # noqa: S102  # our own renderer's source, translated above
    with IRBuilder() as ib:
        namespace["build"]()
    func = ib.get()
    tvm.s_tir.analysis.verify_well_formed(tvm.IRModule.from_expr(func))   # as the parser checks
    return func
