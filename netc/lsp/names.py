"""Names in the AST: where each is declared and used, for go to definition, find references,
document symbols and hover on a name.

An :class:`Occ` is one name in the text: a declaration (``def``) or a use. Uses resolve to
the first declaration of that name in the enclosing block, model or cell (its parameters,
the dims their types bind, ``let`` layers, ``param``s, assigned values), else to the file's
namespace (its own declarations and those of the files it imports, as the loader made it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from netc.compiler import ast
from netc.compiler.loader import Workspace
from netc.compiler.source import Span

# what a declaration of each kind is (Occ.what)
PARAM, DIM, LET, LOCAL, WEIGHT, GLOBAL, USE, KWARG = "param", "dim", "let", "local", "param_stmt", "decl", "use", "kwarg"


@dataclass(frozen=True)
class Occ:
    name: str
    span: Span  # of the name only
    what: str  # one of the kinds above; USE for a use, KWARG for `name=` in a call
    func: ast.FuncDecl | None = None  # the enclosing block, model or cell
    node: object = None  # the declaration (a Decl, Param, Let, ParamStmt, Assign) or, for a use, its expr
    callee: str | None = None  # KWARG: the op or block called

    @property
    def is_def(self) -> bool:
        return self.what not in (USE, KWARG)


def _name_span(span: Span, name: str, offset: int = 0) -> Span:
    """The span of ``name`` written at the start of ``span`` (a stage, a call, a param)."""
    return Span(span.source, span.line, span.column + offset, span.line, span.column + offset + len(name))


def decl_name_span(decl) -> Span:
    """Where a declaration's name is written."""
    if getattr(decl, "name_span", None) is not None:
        return decl.name_span
    if isinstance(decl, ast.ConstDecl):
        text = decl.span.source.text
        start = _offset(decl.span)
        m = re.compile(r"const\s+(\w+)").match(text, start)
        if m:
            return decl.span.source.span(m.start(1), m.end(1))
    return decl.span


def _offset(span: Span) -> int:
    return span.source.line_starts[span.line - 1] + span.column - 1


def occurrences(module: ast.Module) -> list[Occ]:
    """Every name written in ``module``, in no particular order."""
    out: list[Occ] = []
    for decl in module.decls:
        if isinstance(decl, ast.ConstDecl):
            out.append(Occ(decl.name, decl_name_span(decl), GLOBAL, None, decl))
            _uses([decl.value], None, out)
        elif isinstance(decl, ast.PairDecl):
            out.append(Occ(decl.name, decl_name_span(decl), GLOBAL, None, decl))
            for r in decl.roles:
                text = r.span.source.text
                start = _offset(r.span)
                m = re.compile(r"\w+\s*:\s*(\w+)").match(text, start)
                if m:
                    out.append(Occ(r.model, r.span.source.span(m.start(1), m.end(1)), USE, None, r))
        elif isinstance(decl, ast.FuncDecl):
            _func(decl, out)
    return out


def _func(decl: ast.FuncDecl, out: list[Occ]) -> None:
    out.append(Occ(decl.name, decl_name_span(decl), GLOBAL, None, decl))
    seen: set[str] = set()

    def define(name, span, what, node):
        out.append(Occ(name, span, what if name not in seen else USE, decl, node))
        seen.add(name)

    def dims(t):
        if isinstance(t, ast.TensorTypeExpr):
            for d in t.dims:
                if isinstance(d, ast.Name):
                    define(d.id, d.span, DIM, d)
                else:
                    _uses([d], decl, out)

    for p in decl.params:
        define(p.name, _name_span(p.span, p.name), PARAM, p)
        dims(p.type)
        if p.default is not None:
            _uses([p.default], decl, out)
    for r in decl.results or ():
        if r.type is not None:
            _uses(list(r.type.dims), decl, out)
    for stmt in decl.body:
        if isinstance(stmt, ast.Assign):
            _uses([stmt.value], decl, out)
            if stmt.annotation is not None:
                dims(stmt.annotation)
            for t in stmt.targets:
                define(t.id, t.span, LOCAL, stmt)
        elif isinstance(stmt, ast.Let):
            _uses([stmt.value], decl, out)
            define(stmt.name.id, stmt.name.span, LET, stmt)
        elif isinstance(stmt, ast.ParamStmt):
            dims(stmt.type)
            _uses([stmt.init], decl, out)
            define(stmt.name.id, stmt.name.span, WEIGHT, stmt)
        elif isinstance(stmt, ast.Defaults):
            _uses([a.value for a in stmt.args], decl, out)
        elif isinstance(stmt, ast.Return):
            _uses(list(stmt.values), decl, out)


