"""Compose a region's stages into one instruction-level dataflow graph over one region space.

Two steps precede the rewrites:
- identity folding: a stage that only re-indexes another buffer (reshape, transpose,
  squeeze, expand, strided slice, gather) becomes a view; its consumers load the source
  through the composed index;
- axis unification: the iteration variables of all stages are unified through the
  buffers they share (union-find on (buffer, dim)), giving the region space: outer axes O
  and row axes R (those some stage reduces over).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..gir import expr as E
from ..gir.errors import Unsupported
from ..gir.program import Axis, Identity, Kernel, Slice
from ..gir_lowering.naive import StageEmitter, stage_out_index
from ..gir_lowering.tir_reader import Stage, StageProgram


@dataclass
class FoldedRegion:
    stages: list[Stage]
    views: list[tuple[str, Slice]]   # (view buffer, source slice in the view's own vars)


def fold_identities(prog: StageProgram) -> FoldedRegion:
    """Replace loads of pure re-indexing stages by loads of their sources."""
    views: dict[str, Stage] = {}
    kept: list[Stage] = []
    folded: list[tuple[str, Slice]] = []
    for stage in prog.stages:
        stage = Stage(stage.name, stage.out, stage.spatial, stage.reduce,
                      _through_views(stage.value, views, prog), stage.reducer, stage.init)
        is_view = (stage.reducer is None and isinstance(stage.value, E.Load)
                   and stage.out not in prog.outputs)
        if is_view:
            views[stage.out] = stage
            folded.append((stage.out, Slice(stage.value.buffer, stage.value.indices)))
        else:
            kept.append(stage)
    return FoldedRegion(kept, folded)


def _through_views(value: E.Expr, views: dict[str, Stage], prog: StageProgram) -> E.Expr:
    def rewrite(e: E.Expr) -> E.Expr | None:
        if isinstance(e, E.Load) and e.buffer in views:
            view = views[e.buffer]
            out_index = stage_out_index(view, prog)
            mapping = {ix.name: val for ix, val in zip(out_index, e.indices) if isinstance(ix, E.Var)}
            src = view.value
            assert isinstance(src, E.Load)
            return E.Load(src.dtype, src.buffer, tuple(E.simplify(E.substitute(i, mapping)) for i in src.indices))
        return None

    return E.transform(value, rewrite)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[object, object] = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b) -> None:
        self.parent[self.find(a)] = self.find(b)


def _unguarded_loads(expr: E.Expr) -> list[E.Load]:
    """Loads outside select branches: a branch may index a smaller buffer (concat), so only
    unguarded loads tie an axis to a buffer dimension."""
    if isinstance(expr, E.Call) and expr.op == "select":
        return _unguarded_loads(expr.args[0])
    found = [expr] if isinstance(expr, E.Load) else []
    for child in E.children(expr):
        found += _unguarded_loads(child)
    return found


@dataclass
class RegionSpace:
    outer: tuple[Axis, ...]
    row: tuple[Axis, ...]
    rename: dict[str, E.Expr]   # stage variable -> region axis


def unify_axes(region: FoldedRegion, prog: StageProgram) -> RegionSpace:
    uf = _UnionFind()
    extent: dict[object, int] = {}
    # Unify through the stages as read, views included: a reshape's output dims tie the
    # axes of all its consumers even though the fold then indexes the source directly.
    for stage in prog.stages:
        for name, ext in (*stage.spatial, *stage.reduce):
            extent[name] = ext
            uf.find(name)
        for dim, ix in enumerate(stage_out_index(stage, prog)):
            if isinstance(ix, E.Var):
                uf.union(ix.name, (stage.out, dim))
        for ld in _unguarded_loads(stage.value):
            for dim, ix in enumerate(ld.indices):
                # An axis shorter than the dim reads a prefix of it (a slice starting at
                # 0, rotate_half's first half): it is not that dim's axis.
                if isinstance(ix, E.Var) and extent[ix.name] == prog.buffers[ld.buffer].shape[dim]:
                    uf.union(ix.name, (ld.buffer, dim))
    _unify_equal_views(prog, uf)
    classes: dict[object, int] = {}
    for name, ext in extent.items():
        root = uf.find(name)
        if classes.setdefault(root, ext) != ext:
            raise Unsupported("stages disagree on an axis extent (needs more than one kernel)")
    for key in list(uf.parent):
        if isinstance(key, tuple):
            root = uf.find(key)
            buf_ext = prog.buffers[key[0]].shape[key[1]]
            if root in classes and classes[root] != buf_ext:
                raise Unsupported(f"buffer {key[0]} dim {key[1]} is indexed over a different extent")
    # Only axes the kept stages iterate are axes of the kernel; a folded view's own dims
    # served to unify and are gone (channel shuffle's 5-d intermediate).
    kept = {uf.find(n) for s in region.stages for n, _ in (*s.spatial, *s.reduce)}
    classes = {root: ext for root, ext in classes.items() if root in kept}
    row_roots = {uf.find(n) for s in region.stages for n, _ in s.reduce}
    for stage in region.stages:
        roots = [uf.find(n) for n, _ in (*stage.spatial, *stage.reduce)]
        if len(set(roots)) != len(roots):
            raise Unsupported(f"stage {stage.name} uses one axis twice")
        if stage.reducer is not None and {uf.find(n) for n, _ in stage.reduce} != row_roots:
            raise Unsupported("reductions over different axes in one region")
        if stage.reducer is not None and any(uf.find(n) in row_roots for n, _ in stage.spatial):
            raise Unsupported("a reduction keeps an axis another reduction reduces")
    for stage in region.stages:
        if stage.out in prog.outputs:
            outer_roots = set(classes) - row_roots
            if not outer_roots <= {uf.find(n) for n, _ in stage.spatial}:
                raise Unsupported(f"output {stage.out} is not indexed by every outer axis")
    order = _axis_order(prog, uf, set(classes))
    outer_roots = [r for r in order if r not in row_roots]
    row_order = [r for r in order if r in row_roots]
    names = {r: f"o{i}" for i, r in enumerate(outer_roots)} | {r: f"r{i}" for i, r in enumerate(row_order)}
    rename = {n: E.Var("int32", names[uf.find(n)]) for n in extent if uf.find(n) in names}
    return RegionSpace(
        tuple(Axis(names[r], classes[r]) for r in outer_roots),
        tuple(Axis(names[r], classes[r]) for r in row_order),
        rename,
    )


def _unify_equal_views(prog: StageProgram, uf: _UnionFind) -> None:
    """Two views computing the same re-indexing of the same source (two reshapes of one
    tensor) are one tensor: their dims are the same axes."""
    seen: dict[tuple, str] = {}
    for stage in prog.stages:
        if stage.reducer is not None or not isinstance(stage.value, E.Load):
            continue
        out_index = stage_out_index(stage, prog)
        positional = {ix.name: E.Var("int32", f"_d{d}") for d, ix in enumerate(out_index) if isinstance(ix, E.Var)}
        key = (stage.value.buffer, prog.buffers[stage.out].shape,
               tuple(E.substitute(i, positional) for i in stage.value.indices))
        other = seen.setdefault(key, stage.out)
        if other != stage.out:
            for dim in range(len(prog.buffers[stage.out].shape)):
                uf.union((stage.out, dim), (other, dim))


def _axis_order(prog: StageProgram, uf: _UnionFind, roots: set) -> list:
    """Order axes as the dims of the largest outputs, then inputs: innermost last."""
    order: list = []
    ranked = sorted(prog.outputs, key=lambda b: -len(prog.buffers[b].shape))
    ranked += sorted(prog.inputs, key=lambda b: -len(prog.buffers[b].shape))
    ranked += [b for b in prog.buffers if b not in ranked]
    for buf in ranked:
        for dim in range(len(prog.buffers[buf].shape)):
            key = (buf, dim)
            if key in uf.parent:
                root = uf.find(key)
                if root in roots and root not in order:
                    order.append(root)
    order += [r for r in roots if r not in order]
    return order


def build_kernel(prog: StageProgram, name: str) -> tuple[Kernel, RegionSpace]:
    """All surviving stages in one kernel over the region space (before the rewrites)."""
    region = fold_identities(prog)
    space = unify_axes(region, prog)
    emitter = StageEmitter({a.name for a in space.row})
    for view, src in region.views:
        emitter.instrs.append(Identity(view, src))
    for stage in region.stages:
        renamed = Stage(stage.name, stage.out, stage.spatial, stage.reduce,
                        E.substitute(stage.value, space.rename), stage.reducer, stage.init)
        out_index = tuple(E.substitute(i, space.rename) for i in stage_out_index(stage, prog))
        emitter.stage(renamed, out_index)
    return Kernel(name, space.outer, space.row, emitter.instrs, emitter.values), space
