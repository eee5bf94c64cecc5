"""The front-end driver: load, parse, elaborate every model, check pairs.

``compile_spec(path, defines)`` returns a :class:`Compiled` (graphs and pairs) or raises
``SpecError`` with every diagnostic; ``UsageError`` for bad ``-D`` values.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import field

from . import ast
from .elaborate import Elaborator
from .ir import Graph
from .limits import DEFAULT_MAX_PARAMS, MAX_INT, MAX_SEQUENCE, gc_paused
from .loader import load
from .parse import parse
from .records import Record
from .shapes import unify
from .source import Diagnostic, Diagnostics, SourceFile, Span, SpecError, TooManyErrors, closest
from .unused import check_unused

ROLES = (("generator", "discriminator"), ("encoder", "decoder"))


class UsageError(SpecError):
    """Bad command-line input (``-D`` values); the CLI exits 2."""


class Pair(Record, frozen=False):
    name: str
    roles: tuple[tuple[str, str], ...]  # ((role, model name), (role, model name))
    span: Span


class Compiled(Record, frozen=False):
    """The graphs and pairs of a spec, and how they were made: the ``-D`` values (parsed),
    the models asked for, the limits, and the ``-O`` level and disabled passes once
    optimised. Emitted files record that as the command that makes them again."""

    path: str
    graphs: dict[str, Graph] = field(default_factory=dict)
    pairs: dict[str, Pair] = field(default_factory=dict)
    defines: dict = field(default_factory=dict)  # name -> value, as parsed from -D
    models: list[str] | None = None  # the models and pairs compiled (None: all)
    level: int = 0  # the -O level of the graphs
    disable: tuple[str, ...] = ()  # passes left out of that level's pipeline
    max_params: int = DEFAULT_MAX_PARAMS
    allow_imports_outside: bool = False
    sources: tuple[str, ...] = ()  # every file read: the spec and its imports (real paths)

    def command_args(self, backend: str, names: list[str] | None = None) -> str:
        """The ``netc compile SPEC`` arguments that emit these graphs again, shell-quoted:
        ``--backend torch -O2 -D classes=10 --model ResNet18``. ``names``: the models and pairs
        emitted (default: those compiled). One line of printable text, whatever the values."""
        args = ["--backend", backend]
        if self.level:
            args.append(f"-O{self.level}")
        for name in self.disable:
            args += ["--disable", name]
        for name in sorted(self.defines):
            args += ["-D", f"{name}={format_value(self.defines[name])}"]
        for name in names if names is not None else self.models or []:
            args += ["--model", name]
        if self.max_params != DEFAULT_MAX_PARAMS:
            args += ["--max-params", str(self.max_params)]
        if self.allow_imports_outside:
            args.append("--allow-imports-outside")
        import shlex

        text = " ".join(shlex.quote(a) for a in args)
        return "".join(c if c.isprintable() else "?" for c in text)


_ESCAPES = {"\\": "\\\\", '"': '\\"'}  # a .net string is read as a Python literal


def format_value(v) -> str:
    """A ``-D`` value as a .net literal (as ``-D`` parses it back): ``10``, ``0.5``,
    ``true``, ``"gelu"``, ``(3, 3)``."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, float) and math.isfinite(v):
        return repr(v)
    if isinstance(v, str):
        return '"' + "".join(_ESCAPES.get(c) or (c if c.isprintable() else c.encode("unicode_escape").decode())
                             for c in v) + '"'
    if isinstance(v, (tuple, list)):
        inner = ", ".join(format_value(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


def parse_defines(defines: dict | None) -> tuple[dict, list[Diagnostic]]:
    """``-D`` values: strings are parsed as .net literals; other Python values are taken as is."""
    out, diags = {}, []
    for name, raw in (defines or {}).items():
        problem = None if isinstance(raw, str) else _bad_value(raw)
        shown = f"-D {name}=..." if problem else f"-D {name}={raw}"  # str() of a huge int raises
        src = SourceFile("<command line>", shown)
        at = Span(src, 1, 1, 1, len(shown) + 1)
        if not isinstance(name, str) or not name.isidentifier():
            diags.append(Diagnostic(f"-D needs name=value; `{name}` is not a name", at))
            continue
        if problem:
            diags.append(Diagnostic(f"bad -D value for `{name}`: {problem}", at))
            continue
        if not isinstance(raw, str):
            out[name] = (raw, at)
            continue
        col = len(shown) - len(raw) + 1
        value = _literal(raw, src, col, diags)
        if value is not None:
            out[name] = (value, Span(src, 1, col, 1, col + max(len(raw), 1)))
    return out, diags


def _bad_value(v) -> str | None:
    """Why a Python value given as a define is not one a spec can hold (None: it is)."""
    if isinstance(v, (bool, str)):
        return None
    if isinstance(v, numbers.Integral):
        if abs(int(v)) > MAX_INT:
            return f"an integer of {int(v).bit_length()} bits; integers are at most 2**63 - 1 (the limit)"
        return None
    if isinstance(v, numbers.Real):
        return "NaN is not a value a spec can use" if math.isnan(v) else None
    if isinstance(v, (tuple, list)):
        if len(v) > MAX_SEQUENCE:
            return f"a tuple of {len(v)} items; at most {MAX_SEQUENCE} (the limit)"
        return next((p for p in map(_bad_value, v) if p), None)
    return f"a value of type {type(v).__name__} is not a .net value (int, float, bool, str or a tuple of them)"


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


@gc_paused
def compile_spec(path: str, defines: dict | None = None, models: list[str] | None = None, *,
                 max_params: int = DEFAULT_MAX_PARAMS, allow_imports_outside: bool = False,
                 text: str | None = None, on_load=None) -> Compiled:
    """``max_params``: the most parameters a model may have (checked on the graph, before any
    weights exist). ``allow_imports_outside``: accept imports outside the spec's folder.
    ``text``: the spec's text, compiled instead of the file's (an editor's buffer; imports are
    still read from disk). ``on_load``: called before elaboration with the loader's Workspace
    (the parsed files and their namespaces) and the Compiled that elaboration then fills, so
    that a caller keeps both even when the spec has errors (the language server navigates
    with them and shows the models that did elaborate)."""
    values, bad = parse_defines(defines)
    if bad:
        raise UsageError(bad)
    diags = Diagnostics()
    try:
        return _compile(path, diags, values, models, max_params, allow_imports_outside, text, on_load)
    except TooManyErrors:  # MAX_ERRORS found: the rest of the spec is not searched
        usage = [d for d in diags.items if d.span and d.span.path == "<command line>"]
        if usage:
            raise UsageError(usage) from None
        diags.raise_if_any()
        raise


def _compile(path: str, diags: Diagnostics, values: dict, models: list[str] | None, max_params: int,
             allow_imports_outside: bool, text: str | None = None, on_load=None) -> Compiled:
    ws = load(path, diags, allow_imports_outside, text)
    out = Compiled(path, defines={name: value for name, (value, _span) in values.items()},
                   models=list(models) if models else None, max_params=max_params,
                   allow_imports_outside=allow_imports_outside, sources=tuple(ws.modules))
    if on_load is not None:
        on_load(ws, out)
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
    if wanted:
        known = [d.name for d in need + pairs]
        missing = [m for m in dict.fromkeys(models) if m not in known]
        if missing:
            raise UsageError([Diagnostic(f"--model {m}: no such model or pair; the spec has "
                                         f"{', '.join(known) or 'none'}", None, hint=_close(m, known))
                              for m in missing])
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
    if wanted is None:  # with --model, the blocks of the models left out are not checked either
        for d in decls:
            if isinstance(d, ast.FuncDecl) and d.kind in ("block", "cell") and id(d) not in el.applied:
                try:
                    check_unused(el, d)  # a block no model applies: its errors are errors too
                except RecursionError:
                    el._const_active.clear()
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
                decl.name_span, _largest_layers(graph), hint=f"if that is intended, raise the limit: --max-params {count}")
    return False


def _largest_layers(graph: Graph, most: int = 3) -> list[tuple[str, Span]]:
    """Notes naming the layers that hold the most parameters (at most ``most``), largest first:
    where the weights of a model over the limit are."""
    held: dict[str, list] = {}  # layer -> [parameters, its first node]
    for n in graph.nodes():
        for pname, p in n.params.items():
            if not p.buffer:
                entry = held.setdefault(n.layer or n.id, [0, n, set()])
                if pname not in entry[2]:  # a shared layer's weights count once
                    entry[2].add(pname)
                    entry[0] += p.numel
    top = sorted(held.items(), key=lambda kv: -kv[1][0])[:most]
    return [(f"`{n.op}` (layer `{layer}`) holds {count:,} parameters", n.span)
            for layer, (count, n, _) in top if count]


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
                                                                           if isinstance(d, ast.FuncDecl)], diags))
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


def _close(name: str, pool: list[str], diags: Diagnostics | None = None) -> str | None:
    close = diags.closest(name, pool) if diags is not None else closest(name, pool)
    return f"did you mean `{close}`?" if close else None
