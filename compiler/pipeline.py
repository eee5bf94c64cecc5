"""The front-end driver: load, parse, elaborate every model, check pairs.

``compile_spec(path, defines)`` returns a :class:`Compiled` (graphs and pairs) or raises
``SpecError`` with every diagnostic; ``UsageError`` for bad ``-D`` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ast
from .elaborate import Elaborator
from .ir import Graph
from .limits import DEFAULT_MAX_PARAMS
from .loader import load
from .parse import parse
from .shapes import unify
from .source import Diagnostic, Diagnostics, SourceFile, Span, SpecError, closest

ROLES = (("generator", "discriminator"), ("encoder", "decoder"))


class UsageError(SpecError):
    """Bad command-line input (``-D`` values); the CLI exits 2."""


@dataclass
class Pair:
    name: str
    roles: tuple[tuple[str, str], ...]  # ((role, model name), (role, model name))
    span: Span


@dataclass
class Compiled:
    path: str
    graphs: dict[str, Graph] = field(default_factory=dict)
    pairs: dict[str, Pair] = field(default_factory=dict)


def parse_defines(defines: dict | None) -> tuple[dict, list[Diagnostic]]:
    """``-D`` values: strings are parsed as .net literals; other Python values are taken as is."""
    out, diags = {}, []
    for name, raw in (defines or {}).items():
        shown = f"-D {name}={raw}"
        src = SourceFile("<command line>", shown)
        at = Span(src, 1, 1, 1, len(shown) + 1)
        if not name.isidentifier():
            diags.append(Diagnostic(f"-D needs name=value; `{name}` is not a name", at))
            continue
        if not isinstance(raw, str):
            out[name] = (raw, at)
            continue
        col = len(shown) - len(raw) + 1
        value = _literal(raw, src, col, diags)
        if value is not None:
            out[name] = (value, Span(src, 1, col, 1, col + max(len(raw), 1)))
    return out, diags


def _literal(raw: str, src: SourceFile, col: int, diags: list):
    tree = parse(SourceFile(src.path, " " * (col - 1) + raw), start="expr")
    if isinstance(tree, Diagnostic):
        tree.span = Span(src, 1, tree.span.column, 1, tree.span.end_column)
        tree.message = f"bad -D value: {tree.message.removeprefix('syntax error: ')}"
        diags.append(tree)
        return None

    def lit(e):
        if isinstance(e, ast.Lit):
            return e.value
        if isinstance(e, ast.Unary) and e.op == "-" and isinstance(e.operand, ast.Lit) \
                and isinstance(e.operand.value, (int, float)) and not isinstance(e.operand.value, bool):
            return -e.operand.value
        if isinstance(e, ast.TupleLit):
            items = [lit(x) for x in e.items]
            return None if None in items else tuple(items)
        return None

    value = lit(tree)
    if value is None:
        hint = f'a string needs quotes: "{raw}" (in a shell, \'"{raw}"\')' if raw.isidentifier() else None
        diags.append(Diagnostic("bad -D value: expected a literal (int, float, bool, \"string\" or tuple)",
                                Span(src, 1, col, 1, col + len(raw)), hint=hint))
    return value


def compile_spec(path: str, defines: dict | None = None, models: list[str] | None = None, *,
                 max_params: int = DEFAULT_MAX_PARAMS, allow_imports_outside: bool = False) -> Compiled:
    """``max_params``: the most parameters a model may have (checked on the graph, before any
    weights exist). ``allow_imports_outside``: accept imports outside the spec's folder."""
    values, bad = parse_defines(defines)
    if bad:
        raise UsageError(bad)
    diags = Diagnostics()
    ws = load(path, diags, allow_imports_outside)
    out = Compiled(path)
    if ws.root is None or ws.root not in ws.modules:
        diags.raise_if_any()
        return out
    el = Elaborator(ws, diags, values)
    root = ws.modules[ws.root]
    ns = ws.namespaces[ws.root]
    wanted = set(models) if models else None
    # a declaration that lost a name clash (reported by the loader) is not elaborated
    decls = [d for d in root.decls if ns.get(d.name) is d]
    pairs = [d for d in decls if isinstance(d, ast.PairDecl)]
    need = [d for d in decls if isinstance(d, ast.FuncDecl) and d.kind == "model"]
    for p in pairs:
        need += [ns[r.model] for r in p.roles if isinstance(ns.get(r.model), ast.FuncDecl)
                 and ns[r.model].kind == "model"]
    if wanted:
        need = [d for d in need if d.name in wanted or any(p.name in wanted and d.name in [r.model for r in p.roles]
                                                             for p in pairs)]
    for decl in dict.fromkeys(need):
        try:
            graph = el.model(decl)
        except RecursionError:  # the limits keep well below Python's stack; this is the backstop
            el._const_active.clear()
            diags.error(f"model `{decl.name}` nests blocks and expressions too deeply to compile", decl.name_span,
                        hint="nest fewer blocks, or split deep expressions into statements")
            continue
        if graph is not None and _within_budget(decl, graph, max_params, diags):
            out.graphs[decl.name] = graph
    for d in decls:
        if isinstance(d, ast.ConstDecl):
            el.const(d, d.span, None)  # an unused const's errors are errors too
    for p in pairs:
        if wanted is None or p.name in wanted:
            check_pair(p, ns, out, diags)
    unused = sorted(set(values) - el.used_defines)
    if unused and not diags:
        known = sorted({p.name for d in need for p in d.params if not p.is_tensor}
                       | {d.name for d in ns.values() if isinstance(d, ast.ConstDecl)})
        raise UsageError([Diagnostic(f"-D {n}: no model parameter or const is named `{n}`",
                                     Span(values[n][1].source, 1, 4, 1, 4 + len(n)),
                                     hint=_close(n, known)) for n in unused])
    diags.items = _dedupe(diags.items)
    usage = [d for d in diags.items if d.span and d.span.path == "<command line>"]
    if usage:
        raise UsageError(usage)
    diags.raise_if_any()
    return out


