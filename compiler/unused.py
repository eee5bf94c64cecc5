"""Blocks and cells of the root spec that no model applies are checked once.

A model elaborates only what it applies, so a block nothing uses would never be looked at.
Here each such block (or cell) is elaborated on its own, in a throwaway graph: every dim of
its tensor parameters' shape patterns becomes a symbolic size (``x: [N, C]`` binds N and C),
its other parameters take their defaults (an ``int`` without one is a symbol too), and the
errors found are reported with a note that the block is used by no model. Where that cannot
be done (a tensor parameter without a pattern, a parameter without a default that is not an
``int``) or the body needs concrete sizes (``if C == out``, ``conv2d`` sizing its weights from
a symbolic channel count), the body is checked statically instead: unknown names, unknown ops
and blocks, and argument names no op or block has.
"""

from __future__ import annotations

import difflib

from netc.specs import catalogue
from netc.specs.init import INITIALISERS, LAYER_ARGS

from . import ast
from .calls import _scalar_fn
from .dims import sym
from .ir import Graph
from .values import POISON, Frame

# errors that say a size must be concrete: a generic run cannot decide those, so they are not
# the block's fault; the static check is used instead
_NEEDS_CONCRETE = ("symbolic size", "concrete")


def check_unused(el, decl: ast.FuncDecl) -> None:
    """Report the errors of ``decl``, a block or cell no model applies."""
    note = (f"`{decl.name}` is used by no model; it is checked on its own, its sizes symbolic", decl.name_span)
    static_note = (f"`{decl.name}` is used by no model; its names, ops and argument names are checked",
                   decl.name_span)
    diags = el.diags
    mark = (len(diags.items), set(diags._seen), set(el._seen))
    nodes = diags.budget.nodes
    generic = _generic(decl) and _elaborate(el, decl)
    diags.budget.nodes = nodes  # the throwaway graph's nodes are not the models'
    if generic:
        new = diags.items[mark[0]:]
        if not any(w in d.message for d in new for w in _NEEDS_CONCRETE):
            for d in new:
                d.notes.append(note)
            return
        del diags.items[mark[0]:]  # roll back: the static check says what can be said
        diags._seen, el._seen = mark[1], mark[2]
    n = len(diags.items)
    _static(el, decl)
    for d in diags.items[n:]:
        d.notes.append(static_note)


def _generic(decl: ast.FuncDecl) -> bool:
    for p in decl.params:
        if p.is_tensor and not isinstance(p.type, ast.TensorTypeExpr):
            return False
        if not p.is_tensor and p.default is None and not (isinstance(p.type, ast.ScalarType) and p.type.name == "int"):
            return False
    return True


def _elaborate(el, decl: ast.FuncDecl) -> bool:
    """Elaborate ``decl`` with symbolic sizes; False when it could not be started."""
    graph = Graph(decl.name)
    home = el.ws.home[id(decl)]
    frame = Frame(graph, home, (), stack=(decl,))
    if el.duplicate_params(decl, Frame(graph, home, ())):
        return True
    for p in decl.params:  # in order, as a call binds them: a default may use an earlier pattern's dims
        if p.is_tensor:
            frame.env[p.name] = el.model_input(decl, p, frame)
        elif p.default is None:
            frame.env[p.name] = sym(p.name)
        else:
            frame.env[p.name] = el.check_scalar(p, el.ev(p.default, frame), p.default.span, frame)
        frame.used_names[p.name] = 1
    if any(v is POISON for v in frame.env.values()):
        return True
    value = el.body(decl, frame)
    el.check_results(decl, value, frame, decl.name_span)
    return True


# -- the static check -------------------------------------------------------------------------

def _static(el, decl: ast.FuncDecl) -> None:
    home = el.ws.home[id(decl)]
    ns = el.ws.namespaces.get(home, {})
    frame = Frame(None, home, (), stack=(decl,))
    bound = set()
    for p in decl.params:
        bound.add(p.name)
        if isinstance(p.type, ast.TensorTypeExpr):
            bound |= ast.names_in(p.type.dims)
    for p in decl.params:
        if p.default is not None:
            _expr(el, p.default, bound, ns, frame)
    for stmt in decl.body:
        if isinstance(stmt, ast.Return):
            for v in stmt.values:
                _expr(el, v, bound, ns, frame)
        elif isinstance(stmt, ast.Let):
            _expr(el, stmt.value, bound, ns, frame)
            bound.add(stmt.name.id)
        elif isinstance(stmt, ast.ParamStmt):
            _expr(el, stmt.init, bound, ns, frame)
            bound.add(stmt.name.id)
        elif isinstance(stmt, ast.Defaults):
            for a in stmt.args:
                _expr(el, a.value, bound, ns, frame)
        else:
            _expr(el, stmt.value, bound, ns, frame)
            if stmt.annotation is not None and isinstance(stmt.annotation, ast.TensorTypeExpr):
                bound |= ast.names_in(stmt.annotation.dims)  # an annotation binds its new dims
            bound |= {t.id for t in stmt.targets}


def _expr(el, e, bound: set, ns: dict, frame: Frame) -> None:
    for x in ast.walk([e]):
        if isinstance(x, ast.Name):
            if x.id not in bound and x.id not in ns and catalogue.get(x.id) is None and x.id not in INITIALISERS:
                frame.env = dict.fromkeys(bound)
                el.error(f"unknown name `{x.id}`", x.span, hint=el.did_you_mean(x.id, frame)
                         or f"declare it: a parameter of `{frame.stack[-1].name}`, or a `const`")
        elif isinstance(x, (ast.Call, ast.Stage)):
            _call(el, x, bound, ns, frame)


def _call(el, c, bound: set, ns: dict, frame: Frame) -> None:
    """An unknown op or block, or an argument name it does not have."""
    if c.func in bound:
        return  # a layer bound with `let` (or a parameter: the elaborator says what it is)
    decl = ns.get(c.func)
    kws = [a for a in c.args if a.name is not None]
    if isinstance(decl, ast.FuncDecl):
        names = [p.name for p in decl.params]
        for a in kws:
            if a.name not in names and a.name not in LAYER_ARGS:
                close = el.close_name(a.name, names)
                el.error(f"`{decl.name}` has no parameter `{a.name}`", a.span,
                         hint=f"did you mean `{close}`?" if close else f"parameters: {', '.join(names[:12])}")
        return
    if decl is not None or (c.func in INITIALISERS and catalogue.get(c.func) is None):
        return
    op = catalogue.get(c.func)
    if op is None:
        if not _scalar_fn(c.func):
            frame.env = dict.fromkeys(bound)
            el.error(f"unknown op or block `{c.func}`", c.span, hint=el.did_you_mean(c.func, frame))
        return
    if op.Attrs.model_config.get("extra") != "forbid" or op.varargs:
        return
    fields = list(op.Attrs.model_fields)
    for a in kws:
        if a.name not in fields and a.name not in op.tensor_kwargs and a.name not in LAYER_ARGS:
            close = difflib.get_close_matches(a.name, fields, n=1, cutoff=0.6)
            el.error(f"{op.name} has no argument `{a.name}`", a.span,
                     hint=f"did you mean `{close[0]}`?" if close else
                     (f"signature: {op.signature}" if op.signature else None))