def _uses(exprs, func, out: list[Occ]) -> None:
    for e in ast.walk([x for x in exprs if x is not None]):
        if isinstance(e, ast.Name):
            out.append(Occ(e.id, e.span, USE, func, e))
        elif isinstance(e, (ast.Stage, ast.Call)):
            out.append(Occ(e.func, _name_span(e.span, e.func), USE, func, e))
            for a in e.args:
                if a.name is not None:
                    out.append(Occ(a.name, _name_span(a.span, a.name), KWARG, func, a, e.func))


class Index:
    """The occurrences of every file of a workspace, and how each use resolves."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.occs: dict[str, list[Occ]] = {key: occurrences(m) for key, m in ws.modules.items()}
        # (file, id(func)) -> name -> its first declaration in that func
        self.locals: dict[tuple[str, int], dict[str, Occ]] = {}
        for key, occs in self.occs.items():
            for o in occs:
                if o.is_def and o.func is not None:
                    self.locals.setdefault((key, id(o.func)), {}).setdefault(o.name, o)

    def file_of(self, span: Span) -> str | None:
        for key, m in self.ws.modules.items():
            if m.span.source is span.source or m.span.source.path == span.path:
                return key
        return None

    def at(self, key: str, line: int, column: int) -> Occ | None:
        """The occurrence under (line, column) in file ``key`` (a cursor just after a name counts)."""
        inside = after = None
        for o in self.occs.get(key, ()):
            s = o.span
            if s.line == line and s.column <= column < s.end_column:
                inside = o
            elif s.line == line and s.end_column == column:
                after = o
        return inside or after

    def resolve(self, key: str, o: Occ):
        """What ``o`` names: an Occ (a local declaration), a Decl of the namespace, a
        ``(decl, param)`` for a keyword argument, or None (an op, or nothing)."""
        if o.what == KWARG:
            decl = self.ws.namespaces.get(key, {}).get(o.callee)
            if isinstance(decl, ast.FuncDecl):
                p = next((p for p in decl.params if p.name == o.name), None)
                return (decl, p) if p is not None else None
            return None
        if o.func is None and o.what == GLOBAL:
            return o.node
        if o.func is not None:
            local = self.locals.get((key, id(o.func)), {}).get(o.name)
            if local is not None:
                return local
        return self.ws.namespaces.get(key, {}).get(o.name)

    def target_span(self, target) -> Span | None:
        if isinstance(target, Occ):
            return target.span
        if isinstance(target, tuple):
            p = target[1]
            return _name_span(p.span, p.name)
        if target is not None:
            return decl_name_span(target)
        return None

    def references(self, key: str, o: Occ) -> list[Span]:
        """Every place that names what ``o`` names (its declaration first)."""
        target = self.resolve(key, o)
        if target is None:
            return []
        out = []
        files = [key] if isinstance(target, (Occ, tuple)) else list(self.occs)
        for k in files:
            for x in self.occs[k]:
                if x.name == o.name and _same(self.resolve(k, x), target):
                    out.append(x.span)
        head = self.target_span(target)
        out.sort(key=lambda s: (s != head, s.path, s.line, s.column))
        return out


def _same(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return a[0] is b[0] and a[1] is b[1]
    return a is b