def _within_budget(decl: ast.FuncDecl, graph: Graph, max_params: int, diags: Diagnostics) -> bool:
    """A model's parameter count is within ``max_params``; else an error at its name."""
    count = graph.param_count()
    if count <= max_params:
        return True
    diags.error(f"model `{decl.name}` has {count:,} parameters, more than the limit of {max_params:,}",
                decl.name_span, hint=f"if that is intended, raise the limit: --max-params {count}")
    return False


def check_pair(p: ast.PairDecl, ns: dict, out: Compiled, diags: Diagnostics) -> None:
    names = tuple(r.role for r in p.roles)
    if names not in ROLES:
        want = " or ".join(f"`{a}`/`{b}`" for a, b in ROLES)
        diags.error(f"pair `{p.name}` has roles {', '.join(names) or 'none'}; a pair has {want}", p.span)
        return
    for r in p.roles:
        decl = ns.get(r.model)
        if not isinstance(decl, ast.FuncDecl) or decl.kind != "model":
            what = f"a {decl.kind}" if isinstance(decl, ast.FuncDecl) else "not declared"
            notes = [(f"`{r.model}` is declared", decl.name_span)] if isinstance(decl, ast.FuncDecl) else []
            hint = ("declare it as a `model`, with full input types like `float[N, 784]`"
                    if isinstance(decl, ast.FuncDecl) else _close(r.model, [n for n, d in ns.items()
                                                                           if isinstance(d, ast.FuncDecl)]))
            diags.error(f"pair `{p.name}`: `{r.model}` is {what}; a role names a model", r.span, notes, hint)
            return
    first, second = (out.graphs.get(r.model) for r in p.roles)
    if first is None or second is None:
        return  # the model's own errors are reported already
    handoff_error = _handoff(first, second)
    if handoff_error:
        msg, notes = handoff_error
        diags.error(f"pair `{p.name}`: {p.roles[0].role} `{first.name}` does not fit {p.roles[1].role} "
                    f"`{second.name}`: {msg}", p.roles[1].span, notes)
        return
    out.pairs[p.name] = Pair(p.name, tuple((r.role, r.model) for r in p.roles), p.span)


def _handoff(first: Graph, second: Graph):
    """Unify the first model's outputs with the second's inputs: by name, else in order."""
    outs = [(name, first.type_of(ref), first.producer(ref)) for name, ref in first.outputs]
    ins = {n.id: n for n in second.input_nodes()}
    named = [o for o in outs if o[0] in ins]
    targets = [ins[o[0]] for o in named] if named and len(named) == len(outs) else second.input_nodes()[:len(outs)]
    if len(targets) < len(outs):
        return (f"{len(outs)} output(s) but only {len(targets)} input(s)", [])
    env: dict = {}
    for (name, t, producer), inp in zip(outs, targets):
        msg = unify(inp.type, t, env)
        if msg:
            label = f"output `{name}`" if name else "its output"
            return (f"{label} is {t}, input `{inp.id}` is {inp.type}: {msg}",
                    [(f"{t} comes from {producer.op}", producer.span),
                     (f"`{inp.id}` is declared {inp.type}", inp.span)])
    return None


def _close(name: str, pool: list[str]) -> str | None:
    close = closest(name, pool)
    return f"did you mean `{close}`?" if close else None


def _dedupe(items: list[Diagnostic]) -> list[Diagnostic]:
    seen, out = set(), []
    for d in items:
        key = (d.message, d.span and (d.span.path, d.span.line, d.span.column))
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
