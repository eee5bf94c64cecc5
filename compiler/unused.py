"""Blocks and cells of the root spec that no model applies are checked once.

A model elaborates only what it applies, so a block nothing uses would never be looked at.
Here each such block (or cell) is elaborated on its own, in a throwaway graph: every dim of
its tensor parameters' shape patterns becomes a symbolic size (``x: [N, C]`` binds N and C),
an ``int`` parameter without a default becomes a fresh symbol of its own name, its other
parameters take their defaults, and the errors found are reported with a note that the block
is used by no model.

What a symbolic value cannot decide is left out, not guessed: an op argument that must be a
concrete integer (``linear(out)``, ``conv2d(out, 3)`` with ``out`` a symbol: weights need
sizes), a comparison of symbolic sizes (``if C == out``), and so everything computed from them
(their value is poisoned, which reports nothing). Those errors are dropped, and so is any error
that names an ``int`` parameter's symbol: it may hold for some values only (``reshape(N, T * D *
out)`` fits when out == 1). The rest of the body is still checked with the symbols, and the
body is then also checked statically: unknown
names, unknown ops and blocks, and argument names no op or block has. Where the block cannot be
elaborated at all (a tensor parameter without a shape pattern, a parameter without a default
that is not an ``int``) only the static check runs.

Not checked, then: the shapes of what follows an op sized by an ``int`` parameter or a branch
on symbolic sizes (``x -> linear(out) -> conv2d(4, 3)``, a rank error after the linear, is not
found), an error whose shapes involve an ``int`` parameter, and nothing of a block without shape
patterns beyond the static check. Pattern dims are the block's own: as for models, two
different ones are two different sizes (``[N, C] + [N, D]`` is an error even though a caller
could pass C == D).
"""

from __future__ import annotations

import re

from netc.specs import catalogue
from netc.specs.init import INITIALISERS, LAYER_ARGS

from . import ast
from .calls import _scalar_fn
from .dims import sym
from .ir import Graph
from .values import POISON, Frame

# errors that say a size must be concrete: a generic run cannot decide those, so they are not
# the block's fault; they are dropped, and the static check covers what they poisoned
_NEEDS_CONCRETE = ("symbolic size", "concrete")


def check_unused(el, decl: ast.FuncDecl) -> None:
    """Report the errors of ``decl``, a block or cell no model applies."""
    note = (f"`{decl.name}` is used by no model; it is checked on its own, its sizes symbolic", decl.name_span)
    static_note = (f"`{decl.name}` is used by no model; its names, ops and argument names are checked",
                   decl.name_span)
    diags = el.diags
    start = len(diags.items)
    nodes = diags.budget.nodes
    generic = _generic(decl) and _elaborate(el, decl)
    diags.budget.nodes = nodes  # the throwaway graph's nodes are not the models'
    if generic:
        new = diags.items[start:]
        depends = _mentions([p.name for p in decl.params if _fresh(p)])
        kept = [d for d in new if not any(w in d.message for w in _NEEDS_CONCRETE) and not depends(d.message)]
        del diags.items[start:]
        diags.items += kept
        for d in new:
            if d not in kept:  # unseen again, so that the static check may report it if it is its own
                diags._seen.discard(hash((d.message, d.span and (d.span.path, d.span.line, d.span.column))))
                el._seen.discard((d.message, d.span and (d.span.path, d.span.line, d.span.column)))
        for d in kept:
            d.notes.append(note)
        if len(kept) == len(new):
            return  # the whole body was checked with symbolic sizes
    n = len(diags.items)
    _static(el, decl)  # what the symbols could not decide: at least names, ops, argument names
    for d in diags.items[n:]:
        d.notes.append(static_note)


def _fresh(p: ast.Param) -> bool:
    """An ``int`` parameter without a default: elaborated as a symbol of its own name."""
    return not p.is_tensor and p.default is None


def _mentions(names: list[str]):
    """Whether a message names one of ``names`` as a size: an error about an ``int`` parameter's
    symbol may hold only for some of its values (``reshape(N, T * D * out)`` fits when out == 1),
    unlike one about pattern dims, which are the block's own."""
    if not names:
        return lambda message: False
    words = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])")
    return lambda message: words.search(message) is not None


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
            import difflib  # (an error's hint: not loaded on the path of a spec that checks)

            close = difflib.get_close_matches(a.name, fields, n=1, cutoff=0.6)
            el.error(f"{op.name} has no argument `{a.name}`", a.span,
                     hint=f"did you mean `{close[0]}`?" if close else
                     (f"signature: {op.signature}" if op.signature else None))
